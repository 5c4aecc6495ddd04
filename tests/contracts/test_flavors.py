"""One conformance suite for every model flavor (STYLE.md: one contract, one suite).

Each flavor gets a small model described by a :class:`Case`; every case goes
through the same checks: round trip through ``keel.load_model`` gives the same
predictions, the version records flavor, format and frameworks, the signature
is enforced, the digest is verified before anything is deserialized, and a
missing framework is one clear error with the install command.
"""

from __future__ import annotations

import builtins
import json
import os
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import update

import keel
from keel.errors import CorruptObject
from keel.registry import FrameworkVersionWarning, MissingFramework, SignatureError
from keel.registry.flavors import get_flavor
from keel.registry.versions import ModelVersion
from keel.store.db import model_versions
from keel.store.objects import Tree
from keel.workspace import Workspace

# -- the models -----------------------------------------------------------------------------


class Affine(keel.PythonModel):
    """A keel.PythonModel: a fixed linear score over two named columns."""

    def __init__(self, wa: float, wb: float) -> None:
        self.wa, self.wb = wa, wb

    def predict(self, inputs: Any) -> Any:
        frame = pd.DataFrame(inputs)
        return (self.wa * frame["a"] + self.wb * frame["b"]).to_numpy()


RNG = np.random.default_rng(7)
NUM = pd.DataFrame({"a": RNG.normal(size=60), "b": RNG.normal(size=60)})
LABEL = (NUM["a"] + 0.5 * NUM["b"] > 0).astype(int).to_numpy()
MIXED = NUM.assign(plan=np.where(RNG.random(60) > 0.5, "pro", "basic"))
ARRAY3 = RNG.normal(size=(60, 3))
LABEL3 = (ARRAY3[:, 0] - ARRAY3[:, 2] > 0).astype(int)


@dataclass
class Case:
    id: str
    flavor: str
    format: str
    #: top-level modules to hide when simulating "not installed"
    hide: tuple[str, ...]
    #: what the MissingFramework message must say when they are hidden
    missing: str
    #: distributions whose versions the version must record
    frameworks: tuple[str, ...]
    build: Callable[[], Any]
    example: Any
    inputs: Any
    #: predictions of the original model, straight from its framework
    native: Callable[[Any, Any], Any]
    #: (bad input, text the SignatureError must contain, field it must name or None)
    bad: list[tuple[Any, str, str | None]] = field(default_factory=list)


def _sk_predict(model: Any, x: Any) -> Any:
    return model.predict(x)


def _logreg() -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit(NUM, LABEL)


def _pipeline() -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), ["a", "b"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
        ]
    )
    return Pipeline([("prep", prep), ("clf", LogisticRegression())]).fit(MIXED, LABEL)


def _hgb() -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(NUM, LABEL)


def _logreg_unskoppable() -> Any:
    """A stock estimator holding something skops refuses (a compiled regex): pickle it is."""
    model = _logreg()
    model.token_pattern_ = re.compile(r"\d+")
    return model


def _lgbm() -> Any:
    import lightgbm

    data = lightgbm.Dataset(NUM, label=LABEL)
    params = {"objective": "binary", "verbose": -1, "num_threads": 1, "min_data_in_leaf": 5}
    return lightgbm.train(params, data, num_boost_round=5)


def _lgbm_native(model: Any, x: Any) -> Any:
    return model.predict(x)


def _xgb() -> Any:
    import xgboost

    data = xgboost.DMatrix(ARRAY3, label=LABEL3)
    params = {"objective": "binary:logistic", "max_depth": 2, "nthread": 1}
    return xgboost.train(params, data, num_boost_round=5)


def _xgb_native(model: Any, x: Any) -> Any:
    import xgboost

    return model.predict(xgboost.DMatrix(x))


def _onnx() -> Any:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression().fit(ARRAY3.astype(np.float32), LABEL3)
    return to_onnx(clf, ARRAY3[:1].astype(np.float32), target_opset=17)


def _onnx_native(model: Any, x: Any) -> Any:
    import onnxruntime

    session = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return session.run(None, {session.get_inputs()[0].name: np.asarray(x, np.float32)})[0]


def _python() -> Any:
    return Affine(2.0, -0.5)


COLUMN_BAD: list[tuple[Any, str, str | None]] = [
    (NUM[["a"]], "'b'", "b"),  # a missing column
    (NUM.assign(a="high"), "'a'", "a"),  # a string where a float belongs
]
TENSOR_BAD: list[tuple[Any, str, str | None]] = [
    (ARRAY3[:, :2], "(rows, 3)", None),  # wrong width
    (ARRAY3[:, :, None], "(rows, 3)", None),  # wrong number of dimensions
    (np.full((2, 3), "x"), "expected numbers", None),  # wrong type
]

