"""The admin API's call route, one pure handler the HTTP layer calls after checking the
admin token:

    GET  /admin/calls/{request_id}   the ledger's record of one call, without its text

What a client of the gateway (the eval runner, a CI job) needs to learn what a call it made
cost without access to the ledger's database: the gateway prices a call after answering it,
so its cost is never on the answer. The record appears once the ledger writer has flushed
it (`ledger.flush_interval`); until then the answer is 404. Prompt and answer text are left
out: they are for `tollhouse logs`, on the ledger's own host.
"""

from __future__ import annotations

from typing import Any

import msgspec

from tollhouse.errors import MethodNotAllowed, NotFound
from tollhouse.ports.ledger.base import LedgerStore

_WITHOUT = ("prompt_text", "answer_text")


async def calls_admin(store: LedgerStore, method: str, subpath: str) -> tuple[int, dict[str, Any]]:
    """Answer one admin request on calls: (HTTP status, JSON body); `subpath` is the path
    after `/admin/calls` (`/{request_id}`)."""
    parts = [part for part in subpath.split("/") if part]
    if len(parts) != 1:
        raise NotFound("GET /admin/calls/{request_id}: name one call by its request id")
    if method.upper() not in ("GET", "HEAD"):
        raise MethodNotAllowed(f"{method} /admin/calls/{{request_id}}: only GET is allowed")
    records = await store.query(filters={"request_id": parts[0]}, limit=1)
    if not records:
        raise NotFound(f"no call {parts[0]!r} in the ledger (yet: records are written in batches)")
    doc: dict[str, Any] = msgspec.to_builtins(records[0])
    for field in _WITHOUT:
        doc.pop(field, None)
    return 200, doc
