"""Online features: the latest row per entity of each feature view, and which build it is.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "online_builds",
        sa.Column("view", sa.String(128), primary_key=True),
        sa.Column(
            "version_id", sa.Integer, sa.ForeignKey("feature_view_versions.id"), nullable=False
        ),
        sa.Column("columns", sa.Text, nullable=False),
        sa.Column("entities", sa.Integer, nullable=False),
        sa.Column("changed", sa.Integer, nullable=False),
        sa.Column("built_at", sa.Float, nullable=False),
        sa.Column("built_by", sa.String(128), nullable=False),
    )
    op.create_table(
        "online_features",
        sa.Column("view", sa.String(128), primary_key=True),
        sa.Column("entity", sa.String(512), primary_key=True),
        sa.Column("event_ts", sa.Float, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    with op.batch_alter_table("feature_lineage") as batch:
        batch.add_column(sa.Column("columns", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feature_lineage") as batch:
        batch.drop_column("columns")
    op.drop_table("online_features")
    op.drop_table("online_builds")
