"""Batches kept in the batch store beside the ledger serve every gateway process on it:
two real `tollhouse serve` processes on one SQLite ledger file, or one PostgreSQL database
(a schema of the test's own; without a server they skip locally and fail under CI), and
one simulator over loopback as their provider. A batch made through one is read, listed,
and its results fetched through the other with the official SDKs; its lines are recorded
once in all; and when the process that made it stops before it ends, the other records it.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import psycopg
import pytest
from tests.observability.test_call_accounting import metric
from tests.serve_process import ServeProcess
from tests.support import TEST_RELIABILITY

from tollhouse.server.runner import BackgroundServer
from tollhouse.simulator.asgi import create_app as create_simulator_app
from tollhouse.simulator.config import SimulatorConfig
from tollhouse.simulator.engine import Simulator

HI = [{"role": "user", "content": "hi there"}]
# Each request of a batch takes this long at the simulator: a two-line batch runs ~1.6 s,
# long enough to stop the process that made it before it ends.
REQUEST_MS = 800.0


@pytest.fixture
def slow_simulator() -> Iterator[str]:
    server = BackgroundServer(
        create_simulator_app(Simulator(SimulatorConfig(batch_request_ms=REQUEST_MS)))
    ).start()
    yield server.url
    server.stop()


def gateway_config(simulator: str, ledger: dict[str, Any]) -> dict[str, Any]:
    return {
        "providers": {
            "anthropic-http": {"type": "anthropic", "base_url": simulator},
            "openai-http": {"type": "openai", "base_url": simulator + "/v1"},
        },
        "models": {
            "claude-haiku-4-5": {
                "deployments": [{"provider": "anthropic-http", "model": "claude-haiku-4-5"}]
            },
            "gpt-4o-mini": {"deployments": [{"provider": "openai-http", "model": "gpt-4o-mini"}]},
        },
        "timeouts": {"first_byte": 5.0, "read_idle": 5.0, "connect": 2.0},
        "reliability": TEST_RELIABILITY,
        "ledger": {"spill_path": None, "flush_interval": 0.05, **ledger},
        "batches": {"poll_seconds": 0.1},
    }


class Store:
    """What the gateways' shared database holds: the batch lines recorded in the ledger
    and who recorded each batch."""

    def __init__(self, query: Callable[[str], list[tuple[Any, ...]]]) -> None:
        self.query = query

    def lines(self) -> list[str]:
        rows = self.query("SELECT request_id FROM calls WHERE custom_id IS NOT NULL")
        return sorted(row[0] for row in rows)

    def recorder(self, batch_id: str) -> str:
        """Who recorded the batch, once it is recorded."""

        def recorded() -> str | None:
            rows = self.query(f"SELECT recorded_by, state FROM batches WHERE id = '{batch_id}'")
            return rows[0][0] if rows and rows[0][1] == "recorded" else None

        return str(wait_for(recorded))


@pytest.fixture(params=["sqlite", "postgres"])
def two_gateways(
    request: pytest.FixtureRequest, tmp_path: Path, slow_simulator: str
) -> Iterator[tuple[ServeProcess, ServeProcess, Store]]:
    env: dict[str, str] = {}
    if request.param == "sqlite":
        path = tmp_path / "ledger.db"
        ledger: dict[str, Any] = {"sqlite_path": str(path)}

        def query(sql: str) -> list[tuple[Any, ...]]:
            if not path.exists():
                return []
            with sqlite3.connect(path) as conn:
                try:
                    return conn.execute(sql).fetchall()
                except sqlite3.OperationalError:  # not migrated yet
                    return []

    else:
        conninfo = request.getfixturevalue("postgres_conninfo")
        ledger = {"backend": "postgres", "postgres": "env:TOLLHOUSE_TEST_LEDGER_PG"}
        env = {"TOLLHOUSE_TEST_LEDGER_PG": conninfo}

        def query(sql: str) -> list[tuple[Any, ...]]:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                try:
                    return conn.execute(sql).fetchall()
                except psycopg.errors.UndefinedTable:
                    return []

    config = gateway_config(slow_simulator, ledger)
    with (
        ServeProcess(tmp_path, config, name="a", env=env) as a,
        ServeProcess(tmp_path, config, name="b", env=env) as b,
    ):
        a.wait_ready()
        b.wait_ready()
        yield a, b, Store(query)


def claude(url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key="unused", max_retries=0)


def gpt(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)


def wait_for(check: Callable[[], Any], seconds: float = 20.0) -> Any:
    deadline = time.monotonic() + seconds
    while not (value := check()):
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)
    return value


def requests(*custom_ids: str) -> list[Any]:
    return [
        {
            "custom_id": custom_id,
            "params": {"model": "claude-haiku-4-5", "max_tokens": 12, "messages": HI},
        }
        for custom_id in custom_ids
    ]


def calls(gateway: ServeProcess) -> float:
    return metric(gateway.url, "tollhouse_calls_total", model="claude-haiku-4-5")


def test_a_batch_made_through_one_process_is_served_by_another_and_recorded_once(
    two_gateways: tuple[ServeProcess, ServeProcess, Store],
) -> None:
    a, b, store = two_gateways
    created = claude(a.url).messages.batches.create(requests=requests("one", "two"))
    seen = claude(b.url).messages.batches.retrieve(created.id)
    assert seen.id == created.id
    assert seen.request_counts.processing + seen.request_counts.succeeded == 2
    assert created.id in [batch.id for batch in claude(b.url).messages.batches.list().data]
    wait_for(
        lambda: claude(b.url).messages.batches.retrieve(created.id).processing_status == "ended"
    )
    results = {
        r.custom_id: r.result.type for r in claude(b.url).messages.batches.results(created.id)
    }
    assert results == {"one": "succeeded", "two": "succeeded"}
    # Both processes poll the open batches: one of them records the lines, once in all.
    wait_for(lambda: calls(a) + calls(b) == 2)
    assert store.lines() == [f"{created.id}:one", f"{created.id}:two"]
    recorder = store.recorder(created.id)
    assert f":{a.process.pid}:" in recorder or f":{b.process.pid}:" in recorder
    # Retrieved and fetched again through either: nothing is recorded twice.
    claude(a.url).messages.batches.retrieve(created.id)
    list(claude(a.url).messages.batches.results(created.id))
    assert calls(a) + calls(b) == 2
    assert store.lines() == [f"{created.id}:one", f"{created.id}:two"]


def test_a_batch_whose_maker_stopped_before_it_ended_is_recorded_by_another(
    two_gateways: tuple[ServeProcess, ServeProcess, Store],
) -> None:
    a, b, store = two_gateways
    created = claude(a.url).messages.batches.create(requests=requests("x", "y"))
    a.kill()  # as a crash would: nothing of its own is finished on the way out
    assert claude(b.url).messages.batches.retrieve(created.id).processing_status == "in_progress"
    wait_for(lambda: store.lines() == [f"{created.id}:x", f"{created.id}:y"])
    recorder = store.recorder(created.id)
    assert f":{b.process.pid}:" in recorder
    assert calls(b) == 2


def test_an_openai_file_and_batch_cross_processes_and_an_input_file_makes_one_batch(
    two_gateways: tuple[ServeProcess, ServeProcess, Store],
) -> None:
    a, b, store = two_gateways
    line = {
        "custom_id": "g1",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "gpt-4o-mini", "max_tokens": 7, "messages": HI},
    }
    uploaded = gpt(a.url).files.create(
        file=("in.jsonl", json.dumps(line).encode()), purpose="batch"
    )
    assert gpt(b.url).files.retrieve(uploaded.id).id == uploaded.id
    batch = gpt(b.url).batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    # The file made its batch through B: A refuses to make another of it.
    with pytest.raises(openai.BadRequestError, match="no batch input file waiting"):
        gpt(a.url).batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    done = wait_for(
        lambda: (got := gpt(a.url).batches.retrieve(batch.id)).status == "completed" and got
    )
    output = gpt(b.url).files.content(done.output_file_id).text.splitlines()
    assert [json.loads(row)["custom_id"] for row in output] == ["g1"]
    wait_for(lambda: store.lines() == [f"{batch.id}:g1"])


def test_another_process_does_not_know_a_batch_nobody_made(
    two_gateways: tuple[ServeProcess, ServeProcess, Store],
) -> None:
    _, b, _ = two_gateways
    with pytest.raises(anthropic.NotFoundError, match="not found"):
        claude(b.url).messages.batches.retrieve("msgbatch_nobody")
    with pytest.raises(openai.NotFoundError):
        gpt(b.url).files.retrieve("file-nobody")
