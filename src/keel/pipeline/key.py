"""The step cache key: what a step's result depends on, each part named and hashed.

The key is the BLAKE3 digest of one canonical JSON document (sorted keys, so every
field is framed: no two different sets of parts can spell the same bytes) of:

- ``step``: the step's module and name;
- ``code``: the step function's source, and the source of each plain function or
  class of the same module it uses (found through the names its code refers to,
  recursively), each parsed and printed back without decorators, docstrings and
  comments, so a reformatted comment is the same code and an edited helper is not;
- ``params``: the values of the step's parameters, as JSON (``1``, ``1.0``, ``"1"``
  and ``true`` differ);
- ``inputs``: the digests of the objects holding the steps' outputs it takes (content,
  not run ids: an upstream step rerun that writes the same bytes still hits);
- ``env``: the Python minor version and the version of each library the step's module
  imports.

A part that cannot be read (source that is not in a file, a parameter that is not
JSON) makes the step *not cacheable*, with the reason; never a partial key.
"""

from __future__ import annotations

import ast
import functools
import inspect
import json
import sys
import textwrap
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["StepKey", "step_key"]


@dataclass
class StepKey:
    """A step's cache key and its parts (``digest`` None when it cannot be cached)."""

    digest: str | None
    parts: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None  # why it cannot be cached

    def differences(self, other: dict[str, Any]) -> list[str]:
        """Which parts differ from ``other`` (an earlier key's parts), in words."""
        out = []
        for name in ("step", "code", "params", "inputs", "env"):
            mine, theirs = self.parts.get(name), other.get(name)
            if mine == theirs:
                continue
            if isinstance(mine, dict) and isinstance(theirs, dict):
                changed = sorted(k for k in {*mine, *theirs} if mine.get(k) != theirs.get(k))
                out.append(f"{name}: {', '.join(changed)}")
            else:
                out.append(name)
        return out

    def with_inputs(self, inputs: Mapping[str, str]) -> StepKey:
        """The same key on other inputs (digests by step name): how a Dask worker completes
        a key whose inputs were not made yet when the driver computed the rest."""
        parts = {**self.parts, "inputs": dict(sorted(inputs.items()))}
        return StepKey(None if self.reason else _digest(parts), parts, self.reason)


def _digest(parts: Mapping[str, Any]) -> str:
    from keel.store.objects.digest import hash_bytes

    doc = json.dumps({"keel.step/1": parts}, sort_keys=True, separators=(",", ":"))
    return hash_bytes(doc.encode())


def _normalized(obj: Any) -> str:
    """The source of a function or class without decorators, docstrings and comments."""
    source = textwrap.dedent(inspect.getsource(obj))
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            node.decorator_list = []
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree)


def _names(code: types.CodeType) -> set[str]:
    """Global names a code object and the code nested in it refer to."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def _helpers(fn: Any) -> dict[str, Any]:
    """The plain functions and classes of ``fn``'s module that it uses, directly or through
    one another, by name."""
    module = fn.__module__
    found: dict[str, Any] = {}
    todo = [fn]
    while todo:
        current = todo.pop()
        code = getattr(current, "__code__", None)
        names = _names(code) if code is not None else set()
        if isinstance(current, type):
            for member in vars(current).values():
                if isinstance(member, types.FunctionType):
                    names |= _names(member.__code__)
        for name in sorted(names):
            value = getattr(fn, "__globals__", {}).get(name)
            value = getattr(value, "fn", value)  # a Step used as a plain function
            if (
                isinstance(value, types.FunctionType | type)
                and getattr(value, "__module__", None) == module
                and name not in found
                and value is not fn
            ):
                found[name] = value
                todo.append(value)
    return found


@functools.cache
def _code(fn: Any, name: str) -> dict[str, str]:
    """Digests of the normalized source of ``fn`` and of each helper it uses (kept per
    function: a module imported again makes new functions)."""
    from keel.store.objects.digest import hash_bytes

    code = {name: _normalized(fn)}
    for helper, obj in _helpers(fn).items():
        code[helper] = _normalized(obj)
    return {k: hash_bytes(v.encode())[:16] for k, v in sorted(code.items())}


@functools.cache
def _distributions() -> Mapping[str, list[str]]:
    from importlib import metadata

    return metadata.packages_distributions()


@functools.cache
def _libraries(module_name: str) -> dict[str, str]:
    """The installed version of each library a module imported (top-level names)."""
    from importlib import metadata

    module = sys.modules.get(module_name)
    tops: set[str] = set()
    for value in vars(module).values() if module is not None else ():
        name = (
            value.__name__
            if isinstance(value, types.ModuleType)
            else getattr(value, "__module__", None)
        )
        if isinstance(name, str) and name and not name.startswith(("__", "builtins")):
            tops.add(name.split(".")[0])
    tops.discard(module_name.split(".")[0])
    versions: dict[str, str] = {}
    packages = _distributions()
    for top in sorted(tops):
        if top in sys.stdlib_module_names:
            continue
        for dist in packages.get(top, [])[:1]:
            try:
                versions[top] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                pass
    return versions


def step_key(
    fn: Any, name: str, params: dict[str, Any], inputs: dict[str, str]
) -> StepKey:
    """The cache key of running ``fn`` (step ``name``) with ``params`` on ``inputs`` (the
    digests of the objects it takes, by step name)."""
    parts: dict[str, Any] = {
        "step": f"{fn.__module__}:{name}",
        "params": {},
        "inputs": dict(sorted(inputs.items())),
    }
    try:
        parts["code"] = _code(fn, name)
    except (OSError, TypeError, SyntaxError) as exc:
        return StepKey(None, parts, f"its source cannot be read ({type(exc).__name__}: {exc})")
    for key, value in sorted(params.items()):
        try:
            parts["params"][key] = json.loads(json.dumps(value, allow_nan=False))
        except (TypeError, ValueError):
            return StepKey(
                None, parts, f"parameter {key} ({type(value).__name__}) is not a JSON value"
            )
    parts["env"] = {
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        **_libraries(fn.__module__),
    }
    return StepKey(_digest(parts), parts)
