"""Drift reports, linked to the model version and dataset versions they judged.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drift_reports",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=True
        ),
        sa.Column(
            "dataset_version_id", sa.Integer, sa.ForeignKey("dataset_versions.id"), nullable=True
        ),
        sa.Column(
            "current_version_id", sa.Integer, sa.ForeignKey("dataset_versions.id"), nullable=True
        ),
        sa.Column("reference", sa.Text, nullable=False),
        sa.Column("current", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("result_oid", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
    )
    op.create_index("ix_drift_reports_model", "drift_reports", ["model_version_id", "created_at"])
    op.create_index("ix_drift_reports_data", "drift_reports", ["dataset_version_id", "created_at"])


def downgrade() -> None:
    op.drop_table("drift_reports")
