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
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "dataset_versions",
    "datasets",
    "deployments",
    "drift_reports",
    "evaluations",
    "events",
    "metadata",
    "metric_chunks",
    "metric_keys",
    "model_versions",
    "models",
    "object_refs",
    "pointers",
    "run_artifacts",
    "run_inputs",
    "run_metrics",
    "run_params",
    "run_tags",
    "runs",
]

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
    # What the move was: "move" (NULL in rows from before 0003), "promote", "rollback".
    Column("action", String(16), nullable=True),
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

# -- experiment tracking (revision 0002) ---------------------------------------

runs = Table(
    "runs",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("id", String(32), nullable=False, unique=True),  # uuid4 hex; people use a prefix
    Column("name", String(250), nullable=False),
    Column("experiment", String(128), nullable=False),
    Column("status", String(16), nullable=False),  # running finished failed killed crashed
    Column("created_at", Float, nullable=False),
    Column("ended_at", Float, nullable=True),
    Column("heartbeat_at", Float, nullable=False),
    Column("heartbeat_interval", Float, nullable=False),
    Column("user", String(128), nullable=False),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("command", Text, nullable=False),  # JSON: {"python": …, "argv": […]}
    Column("cwd", Text, nullable=False),  # relative to the repository root when in one
    Column("repo_root", Text, nullable=True),
    Column("git_commit", String(40), nullable=True),
    Column("git_branch", String(255), nullable=True),
    Column("git_remote", Text, nullable=True),
    Column("git_dirty", Integer, nullable=False, default=0),
    Column("patch_oid", String(64), nullable=True),  # uncommitted tracked changes (a patch)
    Column("untracked_oid", String(64), nullable=True),  # untracked files (a tree)
    Column("environment_oid", String(64), nullable=True),
    Column("seeds", Text, nullable=False, default="{}"),
    Column("error", Text, nullable=True),  # the traceback of a failed run
    Column("reproduction_of", String(32), nullable=True),
    Index("ix_runs_created_at", "created_at"),
    Index("ix_runs_status", "status"),
    Index("ix_runs_experiment", "experiment"),
)

