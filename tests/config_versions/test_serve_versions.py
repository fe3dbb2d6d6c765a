"""`tollhouse serve -c FILE` keeps to config versions: the file is recorded at start unless
the newest version has its content, every answer and `/readyz` name the version served,
the ledger records it, and gateways on one store all serve a newly stored version within
the poll interval. Real `serve` processes; the store is SQLite here and PostgreSQL in the
second test."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
from tests.serve_process import ServeProcess
from tests.support import GATEWAY_KEY, IN_PROCESS_CONFIG

from tollhouse.ports.config.base import ConfigStore
from tollhouse.ports.config.postgres import PostgresConfigStore
from tollhouse.ports.config.sqlite import SQLiteConfigStore

POLL_SECONDS = 0.5
# The bound a gateway is held to: the poll interval plus building and swapping the
# snapshot, with a generous margin for a machine shared by many test runs.
CONVERGENCE_BOUND = POLL_SECONDS + 10.0


def gateway_config(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        **IN_PROCESS_CONFIG,
        "ledger": {"sqlite_path": str(tmp_path / "ledger.db"), "flush_interval": 0.05},
        "keys": {"sqlite_path": str(tmp_path / "keys.db")},
        "config_store": {"poll_seconds": POLL_SECONDS},
        **extra,
    }


def readiness(gateway: ServeProcess) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(gateway.url + "/readyz", timeout=5).json()
    return answer


def served_version(gateway: ServeProcess) -> int | None:
    client = anthropic.Anthropic(base_url=gateway.url, api_key=GATEWAY_KEY, max_retries=0)
    raw = client.messages.with_raw_response.create(
        model="claude-haiku-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    )
    header = raw.headers.get("x-tollhouse-config-version")
    return None if header is None else int(header)


def store_version(store: ConfigStore, document: dict[str, Any]) -> int:
    async def main() -> int:
        try:
            version, _ = await store.add(document, source="cli", note="from the test")
            return version.id
        finally:
            await store.aclose()

    return asyncio.run(main())


def wait_for_version(gateways: list[ServeProcess], version: int) -> float:
    """Seconds until every gateway's /readyz names `version` (fails past the bound)."""
    started = time.monotonic()
    while time.monotonic() - started < CONVERGENCE_BOUND:
        if all(readiness(g)["config_version"] == version for g in gateways):
            return time.monotonic() - started
        time.sleep(0.05)
    seen = [readiness(g)["config_version"] for g in gateways]
    raise AssertionError(f"not all on version {version} within {CONVERGENCE_BOUND} s: {seen}")


def test_the_file_is_version_1_and_a_restart_with_it_adds_none(tmp_path: Path) -> None:
    config = gateway_config(tmp_path)
    with ServeProcess(tmp_path, config) as gateway:
        gateway.wait_ready()
        assert readiness(gateway)["config_version"] == 1
        assert served_version(gateway) == 1
    with ServeProcess(tmp_path, config) as gateway:
        gateway.wait_ready()
        assert readiness(gateway)["config_version"] == 1
    changed = {**config, "timeouts": {"first_byte": 6.0, "read_idle": 5.0}}
    with ServeProcess(tmp_path, changed) as gateway:
        gateway.wait_ready()
        assert readiness(gateway)["config_version"] == 2
        assert served_version(gateway) == 2
        assert "recorded as version 2" in gateway.log
    time.sleep(0.3)  # the ledger flushes every 50 ms; the stop drains it anyway
    with sqlite3.connect(tmp_path / "ledger.db") as ledger:
        versions = [row[0] for row in ledger.execute("SELECT config_version FROM calls")]
    assert sorted(versions) == [1, 2]


def test_two_gateways_on_one_sqlite_store_serve_a_new_version_within_the_bound(
    tmp_path: Path,
) -> None:
    config = gateway_config(tmp_path)
    first = ServeProcess(tmp_path, config, name="first")
    second = ServeProcess(tmp_path, config, name="second")
    with first, second:
        first.wait_ready()
        second.wait_ready()
        assert [readiness(g)["config_version"] for g in (first, second)] == [1, 1]
        changed = {**config, "timeouts": {"first_byte": 7.0, "read_idle": 5.0}}
        version = store_version(SQLiteConfigStore(tmp_path / "keys.db"), changed)
        assert version == 2
        wait_for_version([first, second], 2)
        assert served_version(first) == served_version(second) == 2


def test_two_gateways_on_one_postgres_store_serve_a_new_version_within_the_bound(
    tmp_path: Path, postgres_conninfo: str
) -> None:
    config = gateway_config(
        tmp_path, config_store={"poll_seconds": POLL_SECONDS, "postgres": "env:TEST_CONFIG_PG"}
    )
    config["config_store"]["backend"] = "postgres"
    env = {"TEST_CONFIG_PG": postgres_conninfo}
    first = ServeProcess(tmp_path, config, name="first", env=env)
    second = ServeProcess(tmp_path, config, name="second", env=env)
    with first, second:
        first.wait_ready()
        second.wait_ready()
        assert [readiness(g)["config_version"] for g in (first, second)] == [1, 1]
        changed = {**config, "timeouts": {"first_byte": 7.0, "read_idle": 5.0}}
        assert store_version(PostgresConfigStore(postgres_conninfo), changed) == 2
        wait_for_version([first, second], 2)
        assert served_version(first) == served_version(second) == 2


def test_a_stored_version_that_does_not_load_is_refused_and_the_old_one_serves(
    tmp_path: Path,
) -> None:
    config = gateway_config(tmp_path)
    with ServeProcess(tmp_path, config) as gateway:
        gateway.wait_ready()
        broken = {**config, "models": {"m": {"deployments": [{"provider": "nope", "model": "x"}]}}}
        assert store_version(SQLiteConfigStore(tmp_path / "keys.db"), broken) == 2
        deadline = time.monotonic() + CONVERGENCE_BOUND
        while "config" not in readiness(gateway).get("problems", {}):
            assert time.monotonic() < deadline, readiness(gateway)
            time.sleep(0.05)
        ready = readiness(gateway)
        assert ready["config_version"] == 1
        assert ready["status"] == "degraded"
        assert "config version 2 refused here" in ready["problems"]["config"]
        assert (
            "$.models.m.deployments[0].provider: unknown provider 'nope'"
            in (ready["problems"]["config"])
        )
        assert served_version(gateway) == 1
