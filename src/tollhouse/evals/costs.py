"""The figures of each call the eval made, as the gateway itself recorded them: the ledger
record found by the request id the answer carried (`x-tollhouse-request-id`).

The cost of a call is not on the answer: the gateway prices it after the answer is sent
(stages/account.py) and keeps it in the ledger, written in batches off the request path.
So the records are asked for after the calls, and waited for while the writer flushes
(within `ledger.flush_interval`, 0.2 s by default); a record still missing after
`wait_seconds` is an infrastructure problem (`LedgerMissing`), not a failed case.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from tollhouse.ports.ledger.base import LedgerStore

POLL_SECONDS = 0.2


class LedgerMissing(RuntimeError):
    """The ledger has no record of calls the eval made."""


@dataclass(frozen=True, slots=True)
class CallFigures:
    cost_usd: Decimal | None  # None: the model has no price
    model_served: str | None
    variant: str | None
    latency_ms: float


async def call_figures(
    store: LedgerStore, request_ids: Iterable[str], *, wait_seconds: float = 30.0
) -> dict[str, CallFigures]:
    """The figures of every call in `request_ids`, polling the ledger until each has its
    record; raises `LedgerMissing` naming how many never appeared within `wait_seconds`."""
    wanted = set(request_ids)
    found: dict[str, CallFigures] = {}
    deadline = time.monotonic() + wait_seconds
    while True:
        for request_id in sorted(wanted - found.keys()):
            records = await store.query(filters={"request_id": request_id}, limit=1)
            if records:
                record = records[0]
                found[request_id] = CallFigures(
                    cost_usd=record.cost_usd,
                    model_served=record.model_served,
                    variant=record.variant,
                    latency_ms=record.latency_ms,
                )
        missing = wanted - found.keys()
        if not missing:
            return found
        if time.monotonic() >= deadline:
            example = sorted(missing)[0]
            raise LedgerMissing(
                f"the ledger has no record of {len(missing)} of the eval's {len(wanted)} "
                f"calls after {wait_seconds:.0f} s (e.g. request {example}): is it the ledger of "
                "the gateway the eval called?"
            )
        await asyncio.sleep(POLL_SECONDS)
