"""Foundation: datasets, dataset versions, pointers, events, object references.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
    )
    op.create_table(
        "dataset_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id"), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("file_count", sa.Integer, nullable=False),
        sa.Column("profile_oid", sa.String(64), nullable=True),
        sa.Column("profile_error", sa.Text, nullable=True),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("deleted_at", sa.Float, nullable=True),
        sa.UniqueConstraint("dataset_id", "number", name="uq_dataset_versions_number"),
    )
    op.create_index("ix_dataset_versions_digest", "dataset_versions", ["digest"])
    op.create_table(
        "pointers",
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(300), primary_key=True),
        sa.Column("target", sa.String(300), nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("from_target", sa.String(300), nullable=True),
        sa.Column("to_target", sa.String(300), nullable=True),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_index("ix_events_kind_name", "events", ["kind", "name", "id"])
    op.create_table(
        "object_refs",
        sa.Column("owner_kind", sa.String(32), primary_key=True),
        sa.Column("owner_id", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(32), primary_key=True),
        sa.Column("oid", sa.String(64), nullable=False),
        sa.Column("shape", sa.String(8), nullable=False),
        sa.Column("label", sa.String(300), nullable=False),
    )
    op.create_index("ix_object_refs_oid", "object_refs", ["oid"])


def downgrade() -> None:
    for table in ("object_refs", "events", "pointers", "dataset_versions", "datasets"):
        op.drop_table(table)
