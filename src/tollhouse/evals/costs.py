"""The figures of each call the eval made, as the gateway itself recorded them: the ledger
record found by the request id the answer carried (`x-tollhouse-request-id`).

The cost of a call is not on the answer: the gateway prices it after the answer is sent
(stages/account.py) and keeps it in the ledger, written in batches off the request path.
So the records are asked for after the calls, from the ledger's database
(`LedgerFigures`) or from the gateway's admin API (`AdminApiFigures`: `GET
/admin/calls/{request_id}`), and waited for while the writer flushes (within
`ledger.flush_interval`, 0.2 s by default); a record still missing after `wait_seconds` is
an infrastructure problem (`LedgerMissing`), not a failed case.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from tollhouse.ports.ledger.base import LedgerStore

if TYPE_CHECKING:
    import httpx

POLL_SECONDS = 0.2


class LedgerMissing(RuntimeError):
    """The ledger has no record of calls the eval made, or can't be asked."""


@dataclass(frozen=True, slots=True)
class CallFigures:
    cost_usd: Decimal | None  # None: the model has no price
    model_served: str | None
    variant: str | None
    latency_ms: float


class FigureSource(Protocol):
    async def find(self, request_id: str) -> CallFigures | None:
        """The call's figures, None while the ledger has no record of it."""
        ...

    async def aclose(self) -> None: ...


class LedgerFigures:
    """Figures read from the ledger's own database."""

    def __init__(self, store: LedgerStore) -> None:
        self.store = store

    async def find(self, request_id: str) -> CallFigures | None:
        records = await self.store.query(filters={"request_id": request_id}, limit=1)
        if not records:
            return None
        record = records[0]
        return CallFigures(
            cost_usd=record.cost_usd,
            model_served=record.model_served,
            variant=record.variant,
            latency_ms=record.latency_ms,
        )

    async def aclose(self) -> None:
        await self.store.aclose()


class AdminApiFigures:
    """Figures asked of a running gateway's admin API with its admin token."""

    def __init__(self, base_url: str, admin_token: str, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.admin_token = admin_token
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None

    async def find(self, request_id: str) -> CallFigures | None:
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(
                headers={"x-api-key": self.admin_token}, timeout=self.timeout
            )
        url = f"{self.base_url}/admin/calls/{request_id}"
        try:
            reply = await self._client.get(url)
        except httpx.HTTPError as error:
            raise LedgerMissing(f"cannot ask the admin API for call costs: {error}") from None
        if reply.status_code == 404 and "no call" in reply.text:
            return None
        if reply.status_code != 200:
            raise LedgerMissing(
                f"the admin API answered {reply.status_code} for {url}: {reply.text[:200]}"
            )
        doc: dict[str, Any] = reply.json()
        cost = doc.get("cost_usd")
        return CallFigures(
            cost_usd=None if cost is None else Decimal(str(cost)),
            model_served=doc.get("model_served"),
            variant=doc.get("variant"),
            latency_ms=float(doc.get("latency_ms") or 0.0),
        )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


async def call_figures(
    source: FigureSource, request_ids: Iterable[str], *, wait_seconds: float = 30.0
) -> dict[str, CallFigures]:
    """The figures of every call in `request_ids`, asking again until each has its record;
    raises `LedgerMissing` naming how many never appeared within `wait_seconds`."""
    wanted = set(request_ids)
    found: dict[str, CallFigures] = {}
    deadline = time.monotonic() + wait_seconds
    while True:
        for request_id in sorted(wanted - found.keys()):
            figures = await source.find(request_id)
            if figures is not None:
                found[request_id] = figures
        missing = wanted - found.keys()
        if not missing:
            return found
        if time.monotonic() >= deadline:
            example = sorted(missing)[0]
            raise LedgerMissing(
                f"the ledger has no record of {len(missing)} of the eval's {len(wanted)} "
                f"calls after {wait_seconds:.0f} s (e.g. request {example}): is it the "
                "ledger of the gateway the eval called?"
            )
        await asyncio.sleep(POLL_SECONDS)
