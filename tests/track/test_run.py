"""The Python tracking API: what a run records, read back with ``keel.get_run``.

Issue 3: params, metrics (with history), tags, inputs, artifacts, status,
code and environment capture, module-level twins, and the bad input a run
refuses (non-finite values are kept, not refused).
"""

from __future__ import annotations

import math
import random
import subprocess
import sys
from pathlib import Path

import pytest

import keel
from keel.errors import BadName, InvalidInput, NotFound
from keel.track import KEY_RULE
from keel.workspace import Workspace
from tests.conftest import write_files
from tests.track.helpers import git, make_repo, wait_for

NAN, INF = float("nan"), float("inf")


def start(ws: Workspace, **kw: object) -> keel.Run:
    return keel.start_run(workspace=ws, capture_code=False, **kw)  # type: ignore[arg-type]


def same_floats(a: list[float], b: list[float]) -> bool:
    """Equal element by element, NaN equal to NaN, nothing rounded."""
    return len(a) == len(b) and all(
        (math.isnan(x) and math.isnan(y)) or x == y for x, y in zip(a, b, strict=True)
    )


# -- round trip ------------------------------------------------------------------


def test_params_metrics_tags_round_trip(ws: Workspace) -> None:
    with start(ws, name="gbm", params={"lr": 0.1, "depth": 6}, tags={"team": "risk"}) as run:
        run.log_param("loss", "logloss")
        run.log_params({"subsample": 0.8, "features": ["a", "b"], "flag": True, "none": None})
        run.log_metric("auc", 0.91)
        run.log_metrics({"logloss": 0.31, "acc": 0.87})
        run.set_tag("stage", "dev")
        run.set_tags({"team": "fraud", "owner": "ana"})  # a tag may change
    rec = keel.get_run(run.id, workspace=ws)
    assert rec.id == run.id and rec.name == "gbm" and rec.status == "finished"
    assert rec.params == {
        "lr": 0.1,
        "depth": 6,
        "loss": "logloss",
        "subsample": 0.8,
        "features": ["a", "b"],
        "flag": True,
        "none": None,
    }
    assert type(rec.params["depth"]) is int
    assert rec.tags == {"team": "fraud", "stage": "dev", "owner": "ana"}
    assert {k: m["last"] for k, m in rec.metrics.items()} == {
        "auc": 0.91,
        "logloss": 0.31,
        "acc": 0.87,
    }
    assert rec.ended_at is not None and rec.ended_at >= rec.created_at
    assert rec.error is None
    # by name and by id prefix too
    assert keel.get_run("gbm", workspace=ws).id == run.id
    assert keel.get_run(run.id[:10], workspace=ws).id == run.id


def test_unknown_run_is_not_found(ws: Workspace) -> None:
    with pytest.raises(NotFound, match="no run 'nope'"):
        keel.get_run("nope", workspace=ws)


def test_use_returns_the_version_and_records_the_input(ws: Workspace, tmp_path: Path) -> None:
    src = write_files(tmp_path / "src", {"train.csv": "x,y\n1,0\n2,1\n3,0\n"})
    v1 = keel.data.add(src / "train.csv", name="churn", workspace=ws)
    (src / "train.csv").write_text("x,y\n1,0\n2,1\n3,0\n4,1\n")
    v2 = keel.data.add(src / "train.csv", name="churn", workspace=ws)
    with start(ws) as run:
        got = run.use("churn@v1")
        assert isinstance(got, keel.DatasetVersion)
        assert (got.ref, got.digest) == ("churn@v1", v1.digest)
        assert list(got.to_pandas()["x"]) == [1, 2, 3]
        assert run.use(v2).ref == "churn@v2"  # a DatasetVersion works as well as a ref
        run.use("churn@v1")  # twice: still one edge
    rec = keel.get_run(run.id, workspace=ws)
    assert rec.inputs == [
        {"ref": "churn@v1", "digest": v1.digest},
        {"ref": "churn@v2", "digest": v2.digest},
    ]


