"""Experiment tracking: runs, params, tags, metric chunks, latest metrics, inputs, artifacts.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(32), nullable=False, unique=True),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("experiment", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float, nullable=True),
        sa.Column("heartbeat_at", sa.Float, nullable=False),
        sa.Column("heartbeat_interval", sa.Float, nullable=False),
        sa.Column("user", sa.String(128), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("command", sa.Text, nullable=False),
        sa.Column("cwd", sa.Text, nullable=False),
        sa.Column("repo_root", sa.Text, nullable=True),
        sa.Column("git_commit", sa.String(40), nullable=True),
        sa.Column("git_branch", sa.String(255), nullable=True),
        sa.Column("git_remote", sa.Text, nullable=True),
        sa.Column("git_dirty", sa.Integer, nullable=False),
        sa.Column("patch_oid", sa.String(64), nullable=True),
        sa.Column("untracked_oid", sa.String(64), nullable=True),
        sa.Column("environment_oid", sa.String(64), nullable=True),
        sa.Column("seeds", sa.Text, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("reproduction_of", sa.String(32), nullable=True),
    )
    op.create_index("ix_runs_created_at", "runs", ["created_at"])
    op.create_index("ix_runs_status", "runs", ["status"])
    op.create_index("ix_runs_experiment", "runs", ["experiment"])
    op.create_table(
        "run_params",
        sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.pk"), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("value_num", sa.Float, nullable=True),
    )
    op.create_index("ix_run_params_key_num", "run_params", ["key", "value_num"])
    op.create_table(
        "run_tags",
        sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.pk"), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_index("ix_run_tags_key_value", "run_tags", ["key", "value"])
    op.create_table(
        "metric_keys",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(250), nullable=False, unique=True),
    )
    op.create_table(
        "metric_chunks",
        sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.pk"), primary_key=True),
        sa.Column("key_id", sa.Integer, sa.ForeignKey("metric_keys.id"), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("steps", sa.LargeBinary, nullable=False),
        sa.Column("timestamps", sa.LargeBinary, nullable=False),
        sa.Column("values", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "run_metrics",
        sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.pk"), primary_key=True),
        sa.Column("key_id", sa.Integer, sa.ForeignKey("metric_keys.id"), primary_key=True),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("min_value", sa.Float, nullable=True),
        sa.Column("max_value", sa.Float, nullable=True),
        sa.Column("count", sa.Integer, nullable=False),
    )
    op.create_index("ix_run_metrics_key_value", "run_metrics", ["key_id", "value"])
    op.create_table(
        "run_inputs",
        sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.pk"), primary_key=True),
        sa.Column(
            "dataset_version_id",
            sa.Integer,
            sa.ForeignKey("dataset_versions.id"),
            primary_key=True,
        ),
        sa.Column("used_at", sa.Float, nullable=False),
    )
    op.create_index("ix_run_inputs_version", "run_inputs", ["dataset_version_id"])
    op.create_table(
        "run_artifacts",
        sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.pk"), primary_key=True),
        sa.Column("path", sa.String(1000), primary_key=True),
        sa.Column("oid", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("chunked", sa.Integer, nullable=False),
        sa.Column("logged_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "run_artifacts",
        "run_inputs",
        "run_metrics",
        "metric_chunks",
        "metric_keys",
        "run_tags",
        "run_params",
        "runs",
    ):
        op.drop_table(table)
