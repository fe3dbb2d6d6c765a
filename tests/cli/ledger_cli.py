"""What the CLI tests of the ledger commands (`tollhouse usage`, `tollhouse logs`) share:
a ledger to fill on either backend, call records, and the CLI wired as `tollhouse` wires it.
The `ledger` fixture over both backends is in conftest.py."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from tollhouse.commands import logs, usage
from tollhouse.ports.ledger.base import LedgerStore
from tollhouse.ports.ledger.record import CallRecord

DAY = datetime(2026, 11, 25, tzinfo=UTC)


@dataclass
class Ledger:
    options: list[str]  # the CLI options that select it
    new_store: Callable[[], LedgerStore]

    def create(self) -> None:
        """An empty ledger: its store opened once (the schema made) and closed."""

        async def open_and_close() -> None:
            store = self.new_store()
            try:
                await store.open()
            finally:
                await store.aclose()

        asyncio.run(open_and_close())

    def fill(self, records: Sequence[CallRecord]) -> None:
        async def write() -> None:
            store = self.new_store()
            try:
                await store.write_batch(records)
            finally:
                await store.aclose()

        asyncio.run(write())


def run_cli(argv: list[str]) -> int:
    """`tollhouse <argv>` as the main CLI will run it once it registers these commands."""
    parser = argparse.ArgumentParser(prog="tollhouse")
    subparsers = parser.add_subparsers(dest="command", required=True)
    usage.register(subparsers)
    logs.register(subparsers)
    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code


def record(n: int, **fields: Any) -> CallRecord:
    values: dict[str, Any] = {
        "request_id": f"req_{n:04d}",
        "ts": DAY + timedelta(hours=1, seconds=n),
        "client_format": "anthropic",
        "endpoint": "/v1/messages",
        "model_requested": "claude-haiku-4-5",
        "model_served": "claude-haiku-4-5-20251001",
        "status": 200,
        "key_id": "key_a",
        "input_tokens": 100,
        "output_tokens": 10,
        "latency_ms": 812.5,
        "cost_usd": Decimal("0.1"),
    }
    values.update(fields)
    return CallRecord(**values)
