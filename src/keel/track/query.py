"""The run filter language, parsed and executed in SQL.

::

    metrics.auc > 0.9 and params.depth = 6
    (tags.team = "risk" or tags.team = fraud) and status != failed
    data = churn@v3            runs that used that version (data = churn: any version)
    name ~ "gbm"               substring match
    age < 2h                   created in the last two hours (s, m, h, d, w)
    created >= "2026-11-01"    ISO dates and times, UTC
    metrics.loss is null       runs that never logged it

Fields: ``metrics.KEY``, ``params.KEY``, ``tags.KEY`` (quote keys with spaces:
``metrics."val loss"``), ``status``, ``name``, ``experiment``, ``id``,
``data``, ``created``, ``age``. Operators: ``= != < <= > >= ~ in is``, joined by
``and``, ``or``, ``not`` and parentheses. Sorting: ``-metrics.auc`` (descending)
or ``created``.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass
from typing import Any

from keel.errors import InvalidInput

__all__ = ["Compare", "FilterSyntaxError", "Logical", "Not", "parse_filter", "parse_sort"]


class FilterSyntaxError(InvalidInput):
    """A filter that does not parse: the message says where and what was expected."""


@dataclass(frozen=True)
class Compare:
    field: str  # "metrics", "params", "tags", or a run column ("status", "name", ...)
    key: str | None
    op: str
    value: Any


@dataclass(frozen=True)
class Logical:
    op: str  # "and" / "or"
    items: tuple[Any, ...]


@dataclass(frozen=True)
class Not:
    item: Any


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<num>[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![\w@./-]))
      | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<op><=|>=|!=|==|=|<|>|~|\(|\)|,)
      | (?P<word>[A-Za-z0-9_][A-Za-z0-9_.@/:+-]*)
    )""",
    re.VERBOSE,
)
_COLUMNS = {"status", "name", "experiment", "id", "data", "created", "age"}
_PREFIXES = {"metrics", "params", "tags", "metric", "param", "tag"}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(s|m|h|d|w)")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_KEYWORDS = {"and", "or", "not", "in", "is", "null"}


