"""The loop's policy file: defaults, every key checked, one clear error for each mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.loop.policy import LoopPolicyError, load_policy, parse_policy

PIPELINE = '''
from keel.pipeline import pipeline, step


@step
def load(rows: int = 10):
    return list(range(rows))


@step
def fit(load, lr: float = 0.1):
    return {"lr": lr, "n": len(load)}


retrain = pipeline("retrain", [load, fit])
'''


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    return tmp_path


def _write(folder: Path, text: str) -> Path:
    path = folder / "loop.toml"
    path.write_text(text)
    return path


def test_defaults_fill_every_key_but_the_pipeline(folder: Path) -> None:
    policy = load_policy(_write(folder, '[retrain]\npipeline = "pipeline.py:retrain"\n'))
    assert policy.trigger.drift is True and policy.trigger.min_value is None
    assert policy.trigger.window == 86_400 and policy.trigger.cooldown == 6 * 3600
    assert policy.retrain.pipeline == f"{folder.resolve() / 'pipeline.py'}:retrain"
    assert policy.retrain.executor == "local" and policy.gate.data == "recent"
    assert policy.rollout.steps == (0.05, 0.25, 0.5, 1.0)
    assert policy.rollout.min_requests == 200 and policy.rollout.on_inconclusive == "pause"
    assert policy.rollout.guardrails.max_error_rate == 0.05  # issue 6's default guardrails
    assert policy.to_dict()["rollout"]["steps"] == [0.05, 0.25, 0.5, 1.0]


def test_the_issues_example_parses(folder: Path) -> None:
    (folder / "guard.toml").write_text("max_error_rate = 0.02\nmin_requests = 20\n")
    (folder / "gate.toml").write_text('[primary]\nmetric = "auc"\nconfidence = 0.9\n')
    policy = load_policy(
        _write(
            folder,
            """
[trigger]
drift = true
min_value = 0.8
every = "7d"
new_data = "churn"
window = "1d"
cooldown = "6h"

[retrain]
pipeline = "pipeline.py:retrain"
params = { lr = 0.05 }

[gate]
policy = "gate.toml"
data = "recent"

[rollout]
steps = [0.05, 0.25, 0.5, 1.0]
min_requests = 200
min_duration = "10m"
max_duration = "2h"
on_inconclusive = "rollback"
guardrails = "guard.toml"
key = "customer_id"

