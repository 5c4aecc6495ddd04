"""The inference app: a JSON route, the Open Inference Protocol v2 routes, feedback, health, metrics.

Every request is checked against the model's signature before the model sees
it; a bad one is answered 4xx with ``{"error": …, "problems": [{"field", "row",
"message"}]}``. A model that raises answers 500 with the request id and counts
as an error for the guardrails; the server stays up. Predictions are logged
through a buffer, off the request path.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response

from keel.deploy.routing import arm_for
from keel.errors import InvalidInput, KeelError
from keel.serve.inputs import Batch, MalformedBody, TooLarge, decode_json, parse_inputs, to_frame
from keel.serve.outcomes import ExpectedOutcome, OutcomesRefused

if TYPE_CHECKING:
    from keel.registry.scoring import Scored, Scorer
    from keel.serve.config import ServeConfig
    from keel.serve.runtime import Routing, Runtime

__all__ = ["app_from_env", "create_app"]


class ModelFailed(KeelError):
    """The model raised while predicting."""

    http_status = 500


class Unscorable(InvalidInput):
    """A model without a signature raised on a request: nothing checked the inputs first, so the
    request, not the server, is the likelier fault (422, and no error for the guardrails)."""

    http_status = 422


class Unauthorized(KeelError):
    http_status = 401
    exit_code = 2


def new_request_id(now: float) -> str:
    """Milliseconds since the epoch (so ids sort by time) and 40 random bits, in hex."""
    return f"{int(now * 1000):012x}{os.urandom(5).hex()}"


_PREDICT_SCHEMA = {
    "type": "object",
    "required": ["inputs"],
    "properties": {
        "inputs": {
            "description": "A list of records (one object per row), a dict of equal-length columns, "
            "or one record; for an array model, a list of rows.",
            "oneOf": [
                {"type": "array", "items": {"type": "object"}},
                {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
                {"type": "object"},
            ],
        },
        "id": {"type": "string"},
    },
    "additionalProperties": False,
}
_FEEDBACK_SCHEMA = {
    "type": "object",
    "properties": {
        "outcomes": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["prediction_id", "outcome"],
                "properties": {
                    "prediction_id": {"type": "string"},
                    "outcome": {
                        "oneOf": [{"type": "number"}, {"type": "boolean"}, {"type": "string"}]
                    },
                },
            },
        },
        "prediction_id": {"type": "string"},
        "outcome": {"oneOf": [{"type": "number"}, {"type": "boolean"}, {"type": "string"}]},
    },
}
_INFER_SCHEMA = {
    "type": "object",
    "required": ["inputs"],
    "properties": {
        "id": {"type": "string"},
        "inputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "shape", "datatype", "data"],
                "properties": {
                    "name": {"type": "string"},
                    "shape": {"type": "array", "items": {"type": "integer"}},
                    "datatype": {"type": "string"},
                    "data": {"type": "array"},
                },
            },
        },
        "outputs": {"type": "array"},
        "parameters": {"type": "object"},
    },
}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed JSON or body shape"},
    413: {"description": "Body or batch over the limit"},
    422: {"description": "Inputs that do not match the model's signature; one problem per field"},
    500: {"description": "The model raised; the body names the request id"},
}

_V2_TYPES = {"b": "BOOL", "i": "INT64", "u": "UINT64", "f": "FP64"}


class Server:
    """The routes' shared work: read the body, route, predict, log, answer."""

    def __init__(self, runtime: Runtime, config: ServeConfig) -> None:
        import orjson

        self.runtime = runtime
        self.config = config
        self.metrics = runtime.metrics
        self.writer = runtime.writer
        self.model = config.model
        self._dumps = orjson.dumps
        self.key_refusals: deque[tuple[float, str, str]] = deque(maxlen=10_000)

    async def read(self, request: Request, route: str) -> Any:
        length = request.headers.get("content-length")
        limit = self.config.max_body_bytes
        if length is not None and length.isdecimal() and int(length) > limit:
            self.metrics.invalid.labels(self.model, route).inc()
            raise TooLarge(f"the body is {int(length)} bytes, over the limit of {limit} bytes")
        chunks = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                self.metrics.invalid.labels(self.model, route).inc()
                raise TooLarge(f"the body is over the limit of {limit} bytes")
            chunks.append(chunk)
        try:
            return decode_json(b"".join(chunks))
        except MalformedBody:
            self.metrics.invalid.labels(self.model, route).inc()
            raise

    def predict(self, doc: Any, route: str = "predict") -> tuple[dict[str, Any], Any]:
        """Answer one request: (the response document, the shadow work to do after answering)."""
        started = time.perf_counter()
        now = time.time()
        routing = self.runtime.routing
        assert routing is not None
        dep = routing.deployment
        champion = routing.champion
        key = dep.key if dep is not None and dep.mode != "shadow" else None
        looked_up = routing.features.get("champion")
        extras = routing.extras if key is None else (*routing.extras, key)
        other = routing.features.get("challenger")
        if other is not None:  # its entity keys ride along when the champion has none
            extras = (*extras, *(c.name for c in other.request.columns))
        try:
            batch = parse_inputs(
                doc,
                looked_up.request if looked_up is not None else champion.loaded.signature,
                max_rows=self.config.max_batch,
                key=key,
                extras=extras,
            )
            for assembler in routing.features.values():
                assembler.assemble(batch)
        except InvalidInput as exc:
            self.metrics.invalid.labels(self.model, route).inc()
            problems = getattr(exc, "problems", None) or []
            if key is not None and any(p.get("reason") == "missing_key" for p in problems):
                self._missing_key(routing, key, now, started)
            raise
        rid = new_request_id(now)
        ids = [f"{rid}-{i}" for i in range(batch.rows)]
        keys = (
            [None if k is None else str(k) for k in batch.columns[key]] if key is not None else None
        )
        arms: str | list[str] | None
        if dep is None or routing.challenger is None or dep.mode == "shadow":
            arms = None
        elif keys is not None:
            per_row = [arm_for(k, dep.share, dep.id) for k in keys]
            # one arm answers the whole request (the usual case)
            arms = per_row[0] if all(a == per_row[0] for a in per_row) else per_row
        else:
            arms = arm_for(None, dep.share, dep.id)
        frame = to_frame(batch, champion.loaded.signature)
        log = self.config.log_sample >= 1.0 or random.random() < self.config.log_sample  # noqa: S311
        if arms is None or arms == "champion":
            scored = self._score(routing, champion, "champion", frame, rid, now, started)
            answers, model = scored.answers, champion.ref
            self._record(
                routing, "champion", champion, batch, scored, ids, keys, rid, now, started, log
            )
        elif arms == "challenger":
            assert routing.challenger is not None
            challenger = routing.challenger
            scored = self._score(
                routing,
                challenger,
                "challenger",
                self._frame_for(routing, challenger, frame, batch),
                rid,
                now,
                started,
            )
            answers, model = scored.answers, challenger.ref
            self._record(
                routing, "challenger", challenger, batch, scored, ids, keys, rid, now, started, log
            )
        else:
            assert isinstance(arms, list)
            answers, model = self._split(
                routing, batch, frame, arms, ids, keys, rid, now, started, log
            )
        doc_out: dict[str, Any] = {"predictions": answers, "prediction_ids": ids, "model": model}
        shadow = None
        if dep is not None and dep.mode == "shadow" and routing.challenger is not None:
            shadow = (routing, batch, frame, ids, rid, now)
        return doc_out, shadow

    def _missing_key(self, routing: Routing, key: str, now: float, started: float) -> None:
        """A request without the live deployment's sticky key is the deployment's failure: an
        error of the challenger's arm (its guardrails roll it back), in the log (so
        ``keel deploy status`` and ``watch`` see it) and in /healthz (degraded)."""
        challenger, dep = routing.challenger, routing.deployment
        if challenger is None or dep is None:
            return
        elapsed = time.perf_counter() - started
        self.metrics.error(challenger.version, "challenger", 422, elapsed)
        window = routing.windows.get("challenger")
        if window is not None:
            window.record(latency_ms=elapsed * 1000, error=True, prediction=None)
        why = MissingStickyKey(
            f"refused: no {key!r} to route by (deployment {dep.id[:8]} routes by it)"
        )
        self._log_error(
            routing, challenger, "challenger", new_request_id(now), now, elapsed, why, True
        )
        self.key_refusals.append((now, key, dep.id))

    def health(self) -> tuple[str, str | None]:
        """("ok" or "degraded", why): degraded while requests lacking the sticky key are refused."""
        recent = [r for r in self.key_refusals if r[0] > time.time() - _DEGRADED_SECONDS]
        if not recent:
            return "ok", None
        _, key, did = recent[-1]
        return "degraded", (
            f"{len(recent)} request(s) in the last {_DEGRADED_SECONDS:.0f} s had no {key!r}, the "
            f"sticky key of deployment {did[:8]}, and were refused (422): clients must send it"
        )

    def _frame_for(self, routing: Routing, scorer: Scorer, frame: Any, batch: Batch) -> Any:
        """The challenger's input: the champion's frame, or its own when its signature
        differs (its own features are in the batch, looked up beside the champion's)."""
        if scorer.loaded.signature == routing.champion.loaded.signature:
            return frame
        if "challenger" in routing.features:
            return to_frame(Batch(batch.columns, batch.rows), scorer.loaded.signature)
        return scorer.loaded.prepare(frame)

    def _score(
        self,
        routing: Routing,
        scorer: Scorer,
        arm: str,
        frame: Any,
        rid: str,
        now: float,
        started: float,
    ) -> Scored:
        try:
            return scorer(frame)
        except Exception as exc:
            if scorer.loaded.signature is None:
                self.metrics.invalid.labels(self.model, "predict").inc()
                raise Unscorable(
                    f"{scorer.ref} could not score these inputs (it has no signature to check "
                    f"them against): {type(exc).__name__}: {exc} (request {rid})"[:1000]
                ) from exc
            elapsed = time.perf_counter() - started
            self.metrics.error(scorer.version, arm, 500, elapsed)
            window = routing.windows.get(arm)
            if window is not None:
                window.record(latency_ms=elapsed * 1000, error=True, prediction=None)
            self._log_error(routing, scorer, arm, rid, now, elapsed, exc, served=True)
            raise ModelFailed(
                f"{scorer.ref} failed to predict: {type(exc).__name__}: {exc} (request {rid})"
            ) from exc

    def _split(
        self,
        routing: Routing,
        batch: Batch,
        frame: Any,
        arms: list[str],
        ids: list[str],
        keys: Any,
        rid: str,
        now: float,
        started: float,
        log: bool,
    ) -> tuple[list[Any], Any]:
        """A batch whose sticky keys meet both arms: each arm predicts its rows."""
        import numpy as np

        answers: list[Any] = [None] * batch.rows
        models: list[str] = [""] * batch.rows
        mask = np.array([a == "challenger" for a in arms])
        for arm, rows in (("champion", ~mask), ("challenger", mask)):
            scorer = routing.challenger if arm == "challenger" else routing.champion
            assert scorer is not None
            index = np.flatnonzero(rows)
            sub = frame.iloc[index] if hasattr(frame, "iloc") else frame[index]
            part = Batch({k: [v[i] for i in index] for k, v in batch.columns.items()}, len(index))
            if arm == "challenger":
                sub = self._frame_for(routing, scorer, sub, part)
            scored = self._score(routing, scorer, arm, sub, rid, now, started)
            self._record(
                routing,
                arm,
                scorer,
                part,
                scored,
                [ids[i] for i in index],
                None if keys is None else [keys[i] for i in index],
                rid,
                now,
                started,
                log,
            )
            for j, i in enumerate(index):
                answers[i] = scored.answers[j]
                models[i] = scorer.ref
        return answers, models

    def _record(
        self,
        routing: Routing,
        arm: str,
        scorer: Scorer,
        batch: Batch,
        scored: Scored,
        ids: list[str],
        keys: list[str | None] | None,
        rid: str,
        now: float,
        started: float,
        log: bool,
        served: bool = True,
    ) -> None:
        elapsed = time.perf_counter() - started
        window = routing.windows.get(arm)
        values = scored.scores if scored.scores is not None else scored.numbers
        if window is not None:
            window.record_many(elapsed * 1000, scored.labels or values)
        self.metrics.observe(scorer.version, arm if served else "shadow", elapsed, values)
        if not log:
            return
        n = batch.rows
        dep = routing.deployment
        columns: dict[str, list[Any]] = {
            "ts": [now] * n,
            "request_id": [rid] * n,
            "prediction_id": ids,
            "version": [scorer.version] * n,
            "arm": [arm] * n,
            "served": [served] * n,
            "deployment": [dep.id if dep else None] * n,
            "latency_ms": [elapsed * 1000] * n,
            "error": [None] * n,
            "key": keys if keys is not None else [None] * n,
            "prediction": scored.numbers,
            "label": scored.labels if scored.labels is not None else [None] * n,
            "score": scored.scores if scored.scores is not None else [None] * n,
        }
        for name, values_ in batch.columns.items():
            columns[f"input_{name}"] = values_
        self.writer.append("predictions", self.model, columns)

    def _log_error(
        self,
        routing: Routing,
        scorer: Scorer,
        arm: str,
        rid: str,
        now: float,
        elapsed: float,
        exc: BaseException,
        served: bool,
    ) -> None:
        dep = routing.deployment
        self.writer.append(
            "predictions",
            self.model,
            {
                "ts": [now],
                "request_id": [rid],
                "prediction_id": [None],
                "version": [scorer.version],
                "arm": [arm],
                "served": [served],
                "deployment": [dep.id if dep else None],
                "latency_ms": [elapsed * 1000],
                "error": [f"{type(exc).__name__}: {exc}"[:1000]],
            },
        )

    def shadow(
        self, routing: Routing, batch: Batch, frame: Any, ids: list[str], rid: str, now: float
    ) -> None:
        """Score the challenger on the request the champion answered; log it, answer nothing."""
        challenger = routing.challenger
        assert challenger is not None
        started = time.perf_counter()
        try:
            scored = challenger(self._frame_for(routing, challenger, frame, batch))
        except Exception as exc:  # noqa: BLE001 - a failing shadow is counted, never answered
            elapsed = time.perf_counter() - started
            self.metrics.error(challenger.version, "shadow", 500, elapsed)
            routing.windows["challenger"].record(
                latency_ms=elapsed * 1000, error=True, prediction=None
            )
            self._log_error(routing, challenger, "challenger", rid, now, elapsed, exc, served=False)
            return
        self._record(
            routing,
            "challenger",
            challenger,
            batch,
            scored,
            ids,
            None,
            rid,
            now,
            started,
            True,
            served=False,
        )

    def feedback(self, doc: Any) -> dict[str, Any]:
        items = doc.get("outcomes") if isinstance(doc, dict) and "outcomes" in doc else [doc]
        if not isinstance(items, list) or not items:
            raise MalformedBody(
                'expected {"outcomes": [{"prediction_id": …, "outcome": …}, …]} or one such object'
            )
        if len(items) > self.config.max_batch:
            raise TooLarge(
                f"{len(items)} outcomes is over the limit of {self.config.max_batch} per request"
            )
        problems = []
        ids: list[str] = []
        numbers: list[float | None] = []
        labels: list[str | None] = []
        expected = self._expected_outcome()
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                problems.append(
                    {"field": None, "row": i, "message": f"outcomes[{i}]: expected an object"}
                )
                continue
            extra = set(item) - {"prediction_id", "outcome"}
            pid, value = item.get("prediction_id"), item.get("outcome", _NONE)
            if extra:
                problems.append(
                    {
                        "field": sorted(extra)[0],
                        "row": i,
                        "message": f"outcomes[{i}]: unexpected field {sorted(extra)[0]!r}",
                    }
                )
            elif not isinstance(pid, str) or not _is_prediction_id(pid):
                problems.append(
                    {
                        "field": "prediction_id",
                        "row": i,
                        "message": f"outcomes[{i}].prediction_id: expected an id this server gave out, got {pid!r}"[
                            :200
                        ],
                    }
                )
            elif value is _NONE or value is None:
                problems.append(
                    {
                        "field": "outcome",
                        "row": i,
                        "message": f"outcomes[{i}].outcome: missing (a number, a boolean or a label)",
                    }
                )
            elif (kept := expected.check(value)) is not None:
                ids.append(pid)
                numbers.append(kept if isinstance(kept, float) else None)
                labels.append(kept if isinstance(kept, str) else None)
            else:
                problems.append(
                    {
                        "field": "outcome",
                        "row": i,
                        "prediction_id": pid,
                        "message": f"outcomes[{i}].outcome of {pid}: expected {expected}, got {value!r}"[
                            :240
                        ],
                    }
                )
        if problems:
            self.metrics.outcomes_refused.labels(self.model).inc(len(items))
            raise OutcomesRefused(problems, len(items))
        now = time.time()
        n = len(ids)
        self.writer.append(
            "outcomes",
            self.model,
            {"ts": [now] * n, "prediction_id": ids, "outcome": numbers, "outcome_label": labels},
        )
        self.metrics.outcomes.labels(self.model).inc(n)
        return {"accepted": n, "refused": 0}

    def _expected_outcome(self) -> ExpectedOutcome:
        routing = self.runtime.routing
        if routing is None:
            return ExpectedOutcome(None, None)
        scorers = [routing.champion] + ([routing.challenger] if routing.challenger else [])
        return ExpectedOutcome.of([s.loaded for s in scorers])


