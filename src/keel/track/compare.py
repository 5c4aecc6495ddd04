"""``keel runs compare``: what differs between runs in params, data, code, environment, metrics."""

from __future__ import annotations

from typing import Any

from keel.track.records import RunRecord

__all__ = ["compare_runs"]


def _differs(values: list[Any]) -> bool:
    first = values[0]
    return any(v != first for v in values[1:])


def compare_runs(records: list[RunRecord]) -> dict[str, Any]:
    """Side by side: every param, metric (last value), input, code and environment field, and
    for each whether the runs differ."""
    ids = [r.id for r in records]

    def rows(getter: Any, keys: list[str]) -> list[dict[str, Any]]:
        out = []
        for key in keys:
            values = [getter(r, key) for r in records]
            out.append({"key": key, "values": values, "differs": _differs(values)})
        return out

    param_keys = sorted({k for r in records for k in r.params})
    metric_keys = sorted({k for r in records for k in r.metrics})
    code_keys = ["commit", "branch", "dirty", "patch_oid", "untracked_oid", "cwd"]
    envs = [r.environment or {} for r in records]
    packages = sorted({p for e in envs for p in e.get("packages", {})})
    env_rows = [
        {
            "key": "python",
            "values": [e.get("python") for e in envs],
            "differs": _differs([e.get("python") for e in envs]),
        }
    ]
    for p in packages:
        values = [e.get("packages", {}).get(p) for e in envs]
        if _differs(values):
            env_rows.append({"key": p, "values": values, "differs": True})
    return {
        "runs": ids,
        "names": [r.name for r in records],
        "params": rows(lambda r, k: r.params.get(k), param_keys),
        "metrics": rows(lambda r, k: r.metrics.get(k, {}).get("last"), metric_keys),
        "inputs": rows(lambda r, _k: sorted(i["ref"] for i in r.inputs), ["data"]),
        "code": rows(lambda r, k: r.code.get(k), code_keys),
        "command": rows(lambda r, _k: r.command.get("argv"), ["argv"]),
        "environment": env_rows,
        "status": rows(lambda r, _k: r.status, ["status"]),
    }
