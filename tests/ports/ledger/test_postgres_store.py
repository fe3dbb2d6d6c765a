"""What only the PostgreSQL store has to do: live with a database that goes away."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Callable

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from tollhouse.ports.ledger.base import LedgerUnavailable
from tollhouse.ports.ledger.postgres import PostgresLedgerStore
from tollhouse.ports.ledger.record import CallRecord

MakeRecord = Callable[..., CallRecord]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_database_raises_ledger_unavailable(make_record: MakeRecord) -> None:
    store = PostgresLedgerStore(f"host=127.0.0.1 port={closed_port()} user=postgres dbname=x")

    async def scenario() -> None:
        with pytest.raises(LedgerUnavailable):
            await store.open()
        with pytest.raises(LedgerUnavailable):
            await store.write_batch([make_record(1)])
        await store.aclose()

    asyncio.run(scenario())


def test_a_lost_connection_fails_one_operation_then_the_store_reconnects(
    postgres_conninfo: str, postgres_server: str, make_record: MakeRecord
) -> None:
    name = f"ledger-test-{uuid.uuid4().hex[:8]}"
    store = PostgresLedgerStore(make_conninfo(postgres_conninfo, application_name=name))

    async def scenario() -> int:
        await store.write_batch([make_record(1)])
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s",
                (name,),
            )
        try:
            with pytest.raises(LedgerUnavailable):
                await store.write_batch([make_record(2)])
            await store.write_batch([make_record(2)])
            return await store.count()
        finally:
            await store.aclose()

    assert asyncio.run(scenario()) == 2