def test_use_of_a_removed_version_is_refused(ws: Workspace, tmp_path: Path) -> None:
    src = write_files(tmp_path / "src", {"a.csv": "x\n1\n"})
    keel.data.add(src / "a.csv", name="gone", workspace=ws)
    keel.data.remove("gone@v1", workspace=ws)
    with start(ws) as run, pytest.raises(InvalidInput, match="removed"):
        run.use("gone@v1")
    assert keel.get_run(run.id, workspace=ws).inputs == []


def test_artifacts_file_and_folder(ws: Workspace, tmp_path: Path) -> None:
    files = {
        "roc.png": b"\x89PNG fake image bytes",
        "model/weights.bin": bytes(range(256)) * 10,
        "model/config.json": '{"depth": 6}',
        "model/sub/notes.txt": "hello",
    }
    write_files(tmp_path / "out", files)
    with start(ws) as run:
        assert run.log_artifact(tmp_path / "out" / "roc.png") == "roc.png"
        assert run.log_artifact(tmp_path / "out" / "model") == "model"
        run.log_artifact(tmp_path / "out" / "roc.png", name="plots/roc-copy.png")
    rec = keel.get_run(run.id, workspace=ws)
    by_path = {a["path"]: a for a in rec.artifacts}
    expected = {
        "roc.png": files["roc.png"],
        "plots/roc-copy.png": files["roc.png"],
        "model/weights.bin": files["model/weights.bin"],
        "model/config.json": files["model/config.json"],
        "model/sub/notes.txt": files["model/sub/notes.txt"],
    }
    assert set(by_path) == set(expected)
    for path, content in expected.items():
        data = content.encode() if isinstance(content, str) else content
        assert by_path[path]["size"] == len(data)
        assert ws.objects.get(by_path[path]["oid"]) == data, path
    assert by_path["roc.png"]["oid"] == by_path["plots/roc-copy.png"]["oid"]


# -- metrics -----------------------------------------------------------------------


def test_default_step_counts_per_key(ws: Workspace) -> None:
    with start(ws) as run:
        for i in range(3):
            run.log_metric("loss", 1.0 / (i + 1))
            run.log_metric("acc", i / 10)
        run.log_metric("loss", 0.1)
    rec = keel.get_run(run.id, workspace=ws)
    assert rec.history("loss").steps == [0, 1, 2, 3]
    assert rec.history("acc").steps == [0, 1, 2]
    assert rec.history("loss").values == [1.0, 0.5, 1.0 / 3, 0.1]
    assert rec.metrics["loss"]["step"] == 3 and rec.metrics["loss"]["count"] == 4


def test_explicit_steps_and_default_continues_after_them(ws: Workspace) -> None:
    with start(ws) as run:
        run.log_metric("m", 1.0, step=10)
        run.log_metric("m", 2.0, step=20)
        run.log_metric("m", 3.0)  # one more than the last step
        run.log_metrics({"a": 1.0, "b": 2.0}, step=5)
    rec = keel.get_run(run.id, workspace=ws)
    assert rec.history("m").steps == [10, 20, 21]
    assert rec.history("a").steps == [5] and rec.history("b").steps == [5]
    assert rec.metrics["m"]["last"] == 3.0 and rec.metrics["m"]["step"] == 21


def test_history_is_in_step_order_when_logged_out_of_order(ws: Workspace) -> None:
    order = list(range(50))
    random.Random(7).shuffle(order)
    with start(ws) as run:
        for n, step in enumerate(order):
            run.log_metric("m", float(step) * 2, step=step)
            if n % 17 == 0:
                run.flush()  # out of order across chunks too
    rec = keel.get_run(run.id, workspace=ws)
    hist = rec.history("m")
    assert hist.steps == list(range(50))
    assert hist.values == [float(s) * 2 for s in range(50)]
    # the latest value is the one at the highest step, not the last one logged
    assert rec.metrics["m"]["last"] == 98.0 and rec.metrics["m"]["step"] == 49
    assert rec.metrics["m"]["min"] == 0.0 and rec.metrics["m"]["max"] == 98.0


