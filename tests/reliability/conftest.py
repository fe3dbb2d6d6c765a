"""Fixtures for reliability tests: a fresh gateway per test, since simulator fault rules
such as `first_n` count calls over the simulator's lifetime."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.support import serve_gateway

from tollhouse.server.runner import BackgroundServer

FAST_RETRY = {"max_attempts": 3, "base_delay": 0.01, "max_delay": 0.05, "max_retry_after": 2.0}


def simulator(fmt: str = "anthropic", *faults: dict[str, Any], **options: Any) -> dict[str, Any]:
    return {"type": "simulator", "simulator": {"format": fmt, "faults": list(faults), **options}}


@pytest.fixture
def make_gateway() -> Iterator[Callable[[dict[str, Any]], str]]:
    servers: list[BackgroundServer] = []

    def make(config: dict[str, Any]) -> str:
        config = {"reliability": {"retry": FAST_RETRY}, **config}
        server = serve_gateway(config)
        servers.append(server)
        return server.url

    yield make
    for server in servers:
        server.stop()
