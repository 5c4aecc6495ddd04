"""``keel features apply``: a version per definition whose code, parameters or source data
changed; list, show and diff; bad definitions refused with nothing recorded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import keel
from tests.conftest import run_keel, write_files
from tests.track.helpers import one_error_line

DEFINITIONS = '''\
from keel.features import entity, feature_view, on_demand

customer = entity("customer_id")


@feature_view(entity=customer, source="transactions", timestamp="ts", ttl="90d")
def spend(tx):
    """Spend over 30 and 90 days."""
    return tx.query(
        "tx",
        "select customer_id, ts, (sum(amount) over w30)::double as spend_30d, (sum(amount) over w90)::double as spend_90d "
        "from tx window w30 as (partition by customer_id order by ts range between interval 30 days preceding and current row), "
        "w90 as (partition by customer_id order by ts range between interval 90 days preceding and current row)",
    )


@on_demand(inputs=[spend])
def spend_ratio(row):
    return row["spend_30d"] / max(row["spend_90d"], 1)
'''

TRANSACTIONS = "customer_id,ts,amount\n1,2026-01-01,10\n1,2026-02-01,20\n2,2026-01-15,5\n"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    ws = keel.init(tmp_path / "ws")
    write_files(tmp_path / "data", {"transactions.csv": TRANSACTIONS})
    keel.data.add(tmp_path / "data" / "transactions.csv", name="transactions", workspace=ws)
    ws.close()
    (tmp_path / "ws" / "features.py").write_text(DEFINITIONS)
    return tmp_path / "ws"


def ok(root: Path, *args: str) -> Any:
    proc = run_keel(*args, cwd=root)
    assert proc.returncode == 0, f"keel {' '.join(args)}: {proc.stderr}"
    return json.loads(proc.stdout) if "--json" in args else proc.stdout


def test_apply_records_a_version_only_when_the_definition_or_its_data_changes(root: Path) -> None:
    first = ok(root, "features", "apply", "features.py", "-m", "first", "--json")
    assert [(a["ref"], a["status"]) for a in first] == [
        ("spend@v1", "created"),
        ("spend_ratio@v1", "created"),
    ]
    assert first[0]["source"] == "transactions@v1"
    again = ok(root, "features", "apply", "features.py", "--json")
    assert [(a["ref"], a["status"]) for a in again] == [
        ("spend@v1", "unchanged"),
        ("spend_ratio@v1", "unchanged"),
    ]

    # a ttl change is a new version, and so is every on-demand feature reading it
    path = root / "features.py"
    path.write_text(DEFINITIONS.replace('ttl="90d"', 'ttl="30d"'))
    text = ok(root, "features", "apply", "features.py")
    assert "spend@v2  created (was v1)  reads transactions@v1" in text
    assert "spend_ratio@v2  created (was v1)  reads spend@v2" in text
    diff = ok(root, "features", "diff", "spend@v1", "spend@v2", "--json")
    assert diff["same"] is False
    assert diff["changed"]["ttl_seconds"] == {"from": 90 * 86400.0, "to": 30 * 86400.0}
    assert any(line.startswith('-@feature_view') and "90d" in line for line in diff["code"])
    human = ok(root, "features", "diff", "spend@v1", "spend@v2")
    assert "ttl_seconds: 7776000.0 -> 2592000.0" in human

    # new source data is a new version; the code is the same
    (root.parent / "data" / "transactions.csv").write_text(TRANSACTIONS + "2,2026-03-01,7\n")
    keel.data.add(root.parent / "data" / "transactions.csv", name="transactions", workspace=keel.connect(root))
    done = ok(root, "features", "apply", "features.py", "--json")
    assert (done[0]["ref"], done[0]["status"], done[0]["source"]) == (
        "spend@v3",
        "created",
        "transactions@v2",
    )
    diff = ok(root, "features", "diff", "spend@v2", "spend@v3", "--json")
    assert diff["changed"] == {"source_version": {"from": "transactions@v1", "to": "transactions@v2"}}
    assert diff["code"] == []

    listed = ok(root, "features", "list", "--json")
    assert [(v["ref"], v["kind"]) for v in listed] == [("spend@v3", "view"), ("spend_ratio@v3", "on_demand")]
    assert listed[1]["inputs"] == {"spend": "spend@v3"}
    shown = ok(root, "features", "show", "spend@v1", "--json")
    assert shown["definition"]["entity"] == "customer_id" and shown["message"] == "first"
    assert shown["definition"]["ttl_seconds"] == 90 * 86400.0
    assert [v["ref"] for v in shown["versions"]] == ["spend@v3", "spend@v2", "spend@v1"]
    assert "def spend(tx):" in shown["code"]
    human = ok(root, "features", "show", "spend")
    assert human.startswith("spend@v3  view") and "entity customer_id; time ts; ttl 30d" in human
    table = ok(root, "features", "list")
    assert "spend_ratio" in table and "on-demand" in table


BAD = {
    "twice.py": (
        "from keel.features import entity, feature_view\nc = entity('customer_id')\n"
        "@feature_view(entity=c, source='transactions', timestamp='ts')\ndef spend(tx): return tx\n"
        "@feature_view(entity=c, source='transactions', timestamp='ts', name='spend')\n"
        "def other(tx): return tx\n",
        "defines 'spend' twice",
    ),
    "broken.py": ("import no_such_module_k27\n", "does not import: ModuleNotFoundError"),
    "nothing.py": ("x = 1\n", "defines no feature view"),
    "nosource.py": (
        "from keel.features import entity, feature_view\nc = entity('customer_id')\n"
        "@feature_view(entity=c, source='nosuch', timestamp='ts')\ndef spend(tx): return tx\n",
        "reads 'nosuch': no dataset named 'nosuch'",
    ),
    "badttl.py": (
        "from keel.features import entity, feature_view\nc = entity('customer_id')\n"
        "@feature_view(entity=c, source='transactions', timestamp='ts', ttl='soon')\n"
        "def spend(tx): return tx\n",
        "invalid ttl 'soon'",
    ),
    "badinput.py": (
        "from keel.features import on_demand\n@on_demand(inputs=['spend'])\n"
        "def ratio(row): return 1\n",
        "reads spend, which",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_definitions_are_one_line_and_record_nothing(root: Path, name: str) -> None:
    text, needle = BAD[name]
    (root / name).write_text(text)
    line = one_error_line(run_keel("features", "apply", name, cwd=root))
    assert needle in line, line
    assert ok(root, "features", "list", "--json") == []


def test_missing_file_and_unknown_feature(root: Path) -> None:
    assert "no such file" in one_error_line(run_keel("features", "apply", "nope.py", cwd=root))
    assert "no feature named 'spend'" in one_error_line(run_keel("features", "show", "spend", cwd=root))
    ok(root, "features", "apply", "features.py")
    assert "spend has no version v9; its latest is v1" in one_error_line(
        run_keel("features", "show", "spend@v9", cwd=root)
    )
    assert "invalid feature version" in one_error_line(
        run_keel("features", "diff", "spend@x", "spend", cwd=root)
    )