[alerts]
webhooks = ["https://hooks.example.com/keel"]
jsonl = "alerts.jsonl"
""",
        )
    )
    assert policy.trigger.every == 7 * 86_400 and policy.trigger.new_data == "churn"
    assert policy.retrain.params == {"lr": 0.05}
    assert policy.gate.policy.metric == "auc" and policy.gate.policy.confidence == 0.9
    assert policy.rollout.min_duration == 600 and policy.rollout.max_duration == 7200
    assert policy.rollout.guardrails.max_error_rate == 0.02 and policy.rollout.key == "customer_id"
    assert policy.alerts.jsonl == str(folder.resolve() / "alerts.jsonl")


def test_an_inline_gate_policy_and_inline_guardrails(folder: Path) -> None:
    policy = load_policy(
        _write(
            folder,
            '[retrain]\npipeline = "pipeline.py:retrain"\n'
            '[gate]\n[gate.primary]\nmetric = "value"\n[gate.value]\ntp = 10.0\nfp = -1.0\n'
            "fn = -5.0\ntn = 0.0\n"
            "[rollout.guardrails]\nmax_p99_latency_ms = 80\n",
        )
    )
    assert policy.gate.policy.metric == "value" and policy.gate.policy.value is not None
    assert policy.rollout.guardrails.max_p99_latency_ms == 80


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[retrain]\npipeline = 'pipeline.py:retrain'\n[trigers]\n", "unknown section [trigers]"),
        ("[retrain]\npipeline = 'pipeline.py:retrain'\n[trigger]\ndirft = true\n",
         "unknown key 'dirft' in [trigger]"),
        ("[retrain]\npipeline = 'pipeline.py:retrain'\n[trigger]\ndrift = 'yes'\n",
         "[trigger] drift must be true or false, not 'yes'"),
        ("[retrain]\npipeline = 'pipeline.py:retrain'\n[trigger]\ncooldown = 'soon'\n",
         "[trigger] cooldown must be a duration such as 90s"),
        ("[retrain]\npipeline = 'pipeline.py:retrain'\n[trigger]\nmin_value = 'high'\n",
         "[trigger] min_value must be a number"),
        ("[retrain]\npipeline = 'pipeline.py:retrain'\n[rollout]\nsteps = [0.5, 0.25, 1.0]\n",
         "[rollout] steps must be a list of fractions, increasing, ending at 1.0"),
        ("[retrain]\npipeline = 'pipeline.py:retrain'\n[rollout]\nsteps = [0.05, 0.5]\n",
         "ending at 1.0"),
        ("[retrain]\npipeline = 'pipeline.py:retrain'\n[rollout]\nmin_requests = 0\n",
         "[rollout] min_requests must be a whole number of 1 or more"),
        ("[retrain]\npipeline = 'pipeline.py:retrain'\n[rollout]\non_inconclusive = 'promote'\n",
         "on_inconclusive must be pause or rollback"),
        ("[retrain]\npipeline = 'pipeline.py:retrain'\n[rollout]\nmin_duration = '2h'\n"
         "max_duration = '1h'\n", "max_duration is shorter than min_duration"),
        ("[retrain]\npipeline = 'pipeline.py:retrain'\n[rollout]\nguardrails = 'nope.toml'\n",
         "guardrail file"),
        ("[retrain]\npipeline = 'pipeline.py:retrain'\n[gate]\npolicy = 'nope.toml'\n",
         "policy file"),
        ("[retrain]\npipeline = 'pipeline.py:retrain'\n[alerts]\nwebhooks = ['ftp://x']\n",
         "invalid alert URL 'ftp://x'"),
        ("[trigger]\ndrift = true\n", "[retrain] pipeline is required"),
        ("[retrain]\npipeline = 'pipeline.py'\n", "must be FILE.py:NAME"),
        ("[retrain]\npipeline = 'missing.py:retrain'\n", "pipeline file"),
        ("[retrain]\npipeline = 'pipeline.py:nothing'\n", "has no pipeline named 'nothing'"),
        ("[retrain]\npipeline = 'pipeline.py:retrain'\nparams = { lr = 'fast' }\n",
         "invalid --param lr='fast': expected float"),
        ("[retrain]\npipeline = 'pipeline.py:retrain'\nparams = { depth = 3 }\n",
         "unknown parameter 'depth'"),
        ("[retrain]\npipeline = 'pipeline.py:retrain'\nexecutor = 'spark'\n",
         "executor must be local or dask"),
        ("[retrain]\npipeline = 'pipeline.py:retrain'\n[gate]\npolicy = 'g.toml'\n"
         "[gate.primary]\nmetric = 'auc'\n", "choose one"),
        ("[retrain\n", "is not valid TOML"),
    ],
)
def test_each_mistake_is_one_clear_error(folder: Path, text: str, message: str) -> None:
    with pytest.raises(LoopPolicyError) as caught:
        load_policy(_write(folder, text))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert caught.value.exit_code == 2


def test_a_missing_policy_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(LoopPolicyError, match=r"loop policy .*nope\.toml does not exist"):
        load_policy(tmp_path / "nope.toml")


def test_parse_without_importing_the_pipeline() -> None:
    policy = parse_policy({"retrain": {"pipeline": "x.py:y"}}, base=Path("/tmp"), check_pipeline=False)
    assert policy.retrain.pipeline.endswith("x.py:y")
