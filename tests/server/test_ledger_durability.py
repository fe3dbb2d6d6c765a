"""`ledger.durability: synced`: a SIGKILL under load loses no answered call's record. Each
record is fsync'd into this process's spill family before its answer's last byte leaves; the
next start on the same folder takes the dead process's files over and replays them."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from tests.serve_process import ServeProcess
from tests.support import IN_PROCESS_CONFIG


def synced_config(tmp_path: Path) -> dict[str, Any]:
    return {
        **IN_PROCESS_CONFIG,
        "ledger": {
            "sqlite_path": str(tmp_path / "ledger.db"),
            "spill_path": str(tmp_path / "ledger.spill"),
            "durability": "synced",
            # A long batch window: without the journal, a kill would surely lose records.
            "flush_interval": 2.0,
        },
    }


def recorded_ids(path: Path) -> set[str]:
    if not path.exists():
        return set()
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT request_id FROM calls")}


async def answered_until(url: str, stop: threading.Event) -> list[str]:
    """Calls from 16 workers, whole and streamed, until `stop`: the request ids of the
    calls whose answer arrived to its last byte."""
    answered: list[str] = []

    async def worker(client: httpx.AsyncClient, n: int) -> None:
        while not stop.is_set():
            body = {
                "model": "claude-haiku-4-5",
                "max_tokens": 20,
                "stream": n % 2 == 0,
                "messages": [{"role": "user", "content": "hi"}],
            }
            try:
                async with client.stream("POST", "/v1/messages", json=body) as response:
                    await response.aread()  # raises if the body is cut short
            except httpx.HTTPError:
                continue
            if response.status_code == 200:
                answered.append(response.headers["x-tollhouse-request-id"])

    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        await asyncio.gather(*(worker(client, n) for n in range(16)))
    return answered


def test_synced_sigkill_under_load_loses_no_answered_calls_record(tmp_path: Path) -> None:
    config = synced_config(tmp_path)
    stop = threading.Event()
    answered: list[str] = []
    with ServeProcess(tmp_path, config, name="killed") as gateway:
        gateway.wait_ready()
        loader = threading.Thread(
            target=lambda: answered.extend(asyncio.run(answered_until(gateway.url, stop)))
        )
        loader.start()
        time.sleep(3.0)
        gateway.kill()  # SIGKILL, mid-load
        stop.set()
        loader.join(30)
    assert len(answered) > 50
    before_restart = recorded_ids(tmp_path / "ledger.db")
    with ServeProcess(tmp_path, config, name="restarted") as again:
        again.wait_ready()
        deadline = time.monotonic() + 30
        while not set(answered) <= recorded_ids(tmp_path / "ledger.db"):
            assert time.monotonic() < deadline, "the replay did not bring every record"
            time.sleep(0.2)
        again.stop()
    missing = set(answered) - recorded_ids(tmp_path / "ledger.db")
    assert not missing, f"{len(missing)} answered calls have no record"
    # The kill did cost the store records: they came back from the journal.
    assert not set(answered) <= before_restart
    # A clean shutdown leaves nothing to replay: every spill and journal file is empty.
    assert {p.name: p.stat().st_size for p in tmp_path.glob("*.spill")} == dict.fromkeys(
        (p.name for p in tmp_path.glob("*.spill")), 0
    )