def _tokens(text: str) -> list[tuple[str, Any, int]]:
    out: list[tuple[str, Any, int]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None:
            col = len(text) - len(text[pos:].lstrip()) + 1
            raise FilterSyntaxError(
                f"unexpected character {text[col - 1]!r} at column {col} of the filter"
            )
        kind = m.lastgroup or ""
        raw = m.group(kind)
        start = m.start(kind) + 1
        if kind == "num":
            try:
                out.append(
                    ("value", float(raw) if any(c in raw for c in ".eE") else int(raw), start)
                )
            except ValueError:
                raise FilterSyntaxError(
                    f"number at column {start} of the filter is too long"
                ) from None
        elif kind == "str":
            # Only \" \' and \\ are escapes; any other backslash is refused, never guessed at.
            body = raw[1:-1]
            bad = re.search(r"\\[^\"'\\]", body)
            if bad:
                raise FilterSyntaxError(
                    f"unknown escape {bad.group(0)!r} in the string at column {start}: "
                    "only \\\" \\' and \\\\ are escapes"
                )
            out.append(("value", re.sub(r"\\(.)", r"\1", body), start))
        elif kind == "op":
            out.append(("op", "=" if raw == "==" else raw, start))
        else:
            low = raw.lower()
            out.append(("kw", low, start) if low in _KEYWORDS else ("word", raw, start))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, Any, int] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def fail(self, expected: str) -> FilterSyntaxError:
        tok = self.peek()
        where = f"at column {tok[2]} ({tok[1]!r})" if tok else "at the end"
        return FilterSyntaxError(f"filter {self.text!r}: expected {expected} {where}")

    def take(self, kind: str, value: Any = None) -> Any:
        tok = self.peek()
        if tok is None or tok[0] != kind or (value is not None and tok[1] != value):
            raise self.fail(repr(value) if value is not None else kind)
        self.i += 1
        return tok[1]

    def at(self, kind: str, value: Any = None) -> bool:
        tok = self.peek()
        return tok is not None and tok[0] == kind and (value is None or tok[1] == value)

    def parse(self) -> Any:
        if not self.toks:
            raise FilterSyntaxError("empty filter: expected a comparison like `metrics.auc > 0.9`")
        node = self.or_expr()
        if self.peek() is not None:
            raise self.fail("'and', 'or' or the end of the filter")
        return node

    def or_expr(self) -> Any:
        items = [self.and_expr()]
        while self.at("kw", "or"):
            self.i += 1
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Logical("or", tuple(items))

    def and_expr(self) -> Any:
        items = [self.not_expr()]
        while self.at("kw", "and"):
            self.i += 1
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else Logical("and", tuple(items))

    def not_expr(self) -> Any:
        if self.at("kw", "not"):
            self.i += 1
            return Not(self.not_expr())
        if self.at("op", "("):
            self.i += 1
            node = self.or_expr()
            self.take("op", ")")
            return node
        return self.comparison()

    def field(self) -> tuple[str, str | None]:
        tok = self.peek()
        if tok is None or tok[0] != "word":
            raise self.fail("a field such as metrics.auc, params.depth, tags.team or status")
        self.i += 1
        word = str(tok[1])
        head, dot, rest = word.partition(".")
        if head.lower() in _PREFIXES:
            prefix = head.lower().rstrip("s") + "s"
            if dot and rest:
                return prefix, rest
            if dot and self.at("value") and isinstance(self.peek()[1], str):  # type: ignore[index]
                return prefix, str(self.take("value"))
            raise FilterSyntaxError(
                f"filter {self.text!r}: expected a key after {head}. at column {tok[2]}"
            )
        if word.lower() in _COLUMNS and not dot:
            return word.lower(), None
        raise FilterSyntaxError(
            f"filter {self.text!r}: unknown field {word!r} at column {tok[2]}; expected "
            "metrics.KEY, params.KEY, tags.KEY, status, name, experiment, id, data, created or age"
        )

    def value(self) -> Any:
        tok = self.peek()
        if tok is not None and tok[0] in ("value", "word"):
            self.i += 1
            return tok[1]
        raise self.fail("a value (a number, a word or a quoted string)")

    def comparison(self) -> Compare:
        field, key = self.field()
        if self.at("kw", "is"):
            self.i += 1
            negate = self.at("kw", "not")
            if negate:
                self.i += 1
            self.take("kw", "null")
            return Compare(field, key, "is not null" if negate else "is null", None)
        if self.at("kw", "in"):
            self.i += 1
            self.take("op", "(")
            values = [self.value()]
            while self.at("op", ","):
                self.i += 1
                values.append(self.value())
            self.take("op", ")")
            return _checked(Compare(field, key, "in", tuple(values)), self.text)
        tok = self.peek()
        if tok is None or tok[0] != "op" or tok[1] in ("(", ")", ","):
            raise self.fail("an operator (= != < <= > >= ~ in is)")
        self.i += 1
        return _checked(Compare(field, key, str(tok[1]), self.value()), self.text)


def _checked(c: Compare, text: str) -> Compare:
    if c.field == "age":
        if c.op not in ("<", "<=", ">", ">="):
            raise FilterSyntaxError(f"filter {text!r}: age takes < <= > >=, not {c.op}")
        if not isinstance(c.value, str) or not _DURATION.fullmatch(c.value):
            raise FilterSyntaxError(
                f"filter {text!r}: age needs a duration like 30m, 2h or 7d, not {c.value!r}"
            )
    if c.field == "created":
        _timestamp(c.value, text)
    if c.field == "status" and c.op == "in":
        return c
    if c.op == "~" and c.field in ("metrics", "created", "age"):
        raise FilterSyntaxError(f"filter {text!r}: ~ (contains) works on text, not on {c.field}")
    return c


def _timestamp(value: Any, text: str) -> float:
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise FilterSyntaxError(
            f"filter {text!r}: created needs an ISO date or time like 2026-11-01, not {value!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def parse_filter(text: str) -> Any:
    """Parse a filter into a tree of Compare / Logical / Not; raises FilterSyntaxError."""
    return _Parser(text).parse()


def parse_sort(text: str) -> tuple[str, str | None, bool]:
    """``-metrics.auc`` → ("metrics", "auc", descending=True)."""
    spec = text.strip()
    descending = spec.startswith("-")
    spec = spec.lstrip("+-")
    head, dot, rest = spec.partition(".")
    if head.lower() in _PREFIXES and dot and rest:
        return head.lower().rstrip("s") + "s", rest, descending
    if spec.lower() in {"created", "name", "status", "experiment", "duration"} and not dot:
        return spec.lower(), None, descending
    raise InvalidInput(
        f"invalid sort {text!r}: expected [-]metrics.KEY, [-]params.KEY, [-]created, "
        "[-]name, [-]status or [-]duration"
    )


def duration_seconds(text: str) -> float:
    m = _DURATION.fullmatch(text)
    assert m is not None
    return float(m.group(1)) * _UNIT[m.group(2)]


def now() -> float:
    return time.time()
