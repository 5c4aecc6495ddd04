"""The log lake: buffered, atomic Parquet segments by model and hour, read back with DuckDB."""

from __future__ import annotations

import os
import time

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from keel.errors import InvalidInput
from keel.store.logs import LogLake, LogWriter, hour_of, parse_since


def rows(n: int, start: int = 0, ts: float | None = None) -> dict:
    now = time.time() if ts is None else ts
    return {
        "ts": [now] * n,
        "prediction_id": [f"p{start + i}" for i in range(n)],
        "x": [float(i) for i in range(n)],
    }


def test_close_writes_everything_once(tmp_path):
    writer = LogWriter(tmp_path, flush_seconds=60).start()
    for i in range(100):
        writer.append("predictions", "churn", rows(3, start=3 * i))
    writer.close()
    frame = LogLake(tmp_path).scan("predictions", "churn").df()
    assert sorted(frame["prediction_id"]) == sorted(f"p{i}" for i in range(300))
    assert writer.written == 300 and writer.segments == 1


def test_flushes_by_time_and_by_size(tmp_path):
    lake = LogLake(tmp_path)
    timed = LogWriter(tmp_path, flush_seconds=0.1).start()
    timed.append("predictions", "a", rows(5))
    deadline = time.monotonic() + 5
    while not lake.has("predictions", "a") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert lake.has("predictions", "a")
    sized = LogWriter(tmp_path, flush_seconds=60, max_rows=50).start()
    sized.append("predictions", "b", rows(60))
    deadline = time.monotonic() + 5
    while not lake.has("predictions", "b") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert lake.has("predictions", "b")
    timed.close()
    sized.close()


def test_rows_split_by_hour_and_read_since(tmp_path):
    writer = LogWriter(tmp_path)
    base = 1_800_000_000.0
    writer.append("predictions", "churn", rows(2, 0, ts=base))
    writer.append("predictions", "churn", rows(2, 2, ts=base + 3600))
    writer.flush()
    hours = sorted(p.name for p in (tmp_path / "predictions" / "model=churn").iterdir())
    assert hours == [f"hour={hour_of(base)}", f"hour={hour_of(base + 3600)}"]
    lake = LogLake(tmp_path)
    assert len(lake.scan("predictions", "churn").df()) == 4
    assert sorted(lake.scan("predictions", "churn", since=base + 1800).df()["prediction_id"]) == [
        "p2",
        "p3",
    ]
    assert lake.scan("predictions", "other") is None


def test_segments_of_different_schemas_union_by_name(tmp_path):
    writer = LogWriter(tmp_path)
    writer.append(
        "predictions", "churn", {"ts": [time.time()], "prediction_id": ["a"], "input_x": [1.0]}
    )
    writer.append(
        "predictions", "churn", {"ts": [time.time()], "prediction_id": ["b"], "input_y": ["s"]}
    )
    writer.flush()
    frame = LogLake(tmp_path).scan("predictions", "churn").df().set_index("prediction_id")
    assert frame.loc["a", "input_x"] == 1.0 and frame.loc["b", "input_y"] == "s"


def test_a_failed_write_keeps_the_rows_for_the_next_try(tmp_path):
    errors: list[BaseException] = []
    writer = LogWriter(tmp_path / "lake", on_error=errors.append)
    (tmp_path / "lake").write_text("a file where the folder should be")
    writer.append("predictions", "churn", rows(7))
    assert writer.flush() == 0 and errors and writer.buffered == 7
    (tmp_path / "lake").unlink()
    assert writer.flush() == 7
    assert len(LogLake(tmp_path / "lake").scan("predictions", "churn").df()) == 7


def test_the_buffer_is_bounded_when_writes_keep_failing(tmp_path):
    (tmp_path / "lake").write_text("not a folder")
    writer = LogWriter(tmp_path / "lake", max_buffered=10, on_error=lambda e: None)
    for i in range(4):
        writer.append("predictions", f"m{i}", rows(5))
        writer.flush()
    assert writer.buffered <= 10 and writer.dropped >= 10


def test_no_half_segment_is_ever_visible(tmp_path):
    writer = LogWriter(tmp_path)
    writer.append("predictions", "churn", rows(1000))
    writer.flush()
    files = list((tmp_path / "predictions").rglob("*"))
    assert not [f for f in files if f.name.endswith(".tmp")]
    assert all(os.stat(f).st_size > 0 for f in files if f.is_file())


def test_unknown_stream_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown log stream"):
        LogWriter(tmp_path).append("nope", "churn", rows(1))


def test_mixed_types_in_one_column_are_kept_as_text(tmp_path):
    writer = LogWriter(tmp_path)
    writer.append("predictions", "churn", {"ts": [time.time()] * 2, "v": [1, "a"]})
    writer.flush()
    assert sorted(LogLake(tmp_path).scan("predictions", "churn").df()["v"]) == ["1", "a"]


@pytest.mark.parametrize(
    ("text", "ago"),
    [("90s", 90), ("15m", 900), ("1h", 3600), ("2d", 172800), ("1w", 604800), ("1.5h", 5400)],
)
def test_parse_since_durations(text, ago):
    assert parse_since(text, now=1e9) == 1e9 - ago


def test_parse_since_durations_in_ascii_digits():
    assert parse_since("1.5h", now=7200.0) == 1800.0
    assert parse_since(".5h", now=7200.0) == 5400.0
    with pytest.raises(InvalidInput, match="expected a duration"):
        parse_since("²s", now=1e9)


def test_parse_since_times():
    assert parse_since("2026-12-01T09:00") == parse_since("2026-12-01T09:00:00+00:00")
    assert parse_since("2026-12-01T10:00+01:00") == parse_since("2026-12-01T09:00")


@given(st.text(max_size=30))
@example(text="²s")  # a digit to str.isdigit(), not to float()
@example(text="1.s")
@example(text=".5h")
def test_parse_since_never_crashes(text):
    try:
        parse_since(text, now=1e9)
    except InvalidInput as exc:
        assert "expected a duration" in str(exc)
