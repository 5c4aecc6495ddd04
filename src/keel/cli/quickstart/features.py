"""The features chapter: a transactions table, two feature views and an on-demand feature,
and the point-in-time training set the churn model then trains on."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.cli.quickstart.story import Say

if TYPE_CHECKING:
    from rich.console import Console

    from keel.workspace import Workspace

__all__ = ["FEATURES", "FEATURES_FILE", "TRAINING_SET", "features_chapter", "new_month"]

TRAINING_SET = "churn-train"
LABEL_DAY = "2026-11-01"  # when the churn labels were known: the training rows' time
NEW_MONTH = "2026-12-01"  # the loop chapter's month: its bills and labels
FEATURES = ("billing", "spend", "bill_change")  # what the churn model's training set joins

FEATURES_FILE = '''\
"""Churn features, from the transactions table (one row per monthly bill)."""
from keel.features import entity, feature_view, on_demand

customer = entity("customer_id")


@feature_view(entity=customer, source="transactions", timestamp="ts", ttl="45d")
def billing(tx):
    """The latest monthly bill: older than 45 days, it no longer counts."""
    return tx.query("tx", "select customer_id, ts, amount as monthly_charges from tx")


@feature_view(entity=customer, source="transactions", timestamp="ts", ttl="45d")
def spend(tx):
    """What the customer paid over the last 90 days, and in how many bills."""
    return tx.query(
        "tx",
        "select customer_id, ts, "
        "sum(amount) over w as spend_90d, count(*) over w as bills_90d from tx "
        "window w as (partition by customer_id order by ts "
        "range between interval 90 days preceding and current row)",
    )


@on_demand(inputs=[billing, spend])
def bill_change(row):
    """This bill against the average of the last three: above 1, the bill went up."""
    return row["monthly_charges"] / max(row["spend_90d"] / row["bills_90d"], 1.0)
'''


def _write_bills(path: Path, ids: Any, days: Any, amounts: Any) -> None:
    """Monthly bills as the billing system exports them: customer_id, ts (a date), amount."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = pa.table({"customer_id": ids, "ts": pa.array(days).cast(pa.date32()), "amount": amounts})
    pacsv.write_csv(table, path)


def _write_labels(path: Path, customers: Any, day: str) -> None:
    """Who left, known on ``day``: the export without its charge (a feature now)."""
    labels = customers.drop(columns=["monthly_charges"])
    labels.insert(1, "ts", day)
    labels.to_csv(path, index=False)


def _exports(ws: Workspace, folder: Path) -> tuple[Path, Path]:
    """From churn@v2: three monthly bills per customer (the last one is the export's
    monthly charge), and the labels without the charge (it is a feature now)."""
    import numpy as np

    from keel.data.catalog import resolve

    customers = resolve(ws, "churn@v2").to_pandas()
    rng = np.random.default_rng(11)
    ids = customers["customer_id"].to_numpy()
    charges = customers["monthly_charges"].to_numpy()
    bills = []
    for month, day in ((0.94, "2026-08-01"), (0.97, "2026-09-01"), (1.0, "2026-10-01")):
        noise = 0.0 if month == 1.0 else rng.normal(0, 2, len(ids))
        bills.append((ids, np.full(len(ids), day), np.round(charges * month + noise, 2)))
    tx = folder / "transactions"
    tx.mkdir(parents=True, exist_ok=True)
    _write_bills(
        tx / "transactions.csv",
        *(np.concatenate([b[k] for b in bills]) for k in range(3)),
    )
    lab = folder / "labels"
    lab.mkdir(parents=True, exist_ok=True)
    _write_labels(lab / "labels.csv", customers, LABEL_DAY)
    return tx, lab


def new_month(ws: Workspace, export: str) -> tuple[str, str]:
    """The new month from its export: its bills added to transactions (a new version), its
    labels recorded, the features applied again (new versions: their source moved).
    Returns the labels' reference and the feature versions, pinned (``billing@v2,...``),
    for the retraining pipeline's parameters."""
    import numpy as np

    from keel import data, features
    from keel.data.catalog import resolve

    customers = resolve(ws, export).to_pandas()
    tx = Path("exports") / "transactions"
    _write_bills(
        tx / f"transactions-{NEW_MONTH[:7]}.csv",
        customers["customer_id"].to_numpy(),
        np.full(len(customers), NEW_MONTH),
        customers["monthly_charges"].to_numpy(),
    )
    data.add(tx, name="transactions", message=f"bills of {NEW_MONTH[:7]}", workspace=ws)
    folder = Path("exports") / "labels"
    (folder / "labels.csv").unlink()
    _write_labels(folder / f"labels-{NEW_MONTH[:7]}.csv", customers, NEW_MONTH)
    label_version = data.add(folder, name="churn-labels", message="who left", workspace=ws)
    applied = {a.version.name: a.version.ref for a in features.apply("features.py", workspace=ws)}
    return label_version.ref, ",".join(applied[name] for name in FEATURES)


def features_chapter(say: Say, out: Console, ws: Workspace) -> None:
    """Transactions and labels versioned; features applied; the training set built."""
    from keel import data, features

    say(
        "Features, versioned and point-in-time correct",
        "The billing system exports every monthly bill (transactions). features.py defines "
        "two feature views over it and an on-demand feature; `keel features apply "
        "features.py` records a version of each, tied to the exact data it reads.",
    )
    tx, labels = _exports(ws, Path("exports"))
    transactions = data.add(tx, name="transactions", message="bills, three months", workspace=ws)
    label_version = data.add(labels, name="churn-labels", message="who left", workspace=ws)
    Path("features.py").write_text(FEATURES_FILE)
    for applied in features.apply("features.py", workspace=ws):
        out.print(f"  {applied.version.ref} {applied.status}, reads "
                  + (applied.version.source or ", ".join(sorted(applied.version.inputs.values()))))  # fmt: skip
    say(
        "A training set, as it was known",
        f"`keel features training-set --entities {label_version.ref} --features "
        "billing,spend,bill_change`: each customer's label gets the latest bill at or "
        f"before {LABEL_DAY}, within 45 days, nulls otherwise; one row per label, in order; "
        f"recorded as {TRAINING_SET}, a dataset version with lineage to the features.",
    )
    built = features.training_set(
        label_version,
        list(FEATURES),
        name=TRAINING_SET,
        message=f"labels of {LABEL_DAY} with billing features",
        workspace=ws,
    )
    frame = built.to_pandas()
    out.print(
        f"  {built.ref}: {len(frame):,} rows from {transactions.ref}; bill_change median "
        f"{frame['bill_change'].median():.3f}; built again: "
        + ("unchanged" if not features.training_set(
            label_version, list(FEATURES), name=TRAINING_SET, workspace=ws
        ).is_new else "changed")
    )  # fmt: skip
