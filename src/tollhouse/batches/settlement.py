"""Recording a batch's lines: once it has ended, each line is one call in the ledger, at
the batch rates, with its `custom_id`, and its budget reservation settles.

Who records, and when: any gateway process on the same batch store (ports/batches/), the
first time it sees the batch ended: a client's retrieve or list that finds it ended, a
client's fetch of its results (recorded from the very bytes relayed), or a process's own
poll of the store's open batches every `batches.poll_seconds` (so a batch whose creator
stopped is still recorded), whichever comes first. A lock per batch in each process and
the store's claim across them (one conditional UPDATE) make the first one the only one to
write the lines; each line's record has a request id made of the batch id and its
`custom_id`, unique in the ledger, so a record written twice (a replayed spill, a claim
taken over from a process that died mid-way) is kept once.

Budgets: a line's reservation lives on its call in the process that made the batch. That
process settles it at the line's cost whoever records the line: if another process won the
claim, it still reads the outcomes (its own poll, or a client's request) and settles its
reservations without writing the ledger. A batch recorded by another process after its
creator stopped has its lines in the ledger, but its reservations lapsed with the creator
(in-process counters: gone with it; Redis: within seconds, no longer renewed) and its
spend is not booked on the budget counters.

What a line is recorded as:
- answered (`succeeded`, or an OpenAI output line with status 200): its usage priced at
  the batch rates (`cost_of(..., batch=True)` through the account stage), never $0 for
  tokens used (LiteLLM #27944); its reservation settles at that cost;
- errored (the provider's error for it): the status and error type it stands for, cost
  0 (the providers bill no errored request), its reservation released;
- canceled or expired (Anthropic's results say so; an OpenAI line absent from both output
  files): status 499 or 504, error type `canceled` / `expired`, cost 0, released.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from tollhouse.batches.held import HeldBatch, HeldBatches, HeldFile
from tollhouse.batches.relay import UpstreamAnswer, relay
from tollhouse.stages.account import Accounting, note_answer

if TYPE_CHECKING:
    from tollhouse.config.model import TimeoutsConfig

log = logging.getLogger("tollhouse.batches")

ANTHROPIC_ENDED = frozenset({"ended"})
OPENAI_ENDED = frozenset({"completed", "failed", "expired", "cancelled"})


@dataclass(frozen=True, slots=True)
class LineOutcome:
    status: int
    answer: bytes | None = None  # the answer's body, for a line answered
    error_type: str | None = None
    request_id: str | None = None


_CANCELED = LineOutcome(499, None, "canceled")
_EXPIRED = LineOutcome(504, None, "expired")


def anthropic_outcomes(results: bytes) -> dict[str, LineOutcome]:
    """The outcome of each line of an Anthropic results file (JSONL), by custom_id."""
    outcomes: dict[str, LineOutcome] = {}
    for line in _json_lines(results):
        custom_id, result = line.get("custom_id"), line.get("result")
        if not isinstance(custom_id, str) or not isinstance(result, dict):
            continue
        kind = result.get("type")
        if kind == "succeeded":
            outcomes[custom_id] = LineOutcome(200, orjson.dumps(result.get("message")))
        elif kind == "errored":
            error = result.get("error")
            inner = error.get("error") if isinstance(error, dict) else None
            error_type = inner.get("type") if isinstance(inner, dict) else None
            status = 400 if error_type == "invalid_request_error" else 500
            outcomes[custom_id] = LineOutcome(status, None, str(error_type or "api_error"))
        elif kind == "canceled":
            outcomes[custom_id] = _CANCELED
        elif kind == "expired":
            outcomes[custom_id] = _EXPIRED
    return outcomes


def openai_outcomes(*files: bytes) -> dict[str, LineOutcome]:
    """The outcome of each line of an OpenAI batch's output and error files, by custom_id."""
    outcomes: dict[str, LineOutcome] = {}
    for data in files:
        for line in _json_lines(data):
            custom_id = line.get("custom_id")
            if not isinstance(custom_id, str):
                continue
            response = line.get("response")
            if isinstance(response, dict):
                status = response.get("status_code")
                status = status if isinstance(status, int) else 500
                body = response.get("body")
                request_id = response.get("request_id")
                rid = request_id if isinstance(request_id, str) and request_id else None
                if status == 200:
                    outcomes[custom_id] = LineOutcome(200, orjson.dumps(body), None, rid)
                    continue
                error = body.get("error") if isinstance(body, dict) else None
                kind = error.get("type") if isinstance(error, dict) else None
                outcomes[custom_id] = LineOutcome(status, None, str(kind or "api_error"), rid)
                continue
            error = line.get("error")
            code = error.get("code") if isinstance(error, dict) else None
            outcomes[custom_id] = LineOutcome(500, None, str(code or "api_error"))
    return outcomes


