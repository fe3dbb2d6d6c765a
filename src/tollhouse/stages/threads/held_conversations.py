"""The conversation store as the stages use it: whose a conversation is, bounded waits,
documents in and out, and what happened counted for /metrics.

A conversation belongs to the gateway key that made it (its id); on an open gateway, to
the credential the client presented (hashed), as the response cache namespaces answers, so
one client never continues another's. A document larger than `conversations.max_bytes` is
not kept; a store that fails or is slow is logged (rate-limited) and counted, and the call
goes on: a turn not kept is refused when continued, and the SDKs then resend it all.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Iterator, Mapping
from typing import Any, Literal

import orjson
from prometheus_client.core import CounterMetricFamily, Metric

from tollhouse.call import Call
from tollhouse.config.model import ConversationsConfig
from tollhouse.observability.rate_limited_log import RateLimitedLog
from tollhouse.ports.conversations.base import ConversationStore, ConversationStoreUnavailable

log = logging.getLogger("tollhouse.conversations")

Lookup = Literal["found", "not_found", "store_failed"]
Kept = Literal["stored", "too_large", "store_failed"]


def tenant_of(key_id: str | None, headers: Mapping[str, str]) -> str:
    """Whose conversations a request made with gateway key `key_id` (None on an open
    gateway: the credential in `headers`) may read and write."""
    if key_id:
        return f"key:{key_id}"
    presented = headers.get("x-api-key") or headers.get("authorization") or ""
    return "open:" + hashlib.sha256(presented.encode()).hexdigest()[:32]


class StoreFailed(Exception):
    """The store could not answer a lookup in time; the message says why."""


class HeldConversations:
    """`store` is None when conversations are off (`conversations.backend: off`)."""

    def __init__(self, config: ConversationsConfig, store: ConversationStore | None) -> None:
        self.config = config
        self.store = store
        self.lookups: dict[Lookup, int] = {"found": 0, "not_found": 0, "store_failed": 0}
        self.kept: dict[Kept, int] = {"stored": 0, "too_large": 0, "store_failed": 0}
        self._log = RateLimitedLog(log)

    @property
    def enabled(self) -> bool:
        return self.store is not None

    @staticmethod
    def tenant(call: Call) -> str:
        """Whose conversations `call` may read and write."""
        return tenant_of(call.key_id, call.headers)

    async def load(self, tenant: str, turn_id: str) -> dict[str, Any] | None:
        """The document stored under `turn_id` for `tenant`, None when there is none.
        Raises `StoreFailed` when the store does not answer in time."""
        assert self.store is not None
        try:
            async with asyncio.timeout(self.config.timeout_seconds):
                raw = await self.store.get(tenant, turn_id)
        except (ConversationStoreUnavailable, TimeoutError) as error:
            self.lookups["store_failed"] += 1
            why = str(error) or f"no answer in {self.config.timeout_seconds:g} s"
            self._log.event(logging.ERROR, "conversation_store_failed", ("get",), {"error": why})
            raise StoreFailed(why) from error
        if raw is None:
            self.lookups["not_found"] += 1
            return None
        self.lookups["found"] += 1
        doc = orjson.loads(raw)
        return doc if isinstance(doc, dict) else None

    async def keep(
        self, tenant: str, turn_id: str, document: dict[str, Any], replaces: str | None
    ) -> bool:
        """Store `document` under `turn_id` in place of `replaces`; whether it was kept."""
        assert self.store is not None
        data = orjson.dumps(document)
        if len(data) > self.config.max_bytes:
            self.kept["too_large"] += 1
            return False
        try:
            async with asyncio.timeout(self.config.timeout_seconds):
                await self.store.put(
                    tenant, turn_id, data, ttl=self.config.ttl_seconds, replaces=replaces
                )
        except (ConversationStoreUnavailable, TimeoutError) as error:
            self.kept["store_failed"] += 1
            why = str(error) or f"no answer in {self.config.timeout_seconds:g} s"
            self._log.event(logging.ERROR, "conversation_store_failed", ("put",), {"error": why})
            return False
        self.kept["stored"] += 1
        return True

    def collect(self) -> Iterator[Metric]:
        lookups = CounterMetricFamily(
            "tollhouse_conversation_lookups",
            "Continuations of conversations the gateway holds, by result",
            labels=["result"],
        )
        for result, count in self.lookups.items():
            lookups.add_metric([result], count)
        yield lookups
        kept = CounterMetricFamily(
            "tollhouse_conversation_turns_kept",
            "Answered turns of conversations the gateway holds, by what became of them",
            labels=["result"],
        )
        for outcome, number in self.kept.items():
            kept.add_metric([outcome], number)
        yield kept

    async def aclose(self) -> None:
        if self.store is not None:
            await self.store.aclose()
