"""The metadata schema: immutable records, movable pointers, an append-only event log.

Alembic migrations under ``migrations/`` create exactly these tables; a test
compares the two so they never drift apart.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = ["dataset_versions", "datasets", "events", "metadata", "object_refs", "pointers"]

metadata = MetaData()

datasets = Table(
    "datasets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(128), nullable=False),
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dataset_id", Integer, ForeignKey("datasets.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("kind", String(8), nullable=False),  # "file" or "dir": how to materialize it
    Column("size", BigInteger, nullable=False),
    Column("file_count", Integer, nullable=False),
    Column("profile_oid", String(64), nullable=True),
    Column("profile_error", Text, nullable=True),
    Column("message", Text, nullable=False, default=""),
    Column("source", Text, nullable=False, default=""),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("deleted_at", Float, nullable=True),
    UniqueConstraint("dataset_id", "number", name="uq_dataset_versions_number"),
    Index("ix_dataset_versions_digest", "digest"),
)

# The only mutable rows: a dataset's head, later model aliases and deployment routing.
pointers = Table(
    "pointers",
    metadata,
    Column("kind", String(32), primary_key=True),
    Column("name", String(300), primary_key=True),
    Column("target", String(300), nullable=False),
    Column("updated_at", Float, nullable=False),
)

# Every pointer move: who, when, from, to, why. Never updated, never deleted.
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("name", String(300), nullable=False),
    Column("from_target", String(300), nullable=True),
    Column("to_target", String(300), nullable=True),
    Column("message", Text, nullable=False, default=""),
    Index("ix_events_kind_name", "kind", "name", "id"),
)

# Which records name which objects: the roots that verify and gc walk.
object_refs = Table(
    "object_refs",
    metadata,
    Column("owner_kind", String(32), primary_key=True),
    Column("owner_id", String(64), primary_key=True),
    Column("role", String(32), primary_key=True),
    Column("oid", String(64), nullable=False),
    Column("shape", String(8), nullable=False),  # "blob", "tree" or "chunks"
    Column("label", String(300), nullable=False),  # what a person calls the owner: churn@v3
    Index("ix_object_refs_oid", "oid"),
)
