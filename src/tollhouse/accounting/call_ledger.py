"""The gateway's side of the ledger: one record per finished call, to the store and the log.

`submit` runs on the request path after the reply is sent: it builds the record and hands
it to the writers' queues, without I/O. `start` opens the store (an unreachable database
is logged, not fatal: the writer spills and replays, see ports/ledger/writer.py) and
`aclose` drains both queues, so a clean shutdown loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, Metric

from tollhouse.accounting.call_record import CallRecorder
from tollhouse.call import Call
from tollhouse.config import ConfigError, GatewayConfig
from tollhouse.observability.call_log import JsonLinesSink
from tollhouse.observability.metrics import gauge
from tollhouse.ports.ledger.base import LedgerStore
from tollhouse.ports.ledger.journal import Journal
from tollhouse.ports.ledger.spill import SpillFile, open_spill
from tollhouse.ports.ledger.writer import LedgerWriter

log = logging.getLogger("tollhouse.ledger")


class CallLedger:
    def __init__(self, config: GatewayConfig, store: LedgerStore | None) -> None:
        """`store`: the unopened store `config.ledger` names (gateway_parts.py), None when
        the ledger is off."""
        settings = config.ledger
        self.recorder = CallRecorder(settings.text, max_text_chars=settings.max_text_chars)
        self.store = store
        self.spill: SpillFile | None = None
        self.journal: Journal | None = None
        self.writer: LedgerWriter | None = None
        if self.store is not None:
            if settings.spill_path:
                try:
                    self.spill = open_spill(settings.spill_path, max_bytes=settings.spill_max_bytes)
                    if settings.durability == "synced":
                        self.journal = Journal(
                            settings.spill_path, max_bytes=settings.spill_max_bytes
                        )
                except OSError as error:
                    raise ConfigError(
                        f"ledger.spill_path: cannot open {settings.spill_path}: "
                        f"{error.strerror or error}"
                    ) from None
            self.writer = LedgerWriter(
                self.store,
                max_queue=settings.max_queue,
                batch_size=settings.batch_size,
                flush_interval=settings.flush_interval,
                spill=self.spill,
                write_timeout=settings.write_timeout_seconds,
                journal=self.journal,
            )
        self.log_sink: JsonLinesSink | None = None
        self.log_writer: LedgerWriter | None = None
        if config.logging.call_log != "off":
            self.log_sink = JsonLinesSink(config.logging.call_log)
            self.log_writer = LedgerWriter(
                self.log_sink, max_queue=settings.max_queue, batch_size=settings.batch_size
            )

    @property
    def enabled(self) -> bool:
        return self.writer is not None or self.log_writer is not None

    @property
    def keeps_answer_text(self) -> bool:
        return self.writer is not None and self.recorder.keeps_text

    async def start(self) -> None:
        if self.store is not None:
            try:
                await self.store.open()
            except Exception as error:  # the writer spills and retries; say so now
                log.warning("ledger store unavailable at start (%s); records are spilled", error)
        for writer in (self.writer, self.log_writer):
            if writer is not None:
                writer.start()

    @property
    def synced(self) -> bool:
        """`ledger.durability: synced`: `submit` returns what to await before the answer's
        last byte leaves."""
        return self.journal is not None

    def submit(
        self, call: Call, status: int, *, latency: float, ttft: float | None
    ) -> asyncio.Future[None] | None:
        """Hand the call's record to the writers; when synced, the future that resolves once
        it is on disk."""
        record = self.recorder.record(call, status, latency=latency, ttft=ttft)
        if self.writer is not None:
            self.writer.submit(record)
        if self.log_writer is not None:
            self.log_writer.submit(record)
        return None if self.journal is None else self.journal.append(record)

    async def aclose(self) -> None:
        for writer in (self.writer, self.log_writer):
            if writer is not None:
                await writer.aclose()
        if self.store is not None:
            await self.store.aclose()
        if self.journal is not None:
            # The writer has put every record in the store or the spill.
            await self.journal.aclose(clear=True)
        if self.spill is not None:
            self.spill.close()
        if self.log_sink is not None:
            self.log_sink.close()

    def collect(self) -> Iterator[Metric]:
        """The writers' counters and state, for /metrics."""
        writers = [
            (name, writer)
            for name, writer in (("ledger", self.writer), ("call_log", self.log_writer))
            if writer is not None
        ]
        if not writers:
            return
        records = CounterMetricFamily(
            "tollhouse_ledger_records",
            "Call records by sink and fate: queued, written, spilled, replayed, dropped, rejected",
            labels=["sink", "fate"],
        )
        for name, writer in writers:
            for fate in ("queued", "written", "spilled", "replayed", "dropped", "rejected"):
                records.add_metric([name, fate], getattr(writer, fate))
        yield records
        yield gauge(
            "tollhouse_ledger_queue_depth",
            "Call records waiting to be written",
            ["sink"],
            (([name], writer.queue_depth) for name, writer in writers),
        )
        yield gauge(
            "tollhouse_ledger_spill_bytes",
            "Bytes of call records parked in the spill file, waiting for the store",
            ["sink"],
            (([name], writer.spill_bytes) for name, writer in writers),
        )
        yield gauge(
            "tollhouse_ledger_write_stalled_seconds",
            "Seconds the store has been taking the batch write under way (0: none)",
            ["sink"],
            (([name], writer.write_stalled_for) for name, writer in writers),
        )
        yield gauge(
            "tollhouse_ledger_store_up",
            "1 while the sink accepts writes, 0 while it fails",
            ["sink"],
            (([name], int(writer.store_available)) for name, writer in writers),
        )
