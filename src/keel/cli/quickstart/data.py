"""The foundation chapter's data: a synthetic churn table, exported month by month."""

from __future__ import annotations

from pathlib import Path

__all__ = ["churn_table"]


def churn_table(
    path: Path,
    rows: int,
    seed: int,
    shift: float = 0.0,
    *,
    team_share: float = 0.15,
    tenure_effect: float = -0.06,
) -> None:
    """A synthetic customer table: tenure, monthly charges, plan, region, churned.

    ``shift`` raises the bills, ``team_share`` is the share on the team plan, and
    ``tenure_effect`` is how each month of tenure moves the odds of churning (negative:
    loyal customers stay; positive, a change the old model never saw: they leave)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, rows)
    rest = (1.0 - team_share) / 0.85  # basic and pro keep their 50:35 ratio
    plans = rng.choice(["basic", "pro", "team"], rows, p=[0.5 * rest, 0.35 * rest, team_share])
    region = rng.choice(["north", "south", "east", "west"], rows)
    charges = np.round(
        20 + 30 * (plans == "pro") + 60 * (plans == "team") + rng.normal(shift, 8, rows), 2
    )
    logit = 1.2 + tenure_effect * tenure + 0.02 * charges
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
