"""The loop: who holds a model's loop, its retraining attempts, and every decision.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "loop_leases",
        sa.Column("model", sa.String(300), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("acquired_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_table(
        "loop_attempts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("model", sa.String(300), nullable=False),
        sa.Column("trigger_id", sa.String(300), nullable=False, unique=True),
        sa.Column("trigger", sa.Text, nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("step", sa.Integer, nullable=True),
        sa.Column("step_started_at", sa.Float, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_loop_attempts_model", "loop_attempts", ["model", "created_at"])
    op.create_table(
        "loop_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(300), nullable=False),
        sa.Column("attempt_id", sa.String(32), nullable=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("state", sa.String(32), nullable=True),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
    )
    op.create_index("ix_loop_events_model", "loop_events", ["model", "id"])


def downgrade() -> None:
    op.drop_table("loop_events")
    op.drop_table("loop_attempts")
    op.drop_table("loop_leases")
