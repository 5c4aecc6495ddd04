"""Fuzz every route of a running `keel serve` from its own OpenAPI schema: zero 5xx.

Schemathesis (v4) reads ``/openapi.json`` from a real server on 127.0.0.1;
for every operation it generates requests that match the schema and requests
that break it, and the only check is ``not_a_server_error``. The examples per
operation are bounded so the whole run stays well under a minute.

(Schemathesis' own pytest integration, ``schemathesis.pytest.from_fixture``,
does not run under pytest 9 (it sets ``node._nodeid``, which pytest 9 no longer
has), so each operation's strategy is driven with Hypothesis here.)
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.e2e.serve_helpers import Server, copy_workspace, record, request, start_server, template

EXAMPLES = 50  # per operation and generation mode


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tpl = template(tmp_path_factory)
    root: Path = copy_workspace(tpl, tmp_path_factory.mktemp("fuzz") / "ws")
    server = start_server(root)
    yield server
    server.stop()


def operations(server: Server) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"http://127.0.0.1:{server.port}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


def test_the_schema_documents_every_route(fuzzed: Server) -> None:
    routes = {f"{op.method.upper()} {op.path}" for op in operations(fuzzed)}
    assert routes >= {
        "POST /predict",
        "POST /feedback",
        "GET /healthz",
        "GET /metrics",
        "GET /v2/health/live",
        "GET /v2/health/ready",
        "GET /v2/models/{name}",
        "GET /v2/models/{name}/ready",
        "POST /v2/models/{name}/infer",
    }, routes


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_route_answers_a_server_error(fuzzed: Server, mode: GenerationMode) -> None:
    base = f"http://127.0.0.1:{fuzzed.port}"
    failures: list[str] = []
    sent = 0
    for op in operations(fuzzed):

        @given(case=op.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Any) -> None:
            nonlocal sent
            response = case.call(base_url=base, timeout=30)
            sent += 1
            try:
                case.validate_response(response, checks=[not_a_server_error])
            except Exception as exc:  # collect every operation's failure, then fail once
                failures.append(f"{case.method} {case.formatted_path}: {exc}"[:2000])
                raise

        recorded = len(failures)
        try:
            fuzz()
        except Unsatisfiable:
            # nothing of a route without a body or typed parameters can break its schema
            assert mode == GenerationMode.NEGATIVE and op.method != "post", op.path
        except Exception:
            if len(failures) == recorded:  # not a failed check: something else went wrong
                raise
        assert fuzzed.proc.poll() is None, fuzzed.stderr()
    assert sent >= 60
    assert not failures, "\n\n".join(failures)
    assert fuzzed.get("/healthz").status == 200


_SPECIAL = st.sampled_from([math.nan, math.inf, -math.inf, "", 0, -1, 2**63, 1e308])
_VALUES = st.one_of(
    _SPECIAL,
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


_TYPED = {
    "customer_id": st.text(max_size=12),
    "tenure": st.one_of(
        st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=True)
    ),
    "charges": st.one_of(_SPECIAL, st.floats(allow_nan=True, allow_infinity=True)),
    "plan": st.one_of(st.sampled_from(["basic", "pro", "team"]), st.text(max_size=5)),
}
_MISSING = object()
_CHANGE = st.sampled_from([*_TYPED, "extra"]).flatmap(
    lambda field: st.tuples(
        st.just(field), st.one_of(_TYPED.get(field, _VALUES), _VALUES, st.just(_MISSING))
    )
)


def _changed(changes: list[tuple[str, Any]]) -> dict[str, Any]:
    row = record(1)
    for field, value in changes:
        if value is _MISSING:
            row.pop(field, None)
        else:
            row[field] = value
    return row


_ROW = st.lists(_CHANGE, max_size=2).map(_changed)  # a valid row with up to two fields changed


@pytest.mark.slow
def test_any_value_in_any_field_is_answered_or_refused(fuzzed: Server) -> None:
    """The schema cannot know the model's columns: fuzz the real fields with any JSON value
    (NaN and Infinity literals too), records and columns alike: a 200 or a 4xx, never a 5xx."""
    import json

    answered = refused = 0

    @given(
        rows=st.lists(_ROW, min_size=1, max_size=4),
        columnar=st.booleans(),
    )
    @settings(
        max_examples=200,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(rows: list[dict[str, Any]], columnar: bool) -> None:
        nonlocal answered, refused
        inputs: Any = {k: [r.get(k) for r in rows] for k in rows[0]} if columnar else rows
        raw = json.dumps({"inputs": inputs}, allow_nan=True).encode()
        r = request(fuzzed.port, "POST", "/predict", raw=raw)
        assert r.status < 500, (raw, r.status, r.text)
        assert "Traceback" not in r.text, r.text
        if r.status == 200:
            assert len(r.json["predictions"]) == len(rows)
            answered += 1
        else:
            assert r.json["error"], r.text
            refused += 1

    fuzz()
    assert answered > 0 and refused > 0, (answered, refused)


_CATALOGUE = [
    math.nan,
    math.inf,
    -math.inf,
    None,
    True,
    False,
    0,
    -1,
    2**63,
    -(2**63) - 1,
    10**30,
    10**400,
    1e308,
    -0.0,
    0.5,
    "",
    "x",
    "3",
    "nan",
    "\u0000",
    "é" * 50,
    [],
    [1],
    {},
    {"a": 1},
]


@pytest.mark.slow
@pytest.mark.parametrize("columnar", [False, True], ids=["records", "columns"])
def test_every_field_against_a_catalogue_of_values(fuzzed: Server, columnar: bool) -> None:
    """Each field in turn set to each value of a catalogue (NaN and Infinity literals among
    them), alone and beside a valid row: a 200 or a 4xx with a JSON error, never a 5xx."""
    import json

    bad: list[str] = []
    for field in record(0):
        for value in _CATALOGUE:
            rows = [{**record(1), field: value}, record(2)]
            inputs: Any = {k: [r[k] for r in rows] for k in rows[0]} if columnar else rows
            raw = json.dumps({"inputs": inputs}, allow_nan=True).encode()
            r = request(fuzzed.port, "POST", "/predict", raw=raw)
            if (
                r.status >= 500
                or "Traceback" in r.text
                or (r.status != 200 and not r.json.get("error"))
            ):
                bad.append(f"{field}={value!r}: {r.status} {r.text[:200]}")
    assert not bad, "\n".join(bad)
    assert fuzzed.predict([record(3)]).status == 200