def _json_lines(data: bytes) -> list[dict[str, Any]]:
    lines = []
    for raw in data.splitlines():
        if not raw.strip():
            continue
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError:
            log.warning("a batch result line is not JSON; skipped")
            continue
        if isinstance(line, dict):
            lines.append(line)
    return lines


class BatchSettlement:
    """Records held batches' lines once they have ended (see the module's docstring)."""

    def __init__(self, held: HeldBatches, accounting: Accounting) -> None:
        self.held = held
        self.accounting = accounting
        self._poller: asyncio.Task[None] | None = None

    async def record(
        self, batch: HeldBatch, outcomes: Mapping[str, LineOutcome], missing: str
    ) -> None:
        """Record every line of `batch` (called under its lock), a line without an outcome
        as `missing` ("canceled" or "expired"), if this process wins the store's claim;
        else only settle the reservations its lines hold here."""
        if batch.recorded:
            return
        claimed = await self.held.claim(batch)
        batch.recorded = True
        keeps_text = self.accounting.ledger.keeps_answer_text
        absent = _CANCELED if missing == "canceled" else _EXPIRED
        for custom_id, call in batch.lines.items():
            outcome = outcomes.get(custom_id, absent)
            call.upstream_request_id = outcome.request_id
            call.status = outcome.status
            if outcome.answer is not None:
                facts = call.wire.answer_facts(outcome.answer)
                note_answer(call, facts.usage, facts.stop_reason)
                call.attempts = 1
                if keeps_text:
                    call.answer_capture = bytearray(outcome.answer)
            else:  # nothing billed: recorded at no cost, its reservation released
                call.attempts = 0
                call.error_type = outcome.error_type
            if claimed:
                self.accounting.finish(call, outcome.status)
            else:  # another process records it: only what this one reserved settles here
                self.accounting.admitter.finish(call)
        batch.lines = {}
        if claimed:
            await self.held.done(batch)

    async def record_ended(
        self, batch: HeldBatch, doc: object, timeouts: TimeoutsConfig, results: bytes | None = None
    ) -> None:
        """Record `batch` if `doc` (its object as the provider just gave it) says it has
        ended, fetching its results unless `results` (Anthropic's, already fetched) has
        them; a no-op once recorded."""
        if batch.recorded or not isinstance(doc, dict):
            return
        if batch.client_format == "anthropic":
            if doc.get("processing_status") not in ANTHROPIC_ENDED:
                return
        elif doc.get("status") not in OPENAI_ENDED:
            return
        async with batch.lock:
            if batch.recorded:
                return
            if batch.client_format == "anthropic":
                if results is None:
                    answer = await self.relay_to(
                        batch, "GET", f"/v1/messages/batches/{batch.id}/results", timeouts
                    )
                    if not answer.ok:
                        log.warning("results of batch %s: HTTP %s", batch.id, answer.status)
                        return
                    results = answer.body
                await self.record(batch, anthropic_outcomes(results), "expired")
                return
            files = []
            for name in ("output_file_id", "error_file_id"):
                file_id = doc.get(name)
                if not isinstance(file_id, str):
                    continue
                answer = await self.relay_to(batch, "GET", f"/v1/files/{file_id}/content", timeouts)
                if not answer.ok:
                    log.warning("%s of batch %s: HTTP %s", name, batch.id, answer.status)
                    return
                files.append(answer.body)
            missing = "expired" if doc.get("status") == "expired" else "canceled"
            await self.record(batch, openai_outcomes(*files), missing)

    async def relay_to(
        self, held: HeldBatch | HeldFile, method: str, path: str, timeouts: TimeoutsConfig
    ) -> UpstreamAnswer:
        """`method path` relayed to the provider that has `held` (a batch: with the headers
        it was created with)."""
        headers = held.headers if isinstance(held, HeldBatch) else {}
        return await relay(self.held.provider(held), method, path, timeouts, headers=headers)

    def start(self, every: float, timeouts: TimeoutsConfig) -> None:
        self._poller = asyncio.get_running_loop().create_task(self._poll_forever(every, timeouts))

    async def _poll_forever(self, every: float, timeouts: TimeoutsConfig) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                batches = await self.held.open_batches(self.held.max_open)
            except Exception:  # the store away: try again next time
                log.exception("listing the open batches failed")
                continue
            for batch in batches:
                try:
                    await self.poll(batch, timeouts)
                except Exception:  # one batch's trouble must not stop the others'
                    log.exception("polling batch %s failed", batch.id)

    async def poll(self, batch: HeldBatch, timeouts: TimeoutsConfig) -> None:
        path = (
            f"/v1/messages/batches/{batch.id}"
            if batch.client_format == "anthropic"
            else f"/v1/batches/{batch.id}"
        )
        answer = await self.relay_to(batch, "GET", path, timeouts)
        if answer.ok:
            await self.record_ended(batch, answer.json(), timeouts)

    async def aclose(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
