"""``keel quickstart``: the lifecycle on the embedded default, narrated, in the current folder.

Each capability adds its chapter here as it lands. Today: the foundation —
a workspace, two versions of a churn table, what changed, an exact restore,
and proof that every byte is whole.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

__all__ = ["quickstart"]


def _churn_table(path: Path, rows: int, seed: int, shift: float = 0.0) -> None:
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


@click.command("quickstart")
@click.option("--rows", default=20_000, show_default=True, help="Rows in the demo table.")
def quickstart(rows: int) -> None:
    """Walk through keel's lifecycle in the current folder, narrated."""
    from rich.console import Console

    from keel import data
    from keel.data.catalog import check_heads
    from keel.store.verify import verify
    from keel.workspace import init

    con = Console(highlight=False)

    def step(title: str, text: str) -> None:
        con.print(f"\n[bold cyan]▶ {title}[/]\n  {text}")

    start = time.perf_counter()
    con.print("[bold]keel quickstart[/]: the foundation, on SQLite + a local object folder.")

    step(
        "Workspace",
        "`keel init` makes .keel/: a SQLite metadata store (WAL) and a "
        "content-addressed object folder. No server.",
    )
    ws = init(".")
    con.print(f"  workspace: {ws.root / '.keel'}")

    step(
        "Version the data",
        "`keel data add data/ --name churn` hashes every file (BLAKE3), stores "
        "each once, records the version and profiles every table while it reads it.",
    )
    folder = Path("data")
    folder.mkdir(exist_ok=True)
    _churn_table(folder / "customers.csv", rows, seed=1)
    (folder / "README.txt").write_text("Customer export, one row per customer.\n")
    v1 = data.add(folder, name="churn", message="first export", workspace=ws)
    con.print(f"  {v1.ref}  {v1.digest[:16]}…  {v1.file_count} files, {v1.size:,} bytes")
    table = v1.profile["tables"][0] if v1.profile else None
    if table:
        tenure = table["columns"]["tenure"]
        con.print(
            f"  profile: {table['rows']:,} rows; tenure mean {tenure['mean']:.1f}, "
            f"median {tenure['quantiles'][50]:.0f}"
        )

    step(
        "Nothing changed, nothing stored",
        "Adding the same folder again costs a stat per file "
        "(the stat cache) and makes no new version.",
    )
    again = data.add(folder, name="churn", workspace=ws)
    con.print(f"  {'new version' if again.is_new else 'unchanged'}: {again.ref}")

    step(
        "A new export",
        "Next month's export: prices went up and a new plan appeared. "
        "Only the changed file is stored again.",
    )
    _churn_table(folder / "customers.csv", rows, seed=2, shift=6.0)
    with (folder / "customers.csv").open("a") as fh:
        fh.write(f"{rows},3,49.0,student,north,0\n")
    v2 = data.add(folder, name="churn", message="monthly export", workspace=ws)
    con.print(f"  {v2.ref}  {v2.digest[:16]}…")

    step(
        "What changed",
        "`keel data diff churn@v1 churn@v2`: files, rows, and how each column moved.",
    )
    d = data.diff(v1, v2, workspace=ws)
    con.print(f"  files: {len(d.changed)} changed, {d.unchanged} unchanged")
    for t in d.tables:
        con.print(f"  rows {t['rows_before']:,} -> {t['rows_after']:,}")
        charges = t["columns"].get("monthly_charges", {})
        if "mean_shift_in_std" in charges:
            con.print(f"  monthly_charges mean moved {charges['mean_shift_in_std']:+.2f} sd")
        plan = t["columns"].get("plan", {})
        if plan.get("new_values"):
            con.print(f"  plan has a new value: {', '.join(plan['new_values'])}")

    step(
        "Restore exactly",
        "`keel data get churn@v1 --out restored/` puts v1 back byte for byte, "
        "linking to the verified objects where the file system allows.",
    )
    out = Path("restored")
    if out.exists():
        import shutil

        shutil.rmtree(out)
    methods = data.get("churn@v1", workspace=ws).materialize(str(out))
    con.print(f"  restored {sum(methods.values())} files ({', '.join(methods)})")

    step("Trust, but verify", "`keel verify` rehashes every object and checks every record.")
    report = verify(ws.db, ws.objects)
    problems = check_heads(ws)
    state = "[green]ok[/]" if report.ok and not problems else "[red]problems[/]"
    con.print(f"  {state}: {report.objects_checked} objects checked")

    con.print(
        f"\n[bold]Done in {time.perf_counter() - start:.1f} s.[/] Try: keel data list · "
        "keel data log churn · keel data show churn@v2 · keel data diff churn@v1 churn@v2"
    )
    ws.close()
