"""The foundation chapter's data: a synthetic churn table, exported month by month."""

from __future__ import annotations

from pathlib import Path

__all__ = ["churn_table"]


def churn_table(path: Path, rows: int, seed: int, shift: float = 0.0) -> None:
    """A synthetic customer table: tenure, monthly charges, plan, region, churned."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, rows)
    plans = rng.choice(["basic", "pro", "team"], rows, p=[0.5, 0.35, 0.15])
    region = rng.choice(["north", "south", "east", "west"], rows)
    charges = np.round(
        20 + 30 * (plans == "pro") + 60 * (plans == "team") + rng.normal(shift, 8, rows), 2
    )
    logit = 1.2 - 0.06 * tenure + 0.02 * charges
    churned = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    pacsv.write_csv(
        pa.table(
            {
                "customer_id": np.arange(rows),
                "tenure": tenure,
                "monthly_charges": charges,
                "plan": plans,
                "region": region,
                "churned": churned,
            }
        ),
        path,
    )
