"""The loop's policy file: when to retrain, how, how to gate, how to roll out.

Every key but ``[retrain] pipeline`` has a default::

    [trigger]
    drift = true                 # the served window's drift report says drift
    min_value = 0.8              # value per decision below this (realized or estimated)
    every = "7d"                 # a schedule
    new_data = "churn"           # a head of this dataset newer than the champion's data
    window = "1d"                # the served window the triggers judge
    cooldown = "6h"              # at most one retraining per model per cooldown

    [retrain]
    pipeline = "pipeline.py:retrain"   # relative to this file's folder
    params = { lr = 0.05 }
    executor = "local"           # or "dask" (with scheduler = "tcp://...")

    [gate]                       # issue 5's gate policy inline, or policy = "gate.toml"
    data = "recent"              # recent labelled traffic from the log lake, or a dataset ref

    [rollout]
    steps = [0.05, 0.25, 0.5, 1.0]
    min_requests = 200           # per step, before it can be judged
    min_duration = "10m"
    max_duration = "2h"
    on_inconclusive = "pause"    # or "rollback"
    guardrails = "guard.toml"    # issue 6's guardrails: a file, or an inline table
    key = "customer_id"          # optional: route the canary by this field

    [alerts]
    webhooks = ["https://hooks.example.com/keel"]
    jsonl = "loop-alerts.jsonl"

An unknown section or key, a value of the wrong type, a pipeline reference that does
not resolve: one :class:`LoopPolicyError` naming the key and what was expected.

>>> p = parse_policy({"retrain": {"pipeline": "p.py:retrain"}}, check_pipeline=False)
>>> p.rollout.steps, p.trigger.cooldown, p.trigger.drift
((0.05, 0.25, 0.5, 1.0), 21600.0, True)
"""

from __future__ import annotations

import itertools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from keel.errors import InvalidInput

__all__ = ["LoopPolicy", "LoopPolicyError", "Rollout", "Trigger", "load_policy", "parse_policy"]

ON_INCONCLUSIVE = ("pause", "rollback")


class LoopPolicyError(InvalidInput):
    """A loop policy that cannot be used as written."""


@dataclass(frozen=True)
class Trigger:
    """What starts a retraining (any one firing), judged on the served ``window``."""

    drift: bool = True
    min_value: float | None = None
    every: float | None = None  # seconds
    new_data: str | None = None  # a dataset name
    window: float = 86_400.0
    cooldown: float = 6 * 3600.0


@dataclass(frozen=True)
class Retrain:
    pipeline: str  # FILE.py:NAME, its file resolved against the policy's folder
    params: dict[str, Any] = field(default_factory=dict)
    executor: str = "local"
    scheduler: str | None = None
    registers: str | None = None  # the model the pipeline registers (when it was imported)


@dataclass(frozen=True)
class Gate:
    data: str = "recent"  # "recent": labelled traffic from the log lake; else a dataset ref
    policy: Any = None  # keel.evaluation.policy.Policy


@dataclass(frozen=True)
class Rollout:
    steps: tuple[float, ...] = (0.05, 0.25, 0.5, 1.0)
    min_requests: int = 200
    min_duration: float = 600.0
    max_duration: float = 7200.0
    on_inconclusive: str = "pause"
    guardrails: Any = None  # keel.deploy.Guardrails
    key: str | None = None


@dataclass(frozen=True)
class Alerts:
    webhooks: tuple[str, ...] = ()
    jsonl: str | None = None


@dataclass(frozen=True)
class LoopPolicy:
    """A parsed, checked loop policy."""

    trigger: Trigger
    retrain: Retrain
    gate: Gate
    rollout: Rollout
    alerts: Alerts
    source: str = "policy"
    path: str | None = None  # the file it was read from, absolute

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "trigger": vars(self.trigger),
            "retrain": vars(self.retrain),
            "gate": {"data": self.gate.data, "policy": self.gate.policy.source},
            "rollout": {
                **{k: v for k, v in vars(self.rollout).items() if k != "guardrails"},
                "steps": list(self.rollout.steps),
                "guardrails": self.rollout.guardrails.to_dict(),
            },
            "alerts": {"webhooks": list(self.alerts.webhooks), "jsonl": self.alerts.jsonl},
        }


