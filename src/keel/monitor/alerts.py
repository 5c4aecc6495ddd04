"""Drift alerts: a JSON POST to each webhook the user configured, and/or a JSONL file.

A delivery has a timeout (5 s) and is tried up to three times with exponential
backoff (0.5 s, then 1 s); a connection error, a timeout, a 429 or a 5xx is
retried, any other answer is final. Deliveries run on their own threads so a
slow or dead webhook never holds up the next check; a delivery that fails is
written to the alert file as a ``delivery_failed`` line and reported through
``on_delivery``. Redirects are not followed: an alert goes only to the URLs
given.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keel.errors import InvalidInput
from keel.store.jsondoc import plain

__all__ = ["Alerter", "Delivery", "check_url", "post_json"]


@dataclass
class Delivery:
    """How sending one alert to one URL went."""

    url: str
    ok: bool
    attempts: int
    status: int | None = None
    error: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "ok": self.ok,
            "attempts": self.attempts,
            "status": self.status,
            "error": self.error,
            "seconds": round(self.seconds, 3),
        }


def check_url(url: str) -> str:
    """``url`` if it is an http(s) URL with a host; InvalidInput otherwise."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(
            f"invalid alert URL {url!r}: expected http://HOST/... or https://HOST/..."
        )
    return url


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the redirect answer itself is returned: an alert goes nowhere else


_OPENER = urllib.request.build_opener(_NoRedirect)


def post_json(
    url: str,
    doc: Any,
    *,
    timeout: float = 5.0,
    tries: int = 3,
    backoff: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> Delivery:
    """POST ``doc`` as JSON to ``url``; retry transient failures with exponential backoff."""
    body = json.dumps(doc, default=plain).encode()
    started = time.perf_counter()
    result = Delivery(url=url, ok=False, attempts=0)
    for attempt in range(1, tries + 1):
        result.attempts = attempt
        request = urllib.request.Request(  # noqa: S310 - check_url allows only http(s)
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "keel-monitor"},
        )
        retry = True
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                response.read()
                result.status, result.ok, result.error = int(response.status), True, None
        except urllib.error.HTTPError as exc:
            result.status, result.error = exc.code, f"HTTP {exc.code} {exc.reason}"
            exc.close()
            retry = exc.code == 429 or exc.code >= 500
        except (OSError, ValueError) as exc:  # refused, unreachable, timed out, bad answer
            reason = getattr(exc, "reason", None) or exc
            result.error = f"{type(reason).__name__}: {reason}".strip()
        if result.ok and result.status is not None and 300 <= result.status < 400:
            result.ok, result.error, retry = (
                False,
                f"HTTP {result.status}: redirect not followed",
                False,
            )
        if result.ok or not retry or attempt == tries:
            break
        sleep(backoff * 2 ** (attempt - 1))
    result.seconds = time.perf_counter() - started
    return result


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


class Alerter:
    """Sends each alert to every configured URL (on background threads) and appends it to
    ``file``; failed deliveries become ``delivery_failed`` lines there."""

    def __init__(
        self,
        urls: Sequence[str] = (),
        file: str | Path | None = None,
        *,
        timeout: float = 5.0,
        tries: int = 3,
        backoff: float = 0.5,
        on_delivery: Callable[[Delivery, dict[str, Any]], None] | None = None,
    ) -> None:
        self.urls = [check_url(u) for u in urls]
        self.file = Path(file) if file is not None else None
        if self.file is not None and self.file.is_dir():
            raise InvalidInput(f"alert file {str(self.file)!r} is a directory")
        self.timeout, self.tries, self.backoff = timeout, tries, backoff
        self.on_delivery = on_delivery
        self.deliveries: list[Delivery] = []
        self.sent = {"firing": 0, "resolved": 0}  # findings sent, by status
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def _append(self, line: dict[str, Any]) -> None:
        if self.file is None:
            return
        with self._lock, self.file.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(line, default=plain, sort_keys=True) + "\n")

    def send(self, alert: dict[str, Any]) -> None:
        """Record ``alert`` in the file now; deliver it to each URL in the background."""
        for finding in alert.get("alerts", []):
            status = finding.get("status")
            self.sent[status] = self.sent.get(status, 0) + 1
        self._append({**alert, "event": "alert", "at": _now()})
        self._threads = [t for t in self._threads if t.is_alive()]
        for url in self.urls:
            thread = threading.Thread(
                target=self._deliver, args=(url, alert), name="keel-alert", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _deliver(self, url: str, alert: dict[str, Any]) -> None:
        result = post_json(url, alert, timeout=self.timeout, tries=self.tries, backoff=self.backoff)
        with self._lock:
            self.deliveries.append(result)
        if not result.ok:
            self._append(
                {
                    "event": "delivery_failed",
                    "at": _now(),
                    "model": alert.get("model"),
                    "report": alert.get("report"),
                    **result.to_dict(),
                }
            )
        if self.on_delivery is not None:
            self.on_delivery(result, alert)

    def close(self, wait: float = 30.0) -> None:
        """Wait up to ``wait`` seconds for deliveries still in flight."""
        deadline = time.monotonic() + wait
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
