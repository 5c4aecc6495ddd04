"""The run filter language: a parser that never crashes, and search that selects exactly right.

The parser is driven by hypothesis twice: expressions drawn from the grammar
always parse, and arbitrary text either parses or raises FilterSyntaxError.
Search is checked against a plain-Python reference implementation of the
same semantics over ~30 runs with varied params, metrics, tags and inputs.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import operator
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import keel
from keel.errors import InvalidInput
from keel.track import FilterSyntaxError, parse_filter
from keel.track.query import Compare, Logical, Not
from keel.workspace import Workspace
from tests.conftest import write_files

# == the parser ====================================================================

KEYWORDS = {"and", "or", "not", "in", "is", "null"}
word = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True).filter(lambda w: w not in KEYWORDS)
key_word = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}", fullmatch=True)
quoted = st.text(
    st.characters(codec="ascii", exclude_characters='"\\\n\r'), min_size=0, max_size=12
).map(lambda s: f'"{s}"')
number = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["0.5", ".5", "1e3", "-2.5E-3", "+7"]),
)
duration = st.from_regex(r"[0-9]{1,3}(\.[0-9])?[smhdw]", fullmatch=True)
iso = st.sampled_from(
    ['"2026-11-01"', '"2026-11-01T10:30:00"', '"2026-11-01 10:30"', "2026-11-01", '"2025-01-31"']
)


@st.composite
def comparison_text(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(["metrics", "params", "tags", "metric", "param", "tag"]))
    keyed = f"{prefix}.{draw(key_word)}" if draw(st.booleans()) else f'{prefix}."{draw(word)} x"'
    kind = draw(st.sampled_from(["keyed", "column", "data", "created", "age"]))
    if kind == "age":
        return f"age {draw(st.sampled_from(['<', '<=', '>', '>=']))} {draw(duration)}"
    if kind == "created":
        return f"created {draw(st.sampled_from(['<', '<=', '>', '>=', '=', '!=']))} {draw(iso)}"
    if kind == "data":
        ref = draw(st.sampled_from(["churn", "churn@v3", '"churn@v1"', "a.b-c_d@v12"]))
        if draw(st.booleans()):
            return f"data in ({ref}, other@v1)"
        return f"data {draw(st.sampled_from(['=', '!=']))} {ref}"
    field_ = keyed if kind == "keyed" else draw(st.sampled_from(["status", "name", "id"]))
    form = draw(st.sampled_from(["op", "in", "null"]))
    if form == "null":
        return f"{field_} is {draw(st.sampled_from(['', 'not ', 'NOT ']))}null"
    if form == "in":
        values = draw(st.lists(st.one_of(number, word, quoted), min_size=1, max_size=4))
        return f"{field_} in ({', '.join(values)})"
    is_metric = field_.startswith("metric")
    ops = ["=", "==", "!=", "<", "<=", ">", ">="] + ([] if is_metric else ["~"])
    value = draw(number if is_metric else st.one_of(number, word, quoted))
    return f"{field_} {draw(st.sampled_from(ops))} {value}"


def expression_text(depth: int = 3) -> st.SearchStrategy[str]:
    leaf = comparison_text()
    if depth == 0:
        return leaf
    sub = expression_text(depth - 1)
    return st.one_of(
        leaf,
        leaf,
        st.tuples(sub, st.sampled_from(["and", "or", "AND", "Or"]), sub).map(" ".join),
        sub.map(lambda s: f"not {s}"),
        sub.map(lambda s: f"( {s} )"),
        sub.map(lambda s: f"({s})"),
    )


@settings(max_examples=300, deadline=None)
@given(expression_text())
def test_grammar_expressions_always_parse(text: str) -> None:
    node = parse_filter(text)
    assert isinstance(node, Compare | Logical | Not)


FRAGMENTS = st.sampled_from(
    [
        "metrics.auc",
        "params.depth",
        "tags.team",
        "status",
        "name",
        "age",
        "created",
        "data",
        "id",
        "metrics.",
        'metrics."a b"',
        "=",
        "!=",
        "<",
        ">=",
        "~",
        "in",
        "is",
        "null",
        "not",
        "and",
        "or",
        "(",
        ")",
        ",",
        '"',
        "'",
        "0.9",
        "-1",
        "1e5",
        "2h",
        "banana",
        "churn@v3",
        '"2026-11-01"',
        "&",
        "|",
        "!",
        "@",
        "é",
        "\t",
    ]
)
arbitrary = st.one_of(
    st.lists(st.one_of(FRAGMENTS, st.text(max_size=3)), max_size=10).map(" ".join),
    st.lists(FRAGMENTS, max_size=8).map("".join),
    st.text(max_size=40),
).map(lambda s: s.replace("\\", "/"))  # escapes inside quotes: see test_bad_escapes below
COLUMN = re.compile(r"at column (\d+)")


@settings(max_examples=600, deadline=None)
@given(arbitrary)
@example("metrics.auc >")
@example('tags.a = "x')
@example("((((")
@example("not")
def test_arbitrary_text_parses_or_raises_filter_syntax_error(text: str) -> None:
    try:
        parse_filter(text)
    except FilterSyntaxError as exc:
        message = str(exc)
        assert message and "\n" not in message
        for m in COLUMN.finditer(message):
            col = int(m.group(1))
            assert 1 <= col <= len(text), message
            assert not text[col - 1].isspace(), message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "metrics.auc > 0.9 and params.depth = 6",
            Logical(
                "and", (Compare("metrics", "auc", ">", 0.9), Compare("params", "depth", "=", 6))
            ),
        ),
        ("tags.team in (risk, fraud)", Compare("tags", "team", "in", ("risk", "fraud"))),
        ("not status = failed", Not(Compare("status", None, "=", "failed"))),
        ('metrics."val loss" < 1', Compare("metrics", "val loss", "<", 1)),
        ("age < 2h", Compare("age", None, "<", "2h")),
        ('created >= "2026-11-01"', Compare("created", None, ">=", "2026-11-01")),
        ("data = churn@v3", Compare("data", None, "=", "churn@v3")),
        ("metrics.x is null", Compare("metrics", "x", "is null", None)),
        ("metrics.x IS NOT NULL", Compare("metrics", "x", "is not null", None)),
        ("metric.x == -1.5e2", Compare("metrics", "x", "=", -150.0)),
        ("tags.team ~ 'ri sk'", Compare("tags", "team", "~", "ri sk")),
        ("params.model = lr-net", Compare("params", "model", "=", "lr-net")),
        (
            "status = a or status = b and not name = c",
            Logical(
                "or",
                (
                    Compare("status", None, "=", "a"),
                    Logical(
                        "and",
                        (Compare("status", None, "=", "b"), Not(Compare("name", None, "=", "c"))),
                    ),
                ),
            ),
        ),
        (
            "(status = a or status = b) and name = c",
            Logical(
                "and",
                (
                    Logical(
                        "or", (Compare("status", None, "=", "a"), Compare("status", None, "=", "b"))
                    ),
                    Compare("name", None, "=", "c"),
                ),
            ),
        ),
    ],
)
def test_specific_expressions(text: str, expected: Any) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("metrics.auc >", r"expected a value .* at the end"),
        ("foo = 1", r"unknown field 'foo' at column 1; expected metrics\.KEY"),
        ("metrics.auc > 0.9 and bar < 2", r"unknown field 'bar' at column 23"),
        ("age < banana", r"age needs a duration like 30m, 2h or 7d, not 'banana'"),
        ("age = 2h", r"age takes < <= > >=, not ="),
        ("(status = x", r"expected '\)' at the end"),
        ("", r"empty filter"),
        ("   ", r"empty filter"),
        ("metrics.auc > 0.9 & x", r"unexpected character '&' at column 19"),
        ("status = x y", r"expected 'and', 'or' or the end of the filter at column 12 \('y'\)"),
        ("metrics.auc 0.9", r"expected an operator .* at column 13"),
        ("metrics. = 1", r"expected a key after metrics\."),
        ("metrics.a ~ x", r"~ \(contains\) works on text, not on metrics"),
        ('created > "yesterday"', r"created needs an ISO date .* not 'yesterday'"),
        ("tags.t in (a, )", r"expected a value .* at column 15"),
        ("metrics.a is nul", r"expected 'null' at column 14"),
    ],
)
def test_bad_expressions(text: str, message: str) -> None:
    with pytest.raises(FilterSyntaxError, match=message):
        parse_filter(text)


def test_filter_syntax_error_is_invalid_input() -> None:
    assert issubclass(FilterSyntaxError, InvalidInput)
    assert FilterSyntaxError("x").exit_code == 2


def test_non_ascii_quoted_value_is_kept() -> None:
    assert parse_filter('tags.team = "équipe"') == Compare("tags", "team", "=", "équipe")


@pytest.mark.parametrize(
    "text", ['tags.a = "\\x"', 'tags.a = "\\N"', "tags.a = 'a\\u12'", "metrics.a > " + "1" * 5000]
)
def test_bad_escapes_and_huge_numbers_raise_filter_syntax_error(text: str) -> None:
    with pytest.raises(FilterSyntaxError):
        parse_filter(text)


def test_escaped_quotes_in_strings() -> None:
    assert parse_filter(r'tags.a = "say \"hi\""') == Compare("tags", "a", "=", 'say "hi"')
    assert parse_filter(r"tags.a = 'it\'s'") == Compare("tags", "a", "=", "it's")


# == search semantics ===============================================================

HOUR = 3600.0


@dataclass
class Ref:
    """What the reference implementation knows about a run."""

    id: str
    name: str
    experiment: str
    status: str
    created: float
    ended: float
    params: dict[str, Any]
    metrics: dict[str, float]
    tags: dict[str, str]
    inputs: set[tuple[str, int]] = field(default_factory=set)


@dataclass
class Corpus:
    ws: Workspace
    runs: list[Ref]
    base: float


def _build(ws: Workspace, tmp: Path) -> Corpus:
    import random

    from sqlalchemy import update

    from keel.store.db import runs as runs_table

    src = write_files(tmp / "src", {"c.csv": "x\n1\n", "o.csv": "y\n1\n"})
    keel.data.add(src / "c.csv", name="churn", workspace=ws)
    (src / "c.csv").write_text("x\n1\n2\n")
    keel.data.add(src / "c.csv", name="churn", workspace=ws)
    keel.data.add(src / "o.csv", name="other", workspace=ws)
    rng = random.Random(3)
    base = time.time()
    refs: list[Ref] = []
    for i in range(30):
        params: dict[str, Any] = {
            "model": ["gbm", "rf", "lr-net"][i % 3],
            "lr": [0.01, 0.1, 0.3][i % 4 % 3],
        }
        if i % 5 != 4:
            params["depth"] = [3, 6, 9][i % 3] if i != 7 else "deep"
        if i % 6 == 0:
            params["flag"] = i % 12 == 0
        metrics: dict[str, float] = {}
        if i % 5 != 0:
            metrics["auc"] = round(0.5 + rng.random() / 2, 2)
        if i % 2 == 0:
            metrics["loss"] = round(rng.uniform(0.1, 2.0), 3)
        if i == 8:
            metrics["loss"] = math.nan
        if i % 4 == 1:
            metrics["val loss"] = float(i % 7)
        tags: dict[str, str] = {}
        if i % 4 != 3:
            tags["team"] = ["risk", "fraud", "growth"][i % 3]
        if i % 3 == 0:
            tags["env"] = "prod eu" if i % 2 else "dev"
        inputs: set[tuple[str, int]] = set()
        if i % 3 == 0:
            inputs.add(("churn", 1))
        if i % 4 == 0:
            inputs.add(("churn", 2))
        if i % 7 == 0:
            inputs.add(("other", 1))
        status = "failed" if i % 9 == 4 else "killed" if i % 11 == 5 else "finished"
        name = "gbm-baseline" if i in (2, 17) else f"run-{i:02d}"
        experiment = "exp-a" if i < 20 else "exp-b"
        run = keel.start_run(
            name=name,
            experiment=experiment,
            params=params,
            tags=tags,
            workspace=ws,
            capture_code=False,
        )
        for key, v in metrics.items():
            run.log_metric(key, v)
        if "auc" in metrics and i % 2:  # an earlier, lower point: the latest value counts
            run.log_metric("auc", metrics["auc"] - 0.3, step=-1)
        for dname, number in sorted(inputs):
            run.use(f"{dname}@v{number}")
        run.end(status)
        created = base - i * 5 * HOUR - 60
        ended = created + 10 * ((i * 7) % 13) + 1
        ws.db.write(
            lambda conn, c=created, e=ended, rid=run.id: conn.execute(
                update(runs_table).where(runs_table.c.id == rid).values(created_at=c, ended_at=e)
            )
        )
        refs.append(
            Ref(run.id, name, experiment, status, created, ended, params, metrics, tags, inputs)
        )
    return Corpus(ws, refs, base)


@pytest.fixture(scope="module")
def sqlite_corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    tmp = tmp_path_factory.mktemp("corpus")
    ws = keel.init(tmp / "ws")
    yield _build(ws, tmp)
    ws.close()


@pytest.fixture(scope="module")
def pg_corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    base_url = os.environ.get("KEEL_TEST_POSTGRES_URL")
    if not base_url:
        pytest.skip("KEEL_TEST_POSTGRES_URL is not set")
    from sqlalchemy import create_engine, text

    from keel.store.db import normalize_url

    base_url = normalize_url(base_url)
    name = f"keel_test_{secrets.token_hex(6)}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    tmp = tmp_path_factory.mktemp("pgcorpus")
    root = tmp / "ws"
    (root / ".keel").mkdir(parents=True)
    url = base_url.rsplit("/", 1)[0] + "/" + name
    (root / ".keel" / "config.toml").write_text(f'[metadata]\nurl = "{url}"\n')
    ws = keel.init(root)
    try:
        yield _build(ws, tmp)
    finally:
        ws.close()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.postgres)])
def corpus(request: pytest.FixtureRequest) -> Corpus:
    return request.getfixturevalue(f"{request.param}_corpus")  # type: ignore[no-any-return]


# -- the reference implementation -------------------------------------------------

OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _ts(text: str) -> float:
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def _cmp_text(have: str, op: str, value: Any) -> bool:
    if op == "~":
        return str(value) in have
    if op == "in":
        return have in {str(v) for v in value}
    return OPS[op](have, str(value))


def matches(node: Any, r: Ref, now: float) -> bool:
    """Does run ``r`` satisfy ``node`` — written from the filter docs, not from the SQL."""
    if isinstance(node, Logical):
        results = [matches(n, r, now) for n in node.items]
        return all(results) if node.op == "and" else any(results)
    if isinstance(node, Not):
        return not matches(node.item, r, now)
    c: Compare = node
    if c.field in ("metrics", "params", "tags"):
        table: dict[str, Any] = getattr(r, c.field)
        if c.op == "is null":
            return c.key not in table
        if c.op == "is not null":
            return c.key in table
        if c.key not in table:
            return False
        have = table[c.key]
        values = c.value if c.op == "in" else (c.value,)
        if c.field == "metrics":
            if math.isnan(have):
                return False
            if c.op == "in":
                return have in {float(v) for v in values}
            return OPS[c.op](have, float(c.value))
        if c.field == "tags":
            return _cmp_text(have, c.op, c.value)
        # params: numbers compare as numbers, anything else as the value (or its JSON)
        if c.op == "~":
            return str(c.value) in json.dumps(have)
        if all(_is_num(v) for v in values):
            if not _is_num(have):
                return False
            if c.op == "in":
                return float(have) in {float(v) for v in values}
            return OPS[c.op](float(have), float(c.value))
        same = any(have == v or json.dumps(have) == str(v) for v in values)
        if c.op in ("=", "in"):
            return same
        if c.op == "!=":
            return not same
        raise AssertionError(f"the generator does not order params by text: {c}")
    if c.field == "data":
        wanted = c.value if c.op == "in" else (c.value,)
        hit = False
        for text in wanted:
            name, _, version = str(text).partition("@")
            hit |= any(n == name and (not version or v == int(version[1:])) for n, v in r.inputs)
        return not hit if c.op == "!=" else hit
    if c.field == "created":
        return OPS[c.op](r.created, _ts(str(c.value)))
    if c.field == "age":
        seconds = float(str(c.value)[:-1]) * UNIT[str(c.value)[-1]]
        return OPS[c.op](now - r.created, seconds)
    have = {"status": r.status, "name": r.name, "experiment": r.experiment, "id": r.id}[c.field]
    if c.field == "id" and c.op == "=":
        return have.startswith(str(c.value))
    return _cmp_text(have, c.op, c.value)


def search_ids(corpus: Corpus, text: str | None, **kw: Any) -> list[str]:
    page = keel.search_runs(text, workspace=corpus.ws, limit=1000, **kw)
    assert page.next_offset is None
    return [r.id for r in page.runs]


def expected_ids(corpus: Corpus, text: str) -> set[str]:
    node = parse_filter(text)
    now = time.time()
    return {r.id for r in corpus.runs if matches(node, r, now)}


FILTERS = [
    "metrics.auc > 0.9 and params.depth = 6",
    "metrics.auc > 0.7",
    "metrics.auc >= 0.5",
    "metrics.auc <= 0.75 or metrics.auc is null",
    "metrics.auc != 0.8",
    "not metrics.auc > 0.7",
    "metrics.auc is null",
    "metrics.auc is not null and metrics.loss is null",
    "metrics.loss > 1",
    "not metrics.loss > 1",
    "metrics.loss is not null",
    'metrics."val loss" < 3',
    'metrics."val loss" in (1, 5, 6)',
    "metrics.nothere is null",
    "metrics.nothere > 0",
    "params.depth = 6",
    "params.depth in (3, 9)",
    "params.depth > 3",
    "params.depth != 6",
    "params.depth = deep",
    "params.depth is null",
    "params.lr = 0.1",
    "params.lr < 0.2 and params.model = gbm",
    "params.model = 'lr-net'",
    "params.model in (rf, gbm)",
    "params.model != rf",
    "params.model ~ net",
    "params.flag = true",
    "params.flag = false",
    "tags.team in (risk, fraud)",
    "tags.team = risk",
    "tags.team != risk",
    "tags.team is null",
    "tags.team < g",
    "tags.env = 'prod eu'",
    'tags.env ~ "eu"',
    "not status = failed",
    "status = failed",
    "status in (failed, killed)",
    "status != finished",
    "status = crashed",
    "name = gbm-baseline",
    "name ~ baseline",
    "name ~ run-1",
    "experiment = exp-b",
    "experiment = exp-a and not (tags.team = risk or tags.team = fraud)",
    "data = churn@v1",
    "data = churn@v2",
    "data = churn",
    "data != churn",
    "data = other@v1 and data = churn@v1",
    "data in (other@v1, churn@v2)",
    "data = nope",
    "data = churn@v9",
    "age < 2h",
    "age < 30h",
    "age >= 1d",
    "age < 3d and age > 1d",
    "age <= 1w",
    "age > 90m and metrics.auc > 0.8",
    "(status = failed or status = killed) and data = churn",
    "status = failed or status = killed and data = churn",
    "not not status = finished",
]


def test_every_listed_filter_matches_the_reference(corpus: Corpus) -> None:
    for text in FILTERS:
        got = search_ids(corpus, text)
        assert len(got) == len(set(got)), text
        assert set(got) == expected_ids(corpus, text), text


def test_the_corpus_makes_the_filters_discriminate(sqlite_corpus: Corpus) -> None:
    """Most filters select some but not all runs, so a wrong answer would show."""
    sizes = [len(expected_ids(sqlite_corpus, f)) for f in FILTERS]
    partial = sum(1 for n in sizes if 0 < n < len(sqlite_corpus.runs))
    assert partial >= len(FILTERS) - 6


def test_created_and_id_filters(corpus: Corpus) -> None:
    mid = corpus.runs[10]
    moment = dt.datetime.fromtimestamp(mid.created + 1, dt.UTC).replace(tzinfo=None)
    for text in (
        f'created >= "{moment.isoformat()}"',
        f'created < "{moment.isoformat()}"',
        f'created >= "{moment.date().isoformat()}"',
        f"created >= {moment.date().isoformat()}",
    ):
        got = search_ids(corpus, text)
        assert set(got) == expected_ids(corpus, text), text
    assert 0 < len(search_ids(corpus, f'created < "{moment.isoformat()}"')) < 30
    target = corpus.runs[4]
    assert search_ids(corpus, f"id = {target.id}") == [target.id]
    assert search_ids(corpus, f"id = {target.id[:8]}") == [target.id]  # a prefix
    assert set(search_ids(corpus, f"id != {target.id}")) == {r.id for r in corpus.runs} - {
        target.id
    }
    assert set(search_ids(corpus, f"id in ({target.id}, {corpus.runs[5].id})")) == {
        target.id,
        corpus.runs[5].id,
    }


# -- generated filters against the reference ---------------------------------------


@st.composite
def corpus_comparison(draw: st.DrawFn) -> str:
    kind = draw(
        st.sampled_from(["metric", "param_num", "param_text", "tag", "column", "data", "age"])
    )
    if kind == "metric":
        key = draw(st.sampled_from(["auc", "loss", '"val loss"', "nothere"]))
        if draw(st.integers(0, 5)) == 0:
            return f"metrics.{key} is {draw(st.sampled_from(['', 'not ']))}null"
        nums = st.sampled_from(["0.5", "0.62", "0.7", "0.81", "0.9", "1", "2", "1.5", "0", "-1"])
        if draw(st.integers(0, 5)) == 0:
            return f"metrics.{key} in ({', '.join(draw(st.lists(nums, min_size=1, max_size=3)))})"
        op = draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">="]))
        return f"metrics.{key} {op} {draw(nums)}"
    if kind == "param_num":
        key = draw(st.sampled_from(["depth", "lr", "nothere"]))
        nums = st.sampled_from(["3", "6", "9", "0.01", "0.1", "0.3", "5", "6.0"])
        if draw(st.booleans()):
            return f"params.{key} in ({', '.join(draw(st.lists(nums, min_size=1, max_size=3)))})"
        return (
            f"params.{key} {draw(st.sampled_from(['=', '!=', '<', '<=', '>', '>=']))} {draw(nums)}"
        )
    if kind == "param_text":
        key = draw(st.sampled_from(["model", "depth", "flag"]))
        vals = st.sampled_from(["gbm", "rf", "'lr-net'", "deep", "true", "false", '"gbm"'])
        form = draw(st.sampled_from(["=", "!=", "in", "~", "null"]))
        if form == "null":
            return f"params.{key} is {draw(st.sampled_from(['', 'not ']))}null"
        if form == "in":
            return f"params.{key} in ({', '.join(draw(st.lists(vals, min_size=1, max_size=3)))})"
        if form == "~":
            return f"params.{key} ~ {draw(st.sampled_from(['gb', 'net', 'r', 'e', '6']))}"
        return f"params.{key} {form} {draw(vals)}"
    if kind == "tag":
        key = draw(st.sampled_from(["team", "env", "nothere"]))
        vals = st.sampled_from(["risk", "fraud", "growth", "dev", "'prod eu'", "g", "eu", "r"])
        form = draw(st.sampled_from(["=", "!=", "<", ">=", "~", "in", "null"]))
        if form == "null":
            return f"tags.{key} is {draw(st.sampled_from(['', 'not ']))}null"
        if form == "in":
            return f"tags.{key} in ({', '.join(draw(st.lists(vals, min_size=1, max_size=3)))})"
        if form in ("<", ">="):
            return f"tags.team {form} {draw(st.sampled_from(['fraud', 'g', 'risk', 's']))}"
        return f"tags.{key} {form} {draw(vals)}"
    if kind == "column":
        col, vals = draw(
            st.sampled_from(
                [
                    ("status", ["finished", "failed", "killed", "crashed"]),
                    ("name", ["gbm-baseline", "run-03", "run-1", "baseline"]),
                    ("experiment", ["exp-a", "exp-b", "exp"]),
                ]
            )
        )
        v = st.sampled_from(vals)
        form = draw(st.sampled_from(["=", "!=", "~", "in"]))
        if form == "in":
            return f"{col} in ({', '.join(draw(st.lists(v, min_size=1, max_size=3)))})"
        return f"{col} {form} {draw(v)}"
    if kind == "data":
        refs = st.sampled_from(["churn", "churn@v1", "churn@v2", "other@v1", "other", "nope"])
        if draw(st.booleans()):
            return f"data in ({', '.join(draw(st.lists(refs, min_size=1, max_size=3)))})"
        return f"data {draw(st.sampled_from(['=', '!=']))} {draw(refs)}"
    op = draw(st.sampled_from(["<", "<=", ">", ">="]))
    return f"age {op} {draw(st.sampled_from(['30m', '2h', '90m', '1d', '3d', '1w', '13h']))}"


def corpus_expression(depth: int = 2) -> st.SearchStrategy[str]:
    leaf = corpus_comparison()
    if depth == 0:
        return leaf
    sub = corpus_expression(depth - 1)
    return st.one_of(
        leaf,
        st.tuples(sub, st.sampled_from(["and", "or"]), sub).map(
            lambda t: f"({t[0]}) {t[1]} ({t[2]})"
        ),
        st.tuples(sub, st.sampled_from(["and", "or"]), sub).map(" ".join),
        sub.map(lambda s: f"not ({s})"),
    )


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=corpus_expression())
def test_generated_filters_match_the_reference(sqlite_corpus: Corpus, text: str) -> None:
    got = search_ids(sqlite_corpus, text)
    assert len(got) == len(set(got))
    assert set(got) == expected_ids(sqlite_corpus, text)


@pytest.mark.postgres
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=corpus_expression())
def test_generated_filters_match_the_reference_on_postgres(pg_corpus: Corpus, text: str) -> None:
    got = search_ids(pg_corpus, text)
    assert set(got) == expected_ids(pg_corpus, text)


def test_search_reports_bad_filters_and_bad_values(sqlite_corpus: Corpus) -> None:
    ws = sqlite_corpus.ws
    with pytest.raises(FilterSyntaxError, match="unknown field 'foo'"):
        keel.search_runs("foo = 1", workspace=ws)
    with pytest.raises(FilterSyntaxError, match="metrics compare with numbers"):
        keel.search_runs("metrics.auc > high", workspace=ws)
    with pytest.raises(FilterSyntaxError, match="data takes = != or in"):
        keel.search_runs("data < churn", workspace=ws)
    with pytest.raises(InvalidInput, match="invalid sort '-foo'"):
        keel.search_runs(None, sort="-foo", workspace=ws)
    with pytest.raises(InvalidInput, match="invalid limit 0"):
        keel.search_runs(None, limit=0, workspace=ws)
    with pytest.raises(InvalidInput, match="invalid offset -1"):
        keel.search_runs(None, offset=-1, workspace=ws)


def test_data_filter_by_digest_prefix(sqlite_corpus: Corpus) -> None:
    v1 = keel.data.get("churn@v1", workspace=sqlite_corpus.ws)
    text = f"data = churn@{v1.digest[:12]}"
    assert set(search_ids(sqlite_corpus, text)) == expected_ids(sqlite_corpus, "data = churn@v1")


@pytest.mark.postgres
def test_contains_is_the_same_on_both_backends(sqlite_corpus: Corpus, pg_corpus: Corpus) -> None:
    for text in ("name ~ GBM", "tags.team ~ RISK", "params.model ~ RF"):
        names_sqlite = sorted(
            r.name for r in keel.search_runs(text, workspace=sqlite_corpus.ws, limit=100).runs
        )
        names_pg = sorted(
            r.name for r in keel.search_runs(text, workspace=pg_corpus.ws, limit=100).runs
        )
        assert names_sqlite == names_pg, text


# -- sorting and pages ----------------------------------------------------------------


def _order(corpus: Corpus, value: Callable[[Ref], Any], descending: bool) -> list[str]:
    """Reference order: by value (missing and NaN last either way), then newest first."""
    present = [r for r in corpus.runs if value(r) is not None]
    missing = [r for r in corpus.runs if value(r) is None]
    present.sort(key=lambda r: -r.created)
    present.sort(key=value, reverse=descending)  # stable: ties stay newest first
    missing.sort(key=lambda r: -r.created)
    return [r.id for r in present + missing]


def _metric(key: str) -> Callable[[Ref], float | None]:
    def get(r: Ref) -> float | None:
        v = r.metrics.get(key)
        return None if v is None or math.isnan(v) else v

    return get


def _param_num(key: str) -> Callable[[Ref], float | None]:
    def get(r: Ref) -> float | None:
        v = r.params.get(key)
        return float(v) if _is_num(v) else None

    return get


@pytest.mark.parametrize(
    ("sort", "value", "descending"),
    [
        ("-metrics.auc", _metric("auc"), True),
        ("metrics.auc", _metric("auc"), False),
        ("-metrics.loss", _metric("loss"), True),
        ("+metrics.loss", _metric("loss"), False),
        ("-metrics.val loss", _metric("val loss"), True),
        ("-params.depth", _param_num("depth"), True),
        ("params.lr", _param_num("lr"), False),
        ("created", lambda r: r.created, False),
        ("-created", lambda r: r.created, True),
        ("-duration", lambda r: r.ended - r.created, True),
        ("status", lambda r: r.status, False),
        ("-metrics.nothere", _metric("nothere"), True),
    ],
)
def test_sort_matches_the_reference(
    corpus: Corpus, sort: str, value: Callable[[Ref], Any], descending: bool
) -> None:
    assert search_ids(corpus, None, sort=sort) == _order(corpus, value, descending)


def test_default_order_is_newest_first(sqlite_corpus: Corpus) -> None:
    assert search_ids(sqlite_corpus, None) == [
        r.id for r in sorted(sqlite_corpus.runs, key=lambda r: -r.created)
    ]


def test_sorted_by_auc_puts_missing_last(sqlite_corpus: Corpus) -> None:
    page = keel.search_runs(None, sort="-metrics.auc", limit=100, workspace=sqlite_corpus.ws)
    aucs = [r.metrics.get("auc") for r in page.runs]
    have = [a for a in aucs if a is not None]
    assert have == sorted(have, reverse=True)
    first_missing = aucs.index(None)
    assert all(a is None for a in aucs[first_missing:])
    assert len(have) == sum(1 for r in sqlite_corpus.runs if "auc" in r.metrics)


@pytest.mark.parametrize("limit", [1, 7, 30])
@pytest.mark.parametrize("sort", [None, "-metrics.auc", "params.depth"])
@pytest.mark.parametrize("text", [None, "metrics.auc > 0.6 or tags.team = risk"])
def test_pages_cover_every_run_exactly_once(
    corpus: Corpus, limit: int, sort: str | None, text: str | None
) -> None:
    whole = search_ids(corpus, text, sort=sort)
    seen: list[str] = []
    offset: int | None = 0
    pages = 0
    while offset is not None:
        page = keel.search_runs(text, sort=sort, limit=limit, offset=offset, workspace=corpus.ws)
        assert page.offset == offset and page.limit == limit
        assert len(page.runs) <= limit
        if page.next_offset is not None:
            assert len(page.runs) == limit and page.next_offset == offset + limit
        seen += [r.id for r in page.runs]
        offset = page.next_offset
        pages += 1
        assert pages <= 40
    assert seen == whole
    assert len(seen) == len(set(seen))
    expected = expected_ids(corpus, text) if text else {r.id for r in corpus.runs}
    assert set(seen) == expected
    beyond = keel.search_runs(text, sort=sort, limit=limit, offset=len(whole), workspace=corpus.ws)
    assert beyond.runs == [] and beyond.next_offset is None


def test_summaries_carry_latest_params_and_metrics(sqlite_corpus: Corpus) -> None:
    page = keel.search_runs(None, limit=100, workspace=sqlite_corpus.ws)
    by_id = {r.id: r for r in sqlite_corpus.runs}
    assert len(page.runs) == 30
    for s in page.runs:
        ref = by_id[s.id]
        assert (s.name, s.experiment, s.status) == (ref.name, ref.experiment, ref.status)
        assert s.params == ref.params
        assert set(s.metrics) == set(ref.metrics)
        for k, v in ref.metrics.items():
            assert (math.isnan(v) and math.isnan(s.metrics[k])) or s.metrics[k] == v
        doc = s.to_dict()
        assert doc["id"] == s.id and doc["params"] == ref.params
    assert page.to_dict()["next_offset"] is None