_SECTIONS: dict[str, dict[str, str]] = {
    "trigger": {
        "drift": "bool",
        "min_value": "number",
        "every": "duration",
        "new_data": "text",
        "window": "duration",
        "cooldown": "duration or 0",
    },
    "retrain": {"pipeline": "text", "params": "table", "executor": "text", "scheduler": "text"},
    "gate": {"data": "text", "policy": "text"},  # and the gate policy's own sections
    "rollout": {
        "steps": "fractions",
        "min_requests": "count",
        "min_duration": "duration or 0",
        "max_duration": "duration",
        "on_inconclusive": "text",
        "guardrails": "text or table",
        "key": "text",
    },
    "alerts": {"webhooks": "texts", "jsonl": "text"},
}
_GATE_POLICY = ("primary", "value", "guardrails", "bootstrap")
_EXPECTED = {
    "bool": "true or false",
    "number": "a number",
    "duration": "a duration such as 90s, 10m, 6h, 7d",
    "duration or 0": "a duration such as 90s, 10m, 6h, 7d, or 0",
    "text": "text",
    "table": "a table",
    "fractions": "a list of fractions, increasing, ending at 1.0",
    "count": "a whole number of 1 or more",
    "texts": "a list of text",
    "text or table": "a file name or a table",
}


def _typed(section: str, key: str, value: Any, kind: str, where: str) -> Any:
    from keel.monitor.live import interval_seconds

    def bad() -> LoopPolicyError:
        return LoopPolicyError(
            f"{where}: [{section}] {key} must be {_EXPECTED[kind]}, not {value!r}"
        )

    if kind == "bool":
        if not isinstance(value, bool):
            raise bad()
        return value
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad()
        return float(value)
    if kind == "count":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise bad()
        return value
    if kind in ("duration", "duration or 0"):
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise bad()
        if kind == "duration or 0" and (value == 0 or str(value).strip() in ("0", "0s")):
            return 0.0
        try:
            return interval_seconds(value)
        except InvalidInput:
            raise bad() from None
    if kind == "text":
        if not isinstance(value, str) or not value.strip():
            raise bad()
        return value
    if kind == "table":
        if not isinstance(value, dict):
            raise bad()
        return value
    if kind == "texts":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad()
        return tuple(value)
    if kind == "text or table":
        if not isinstance(value, str | dict):
            raise bad()
        return value
    if kind == "fractions":
        ok = (
            isinstance(value, list)
            and value
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
            and all(0 < v <= 1 for v in value)
            and all(a < b for a, b in itertools.pairwise(value))
            and value[-1] == 1
        )
        if not ok:
            raise bad()
        return tuple(float(v) for v in value)
    raise AssertionError(kind)  # pragma: no cover