def test_100k_points_round_trip_exactly(ws: Workspace) -> None:
    rng = random.Random(1)
    values = [rng.uniform(-1e6, 1e6) for _ in range(100_000)]
    small = [rng.random() * 1e-300 for _ in range(1_000)]
    with start(ws) as run:
        for v in values:
            run.log_metric("loss", v)
        for i, v in enumerate(small):
            run.log_metric("tiny", v, step=i * 3)
    rec = keel.get_run(run.id, workspace=ws)
    hist = rec.history("loss")
    assert len(hist) == 100_000
    assert hist.steps == list(range(100_000))
    assert hist.values == values  # bit-exact, no float32 or text rounding
    assert all(a <= b for a, b in zip(hist.timestamps, hist.timestamps[1:], strict=False))
    assert rec.metrics["loss"]["count"] == 100_000
    assert rec.metrics["loss"]["last"] == values[-1]
    assert rec.metrics["loss"]["min"] == min(values)
    assert rec.metrics["loss"]["max"] == max(values)
    tiny = rec.history("tiny")
    assert tiny.values == small and tiny.steps == [i * 3 for i in range(1_000)]


def test_non_finite_values_are_kept(ws: Workspace) -> None:
    with start(ws) as run:
        for v in (3.0, NAN, 1.0, NAN):
            run.log_metric("nan_last", v)
        run.flush()
        run.log_metric("only_nan", NAN)
        run.flush()
        for v in (1.0, INF, -INF, 2.0):
            run.log_metric("infs", v)
        run.log_metric("pos_inf", 1.0)
        run.flush()  # the second point comes in another flush
        run.log_metric("pos_inf", INF)
        run.log_metric("neg_inf", -INF)
        run.log_metric("nan_then_num", NAN)
        run.flush()
        run.log_metric("nan_then_num", 5.0)
        run.log_metric("np_nan", __import__("numpy").float32("nan"))
    rec = keel.get_run(run.id, workspace=ws)
    assert same_floats(rec.history("nan_last").values, [3.0, NAN, 1.0, NAN])
    m = rec.metrics["nan_last"]
    assert math.isnan(m["last"]) and m["min"] == 1.0 and m["max"] == 3.0
    m = rec.metrics["only_nan"]
    assert math.isnan(m["last"]) and m["min"] is None and m["max"] is None
    assert same_floats(rec.history("only_nan").values, [NAN])
    assert rec.history("infs").values == [1.0, INF, -INF, 2.0]
    m = rec.metrics["infs"]
    assert m["last"] == 2.0 and m["min"] == -INF and m["max"] == INF
    assert rec.metrics["pos_inf"]["last"] == INF and rec.metrics["pos_inf"]["max"] == INF
    assert rec.metrics["neg_inf"]["last"] == -INF and rec.metrics["neg_inf"]["min"] == -INF
    m = rec.metrics["nan_then_num"]
    assert m["last"] == 5.0 and m["min"] == 5.0 and m["max"] == 5.0
    assert math.isnan(rec.metrics["np_nan"]["last"])


@pytest.mark.parametrize("bad", ["abc", None, object(), [1.0], {"a": 1}, b"\xff"])
def test_non_numeric_metric_value_is_refused(ws: Workspace, bad: object) -> None:
    with start(ws) as run:
        with pytest.raises(InvalidInput, match="'m' must be a number"):
            run.log_metric("m", bad)  # type: ignore[arg-type]
        run.log_metric("ok", 1.0)
    rec = keel.get_run(run.id, workspace=ws)
    assert "m" not in rec.metrics and rec.metrics["ok"]["last"] == 1.0


def test_refused_metric_value_does_not_use_up_a_step(ws: Workspace) -> None:
    with start(ws) as run:
        run.log_metric("m", 1.0)
        with pytest.raises(InvalidInput):
            run.log_metric("m", "oops")  # type: ignore[arg-type]
        run.log_metric("m", 2.0)
    assert keel.get_run(run.id, workspace=ws).history("m").steps == [0, 1]