run_params = Table(
    "run_params",
    metadata,
    Column("run_pk", Integer, ForeignKey("runs.pk"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),  # as logged, JSON-encoded
    Column("value_num", Float, nullable=True),  # numeric view, for comparisons
    Index("ix_run_params_key_num", "key", "value_num"),
)

run_tags = Table(
    "run_tags",
    metadata,
    Column("run_pk", Integer, ForeignKey("runs.pk"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_run_tags_key_value", "key", "value"),
)

metric_keys = Table(
    "metric_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(250), nullable=False, unique=True),
)

# Every point, stored as columnar chunks: one row per metric per flush, holding
# little-endian arrays of steps (int64), timestamps and values (float64). A
# flush of 100,000 points is a few inserts; NaN and infinities keep their bits.
metric_chunks = Table(
    "metric_chunks",
    metadata,
    Column("run_pk", Integer, ForeignKey("runs.pk"), primary_key=True),
    Column("key_id", Integer, ForeignKey("metric_keys.id"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("count", Integer, nullable=False),
    Column("steps", LargeBinary, nullable=False),
    Column("timestamps", LargeBinary, nullable=False),
    Column("values", LargeBinary, nullable=False),
)

# The last, lowest and highest value of each metric of each run: what queries filter and sort on.
run_metrics = Table(
    "run_metrics",
    metadata,
    Column("run_pk", Integer, ForeignKey("runs.pk"), primary_key=True),
    Column("key_id", Integer, ForeignKey("metric_keys.id"), primary_key=True),
    Column("value", Float, nullable=True),  # NULL: the last value was NaN
    Column("step", BigInteger, nullable=False),
    Column("ts", Float, nullable=False),
    Column("min_value", Float, nullable=True),
    Column("max_value", Float, nullable=True),
    Column("count", Integer, nullable=False),
    Index("ix_run_metrics_key_value", "key_id", "value"),
)

run_inputs = Table(
    "run_inputs",
    metadata,
    Column("run_pk", Integer, ForeignKey("runs.pk"), primary_key=True),
    Column("dataset_version_id", Integer, ForeignKey("dataset_versions.id"), primary_key=True),
    Column("used_at", Float, nullable=False),
    Index("ix_run_inputs_version", "dataset_version_id"),
)

run_artifacts = Table(
    "run_artifacts",
    metadata,
    Column("run_pk", Integer, ForeignKey("runs.pk"), primary_key=True),
    Column("path", String(1000), primary_key=True),
    Column("oid", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("chunked", Integer, nullable=False),
    Column("logged_at", Float, nullable=False),
)

# -- model registry (revision 0003) --------------------------------------------

models = Table(
    "models",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(128), nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("run_pk", Integer, ForeignKey("runs.pk"), nullable=True),
    Column("flavor", String(32), nullable=False),
    Column("format", String(32), nullable=False),
    Column("oid", String(64), nullable=False),  # a tree: the saved files
    Column("size", BigInteger, nullable=False),
    Column("signature", Text, nullable=True),  # JSON
    Column("frameworks", Text, nullable=False),  # JSON: versions the model was saved with
    Column("details", Text, nullable=False),  # JSON: what the flavor needs to load it
    Column("message", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(128), nullable=False),
    UniqueConstraint("model_id", "number", name="uq_model_versions_number"),
    Index("ix_model_versions_run", "run_pk"),
)

# -- evaluations (revision 0004) -----------------------------------------------

# An evaluation of a model version on data, or a gate decision between two versions.
evaluations = Table(
    "evaluations",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(16), nullable=False),  # "evaluation" or "gate"
    Column("model_version_id", Integer, ForeignKey("model_versions.id"), nullable=False),
    Column("against_version_id", Integer, ForeignKey("model_versions.id"), nullable=True),
    Column("dataset_version_id", Integer, ForeignKey("dataset_versions.id"), nullable=True),
    Column("summary", Text, nullable=False),  # JSON: headline numbers, the decision
    Column("result_oid", String(64), nullable=False),  # the whole result, as an object
    Column("created_at", Float, nullable=False),
    Column("created_by", String(128), nullable=False),
    Index("ix_evaluations_model", "model_version_id"),
    Index("ix_evaluations_data", "dataset_version_id"),
)

# -- deployments (revision 0005) -----------------------------------------------

# A deployment: a challenger version meeting traffic beside the alias it may replace
# (shadow, canary or A/B), with its guardrails. Immutable; the pointer
# ("deployment", model name) names the live one, and its events say how each ended.
deployments = Table(
    "deployments",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("alias", String(64), nullable=False),  # what it serves beside: champion
    Column("challenger_version_id", Integer, ForeignKey("model_versions.id"), nullable=False),
    Column("mode", String(16), nullable=False),  # shadow canary ab
    Column("share", Float, nullable=False),  # of traffic answered by the challenger
    Column("sticky_key", String(128), nullable=True),  # input field hashed to pick the arm
    Column("guardrails", Text, nullable=False),  # JSON
    Column("outcome", Text, nullable=True),  # JSON: the value definition judged online
    Column("message", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(128), nullable=False),
    Index("ix_deployments_model", "model_id", "created_at"),
)

# -- drift reports (revision 0006) ----------------------------------------------

# A drift report: a current table judged against a reference (a dataset version, the
# training data of a model version, or a table). The whole report is an object.
drift_reports = Table(
    "drift_reports",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("model_version_id", Integer, ForeignKey("model_versions.id"), nullable=True),
    Column("dataset_version_id", Integer, ForeignKey("dataset_versions.id"), nullable=True),
    Column("current_version_id", Integer, ForeignKey("dataset_versions.id"), nullable=True),
    Column("reference", Text, nullable=False),  # what the reference was, in words
    Column("current", Text, nullable=False),
    Column("status", String(16), nullable=False),  # schema, drift, no drift, not enough data
    Column("summary", Text, nullable=False),  # JSON: what drifted, the headline numbers
    Column("result_oid", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(128), nullable=False),
    Index("ix_drift_reports_model", "model_version_id", "created_at"),
    Index("ix_drift_reports_data", "dataset_version_id", "created_at"),
)

# -- the loop (revision 0007) ----------------------------------------------------

# Who runs a model's loop: one `keel watch` at a time, renewed while it lives.
loop_leases = Table(
    "loop_leases",
    metadata,
    Column("model", String(300), primary_key=True),
    Column("holder", String(200), nullable=False),  # host, pid and a token
    Column("acquired_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)

# One retraining attempt: started by one trigger firing (its id is unique, so a trigger
# evaluated again never starts a second), then trained, gated and rolled out.
loop_attempts = Table(
    "loop_attempts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("model", String(300), nullable=False),
    Column("trigger_id", String(300), nullable=False, unique=True),
    Column("trigger", Text, nullable=False),  # JSON: the firing's kind and evidence
    Column("state", String(32), nullable=False),
    Column("version", Integer, nullable=True),  # the challenger's version number
    Column("step", Integer, nullable=True),  # the rollout step it is at
    Column("step_started_at", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_loop_attempts_model", "model", "created_at"),
)

# Every decision of the loop, with its evidence. Never updated, never deleted.
loop_events = Table(
    "loop_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(300), nullable=False),
    Column("attempt_id", String(32), nullable=True),
    Column("at", Float, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("state", String(32), nullable=True),  # the attempt's state after it
    Column("message", Text, nullable=False),
    Column("evidence", Text, nullable=False),  # JSON
    Column("actor", String(128), nullable=False),
    Index("ix_loop_events_model", "model", "id"),
)

# -- features (revision 0008) ----------------------------------------------------

# A named feature definition (a feature view, or an on-demand feature).
feature_views = Table(
    "feature_views",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(128), nullable=False),
)

# An immutable version of one: its definition (code, parameters) and the source dataset
# version it reads; a new one only when one of those changes.
feature_view_versions = Table(
    "feature_view_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("view_id", Integer, ForeignKey("feature_views.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("digest", String(64), nullable=False),  # definition + source versions
    Column("kind", String(16), nullable=False),  # "view" or "on_demand"
    Column("definition", Text, nullable=False),  # JSON: entity, timestamp, ttl, inputs, ...
    Column("code_oid", String(64), nullable=False),  # the function's source, as an object
    Column("source_version_id", Integer, ForeignKey("dataset_versions.id"), nullable=True),
    Column("message", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(128), nullable=False),
    UniqueConstraint("view_id", "number", name="uq_feature_view_versions_number"),
    Index("ix_feature_view_versions_source", "source_version_id"),
)

# What a dataset version made from features was made of: the feature view versions (a
# materialized view, a training set) and the entity table a training set was built on.
feature_lineage = Table(
    "feature_lineage",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dataset_version_id", Integer, ForeignKey("dataset_versions.id"), nullable=False),
    Column("role", String(16), nullable=False),  # "view", "entities"
    Column(
        "feature_view_version_id", Integer, ForeignKey("feature_view_versions.id"), nullable=True
    ),
    Column("input_version_id", Integer, ForeignKey("dataset_versions.id"), nullable=True),
    Column("columns", Text, nullable=True),  # JSON: the columns a view gave it (revision 0009)
    Index("ix_feature_lineage_made", "dataset_version_id"),
    Index("ix_feature_lineage_view", "feature_view_version_id"),
)

# -- online features (revision 0009) ---------------------------------------------

# Which build of each feature view the online table holds: one per view name, replaced
# with its rows in one transaction (a reader sees the previous build or this one).
online_builds = Table(
    "online_builds",
    metadata,
    Column("view", String(128), primary_key=True),
    Column("version_id", Integer, ForeignKey("feature_view_versions.id"), nullable=False),
    Column("columns", Text, nullable=False),  # JSON: feature column -> type
    Column("entities", Integer, nullable=False),
    Column("changed", Integer, nullable=False),  # rows written or deleted by that build
    Column("built_at", Float, nullable=False),
    Column("built_by", String(128), nullable=False),
)

# The latest row per entity of each view: its event time and its feature values (JSON).
online_features = Table(
    "online_features",
    metadata,
    Column("view", String(128), primary_key=True),
    Column("entity", String(512), primary_key=True),  # the entity key, as text
    Column("event_ts", Float, nullable=False),
    Column("data", Text, nullable=False),
)
