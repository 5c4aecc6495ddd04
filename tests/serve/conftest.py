"""An in-process server (Starlette's TestClient runs the app's lifespan) over a served world."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import keel
from keel.serve import ServeConfig, create_app
from keel.workspace import Workspace
from tests.serve.helpers import register_churn


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    ws = keel.init(tmp_path_factory.mktemp("serve") / "ws")
    register_churn(ws)
    yield ws
    ws.close()


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Workspace]:
    """A served world of the test's own (for tests that move aliases or deploy)."""
    ws = keel.init(tmp_path / "ws")
    register_churn(ws)
    yield ws
    ws.close()


@pytest.fixture
def client_for() -> Iterator[Callable[..., TestClient]]:
    """Start an in-process server on a workspace; every one is stopped (its log flushed) after."""
    opened: list[Any] = []

    def make(ws: Workspace, **settings: Any) -> TestClient:
        config = ServeConfig(model="churn", workspace=str(ws.root), poll_seconds=60, **settings)
        client = TestClient(create_app(config, workspace=ws), raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)
