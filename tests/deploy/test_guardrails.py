"""Guardrail files are strict, and each guardrail breaks when it should and only then."""

from __future__ import annotations

import numpy as np
import pytest

from keel.deploy import ArmWindow, Guardrails, check
from keel.deploy.guardrails import GuardrailError


def test_load_a_file_with_a_table_or_top_level_keys(tmp_path):
    p = tmp_path / "guard.toml"
    p.write_text(
        "[guardrails]\nmax_error_rate = 0.01\nmax_p99_latency_ms = 50\nmin_requests = 20\n"
    )
    g = Guardrails.load(p)
    assert (g.max_error_rate, g.max_p99_latency_ms, g.min_requests) == (0.01, 50.0, 20)
    p.write_text("max_prediction_drift = 0.2\nmin_outcome_delta = -0.05\n")
    assert Guardrails.load(p).min_outcome_delta == -0.05


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("max_errors = 0.1", "unknown guardrail 'max_errors'; expected one of max_error_rate"),
        ("max_error_rate = 'low'", "max_error_rate must be a finite number, not 'low'"),
        ("max_error_rate = 1.5", "between 0.0 and 1.0"),
        ("max_error_rate = true", "must be a finite number"),
        ("min_requests = 2.5", "whole number"),
        ("max_p99_latency_ms = nan", "finite number"),
        ("max_error_rate = ", "not valid TOML"),
    ],
)
def test_bad_files_name_the_problem(tmp_path, text, needle):
    p = tmp_path / "guard.toml"
    p.write_text(text + "\n")
    with pytest.raises(GuardrailError, match=None) as info:
        Guardrails.load(p)
    assert needle in str(info.value)
    assert info.value.exit_code == 2


def test_missing_file():
    with pytest.raises(GuardrailError, match="does not exist"):
        Guardrails.load("/nonexistent/guard.toml")


def _window(
    n: int, errors: int = 0, latency: float = 1.0, predictions: list | None = None
) -> ArmWindow:
    w = ArmWindow()
    preds = predictions or [0.5] * n
    for i in range(n):
        if i < errors:
            w.record(latency_ms=latency, error=True, prediction=None)
        else:
            w.record_many(latency, [preds[i % len(preds)]])
    return w


def test_nothing_is_judged_before_min_requests():
    g = Guardrails.parse({"max_error_rate": 0.0, "min_requests": 50})
    assert check(g, _window(100), _window(49, errors=49)) == []
    assert [b.guardrail for b in check(g, _window(100), _window(50, errors=1))] == [
        "max_error_rate"
    ]


def test_latency_drift_and_outcome_guardrails():
    g = Guardrails.parse(
        {
            "max_p99_latency_ms": 10,
            "max_prediction_drift": 0.3,
            "min_outcome_delta": -0.01,
            "min_requests": 10,
        }
    )
    rng = np.random.default_rng(0)
    same = list(rng.uniform(0, 1, 200))
    calm = check(
        g,
        _window(200, predictions=same),
        _window(200, latency=5.0, predictions=list(rng.uniform(0, 1, 200))),
        (-0.02, 0.03),
    )
    assert calm == []
    slow = check(g, _window(200, predictions=same), _window(200, latency=50.0, predictions=same))
    assert [b.guardrail for b in slow] == ["max_p99_latency_ms"]
    shifted = check(
        g,
        _window(200, predictions=same),
        _window(200, predictions=list(rng.uniform(0.5, 1.5, 200))),
    )
    assert [b.guardrail for b in shifted] == ["max_prediction_drift"]
    worse = check(g, _window(200, predictions=same), _window(200, predictions=same), (-0.08, -0.02))
    assert [b.guardrail for b in worse] == ["min_outcome_delta"]
    assert "-0.08" in worse[0].message


def test_label_drift_uses_total_variation():
    g = Guardrails.parse({"max_prediction_drift": 0.2, "min_requests": 10})
    champion = _window(100, predictions=["stay"] * 9 + ["leave"])
    challenger = _window(100, predictions=["stay", "leave"])
    breach = check(g, champion, challenger)
    assert breach and breach[0].observed == pytest.approx(0.4)