# -- params: set once ---------------------------------------------------------------


def test_param_logged_twice_with_another_value_is_refused(ws: Workspace) -> None:
    with start(ws, params={"lr": 0.1}) as run:
        run.log_param("lr", 0.1)  # the same value is fine
        run.log_params({"lr": 0.1, "depth": 6})
        with pytest.raises(InvalidInput, match=r"param 'lr' is already 0\.1"):
            run.log_param("lr", 0.2)
        with pytest.raises(InvalidInput, match="'depth'"):
            run.log_params({"depth": 7})
        with pytest.raises(InvalidInput, match="'depth'"):
            run.log_params({"new": 1, "depth": "6"})  # "6" is not 6
        run.log_params({"depth": 6, "seed": 3})
    rec = keel.get_run(run.id, workspace=ws)
    # a refused log_params changes nothing, not even its other keys
    assert rec.params == {"lr": 0.1, "depth": 6, "seed": 3}


def test_param_change_is_refused_across_processes_view(ws: Workspace) -> None:
    """The check is against the store, not only this object's memory."""
    with start(ws) as run:
        run.log_param("k", "a")
        run._params.clear()  # as if another handle on the same run
        with pytest.raises(InvalidInput, match="already"):
            run.log_param("k", "b")
        run.log_param("k", "a")
    assert keel.get_run(run.id, workspace=ws).params == {"k": "a"}


# -- key names --------------------------------------------------------------------

BAD_KEYS = ["a*b", "loss!", "é", "tab\there", "new\nline", "", "x" * 251, "a;drop", "q?"]
GOOD_KEYS = ["val/loss", "val loss", "x" * 250, "A-Z_0.9", "a.b/c-d_e f"]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_are_refused_with_the_rule(ws: Workspace, key: str) -> None:
    with start(ws) as run:
        for what, call in (
            ("metric key", lambda: run.log_metric(key, 1.0)),
            ("metric key", lambda: run.log_metrics({key: 1.0})),
            ("param key", lambda: run.log_param(key, 1)),
            ("param key", lambda: run.log_params({"fine": 1, key: 1})),
            ("tag key", lambda: run.set_tag(key, "v")),
            ("tag key", lambda: run.set_tags({key: "v"})),
        ):
            with pytest.raises(BadName) as info:
                call()
            assert KEY_RULE in str(info.value)
            assert what in str(info.value)
    rec = keel.get_run(run.id, workspace=ws)
    assert rec.metrics == {} and rec.params == {} and rec.tags == {}


def test_bad_key_at_start_is_refused(ws: Workspace) -> None:
    with pytest.raises(BadName, match="param key"):
        start(ws, params={"a*b": 1})
    assert keel.active_run() is None
    with pytest.raises(BadName, match="tag key"):
        start(ws, tags={"a*b": 1})


@pytest.mark.parametrize("key", GOOD_KEYS)
def test_good_keys_are_accepted(ws: Workspace, key: str) -> None:
    with start(ws) as run:
        run.log_metric(key, 1.5)
        run.log_param(key, "p")
        run.set_tag(key, "t")
    rec = keel.get_run(run.id, workspace=ws)
    assert rec.metrics[key]["last"] == 1.5
    assert rec.params == {key: "p"} and rec.tags == {key: "t"}
    assert rec.history(key).values == [1.5]


# -- how a run ends -------------------------------------------------------------------


def test_exception_in_with_marks_failed_with_traceback(ws: Workspace) -> None:
    with pytest.raises(ValueError, match="boom"), start(ws) as run:
        run.log_metric("m", 1.0)
        raise ValueError("boom")
    rec = keel.get_run(run.id, workspace=ws)
    assert rec.status == "failed"
    assert rec.error is not None
    assert "Traceback" in rec.error and "ValueError: boom" in rec.error
    assert rec.metrics["m"]["last"] == 1.0  # flushed on the way out
    assert keel.active_run() is None


