"""The same model, trained the same way in two processes, is saved as the same bytes: one
object in the store, and a reproduction that is ``identical`` rather than merely close."""

from __future__ import annotations

import subprocess
import sys

SAVE = """\
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from keel.registry.flavors.sklearn import SklearnFlavor
from keel.store.objects import hash_bytes

X = np.arange(60).reshape(30, 2) / 7.0
y = np.arange(30) % 2
model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
saved = SklearnFlavor().save(model, X[:3])
again = SklearnFlavor().load(saved)
assert (again.predict(X) == model.predict(X)).all()
print(saved.format, hash_bytes(saved.files["model.skops"]))
"""


def _save_in_a_new_process() -> str:
    proc = subprocess.run(
        [sys.executable, "-c", SAVE], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_skops_bytes_do_not_depend_on_the_process_or_the_time() -> None:
    first = _save_in_a_new_process()
    second = _save_in_a_new_process()
    assert first.startswith("skops ")
    assert first == second