def _section(doc: Mapping[str, Any], name: str, where: str, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    body = doc.get(name, {})
    if not isinstance(body, dict):
        raise LoopPolicyError(f"{where}: [{name}] must be a table")
    known = _SECTIONS[name]
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key in extra:
            continue
        if key not in known:
            raise LoopPolicyError(
                f"{where}: unknown key {key!r} in [{name}]; expected one of "
                f"{', '.join([*known, *extra])}"
            )
        out[key] = _typed(name, key, value, known[key], where)
    return out


def parse_policy(
    doc: Mapping[str, Any],
    *,
    base: Path | None = None,
    source: str = "policy",
    check_pipeline: bool = True,
) -> LoopPolicy:
    """A :class:`LoopPolicy` from a parsed TOML document; files it names are read relative to
    ``base``. With ``check_pipeline`` the pipeline reference is imported now, so a typo is
    bad input before anything runs."""
    from keel.deploy.guardrails import GuardrailError, Guardrails
    from keel.evaluation.policy import PolicyError
    from keel.evaluation.policy import load_policy as load_gate

    where = source
    unknown = sorted(set(doc) - set(_SECTIONS))
    if unknown:
        raise LoopPolicyError(
            f"{where}: unknown section [{unknown[0]}]; expected {', '.join(_SECTIONS)}"
        )
    base = base or Path.cwd()
    trigger = _section(doc, "trigger", where)
    retrain = _section(doc, "retrain", where)
    gate = _section(doc, "gate", where, extra=_GATE_POLICY)
    rollout = _section(doc, "rollout", where)
    alerts = _section(doc, "alerts", where)

    if "pipeline" not in retrain:
        raise LoopPolicyError(f"{where}: [retrain] pipeline is required: pipeline = \"FILE.py:NAME\"")
    file, sep, name = str(retrain["pipeline"]).rpartition(":")
    if not sep or not file or not name:
        raise LoopPolicyError(
            f"{where}: [retrain] pipeline {retrain['pipeline']!r} must be FILE.py:NAME"
        )
    pipeline_ref = f"{(base / file).resolve()}:{name}"
    executor = retrain.get("executor", "local")
    if executor not in ("local", "dask"):
        raise LoopPolicyError(f"{where}: [retrain] executor must be local or dask, not {executor!r}")
    if "scheduler" in retrain and executor != "dask":
        raise LoopPolicyError(f"{where}: [retrain] scheduler is for executor = \"dask\"")
    registers = None
    if check_pipeline:
        from keel.pipeline.loading import load_pipeline

        try:
            pipe = load_pipeline(pipeline_ref)
            pipe.resolve_params(retrain.get("params", {}))
        except InvalidInput as exc:
            raise LoopPolicyError(f"{where}: [retrain] {exc}") from None
        registers = pipe.register

    raw = doc.get("gate", {})
    inline = {k: raw[k] for k in _GATE_POLICY if k in raw}
    if inline and "policy" in gate:
        raise LoopPolicyError(f"{where}: [gate] has policy = a file and inline policy keys: choose one")
    try:
        if "policy" in gate:
            gate_policy = load_gate(base / gate["policy"])
        else:
            gate_policy = load_gate(inline or None)
    except PolicyError as exc:
        raise LoopPolicyError(f"{where}: [gate] {exc}") from None

    on_inconclusive = rollout.get("on_inconclusive", "pause")
    if on_inconclusive not in ON_INCONCLUSIVE:
        raise LoopPolicyError(
            f"{where}: [rollout] on_inconclusive must be pause or rollback, not {on_inconclusive!r}"
        )
    min_duration = rollout.get("min_duration", 600.0)
    max_duration = rollout.get("max_duration", 7200.0)
    if max_duration < min_duration:
        raise LoopPolicyError(f"{where}: [rollout] max_duration is shorter than min_duration")
    rails_spec = rollout.get("guardrails")
    try:
        if isinstance(rails_spec, str):
            rails = Guardrails.load(base / rails_spec)
        elif isinstance(rails_spec, dict):
            rails = Guardrails.parse(rails_spec, source=f"{where} [rollout] guardrails")
        else:
            rails = Guardrails.default()
    except GuardrailError as exc:
        raise LoopPolicyError(f"{where}: [rollout] {exc}") from None

    if "webhooks" in alerts:
        from keel.monitor.alerts import check_url

        for url in alerts["webhooks"]:
            try:
                check_url(url)
            except InvalidInput as exc:
                raise LoopPolicyError(f"{where}: [alerts] {exc}") from None
    jsonl = alerts.get("jsonl")
    return LoopPolicy(
        trigger=Trigger(**trigger),
        retrain=Retrain(
            pipeline=pipeline_ref,
            params=dict(retrain.get("params", {})),
            executor=executor,
            scheduler=retrain.get("scheduler"),
            registers=registers,
        ),
        gate=Gate(data=gate.get("data", "recent"), policy=gate_policy),
        rollout=Rollout(
            steps=rollout.get("steps", Rollout.steps),
            min_requests=rollout.get("min_requests", 200),
            min_duration=min_duration,
            max_duration=max_duration,
            on_inconclusive=on_inconclusive,
            guardrails=rails,
            key=rollout.get("key"),
        ),
        alerts=Alerts(
            webhooks=alerts.get("webhooks", ()),
            jsonl=str((base / jsonl).resolve()) if jsonl else None,
        ),
        source=source,
    )


def load_policy(path: str | Path, *, check_pipeline: bool = True) -> LoopPolicy:
    """The loop policy in the TOML file at ``path``."""
    p = Path(path)
    if not p.is_file():
        raise LoopPolicyError(f"loop policy {p} does not exist")
    try:
        doc = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise LoopPolicyError(f"loop policy {p} is not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LoopPolicyError(f"loop policy {p} cannot be read: {exc}") from None
    policy = parse_policy(doc, base=p.resolve().parent, source=str(p), check_pipeline=check_pipeline)
    return replace(policy, path=str(p.resolve()))
