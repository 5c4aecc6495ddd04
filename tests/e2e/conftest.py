"""Fixtures of the serving end-to-end tests: one trained workspace, and private copies of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.serve_helpers import copy_workspace, template


@pytest.fixture(scope="module")
def tpl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained workspace (churn v1..v3, churn@champion = v1), made once per process."""
    return template(tmp_path_factory)


@pytest.fixture
def root(tpl: Path, tmp_path: Path) -> Path:
    """A private copy of the trained workspace, for a test that changes it."""
    return copy_workspace(tpl, tmp_path / "ws")