SKLEARN_FW = ("scikit-learn", "skops", "numpy")
CASES = [
    Case(
        "sklearn-logreg", "sklearn", "skops", ("sklearn", "skops"), "pip install skops", SKLEARN_FW,
        _logreg, NUM[:5], NUM, _sk_predict, COLUMN_BAD,
    ),
    Case(
        "sklearn-pipeline", "sklearn", "skops", ("sklearn", "skops"), "pip install skops", SKLEARN_FW,
        _pipeline, MIXED[:5], MIXED, _sk_predict,
        [
            (MIXED.drop(columns="plan"), "'plan'", "plan"),
            (MIXED.assign(plan=3), "'plan'", "plan"),  # a number where a string belongs
        ],
    ),
    Case(
        "sklearn-hgb", "sklearn", "skops", ("sklearn", "skops"), "pip install skops", SKLEARN_FW,
        _hgb, NUM[:5], NUM, _sk_predict, COLUMN_BAD,
    ),
    Case(
        "sklearn-pickle", "sklearn", "pickle", ("sklearn", "skops"), "pip install scikit-learn",
        ("scikit-learn", "numpy"), _logreg_unskoppable, NUM[:5], NUM, _sk_predict, COLUMN_BAD,
    ),
    Case(
        "lightgbm", "lightgbm", "lightgbm-text", ("lightgbm",), "pip install lightgbm", ("lightgbm",),
        _lgbm, NUM[:5], NUM, _lgbm_native, COLUMN_BAD,
    ),
    Case(
        "xgboost", "xgboost", "xgboost-ubj", ("xgboost",), "pip install xgboost", ("xgboost",),
        _xgb, ARRAY3[:5], ARRAY3, _xgb_native, TENSOR_BAD,
    ),
    Case(
        "onnx", "onnx", "onnx", ("onnxruntime",), "pip install onnxruntime", ("onnxruntime",),
        _onnx, ARRAY3[:5].astype(np.float32), ARRAY3.astype(np.float32), _onnx_native,
        TENSOR_BAD,
    ),
    Case(
        "python", "python", "pickle", (__name__,), __name__, (),
        _python, NUM[:5].to_dict("records"), NUM, lambda m, x: m.predict(x), COLUMN_BAD,
    ),
]  # fmt: skip

_BUILT: dict[str, Any] = {}


