"""Run the app under uvicorn: one worker in this process, or several (each follows the store)."""

from __future__ import annotations

import os
import tempfile

from keel.errors import InvalidInput
from keel.serve.config import ENV, ServeConfig

__all__ = ["check_exposure", "limit_threads", "serve"]

_THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def limit_threads(threads: int) -> None:
    """Cap BLAS/OpenMP threads per worker before numpy loads (unless the user set them).

    A tree model opens one parallel region per tree; with every core's worth of
    threads per worker, servers ran about three times slower under load.
    """
    for var in _THREAD_VARS:
        os.environ.setdefault(var, str(threads))


def check_exposure(config: ServeConfig) -> None:
    """Refuse to bind beyond loopback without a token (before anything is printed or loaded)."""
    if not config.loopback and not config.token:
        raise InvalidInput(
            f"binding {config.host} exposes the server beyond this machine: set KEEL_SERVE_TOKEN "
            "(it guards /feedback and every route that changes state), or bind 127.0.0.1"
        )


def serve(config: ServeConfig) -> None:
    """Serve until SIGINT/SIGTERM; a clean stop writes every buffered log row."""
    check_exposure(config)
    limit_threads(config.threads)
    import uvicorn

    common = dict(
        host=config.host,
        port=config.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=30,
    )
    if config.workers == 1:
        from keel.serve.app import create_app

        app = create_app(config)
        uvicorn.Server(uvicorn.Config(app, **common)).run()  # type: ignore[arg-type]
        return
    os.environ[ENV] = config.to_env()
    with tempfile.TemporaryDirectory(prefix="keel-metrics-") as folder:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
        uvicorn.run("keel.serve.app:app_from_env", factory=True, workers=config.workers, **common)  # type: ignore[arg-type]
