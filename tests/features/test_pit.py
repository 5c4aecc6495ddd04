"""The point-in-time join against a brute-force reference: ties, nulls, ttl edges, unsorted
input, entities with no history, entity rows before any feature row, ``as_of``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from keel.errors import InvalidInput
from keel.features.pit import ViewFrame, point_in_time_join

BASE = dt.datetime(2026, 1, 1)
# narrow ranges, so ties (key, time, created) and ttl edges come up in most examples
KEYS = st.one_of(st.none(), st.integers(0, 2))
MINUTES = st.integers(0, 8)
CREATED = st.integers(0, 3)


def at(minutes: int | None) -> dt.datetime | None:
    return None if minutes is None else BASE + dt.timedelta(minutes=minutes)


def reference(
    entities: list[tuple[Any, Any]],
    features: list[tuple[Any, Any, Any, Any]],
    ttl: dt.timedelta | None,
    as_of: dt.datetime | None,
) -> list[Any]:
    """For each entity (key, t): the value of the feature row of that key with the greatest
    event time <= t (and >= t - ttl), ties to the latest created, then the last given."""
    out = []
    for key, t in entities:
        best = None
        for i, (k, ts, created, value) in enumerate(features):
            if key is None or t is None or k != key or ts is None or ts > t:
                continue
            if ttl is not None and ts < t - ttl:
                continue
            if as_of is not None and (created is None or created > as_of):
                continue
            rank = (ts, created is not None, created or BASE, i)
            if best is None or rank > best[0]:
                best = (rank, value)
        out.append(None if best is None else best[1])
    return out


@settings(max_examples=300, deadline=None)
@given(
    entities=st.lists(st.tuples(KEYS, st.one_of(st.none(), MINUTES)), max_size=25),
    features=st.lists(
        st.tuples(
            KEYS,
            st.one_of(st.none(), MINUTES),
            st.one_of(st.none(), CREATED),
            st.one_of(st.none(), st.integers(-5, 5)),
        ),
        max_size=30,
    ),
    ttl=st.one_of(st.none(), st.integers(0, 4)),
    as_of=st.one_of(st.none(), CREATED),
)
# a tie on (key, time, created): the row given last wins; a tie on time: the later created
@example(entities=[(1, 5)], features=[(1, 5, 2, 1), (1, 5, 2, 2), (1, 5, 1, 3)], ttl=None, as_of=None)
@example(entities=[(1, 5)], features=[(1, 5, None, 1), (1, 5, 0, 2)], ttl=None, as_of=None)
# the ttl's edge counts; a row one minute older does not
@example(entities=[(1, 5), (1, 6)], features=[(1, 2, None, 7)], ttl=3, as_of=None)
# as_of leaves out a row created after it (and a row with no created time)
@example(
    entities=[(0, 8)],
    features=[(0, 1, 0, 1), (0, 4, 1, 4), (0, 2, 3, 2), (0, 5, None, 3)],
    ttl=None,
    as_of=1,
)
# no two rows share an instant (once nulls, and rows created after as_of, are left out):
# the join runs on the rows as they are, with no aggregate
@example(
    entities=[(0, 5), (1, 3), (None, 2), (0, None), (0, 8)],
    features=[(0, 4, 0, 1), (0, 2, 1, 2), (1, 1, None, 3), (None, 1, 0, 4), (0, None, 0, 5)],
    ttl=2,
    as_of=None,
)
@example(entities=[(0, 6), (0, 3)], features=[(0, 4, 1, 4), (0, 4, 3, 5)], ttl=None, as_of=1)
def test_matches_the_brute_force_reference(
    entities: list[tuple[Any, Any]],
    features: list[tuple[Any, Any, Any, Any]],
    ttl: int | None,
    as_of: int | None,
) -> None:
    ents = [(k, at(t)) for k, t in entities]
    rows = [(k, at(ts), at(c), v) for k, ts, c, v in features]
    left = pa.table(
        {
            "customer": pa.array([k for k, _ in ents], pa.int64()),
            "ts": pa.array([t for _, t in ents], pa.timestamp("us")),
            "label": pa.array(range(len(ents)), pa.int64()),
        }
    )
    right = pa.table(
        {
            "customer": pa.array([r[0] for r in rows], pa.int64()),
            "event_ts": pa.array([r[1] for r in rows], pa.timestamp("us")),
            "created": pa.array([r[2] for r in rows], pa.timestamp("us")),
            "spend": pa.array([r[3] for r in rows], pa.int64()),
        }
    )
    window = None if ttl is None else dt.timedelta(minutes=ttl)
    cutoff = at(as_of)
    view = ViewFrame("spend", right, "customer", "event_ts", ["spend"], window, "created")
    out = point_in_time_join(left, [view], key="customer", timestamp="ts", as_of=cutoff)
    assert out.column_names == ["customer", "ts", "label", "spend"]
    assert out.column("label").to_pylist() == list(range(len(ents)))  # one row each, in order
    assert out.column("spend").to_pylist() == reference(ents, rows, window, cutoff)


def test_two_views_a_ttl_edge_and_a_customer_with_history_outside_the_window() -> None:
    """Feast drops the entity row whose customer has feature rows but none inside the ttl
    window (feast#3003's shape); keel keeps it, with nulls."""
    left = pa.table(
        {
            "customer": [1, 2, 1, 3],
            "ts": pa.array([at(100), at(100), at(10), at(100)], pa.timestamp("us")),
        }
    )
    spend = pa.table(
        {
            "customer": [1, 1, 2],
            "event_ts": pa.array([at(5), at(40), at(1)], pa.timestamp("us")),
            "spend_30d": [10.0, 20.0, 99.0],
        }
    )
    visits = pa.table(
        {"customer": [1], "event_ts": pa.array([at(100)], pa.timestamp("us")), "visits": [7]}
    )
    out = point_in_time_join(
        left,
        [
            ViewFrame("spend", spend, "customer", "event_ts", ["spend_30d"], dt.timedelta(minutes=60)),
            ViewFrame("visits", visits, "customer", "event_ts", ["visits"]),
        ],
        key="customer",
        timestamp="ts",
    )
    assert out.column("spend_30d").to_pylist() == [20.0, None, 10.0, None]  # ttl edge: 100-40=60
    assert out.column("visits").to_pylist() == [7, None, None, None]
    assert out.num_rows == 4


def test_bad_input_is_named() -> None:
    left = pa.table({"customer": [1], "ts": pa.array([at(1)], pa.timestamp("us"))})
    right = pa.table(
        {"customer": [1], "event_ts": pa.array([at(0)], pa.timestamp("us", "UTC")), "x": [1]}
    )
    view = ViewFrame("v", right, "customer", "event_ts", ["x"])
    with pytest.raises(InvalidInput, match="mix time zones"):
        point_in_time_join(left, [view], key="customer", timestamp="ts")
    with pytest.raises(InvalidInput, match="has no column 'when'"):
        point_in_time_join(left, [view], key="customer", timestamp="when")
    text = pa.table({"customer": [1], "ts": ["yesterday"]})
    with pytest.raises(InvalidInput, match="not times"):
        point_in_time_join(text, [view], key="customer", timestamp="ts")
    clash = ViewFrame("v", right, "customer", "event_ts", ["customer"])
    with pytest.raises(InvalidInput, match="clashes"):
        point_in_time_join(left, [clash], key="customer", timestamp="ts")
    with pytest.raises(InvalidInput, match="created timestamp"):
        point_in_time_join(left, [view], key="customer", timestamp="ts", as_of=BASE)


@settings(max_examples=100, deadline=None)
@given(
    features=st.lists(
        st.tuples(st.integers(0, 1), st.integers(0, 3), st.one_of(st.none(), st.integers(-3, 3))),
        min_size=1,
        max_size=20,
    ),
    order=st.randoms(use_true_random=False),
)
def test_ties_by_values_do_not_depend_on_row_order(features: list[Any], order: Any) -> None:
    """A query's rows come in no particular order: settled by values, the join is the same
    whatever order they come in."""
    left = pa.table(
        {
            "customer": pa.array([0, 1, 0, 1], pa.int64()),
            "ts": pa.array([at(1), at(2), at(3), at(4)], pa.timestamp("us")),
        }
    )
    shuffled = list(features)
    order.shuffle(shuffled)

    def join(rows: list[Any]) -> list[Any]:
        right = pa.table(
            {
                "customer": pa.array([r[0] for r in rows], pa.int64()),
                "event_ts": pa.array([at(r[1]) for r in rows], pa.timestamp("us")),
                "spend": pa.array([r[2] for r in rows], pa.int64()),
            }
        )
        view = ViewFrame("v", right, "customer", "event_ts", ["spend"], ties="values")
        return point_in_time_join(left, [view], key="customer", timestamp="ts").column(
            "spend"
        ).to_pylist()

    assert join(features) == join(shuffled)