@pytest.fixture(scope="module", params=CASES, ids=[c.id for c in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    return request.param


@pytest.fixture(scope="module")
def model(case: Case) -> Any:
    if case.id not in _BUILT:
        _BUILT[case.id] = case.build()
    return _BUILT[case.id]


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory, case: Case) -> Iterator[Workspace]:
    """One workspace per case; tests that alter it put it back as they found it."""
    workspace = keel.init(tmp_path_factory.mktemp(case.id))
    yield workspace
    workspace.close()


@pytest.fixture(scope="module")
def logged(ws: Workspace, case: Case, model: Any) -> ModelVersion:
    with keel.start_run(workspace=ws, capture_code=False) as run:
        return run.log_model(model, "m", input_example=case.example)


# -- helpers --------------------------------------------------------------------------------


def _installed(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _file_oids(ws: Workspace, mv: ModelVersion) -> dict[str, str]:
    return {e.path: e.oid for e in Tree.decode(ws.objects.get(mv.oid))}


def _overwrite(ws: Workspace, oid: str, data: bytes) -> None:
    path = ws.objects.path(oid)  # type: ignore[attr-defined]
    os.chmod(path, 0o644)
    path.write_bytes(data)
    os.chmod(path, 0o444)


@pytest.fixture
def load_calls(monkeypatch: pytest.MonkeyPatch, case: Case) -> list[int]:
    """Counts deserializations: calls of the flavor's ``load``, and of the registry's load
    cache (which unpickles what a slow format rebuilt, instead of calling ``load``)."""
    from keel.registry.flavors import contract

    flavor = get_flavor(case.flavor)
    calls: list[int] = []
    real = flavor.load
    real_unpickle = contract.unpickle

    def spy(saved: Any) -> Any:
        calls.append(1)
        return real(saved)

    def spy_unpickle(data: bytes) -> Any:
        calls.append(1)
        return real_unpickle(data)

    monkeypatch.setattr(flavor, "load", spy)
    monkeypatch.setattr(contract, "unpickle", spy_unpickle)  # the flavors bound their own
    return calls


@pytest.fixture
def hidden(monkeypatch: pytest.MonkeyPatch, case: Case) -> Iterator[None]:
    """Make ``import`` of the case's framework fail, as if it were not installed."""
    real = builtins.__import__

    def fake(name: str, *args: Any, **kwargs: Any) -> Any:
        if any(name == h or name.startswith(f"{h}.") for h in case.hide):
            raise ImportError(f"No module named {name!r}")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)
    yield


def _same(expected: Any, got: Any) -> None:
    expected, got = np.asarray(expected), np.asarray(got)
    assert expected.shape == got.shape
    if expected.dtype.kind in "fc":
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    else:
        np.testing.assert_array_equal(got, expected)


# -- the checks -----------------------------------------------------------------------------


def test_round_trip_gives_identical_predictions(
    ws: Workspace, case: Case, model: Any, logged: ModelVersion
) -> None:
    expected = case.native(model, case.inputs)
    loaded = keel.load_model("m/v1", workspace=ws)
    assert loaded.ref == "m/v1"
    _same(expected, loaded.predict(case.inputs))
    if case.flavor != "onnx":  # float32 all the way through: compare exactly too
        assert np.array_equal(np.asarray(expected), np.asarray(loaded.predict(case.inputs)))
    # the same through records and a dict of columns, for tabular models
    if isinstance(case.inputs, pd.DataFrame):
        _same(expected, loaded.predict(case.inputs.to_dict("records")))
        _same(expected, loaded.predict(case.inputs.to_dict("list")))


def test_version_records_flavor_format_and_frameworks(
    ws: Workspace, case: Case, logged: ModelVersion
) -> None:
    again = keel.load_model("m", workspace=ws).version
    for mv in (logged, again):
        assert (mv.flavor, mv.format) == (case.flavor, case.format)
        for dist in case.frameworks:
            # Recorded under the distribution that installed the module (xgboost or xgboost-cpu).
            recorded = {k: v for k, v in mv.frameworks.items() if k.startswith(dist)}
            assert len(recorded) == 1, (dist, mv.frameworks)
            ((name, version),) = recorded.items()
            assert version == _installed(name), (dist, mv.frameworks)
        assert mv.signature is not None
    if case.flavor == "onnx":
        assert int(again.frameworks["onnx-opset"]) >= 1


def test_signature_is_enforced(ws: Workspace, case: Case, logged: ModelVersion) -> None:
    loaded = keel.load_model("m@latest", workspace=ws)
    for bad, needle, column in case.bad:
        with pytest.raises(SignatureError) as info:
            loaded.predict(bad)
        assert needle in str(info.value), (needle, str(info.value))
        if column is not None:
            assert column in [p["field"] for p in info.value.problems]
        assert info.value.exit_code == 2 and info.value.http_status == 422


def test_altered_model_bytes_are_refused_before_deserializing(
    ws: Workspace, logged: ModelVersion, load_calls: list[int]
) -> None:
    files = _file_oids(ws, logged)
    assert files, "a model version has at least one file"
    for name, oid in files.items():
        original = ws.objects.path(oid).read_bytes()  # type: ignore[attr-defined]
        flipped = bytearray(original)
        flipped[len(flipped) // 2] ^= 0x01
        _overwrite(ws, oid, bytes(flipped))
        try:
            with pytest.raises(CorruptObject) as info:
                keel.load_model("m/v1", workspace=ws)
        finally:
            _overwrite(ws, oid, original)
        assert info.value.oid == oid, name
        assert oid in str(info.value)
        assert load_calls == []
    keel.load_model("m/v1", workspace=ws)  # restored: loads again
    assert load_calls == [1]


def test_altered_tree_is_refused(
    ws: Workspace, logged: ModelVersion, load_calls: list[int]
) -> None:
    path = ws.objects.path(logged.oid)  # type: ignore[attr-defined]
    original = path.read_bytes()
    data = bytearray(original)
    data[len(data) // 2] ^= 0x01
    _overwrite(ws, logged.oid, bytes(data))
    try:
        with pytest.raises(CorruptObject, match=logged.oid):
            keel.load_model("m/v1", workspace=ws)
    finally:
        _overwrite(ws, logged.oid, original)
    assert load_calls == []


def test_missing_framework_names_the_install_command(
    ws: Workspace,
    case: Case,
    logged: ModelVersion,
    request: pytest.FixtureRequest,
) -> None:
    request.getfixturevalue("hidden")
    with pytest.raises(MissingFramework) as info:
        keel.load_model("m/v1", workspace=ws)
    assert case.missing in str(info.value)
    assert info.value.exit_code == 2


def test_framework_version_drift_warns(
    ws: Workspace, case: Case, logged: ModelVersion, request: pytest.FixtureRequest
) -> None:
    if not case.frameworks:
        pytest.skip("a PythonModel records no framework")
    # The recorded distribution is whichever installed the module (xgboost or xgboost-cpu).
    dist = next(
        (d for d in logged.frameworks if d.startswith(case.frameworks[0])), case.frameworks[0]
    )
    assert _installed(dist) is not None
    recorded = {**logged.frameworks, dist: "0.0.1"}

    def set_frameworks(value: dict[str, str]) -> None:
        def txn(conn: Any) -> None:
            conn.execute(
                update(model_versions)
                .where(model_versions.c.oid == logged.oid)
                .values(frameworks=json.dumps(value, sort_keys=True))
            )

        ws.db.write(txn)

    set_frameworks(recorded)
    try:
        with pytest.warns(FrameworkVersionWarning, match=rf"{re.escape(dist)} 0\.0\.1"):
            loaded = keel.load_model("m/v1", workspace=ws)
    finally:
        set_frameworks(logged.frameworks)
    _same(case.native(_BUILT[case.id], case.inputs), loaded.predict(case.inputs))


def test_matching_versions_load_without_warning(ws: Workspace, logged: ModelVersion) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        keel.load_model("m/v1", workspace=ws)
