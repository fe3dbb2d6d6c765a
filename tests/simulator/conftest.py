"""Simulators served over real HTTP on loopback ports, and the official SDK clients that a
user would point at them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import openai
import pytest

from tollhouse.server.runner import BackgroundServer
from tollhouse.simulator.asgi import create_app
from tollhouse.simulator.config import SimulatorConfig
from tollhouse.simulator.engine import Simulator

ServeSimulator = Callable[..., BackgroundServer]


@pytest.fixture(scope="session")
def simulator_server() -> Iterator[BackgroundServer]:
    """One simulator with the default config, shared by the tests that do not care about
    its state (rate limits and caches are far from reach with the defaults)."""
    with BackgroundServer(create_app(Simulator())) as server:
        yield server


@pytest.fixture
def serve_simulator() -> Iterator[ServeSimulator]:
    """Start a simulator with its own config: `serve_simulator(faults=[...], ...)`."""
    servers: list[BackgroundServer] = []

    def start(**options: Any) -> BackgroundServer:
        config = SimulatorConfig.from_mapping(options)
        server = BackgroundServer(create_app(Simulator(config))).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def error_of(body: object) -> dict[str, Any]:
    """The `error` object of an SDK exception's body, whichever format it came in."""
    assert isinstance(body, dict)
    error = body.get("error", body)
    assert isinstance(error, dict)
    return error


def anthropic_client(server: BackgroundServer, **options: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key="x", max_retries=0, **options)


def openai_client(server: BackgroundServer, **options: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0, **options)


@pytest.fixture
def claude(simulator_server: BackgroundServer) -> anthropic.Anthropic:
    return anthropic_client(simulator_server)


@pytest.fixture
def gpt(simulator_server: BackgroundServer) -> openai.OpenAI:
    return openai_client(simulator_server)
