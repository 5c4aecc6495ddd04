"""Each package has one public door: a sorted __all__ whose names all exist."""

from __future__ import annotations

import importlib

import pytest


def _isort_style(name: str) -> tuple[int, str]:
    """Constants, then classes, then functions: the order ruff keeps (RUF022)."""
    if name.isupper() and len(name) > 1:
        return 0, name
    return (1 if name[0].isupper() else 2), name


PACKAGES = [
    "keel",
    "keel.errors",
    "keel.config",
    "keel.data",
    "keel.store.objects",
    "keel.store.db",
    "keel.testing",
    "keel.workspace",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_complete(name):
    module = importlib.import_module(name)
    exported = module.__all__
    assert exported == sorted(exported, key=_isort_style), f"{name}.__all__ is not sorted"
    for attr in exported:
        assert getattr(module, attr) is not None, f"{name}.{attr}"


def test_error_classes_carry_exit_codes():
    from keel import errors

    for name in errors.__all__:
        cls = getattr(errors, name)
        assert cls.exit_code in (1, 2)
        assert 400 <= cls.http_status < 600
