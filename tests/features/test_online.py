"""The online table: ``keel features build VIEW --online`` writes each entity's latest row
(the row a point-in-time join takes at the build's time), incrementally and atomically;
``keel.features.online`` looks features up by entity key; a killed build leaves the
previous one."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import keel
from tests.conftest import run_keel, write_files
from tests.features.test_apply import DEFINITIONS, TRANSACTIONS, ok
from tests.track.helpers import one_error_line

WITH_DEFAULT = DEFINITIONS.replace(
    'ttl="90d")', 'ttl="90d", default={"spend_30d": 0.0, "spend_90d": 0.0})'
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    ws = keel.init(tmp_path / "ws")
    write_files(tmp_path / "data", {"transactions.csv": TRANSACTIONS})
    keel.data.add(tmp_path / "data" / "transactions.csv", name="transactions", workspace=ws)
    (tmp_path / "ws" / "features.py").write_text(DEFINITIONS)
    keel.features.apply(tmp_path / "ws" / "features.py", workspace=ws)
    ws.close()
    return tmp_path / "ws"


def _held(ws: Any) -> dict[str, str]:
    from sqlalchemy import select

    from keel.store.db import online_features as of

    with ws.db.read() as conn:
        return {r.entity: r.data for r in conn.execute(select(of.c.entity, of.c.data))}


def test_a_build_writes_each_entitys_latest_row_and_only_what_changed(root: Path) -> None:
    first = ok(root, "features", "build", "spend", "--online", "--as-of", "2026-02-15", "--json")
    assert first["ref"] == "spend@v1" and first["entities"] == 2 and first["changed"] == 2
    assert first["columns"] == {"spend_30d": "float", "spend_90d": "float"}
    again = ok(root, "features", "build", "spend", "--online", "--as-of", "2026-02-15", "--json")
    assert again["changed"] == 0  # nothing changed: nothing written
    # later: customer 2's only row (01-15) is older than the 90-day ttl, so it leaves
    later = ok(root, "features", "build", "spend", "--online", "--as-of", "2026-04-20")
    assert "spend@v1  online  1 entities, 1 changed" in later
    listed = {f["name"]: f["online"] for f in ok(root, "features", "list", "--json")}
    assert listed["spend"]["ref"] == "spend@v1" and listed["spend"]["entities"] == 1
    assert listed["spend_ratio"] is None
    assert "online: spend@v1, 1 entities, built" in ok(root, "features", "list")
    assert "online: spend@v1, 1 entities" in ok(root, "features", "show", "spend")
    assert ok(root, "features", "show", "spend", "--json")["online"]["changed"] == 1

    ws = keel.connect(root)
    try:
        assert set(_held(ws)) == {"1"}
        found = keel.features.online(
            ["spend", "spend_ratio"], {"customer_id": [1, 2, 7]}, workspace=ws
        )
        assert found["customer_id"].tolist() == [1, 2, 7]
        # customer 1's latest row (02-01) as a training set would have it on 04-20
        assert found["spend_30d"].tolist()[0] == 20 and found["spend_90d"].tolist()[0] == 30
        assert found["spend_ratio"].tolist()[0] == pytest.approx(20 / 30)
        assert found[["spend_30d", "spend_ratio"]].iloc[1:].isna().all().all()
        with pytest.raises(keel.errors.InvalidInput, match="spend for customer_id=2"):
            keel.features.online(["spend"], {"customer_id": [2]}, strict=True, workspace=ws)
        # the same lookup as a training set on that day: the same values
        labels = pd.DataFrame({"customer_id": [1], "ts": pd.to_datetime(["2026-04-20"])})
        offline = keel.features.training_set(labels, ["spend", "spend_ratio"], workspace=ws)
        row = offline.to_pandas().iloc[0]
        assert (row["spend_30d"], row["spend_90d"]) == (20, 30)
        assert row["spend_ratio"] == pytest.approx(found["spend_ratio"].tolist()[0])
    finally:
        ws.close()


def test_a_declared_default_answers_for_an_entity_the_table_does_not_hold(root: Path) -> None:
    (root / "features.py").write_text(WITH_DEFAULT)
    ok(root, "features", "apply", "features.py")
    ok(root, "features", "build", "spend@v2", "--online", "--as-of", "2026-02-15")
    ws = keel.connect(root)
    try:
        found = keel.features.online(["spend_ratio"], {"customer_id": [7, 1]}, workspace=ws)
        assert found["spend_30d"].tolist() == [0.0, 20.0]
        # the on-demand feature is computed from the defaults, by its recorded function
        assert found["spend_ratio"].tolist() == pytest.approx([0.0, 20 / 30])
    finally:
        ws.close()


def test_bad_builds_and_lookups_are_refused(root: Path) -> None:
    for args, expected in [
        (("spend_ratio", "--online"), "on-demand feature"),
        (("spend", "--as-of", "2026-01-01"), "--as-of is for --online builds"),
        (("nope", "--online"), "no feature named 'nope'"),
        (("spend", "--online", "--as-of", "someday"), "invalid as_of 'someday'"),
    ]:
        assert expected in one_error_line(run_keel("features", "build", *args, cwd=root))
    ws = keel.connect(root)
    try:
        assert _held(ws) == {}
        with pytest.raises(keel.errors.NotFound, match="features build spend --online"):
            keel.features.online(["spend"], {"customer_id": [1]}, workspace=ws)
        keel.features.build_online("spend", as_of="2026-02-15", workspace=ws)
        with pytest.raises(keel.errors.InvalidInput, match="no column 'customer_id'"):
            keel.features.online(["spend"], {"customer": [1]}, workspace=ws)
    finally:
        ws.close()
    (root / "bad.py").write_text(DEFINITIONS.replace('ttl="90d")', 'ttl="90d", default=object())'))
    assert "invalid default" in one_error_line(run_keel("features", "apply", "bad.py", cwd=root))


_KILLED_BUILD = """
import os, signal, sys
import keel
from keel.features import online_table