def test_keyboard_interrupt_in_with_marks_killed(ws: Workspace) -> None:
    with pytest.raises(KeyboardInterrupt), start(ws) as run:
        run.log_metric("m", 2.0)
        raise KeyboardInterrupt
    rec = keel.get_run(run.id, workspace=ws)
    assert rec.status == "killed"
    assert rec.error is not None and "KeyboardInterrupt" in rec.error
    assert rec.metrics["m"]["last"] == 2.0


def test_end_explicitly_and_bad_status(ws: Workspace) -> None:
    run = start(ws)
    with pytest.raises(InvalidInput, match="finished, failed, killed"):
        run.end("crashed")
    assert keel.active_run() is run
    run.end("failed", error="diverged")
    run.end("finished")  # already over: a no-op
    rec = keel.get_run(run.id, workspace=ws)
    assert (rec.status, rec.error) == ("failed", "diverged")
    assert keel.active_run() is None


# -- module-level twins -----------------------------------------------------------------


def test_module_level_twins_use_the_active_run(ws: Workspace, tmp_path: Path) -> None:
    art = write_files(tmp_path, {"a.txt": "artifact"}) / "a.txt"
    with start(ws, name="outer") as outer:
        assert keel.active_run() is outer
        keel.log_metric("x", 1.0)
        keel.log_metric("x", 2.0)
        keel.log_metrics({"y": 3.0}, step=7)
        keel.log_param("p", 1)
        keel.log_params({"q": "two"})
        keel.set_tag("t", "a")
        keel.set_tags({"u": "b"})
        assert keel.log_artifact(str(art)) == "a.txt"
        with start(ws, name="inner") as inner:
            assert keel.active_run() is inner
            keel.log_metric("x", 9.0)
        assert keel.active_run() is outer
    rec = keel.get_run(outer.id, workspace=ws)
    assert rec.history("x").values == [1.0, 2.0]
    assert rec.history("y").steps == [7]
    assert rec.params == {"p": 1, "q": "two"}
    assert rec.tags == {"t": "a", "u": "b"}
    assert [a["path"] for a in rec.artifacts] == ["a.txt"]
    assert keel.get_run(inner.id, workspace=ws).history("x").values == [9.0]


def test_end_run_twin(ws: Workspace) -> None:
    run = start(ws)
    keel.log_metric("m", 1.0)
    keel.end_run()
    assert keel.active_run() is None
    rec = keel.get_run(run.id, workspace=ws)
    assert rec.status == "finished" and rec.metrics["m"]["last"] == 1.0


@pytest.mark.parametrize(
    "call",
    [
        lambda: keel.log_metric("m", 1.0),
        lambda: keel.log_metrics({"m": 1.0}),
        lambda: keel.log_param("p", 1),
        lambda: keel.log_params({"p": 1}),
        lambda: keel.set_tag("t", "v"),
        lambda: keel.set_tags({"t": "v"}),
        lambda: keel.log_artifact("whatever.txt"),
        lambda: keel.end_run(),
    ],
)
def test_module_level_twins_without_an_active_run(call: object) -> None:
    assert keel.active_run() is None
    with pytest.raises(NotFound, match=r"no active run.*keel\.start_run"):
        call()  # type: ignore[operator]


# -- code and environment capture -------------------------------------------------------


