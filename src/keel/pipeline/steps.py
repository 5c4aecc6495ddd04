"""Steps are plain functions; a pipeline is a list of them, wired by parameter names.

``@step`` only attaches metadata: the function is called as written, and a
:class:`Step` can be built by hand. A parameter named after another step of the
pipeline receives that step's output (an *input*); any other parameter is a
*parameter* of the pipeline, set by its default or by ``params={"lr": 0.05}``
(``--param lr=0.05``, parsed by its type hint). One parameter name means one value
in the whole pipeline: ``seed`` given once reaches every step that takes ``seed``.

>>> @step
... def load(n: int = 3):
...     return list(range(n))
>>> @step
... def total(load):
...     return sum(load)
>>> p = pipeline("demo", [load, total])
>>> [s.name for s in p.order], p.defaults()
(['load', 'total'], {'n': 3})
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from keel.errors import InvalidInput

__all__ = ["Pipeline", "Step", "parse_param", "pipeline", "step"]

_EMPTY = inspect.Parameter.empty


@dataclass(frozen=True)
class Step:
    """A function and what keel needs to know of it: its name, and whether its result may be
    reused (``cache=False`` for work that must run every time: reading a live source,
    sampling without a seed)."""

    fn: Callable[..., Any]
    name: str
    cache: bool = True

    @functools.cached_property
    def arguments(self) -> list[inspect.Parameter]:
        return list(inspect.signature(self.fn).parameters.values())

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)  # still the plain function


def step(fn: Callable[..., Any] | None = None, *, name: str | None = None, cache: bool = True) -> Any:
    """Mark ``fn`` as a pipeline step: ``@step`` or ``@step(cache=False, name="fit")``."""

    def wrap(f: Callable[..., Any]) -> Step:
        if not callable(f):
            raise InvalidInput(f"@step needs a function, not {type(f).__name__}")
        for p in inspect.signature(f).parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
                raise InvalidInput(
                    f"step {f.__name__}: *args, **kwargs and positional-only parameters cannot "
                    "be wired by name"
                )
        return Step(fn=f, name=name or f.__name__, cache=cache)

    return wrap(fn) if fn is not None else wrap


@dataclass(frozen=True)
class Pipeline:
    """Steps in an order that runs each after the steps it takes (checked when made)."""

    name: str
    steps: tuple[Step, ...]
    register: str | None = None  # the model name the final model is registered under
    target: str | None = None  # the training data's target column, for the registry
    order: tuple[Step, ...] = field(default=(), repr=False)

    def run(
        self,
        params: Mapping[str, Any] | None = None,
        *,
        executor: str = "local",
        scheduler: str | None = None,
        workspace: Any = None,
        explain: bool = False,
        tags: Mapping[str, str] | None = None,
    ) -> Any:
        """Run the pipeline (:func:`keel.pipeline.execute.run_pipeline`): ``executor`` is
        ``"local"`` or ``"dask"`` (on the scheduler at ``scheduler``, e.g.
        ``"tcp://10.0.0.5:8786"``, else a local cluster). Returns the
        :class:`~keel.pipeline.execute.PipelineRun`."""
        from keel.pipeline.execute import run_pipeline

        return run_pipeline(
            self,
            params=params,
            workspace=workspace,
            explain=explain,
            executor=executor,
            scheduler=scheduler,
            tags=tags,
        )

    def inputs(self, s: Step) -> list[str]:
        """The steps ``s`` takes, by name."""
        names = {x.name for x in self.steps}
        return [p.name for p in s.arguments if p.name in names]

    def parameters(self) -> dict[str, inspect.Parameter]:
        """Every parameter of every step that is not an input, by name (first one wins)."""
        names = {x.name for x in self.steps}
        out: dict[str, inspect.Parameter] = {}
        for s in self.steps:
            for p in s.arguments:
                if p.name not in names:
                    out.setdefault(p.name, p)
        return out

    def defaults(self) -> dict[str, Any]:
        return {n: p.default for n, p in self.parameters().items() if p.default is not _EMPTY}

    def resolve_params(self, given: Mapping[str, Any] | None) -> dict[str, Any]:
        """The value of every parameter: ``given`` (text parsed by the type hint), else the
        default. An unknown name, a value of the wrong type or a missing one is bad input."""
        known = self.parameters()
        values = self.defaults()
        for key, value in (given or {}).items():
            if key not in known:
                raise InvalidInput(
                    f"unknown parameter {key!r} for pipeline {self.name}; its parameters: "
                    f"{', '.join(sorted(known)) or 'none'}"
                )
            values[key] = parse_param(key, value, _hint(known[key], self))
        missing = [n for n in known if n not in values]
        if missing:
            raise InvalidInput(
                f"pipeline {self.name} needs a value for {', '.join(missing)} (no default): "
                f"--param {missing[0]}=..."
            )
        return values


def _hint(p: inspect.Parameter, pipe: Pipeline) -> Any:
    for s in pipe.steps:
        if p in s.arguments:
            try:
                hints = typing.get_type_hints(s.fn)
            except Exception:  # noqa: BLE001 - a hint that does not resolve parses nothing
                return None
            return hints.get(p.name)
    return None


def parse_param(name: str, value: Any, hint: Any) -> Any:
    """``value`` as the type ``hint`` names (text from ``--param`` is parsed; a value already
    of the type is kept); InvalidInput when it is not one."""
    if hint is None or hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
    elif hint is int or hint is float:
        # an int is a float too, not the other way round; a bool is neither
        kinds = (int,) if hint is int else (int, float)
        if isinstance(value, kinds) and not isinstance(value, bool):
            return hint(value)
        if isinstance(value, str):
            try:
                return hint(value)
            except ValueError:
                pass
    elif hint is str:
        if isinstance(value, str):
            return value
    else:
        return value  # a hint keel does not parse: the value as given
    shown = getattr(hint, "__name__", str(hint))
    raise InvalidInput(f"invalid --param {name}={value!r}: expected {shown}")


def pipeline(
    name: str,
    steps: Iterable[Step | Callable[..., Any]],
    *,
    register: str | None = None,
    target: str | None = None,
) -> Pipeline:
    """A pipeline of ``steps`` (plain functions are taken as steps), checked: unique step
    names, every parameter an input or a pipeline parameter, no cycle."""
    from graphlib import CycleError, TopologicalSorter

    from keel.names import check_name

    check_name(name, "pipeline name")
    made = tuple(s if isinstance(s, Step) else step(s) for s in steps)
    if not made:
        raise InvalidInput(f"pipeline {name} has no steps")
    seen: set[str] = set()
    for s in made:
        if s.name in seen:
            raise InvalidInput(f"pipeline {name} has two steps named {s.name!r}")
        seen.add(s.name)
    draft = Pipeline(name=name, steps=made, register=register, target=target)
    graph = {s.name: set(draft.inputs(s)) for s in made}
    for s in made:
        if s.name in graph[s.name]:
            raise InvalidInput(f"step {s.name} takes its own output")
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        raise InvalidInput(f"pipeline {name} has a cycle: {cycle}") from None
    # A stable order: by depth (each step after what it takes), then as listed.
    listed = {s.name: i for i, s in enumerate(made)}
    order = sorted(made, key=lambda s: (_depth(s.name, graph), listed[s.name]))
    return Pipeline(name=name, steps=made, register=register, target=target, order=tuple(order))


def _depth(name: str, graph: dict[str, set[str]]) -> int:
    """How many steps stand between ``name`` and a step that takes no input."""
    inputs = graph[name]
    return 0 if not inputs else 1 + max(_depth(n, graph) for n in inputs)