real = online_table._write_changes

def dies_half_way(conn, view, gone, rows):
    real(conn, view, gone, rows[:1])  # one entity written, the rest never
    os.kill(os.getpid(), signal.SIGKILL)

online_table._write_changes = dies_half_way
keel.features.build_online("spend", as_of=sys.argv[1], workspace=keel.connect(sys.argv[2]))
"""


def test_a_build_killed_mid_way_leaves_the_previous_build(root: Path, tmp_path: Path) -> None:
    (root / "features.py").write_text(WITH_DEFAULT)
    ok(root, "features", "apply", "features.py")
    ok(root, "features", "build", "spend", "--online", "--as-of", "2026-01-20")
    ws = keel.connect(root)
    try:
        before = _held(ws)
        assert set(before) == {"1", "2"}
    finally:
        ws.close()
    # a new month: both customers change; the build dies after writing one of them
    write_files(tmp_path / "more", {"transactions.csv": TRANSACTIONS + "2,2026-03-01,7\n1,2026-03-02,1\n"})
    ok(root, "data", "add", str(tmp_path / "more" / "transactions.csv"), "--name", "transactions")
    ok(root, "features", "apply", "features.py")
    script = tmp_path / "killed.py"
    script.write_text(textwrap.dedent(_KILLED_BUILD))
    proc = subprocess.run(
        [sys.executable, str(script), "2026-03-10", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert proc.returncode == -9, proc.stderr
    ws = keel.connect(root)
    try:
        assert _held(ws) == before  # the previous complete build, whole
        from keel.features.online_table import current_builds

        assert current_builds(ws)["spend"].ref == "spend@v2"
        done = keel.features.build_online("spend", as_of="2026-03-10", workspace=ws)
        assert done.ref == "spend@v3" and done.changed == 2
        assert keel.features.online(["spend"], {"customer_id": [2]}, workspace=ws)[
            "spend_30d"
        ].tolist() == [7.0]
    finally:
        ws.close()


def test_on_postgresql(pg_ws: Any, tmp_path: Path) -> None:
    ws = pg_ws
    write_files(tmp_path / "pgdata", {"transactions.csv": TRANSACTIONS})
    keel.data.add(tmp_path / "pgdata" / "transactions.csv", name="transactions", workspace=ws)
    path = tmp_path / "features.py"
    path.write_text(DEFINITIONS)
    keel.features.apply(path, workspace=ws)
    made = keel.features.build_online("spend", as_of="2026-02-15", workspace=ws)
    assert (made.entities, made.changed) == (2, 2)
    assert keel.features.build_online("spend", as_of="2026-02-15", workspace=ws).changed == 0
    found = keel.features.online(["spend_ratio"], {"customer_id": ["1", 2]}, workspace=ws)
    assert found["spend_ratio"].tolist() == pytest.approx([20 / 30, 1.0])


_bills = st.lists(
    st.tuples(st.integers(1, 6), st.integers(0, 120), st.integers(1, 50)), min_size=1, max_size=25
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(months=st.lists(st.tuples(_bills, st.integers(0, 150)), min_size=1, max_size=3))
def test_incremental_builds_hold_what_a_build_from_scratch_would(
    tmp_path_factory: pytest.TempPathFactory, months: list[tuple[list[tuple[int, int, int]], int]]
) -> None:
    """Whatever the data and the times of the builds before it, the online table after a
    build holds exactly that build's latest rows: incremental writes lose and keep nothing
    they should not."""
    import datetime as dt

    from keel.features.online_table import _encoded, _latest
    from keel.features.versions import resolve_feature

    root = tmp_path_factory.mktemp("online")
    ws = keel.init(root / "ws")
    try:
        day0 = dt.date(2026, 1, 1)
        (root / "ws" / "features.py").write_text(DEFINITIONS)
        for i, (bills, at) in enumerate(months):
            text = "customer_id,ts,amount\n" + "".join(
                f"{c},{day0 + dt.timedelta(days=d)},{a}\n" for c, d, a in bills
            )
            write_files(root / f"m{i}", {"transactions.csv": text})
            keel.data.add(root / f"m{i}" / "transactions.csv", name="transactions", workspace=ws)
            keel.features.apply(root / "ws" / "features.py", workspace=ws)
            moment = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=at)
            keel.features.build_online("spend", as_of=moment, workspace=ws)
        version = resolve_feature(ws, "spend")
        latest, features = _latest(ws, version, moment)
        wanted = _encoded(latest, "customer_id", features)
        assert _held(ws) == {e: data for e, (_, data) in wanted.items()}
    finally:
        ws.close()
