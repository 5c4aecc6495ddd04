"""How a server runs: what it serves, where it listens, how it logs. Passed to workers as JSON."""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import asdict, dataclass

from keel.errors import InvalidInput

__all__ = ["ENV", "ServeConfig"]

ENV = "KEEL_SERVE_CONFIG"


@dataclass(frozen=True)
class ServeConfig:
    model: str
    alias: str = "champion"
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    threads: int = 1  # BLAS/OpenMP threads per worker: many servers ran 3x slower without a limit
    workspace: str | None = None
    flush_seconds: float = 1.0  # the most a kill -9 can lose of the prediction log
    log_sample: float = 1.0  # fraction of requests whose predictions are logged
    max_batch: int = 10_000  # rows per request
    max_body_bytes: int = 32 * 1024 * 1024
    poll_seconds: float = 0.25  # how often a worker looks for alias and deployment moves
    token: str | None = None  # required for /feedback when set (always set off loopback)
    extra_fields: tuple[str, ...] = ()  # accepted beside the signature, logged, not given the model
    allow_stale_features: bool = False  # serve from an online table built from other versions

    def __post_init__(self) -> None:
        if not 0.0 < self.log_sample <= 1.0:
            raise InvalidInput(
                f"invalid log sample {self.log_sample!r}: expected a fraction in (0, 1]"
            )
        if self.flush_seconds <= 0 or self.poll_seconds <= 0:
            raise InvalidInput("flush and poll intervals must be positive numbers of seconds")
        if self.workers < 1 or self.threads < 1 or self.max_batch < 1 or self.max_body_bytes < 1:
            raise InvalidInput(
                "workers, threads, the batch limit and the body limit must be at least 1"
            )
        if not 0 <= self.port <= 65535:
            raise InvalidInput(f"invalid port {self.port}: expected 0..65535")

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServeConfig:
        raw = os.environ.get(ENV)
        if not raw:
            raise InvalidInput(f"{ENV} is not set: start the server with `keel serve MODEL`")
        doc = json.loads(raw)
        doc["extra_fields"] = tuple(doc.get("extra_fields", ()))
        return cls(**doc)