_NONE = object()
_DEGRADED_SECONDS = 60.0


class MissingStickyKey(InvalidInput):
    """A request without the field the live deployment routes by."""

    http_status = 422


def _is_prediction_id(pid: str) -> bool:
    head, sep, index = pid.partition("-")
    if not sep or len(head) != 22 or not index.isdecimal() or len(index) > 6:
        return False
    try:
        int(head, 16)
    except ValueError:
        return False
    return True


def _v2_inputs(doc: Any, sig: Any) -> dict[str, Any]:
    """An Open Inference Protocol request as keel's ``{"inputs": …}``."""
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list) or not doc["inputs"]:
        raise MalformedBody(
            'expected {"inputs": [{"name", "shape", "datatype", "data"}, …]} (Open Inference Protocol v2)'
        )
    unknown = set(doc) - {"id", "inputs", "outputs", "parameters"}
    if unknown:
        raise MalformedBody(f"unexpected field {sorted(unknown)[0]!r} in the inference request")
    columns: dict[str, Any] = {}
    for i, t in enumerate(doc["inputs"]):
        if (
            not isinstance(t, dict)
            or not isinstance(t.get("name"), str)
            or not isinstance(t.get("data"), list)
        ):
            raise MalformedBody(
                f"inputs[{i}]: expected an object with a name (string), a shape, a datatype and data (a list)"
            )
        shape = t.get("shape")
        if not isinstance(shape, list) or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape
        ):
            raise MalformedBody(f"inputs[{i}].shape: expected a list of non-negative integers")
        data = _flatten(t["data"])
        size = math.prod(shape) if shape else 1
        if size != len(data):
            raise MalformedBody(
                f"inputs[{i}]: shape {shape} holds {size} values, but data has {len(data)}"
            )
        if sig is not None and sig.is_tensor:
            width = shape[1] if len(shape) == 2 else (sig.tensor_width or 1)
            if width == 0:
                raise MalformedBody(f"inputs[{i}].shape: expected (rows, {sig.tensor_width})")
            return {
                "inputs": [data[r * width : (r + 1) * width] for r in range(len(data) // width)]
            }
        if len(shape) == 2 and shape[1] != 1:
            raise MalformedBody(
                f"inputs[{i}] ({t['name']}): expected shape [rows] or [rows, 1] for a named column, got {shape}"
            )
        columns[t["name"]] = data
    return {"inputs": columns}


def _flatten(data: list[Any]) -> list[Any]:
    if data and isinstance(data[0], list):
        out: list[Any] = []
        for row in data:
            out.extend(_flatten(row) if isinstance(row, list) else [row])
        return out
    return data


def create_app(config: ServeConfig, workspace: Any = None) -> FastAPI:
    """The FastAPI app serving ``config.model@config.alias``; models load at startup."""
    from contextlib import asynccontextmanager

    import orjson
    from fastapi import FastAPI, Response
    from fastapi.exceptions import RequestValidationError
    from starlette.background import BackgroundTask
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from keel import __version__
    from keel.serve.metrics import ServerMetrics
    from keel.serve.runtime import Runtime
    from keel.store.logs import LogWriter
    from keel.workspace import connect

    ws = workspace if workspace is not None else connect(config.workspace)
    metrics = ServerMetrics(config.model)
    writer = LogWriter(ws.logs.root, flush_seconds=config.flush_seconds)
    runtime = Runtime(ws, config, metrics, writer)
    server = Server(runtime, config)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> Any:
        runtime.start()
        try:
            yield
        finally:
            runtime.close()

    app = FastAPI(
        title=f"keel: {config.model}@{config.alias}",
        version=__version__,
        description="Predictions, outcome feedback and health for one registered model, "
        "with the Open Inference Protocol v2 routes.",
        lifespan=lifespan,
    )
    app.state.runtime = runtime

    def answer(doc: Any, status: int = 200, background: Any = None) -> Response:
        return Response(
            orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY),
            status,
            media_type="application/json",
            background=background,
        )

    def shadow_task(shadow: Any) -> BackgroundTask | None:
        """The challenger's shadow scoring, after the response is sent. A coroutine, so it runs
        on the event loop like the champion did: handing it to a thread cost twice its work."""
        if shadow is None:
            return None

        async def score() -> None:
            server.shadow(*shadow)

        return BackgroundTask(score)

    def refuse(exc: KeelError) -> Response:
        doc: dict[str, Any] = {"error": str(exc)}
        problems = getattr(exc, "problems", None)
        if problems:
            doc["problems"] = problems
        if isinstance(exc, OutcomesRefused):
            doc.update(accepted=exc.accepted, refused=exc.refused)
        return answer(doc, exc.http_status if exc.http_status < 600 else 500)

    @app.exception_handler(KeelError)
    async def _keel_error(_request: Request, exc: KeelError) -> Response:
        return refuse(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> Response:
        problems = [
            {"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        return answer({"error": "the request does not match the route", "problems": problems}, 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> Response:
        return answer({"error": str(exc.detail)}, exc.status_code)

    @app.exception_handler(Exception)
    async def _internal(_request: Request, exc: Exception) -> Response:
        return answer({"error": f"internal error: {type(exc).__name__}: {exc}"}, 500)

    def ready_routing() -> Routing:
        routing = runtime.routing
        if routing is None:
            raise StarletteHTTPException(503, "the model is still loading")
        return routing

    @app.post(
        "/predict",
        summary="Predict for a batch of records or columns",
        openapi_extra=_body(_PREDICT_SCHEMA),
        responses=_ERROR_RESPONSES,
    )
    async def predict(request: Request) -> Response:
        ready_routing()
        doc = await server.read(request, "predict")
        out, shadow = server.predict(doc)
        return answer(out, background=shadow_task(shadow))

    @app.post(
        "/feedback",
        summary="Outcomes for earlier predictions (idempotent per prediction id; late is fine)",
        openapi_extra=_body(_FEEDBACK_SCHEMA),
        responses={401: {"description": "A token is required"}, **_ERROR_RESPONSES},
    )
    async def feedback(request: Request) -> Response:
        if config.token is not None:
            given = request.headers.get("authorization", "")
            import hmac

            if not hmac.compare_digest(given.encode(), f"Bearer {config.token}".encode()):
                raise Unauthorized("this route needs 'Authorization: Bearer <KEEL_SERVE_TOKEN>'")
        doc = await server.read(request, "feedback")
        return answer(server.feedback(doc))

    @app.get("/healthz", summary="Liveness and what is being served")
    async def healthz() -> Response:
        routing = ready_routing()
        dep = routing.deployment
        status, reason = server.health()
        return answer(
            {
                "status": status,
                "reason": reason,
                "model": routing.champion.ref,
                "alias": f"{config.model}@{config.alias}",
                "deployment": None
                if dep is None
                else {
                    "id": dep.id,
                    "mode": dep.mode,
                    "challenger": dep.challenger_ref,
                    "share": dep.share,
                },
                "log": {
                    "buffered": writer.buffered,
                    "written": writer.written,
                    "dropped": writer.dropped,
                },
                "follow_error": runtime.last_error,
                "pid": os.getpid(),
            }
        )

    @app.get("/metrics", summary="Prometheus metrics")
    async def prometheus() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    @app.get("/v2", summary="Open Inference Protocol: server metadata")
    async def v2_server() -> Response:
        return answer({"name": "keel", "version": __version__, "extensions": []})

    @app.get("/v2/health/live", summary="Open Inference Protocol: liveness")
    async def v2_live() -> Response:
        return answer({"live": True})

    @app.get("/v2/health/ready", summary="Open Inference Protocol: readiness")
    async def v2_ready() -> Response:
        ready = runtime.routing is not None
        return answer({"ready": ready}, 200 if ready else 503)

    def known(name: str) -> Routing:
        routing = ready_routing()
        if name != config.model:
            raise StarletteHTTPException(
                404, f"unknown model {name[:100]!r}: this server serves {config.model!r}"
            )
        return routing

    @app.get("/v2/models/{name}", summary="Open Inference Protocol: model metadata")
    async def v2_model(name: str) -> Response:
        routing = known(name)
        looked_up = routing.features.get("champion")
        # served by entity key: what a client sends (the features are looked up)
        sig = looked_up.request if looked_up is not None else routing.champion.loaded.signature
        if sig is None:
            inputs: list[dict[str, Any]] = []
        elif sig.is_tensor:
            inputs = [
                {
                    "name": "input-0",
                    "datatype": _V2_TYPES.get(_kind(sig.tensor_dtype), "FP64"),
                    "shape": [-1, sig.tensor_width],
                }
            ]
        else:
            inputs = [
                {"name": c.name, "datatype": _column_type(c.type), "shape": [-1]}
                for c in sig.columns
            ]
        return answer(
            {
                "name": config.model,
                "versions": [str(routing.champion.version)],
                "platform": f"keel-{routing.champion.loaded.version.flavor}",
                "inputs": inputs,
                "outputs": [{"name": "predict", "datatype": "FP64", "shape": [-1]}],
            }
        )

    @app.get("/v2/models/{name}/ready", summary="Open Inference Protocol: model readiness")
    async def v2_model_ready(name: str) -> Response:
        known(name)
        return answer({"name": name, "ready": True})

    @app.post(
        "/v2/models/{name}/infer",
        summary="Open Inference Protocol: inference",
        openapi_extra=_body(_INFER_SCHEMA),
        responses={404: {"description": "Unknown model"}, **_ERROR_RESPONSES},
    )
    async def v2_infer(name: str, request: Request) -> Response:
        routing = known(name)
        doc = await server.read(request, "infer")
        try:
            converted = _v2_inputs(doc, routing.champion.loaded.signature)
        except InvalidInput:
            metrics.invalid.labels(config.model, "infer").inc()
            raise
        out, shadow = server.predict(converted, "infer")
        preds = out["predictions"]
        kind = {type(p) for p in preds}
        datatype = (
            "BOOL"
            if kind == {bool}
            else "INT64"
            if kind == {int}
            else "FP64"
            if kind <= {int, float}
            else "BYTES"
        )
        version = out["model"] if isinstance(out["model"], str) else routing.champion.ref
        body = {
            "model_name": config.model,
            "model_version": version.rsplit("/v", 1)[-1],
            "id": doc.get("id")
            if isinstance(doc.get("id"), str)
            else out["prediction_ids"][0].rsplit("-", 1)[0],
            "outputs": [
                {
                    "name": "predict",
                    "datatype": datatype,
                    "shape": [len(preds)],
                    "data": preds if datatype != "BYTES" else [str(p) for p in preds],
                },
                {
                    "name": "prediction_id",
                    "datatype": "BYTES",
                    "shape": [len(preds)],
                    "data": out["prediction_ids"],
                },
            ],
        }
        return answer(body, background=shadow_task(shadow))

    return app


def _kind(dtype: str | None) -> str:
    import numpy as np

    return np.dtype(dtype or "float64").kind


def _column_type(kind: str) -> str:
    return {"integer": "INT64", "float": "FP64", "boolean": "BOOL"}.get(kind, "BYTES")


def app_from_env() -> FastAPI:
    """The app for one of several uvicorn workers (its settings come in ``KEEL_SERVE_CONFIG``)."""
    from keel.serve.config import ServeConfig
    from keel.serve.server import plain_strings

    plain_strings()
    return create_app(ServeConfig.from_env())
