"""Features: named feature definitions, their versions, and what was built from them.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feature_views",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
    )
    op.create_table(
        "feature_view_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("view_id", sa.Integer, sa.ForeignKey("feature_views.id"), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("code_oid", sa.String(64), nullable=False),
        sa.Column(
            "source_version_id", sa.Integer, sa.ForeignKey("dataset_versions.id"), nullable=True
        ),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.UniqueConstraint("view_id", "number", name="uq_feature_view_versions_number"),
    )
    op.create_index(
        "ix_feature_view_versions_source", "feature_view_versions", ["source_version_id"]
    )
    op.create_table(
        "feature_lineage",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "dataset_version_id", sa.Integer, sa.ForeignKey("dataset_versions.id"), nullable=False
        ),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column(
            "feature_view_version_id",
            sa.Integer,
            sa.ForeignKey("feature_view_versions.id"),
            nullable=True,
        ),
        sa.Column(
            "input_version_id", sa.Integer, sa.ForeignKey("dataset_versions.id"), nullable=True
        ),
    )
    op.create_index("ix_feature_lineage_made", "feature_lineage", ["dataset_version_id"])
    op.create_index("ix_feature_lineage_view", "feature_lineage", ["feature_view_version_id"])


def downgrade() -> None:
    op.drop_table("feature_lineage")
    op.drop_table("feature_view_versions")
    op.drop_table("feature_views")