def test_start_run_records_git_state_and_environment(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keel.store.objects import Tree

    repo = tmp_path / "repo"
    commit = make_repo(
        repo, {"train.py": "print('v1')\n", "src/lib.py": "X = 1\n", ".gitignore": "*.log\n"}
    )
    (repo / "train.py").write_text("print('v2: uncommitted')\n")
    write_files(repo, {"helper.py": "Y = 2\n", "notes/todo.txt": "later\n", "ignored.log": "no"})
    (repo / "src").joinpath("sub").mkdir()
    monkeypatch.chdir(repo / "src")
    with keel.start_run(workspace=ws, seeds={"numpy": 42, "torch": 7}) as run:
        pass
    rec = keel.get_run(run.id, workspace=ws)
    code = rec.code
    assert code["commit"] == commit
    assert code["branch"] == "main"
    assert code["dirty"] is True
    assert Path(code["repo_root"]).resolve() == repo.resolve()
    assert code["cwd"] == "src"
    patch = rec.patch()
    assert patch is not None
    assert b"-print('v1')" in patch and b"+print('v2: uncommitted')" in patch
    assert b"helper.py" not in patch  # untracked files are kept apart
    tree = Tree.decode(ws.objects.get(code["untracked_oid"]))
    untracked = {e.path: ws.objects.get(e.oid) for e in tree}
    assert untracked == {"helper.py": b"Y = 2\n", "notes/todo.txt": b"later\n"}
    assert rec.seeds == {"numpy": 42, "torch": 7}
    assert rec.command["argv"] == sys.argv
    env = wait_for(lambda: keel.get_run(run.id, workspace=ws).environment)
    assert env["python"] == sys.version.split()[0]
    assert isinstance(env["packages"], dict)
    assert env["packages"]["keel-mlops"] == keel.__version__
    assert "scikit-learn" in env["packages"]
    assert env["cpu_count"] >= 1


def test_clean_tree_is_not_dirty(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    commit = make_repo(repo, {"train.py": "pass\n"}, branch="exp")
    git(repo, "remote", "add", "origin", "https://example.invalid/team/repo.git")
    monkeypatch.chdir(repo)
    with keel.start_run(workspace=ws) as run:
        pass
    code = keel.get_run(run.id, workspace=ws).code
    assert code["commit"] == commit and code["branch"] == "exp"
    assert code["remote"] == "https://example.invalid/team/repo.git"
    assert code["dirty"] is False
    assert code["patch_oid"] is None and code["untracked_oid"] is None
    assert keel.get_run(run.id, workspace=ws).patch() is None


def test_workspace_inside_the_repository_is_not_captured_as_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    make_repo(repo, {"train.py": "pass\n"})
    workspace = keel.init(repo)
    monkeypatch.chdir(repo)
    try:
        with keel.start_run(workspace=workspace) as run:
            pass
        code = keel.get_run(run.id, workspace=workspace).code
        assert code["untracked_oid"] is None
        assert code["dirty"] is False
    finally:
        workspace.close()


def test_capture_code_false_outside_git(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    monkeypatch.chdir(plain)
    with keel.start_run(workspace=ws, capture_code=False) as run:
        run.log_metric("m", 1.0)
    rec = keel.get_run(run.id, workspace=ws)
    assert rec.status == "finished"
    assert rec.code["commit"] is None and rec.code["dirty"] is False
    assert Path(rec.code["cwd"]).resolve() == plain.resolve()
    # capture on, but not in a repository: fine as well, just no commit
    with keel.start_run(workspace=ws) as run2:
        pass
    assert keel.get_run(run2.id, workspace=ws).code["commit"] is None


def test_bad_seed_and_name(ws: Workspace) -> None:
    with pytest.raises(InvalidInput, match="seed 'np' must be an integer"):
        start(ws, seeds={"np": "forty"})
    with pytest.raises(BadName, match="seed name"):
        start(ws, seeds={"a*b": 1})
    with pytest.raises(InvalidInput, match="at most 250"):
        start(ws, name="n" * 251)
    assert keel.active_run() is None


SHORT_SCRIPT = """
import sys, time
import keel
from keel.track import capture

real = capture.capture_environment
def slow():  # a large environment: thousands of distributions take a while to read
    time.sleep(0.5)
    return real()
capture.capture_environment = slow
with keel.start_run(workspace=keel.connect(sys.argv[1]), capture_code=False) as run:
    pass
print(run.id)
"""


def test_short_run_still_records_its_environment(ws: Workspace, tmp_path: Path) -> None:
    script = tmp_path / "short.py"
    script.write_text(SHORT_SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), str(ws.root)], capture_output=True, text=True, check=True
    )
    rec = keel.get_run(proc.stdout.strip(), workspace=ws)
    assert rec.status == "finished"
    assert rec.environment is not None


def test_the_environment_is_read_again_after_an_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keel.track.capture import capture_environment

    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    before = capture_environment()["packages"]
    assert "keel-probe-pkg" not in before
    assert capture_environment()["packages"] == before  # kept, not read again
    dist = site / "keel_probe_pkg-1.2.3.dist-info"
    dist.mkdir()  # what pip install leaves: the folder on the path changes
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: keel-probe-pkg\nVersion: 1.2.3\n")
    assert capture_environment()["packages"]["keel-probe-pkg"] == "1.2.3"


# -- PostgreSQL ---------------------------------------------------------------------------


@pytest.mark.postgres
def test_round_trip_on_postgres(pg_ws: Workspace, tmp_path: Path) -> None:
    src = write_files(tmp_path / "src", {"d.csv": "x\n1\n2\n"})
    v1 = keel.data.add(src / "d.csv", name="ds", workspace=pg_ws)
    art = write_files(tmp_path, {"model.txt": "weights"}) / "model.txt"
    with keel.start_run(
        name="pg", params={"lr": 0.1, "depth": 6}, tags={"team": "risk"}, workspace=pg_ws
    ) as run:
        assert run.use("ds@v1").digest == v1.digest
        for i, v in enumerate([3.0, NAN, 1.0, INF]):
            run.log_metric("loss", v, step=3 - i)
        for i in range(5_000):
            run.log_metric("big", i * 0.5)
        run.log_artifact(art)
        with pytest.raises(InvalidInput):
            run.log_param("lr", 0.2)
    rec = keel.get_run(run.id, workspace=pg_ws)
    assert rec.status == "finished"
    assert rec.params == {"lr": 0.1, "depth": 6} and rec.tags == {"team": "risk"}
    assert rec.inputs == [{"ref": "ds@v1", "digest": v1.digest}]
    assert [a["path"] for a in rec.artifacts] == ["model.txt"]
    hist = rec.history("loss")
    assert hist.steps == [0, 1, 2, 3]
    assert same_floats(hist.values, [INF, 1.0, NAN, 3.0])
    m = rec.metrics["loss"]
    assert m["last"] == 3.0 and m["min"] == 1.0 and m["max"] == INF
    assert rec.history("big").values == [i * 0.5 for i in range(5_000)]
    page = keel.search_runs("metrics.loss = 3 and params.depth = 6", workspace=pg_ws)
    assert [r.id for r in page.runs] == [run.id]
    with pytest.raises(InvalidInput, match="failed"), start(pg_ws) as bad:
        raise InvalidInput("failed on purpose")
    assert keel.get_run(bad.id, workspace=pg_ws).status == "failed"


def test_volatile_metrics_are_recorded_and_named_in_a_tag(ws: Workspace) -> None:
    with keel.start_run(workspace=ws, capture_code=False) as run:
        run.log_metric("epoch_s", 1.5, volatile=True)
        run.log_metric("epoch_s", 1.7, volatile=True)
        run.log_metrics({"wall": 3.0, "load_s": 0.2}, volatile=True)
        run.log_metric("loss", 0.1)
    rec = keel.get_run(run.id, workspace=ws)
    assert rec.tags["keel.volatile"] == "epoch_s,load_s,wall"
    assert rec.metrics["epoch_s"]["last"] == 1.7 and rec.metrics["epoch_s"]["count"] == 2
    assert rec.metrics["loss"]["last"] == 0.1
    with keel.start_run(workspace=ws, capture_code=False) as plain:
        plain.log_metric("loss", 0.1)
    assert "keel.volatile" not in keel.get_run(plain.id, workspace=ws).tags
    with keel.start_run(workspace=ws, capture_code=False) as bad, pytest.raises(BadName):
        bad.log_metric("no good!", 1.0, volatile=True)
