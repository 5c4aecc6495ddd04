"""``keel quickstart``: the lifecycle on the embedded default, narrated, in the current folder.

One module per chapter, each readable and changed alone: the foundation (``data``: a
workspace, two versions of a churn table, what changed, an exact restore, proof that
every byte is whole), experiment tracking, the registry and evaluation on value with
the gate (``train``), serving with a canary judged online and drift caught from the
log lake (``serve``), retraining as a pipeline (``pipeline``), and the closed loop
(``loop``). Each capability adds its chapter as it lands.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

__all__ = ["quickstart"]


def _enter_empty_folder(directory: str) -> Path:
    """Move into ``directory``, creating it; refuse one that holds anything.

    The quickstart writes train.py, .gitignore and data/ and commits to a git
    repository of its own: in a folder that holds a user's project it would
    overwrite their files and commit on their branch.
    """
    import os

    from keel.errors import InvalidInput

    folder = Path(directory).expanduser()
    if folder.exists() and not folder.is_dir():
        raise InvalidInput(f"{directory} is a file; keel quickstart needs an empty folder")
    if folder.is_dir() and any(folder.iterdir()):
        where = "the current folder" if directory == "." else directory
        raise InvalidInput(
            f"{where} is not empty: keel quickstart writes files and commits to a git repository "
            f"of its own, so it runs only in an empty folder (`keel quickstart NEW_FOLDER`, or "
            f"`make demo` from keel's checkout)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    os.chdir(folder)
    return folder.resolve()


@click.command("quickstart")
@click.argument("directory", default=".", required=False)
@click.option(
    "--rows",
    default=20_000,
    show_default=True,
    type=click.IntRange(min=2000),
    help="Rows in the demo table (the canary alone meets 1,500 customers).",
)
def quickstart(directory: str, rows: int) -> None:
    """Walk through keel's lifecycle in DIRECTORY (default: here), narrated.

    DIRECTORY must be empty or new: the quickstart writes its own files there and
    commits them to a git repository it creates."""
    _enter_empty_folder(directory)
    from rich.console import Console

    from keel import data
    from keel.cli.output import counted
    from keel.cli.quickstart.data import churn_table
    from keel.cli.quickstart.features import features_chapter
    from keel.cli.quickstart.loop import loop_chapter
    from keel.cli.quickstart.pipeline import pipeline_chapter
    from keel.cli.quickstart.serve import serving_chapter
    from keel.cli.quickstart.train import evaluation_chapter, registry_chapter, tracking_chapter
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
    ws = init(".", git_exclude=False)  # its own repository comes later, with a .gitignore
    con.print(f"  workspace: {ws.root / '.keel'}")

    step(
        "Version the data",
        "`keel data add data/ --name churn` hashes every file (BLAKE3), stores "
        "each once, records the version and profiles every table while it reads it.",
    )
    folder = Path("data")
    folder.mkdir(exist_ok=True)
    churn_table(folder / "customers.csv", rows, seed=1)
    (folder / "README.txt").write_text("Customer export, one row per customer.\n")
    v1 = data.add(folder, name="churn", message="first export", workspace=ws)
    con.print(f"  {v1.ref}  {v1.digest[:16]}…  {counted(v1.file_count, 'file')}, {v1.size:,} bytes")
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
    churn_table(folder / "customers.csv", rows, seed=2, shift=6.0)
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
    con.print(f"  restored {counted(sum(methods.values()), 'file')} ({', '.join(methods)})")

    step("Trust, but verify", "`keel verify` rehashes every object and checks every record.")
    report = verify(ws.db, ws.objects)
    problems = check_heads(ws)
    state = "[green]ok[/]" if report.ok and not problems else "[red]problems[/]"
    con.print(f"  {state}: {report.objects_checked} objects checked")

    features_chapter(step, con, ws)
    runs = tracking_chapter(step, con, ws)
    registry_chapter(step, con, ws, runs)
    evaluation_chapter(step, con, ws, runs)
    serving_chapter(step, con, ws, runs)
    pipeline_chapter(step, con, ws, runs)
    loop_chapter(step, con, ws, runs)

    con.print(
        f"\n[bold]Done in {time.perf_counter() - start:.1f} s.[/] Try: keel data log churn · "
        "keel runs list · keel runs show RUN --patch · keel run pipeline.py:retrain · "
        "keel models show churn · "
        "keel lineage churn@champion · keel logs churn · keel deploy status churn · "
        "keel watch status churn"
    )
    ws.close()
