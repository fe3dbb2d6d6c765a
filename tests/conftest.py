"""Fixtures shared by the suite: real servers on loopback ports, official SDK clients.

Every gateway under test is the real ASGI app served by uvicorn on a socket; its upstream is
the built-in simulator, in process or as its own HTTP server.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import openai
import psycopg
import pytest
import redis
from hypothesis.configuration import set_hypothesis_home_dir
from psycopg.conninfo import make_conninfo
from tests.support import (
    GATEWAY_KEY,
    IN_PROCESS_CONFIG,
    TEST_RELIABILITY,
    serve_gateway,
    server_unreachable,
)
from tests.working_directory import confined_to

from tollhouse.server.runner import BackgroundServer
from tollhouse.simulator.asgi import create_app as create_simulator_app
from tollhouse.simulator.config import SimulatorConfig
from tollhouse.simulator.engine import Simulator

POSTGRES = os.environ.get(
    "TOLLHOUSE_TEST_POSTGRES", "host=127.0.0.1 port=5432 user=postgres dbname=test"
)
REDIS = os.environ.get("TOLLHOUSE_TEST_REDIS", "redis://127.0.0.1:6379/0")


def pytest_configure(config: pytest.Config) -> None:
    """Hypothesis keeps its example database and caches in a directory of the run's own: by
    default it writes `.hypothesis/` wherever pytest started, while collecting."""
    home = tempfile.mkdtemp(prefix="tollhouse-hypothesis-")
    config.add_cleanup(lambda: shutil.rmtree(home, ignore_errors=True))
    set_hypothesis_home_dir(home)


@pytest.fixture(scope="session", autouse=True)
def _session_working_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Session-scoped fixtures start in an empty directory of the session's, never in the
    checkout (see tests/working_directory.py)."""
    with confined_to(tmp_path_factory.mktemp("session-cwd")):
        yield


@pytest.fixture(autouse=True)
def _test_working_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Each test runs in an empty working directory of its own and fails if it writes there
    or into the checkout: tests write only under their own tmp_path."""
    with confined_to(tmp_path_factory.mktemp("cwd")):
        yield


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The real PostgreSQL server (TOLLHOUSE_TEST_POSTGRES, default 127.0.0.1:5432 user
    postgres database test)."""
    try:
        psycopg.connect(POSTGRES, connect_timeout=3).close()
    except psycopg.OperationalError as error:
        server_unreachable(f"PostgreSQL not reachable at {POSTGRES!r}: {error}")
    return POSTGRES


@pytest.fixture
def postgres_conninfo(postgres_server: str) -> Iterator[str]:
    """A connection string whose search_path is a fresh, empty schema, dropped afterwards,
    so parallel runs never meet."""
    schema = f"th_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield make_conninfo(postgres_server, options=f"-c search_path={schema}")
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The real Redis server (TOLLHOUSE_TEST_REDIS, default redis://127.0.0.1:6379/0)."""
    try:
        redis.Redis.from_url(REDIS, socket_connect_timeout=3).ping()
    except redis.exceptions.ConnectionError as error:
        server_unreachable(f"Redis not reachable at {REDIS!r}: {error}")
    return REDIS


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix no other test uses; its keys are deleted afterwards, so parallel runs
    never meet."""
    prefix = f"th_test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(scope="session")
def gateway_url() -> Iterator[str]:
    server = serve_gateway(IN_PROCESS_CONFIG)
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def simulator_url() -> Iterator[str]:
    server = BackgroundServer(create_simulator_app(Simulator(SimulatorConfig()))).start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def http_gateway_url(simulator_url: str) -> Iterator[str]:
    """A gateway whose providers reach the simulator over real HTTP, as they would a provider."""
    config = {
        "providers": {
            "anthropic-http": {
                "type": "anthropic",
                "base_url": simulator_url,
                "simulator_headers": True,
            },
            "openai-http": {
                "type": "openai",
                "base_url": simulator_url + "/v1",
                "simulator_headers": True,
            },
            "local-llm": {
                "type": "openai-compatible",
                "base_url": simulator_url + "/v1",
                "simulator_headers": True,
            },
        },
        "models": {
            "claude-haiku-4-5": {
                "deployments": [{"provider": "anthropic-http", "model": "claude-haiku-4-5"}]
            },
            "gpt-4o-mini": {"deployments": [{"provider": "openai-http", "model": "gpt-4o-mini"}]},
            "llama-3.1-8b": {
                "deployments": [{"provider": "local-llm", "model": "meta-llama/Llama-3.1-8B"}]
            },
        },
        "timeouts": {"first_byte": 3.0, "read_idle": 3.0, "connect": 2.0},
        "reliability": TEST_RELIABILITY,
    }
    server = serve_gateway(config)
    yield server.url
    server.stop()


@pytest.fixture
def anthropic_client(gateway_url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway_url, api_key=GATEWAY_KEY, max_retries=0)


@pytest.fixture
def openai_client(gateway_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway_url + "/v1", api_key=GATEWAY_KEY, max_retries=0)


@pytest.fixture
def async_anthropic_client(gateway_url: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=gateway_url, api_key=GATEWAY_KEY, max_retries=0)


@pytest.fixture
def async_openai_client(gateway_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gateway_url + "/v1", api_key=GATEWAY_KEY, max_retries=0)


@pytest.fixture
def user_says() -> Callable[[str], list[dict[str, Any]]]:
    return lambda text: [{"role": "user", "content": text}]
