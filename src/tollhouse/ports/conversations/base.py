"""The conversation store: the turns of conversations the gateway holds for its clients.

A stored turn is one opaque document (the whole conversation up to and including one
answer, encoded by its stage) under the id the client continues from, owned by one tenant
(the gateway key that made it). The store knows nothing of wire formats: Anthropic threads
and the Responses API's `previous_response_id` keep their own documents in it
(stages/threads/).

Contract of every implementation (`sqlite.py`, `postgres.py`, `redis.py`):
- `get(tenant, turn_id)` is the document, or None when the id is unknown, expired, or
  another tenant's: a tenant never reads another's turns.
- `put(tenant, turn_id, document, ttl=, replaces=)` keeps the document `ttl` seconds and
  drops the turn `replaces` (the one it continued): a turn is continued once, so a
  conversation of many turns holds one row, not one per turn. A tenant keeps at most
  `max_per_tenant` turns; beyond that its oldest are dropped (their continuation is then
  refused as not found, and the SDKs send the whole conversation again).
- Failures of the backing server are `ConversationStoreUnavailable`, within the store's
  timeout.
"""

from __future__ import annotations

from typing import Protocol


class ConversationStoreUnavailable(Exception):
    """The store's server can't be reached or didn't answer in time."""


class ConversationStore(Protocol):
    async def open(self) -> None:
        """Connect and migrate now (otherwise done on first use)."""

    async def get(self, tenant: str, turn_id: str) -> bytes | None: ...

    async def put(
        self,
        tenant: str,
        turn_id: str,
        document: bytes,
        *,
        ttl: float,
        replaces: str | None = None,
    ) -> None: ...

    async def aclose(self) -> None: ...
