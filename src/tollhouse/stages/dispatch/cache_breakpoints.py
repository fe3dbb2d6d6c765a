"""Automatic prompt-cache breakpoints: `cache_control` markers the gateway adds to a route's
Anthropic-format upstream requests (config `models.<route>.prompt_cache: {auto: true}`), so
that the stable prefix of a prompt is read from the provider's cache at about a tenth of
the input price instead of being paid in full on every call.

Why here, per attempt, and not in the shape stage: a breakpoint only means something to an
Anthropic-format upstream, and the format an attempt speaks is known only once its
deployment is (an OpenAI client routed to Claude is translated at the attempt; an
Anthropic client's fallback to an OpenAI deployment must never see a marker). The markers
also depend on the deployment's model, whose minimum cacheable length differs (the
catalog's `prompt_cache.min_tokens`). So they are placed on the copy of the body each
attempt builds (`upstream_request.build_upstream_request`), never on `call.body`: the
response cache key, the ledger's system-prompt hash and every other deployment see the
client's request as it came.

Where, in the order they are chosen while breakpoints are left (4 per request, the
client's own counted first, the top-level `cache_control` of automatic caching as one):

1. the end of the system prompt (with the tools before it): the prefix every conversation
   of an app shares;
2. the latest turn's last block: the whole conversation, for the next call to read;
3. the last user turn before it: what the previous call of the conversation wrote;
4. the end of the tools: for requests whose system prompt changes but tools do not.

Each only where the prefix it ends reaches the model's minimum (a shorter one is not
cached, and a marker there would only use up a breakpoint), on a block that can carry a
marker (not a thinking block, not empty text), and not where the client's own is. A
client's breakpoint is never changed or moved. The TTL is the route's (`5m` or `1h`),
lowered to `5m` after a client's 5-minute breakpoint and raised to `1h` before a client's
1-hour one, as the API requires longer-lived breakpoints to come first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tollhouse.config.prompt_cache import AutoBreakpoints, CacheTTL
from tollhouse.tokens.estimate import PrefixItem, anthropic_prompt_prefix
from tollhouse.wire.request_edits import (
    MAX_CACHE_BREAKPOINTS,
    CacheSpot,
    anthropic_breakpoints_used,
    anthropic_with_markers,
)

_RANK: dict[str, int] = {"5m": 1, "1h": 2}
_NOT_MARKABLE = frozenset({"thinking", "redacted_thinking"})


def with_auto_breakpoints(body: dict[str, Any], auto: AutoBreakpoints) -> dict[str, Any]:
    """`body` (an Anthropic Messages request) with the breakpoints `auto` places; `body`
    itself when none fits. `body` is never modified."""
    room = MAX_CACHE_BREAKPOINTS - anthropic_breakpoints_used(body)
    if room <= 0:
        return body
    items = list(anthropic_prompt_prefix(body))
    clients = [
        (n, str(item.item["cache_control"].get("ttl", "5m")))
        for n, item in enumerate(items)
        if isinstance(item.item, dict) and isinstance(item.item.get("cache_control"), dict)
    ]
    chosen: dict[CacheSpot, dict[str, Any]] = {}
    for position in _candidates(items):
        if position is None or items[position].tokens < auto.min_tokens:
            continue
        item = items[position]
        spot = (item.where, item.index, item.block)
        if spot in chosen or any(n == position for n, _ in clients):
            continue
        ttl = _ttl_between(auto.ttl, clients, position)
        if ttl is None:
            continue
        chosen[spot] = {"type": "ephemeral"} if ttl == "5m" else {"type": "ephemeral", "ttl": ttl}
        if len(chosen) == room:
            break
    return anthropic_with_markers(body, chosen)


def _candidates(items: list[PrefixItem]) -> list[int | None]:
    """Positions in `items` of the four places, in the order they are chosen."""
    system = _last_markable(items, lambda item: item.where == "system")
    tools = _last_markable(items, lambda item: item.where == "tools")
    messages = [item.index for item in items if item.where == "messages"]
    if not messages:
        return [system, tools]
    latest = messages[-1]
    earlier_users = [
        item.index
        for item in items
        if item.where == "messages" and item.role == "user" and item.index < latest
    ]
    previous = (
        _last_markable(
            items, lambda item: item.where == "messages" and item.index == earlier_users[-1]
        )
        if earlier_users
        else None
    )
    latest_end = _last_markable(
        items, lambda item: item.where == "messages" and item.index == latest
    )
    return [system, latest_end, previous, tools]


def _last_markable(items: list[PrefixItem], where: Callable[[PrefixItem], bool]) -> int | None:
    for position in range(len(items) - 1, -1, -1):
        item = items[position]
        if where(item) and _markable(item.item):
            return position
    return None


def _markable(element: Any) -> bool:
    if isinstance(element, str):
        return bool(element)
    if not isinstance(element, dict):
        return False
    kind = element.get("type")
    if kind in _NOT_MARKABLE:
        return False
    return not (kind == "text" and not element.get("text"))


def _ttl_between(
    wanted: CacheTTL, clients: list[tuple[int, str]], position: int
) -> CacheTTL | None:
    """`wanted`, made to fit between the client's breakpoints: no longer than any before
    `position`, no shorter than any after it; None when they leave no TTL that fits."""
    ceiling = min((_RANK.get(ttl, 1) for n, ttl in clients if n < position), default=2)
    floor = max((_RANK.get(ttl, 1) for n, ttl in clients if n > position), default=1)
    if floor > ceiling:
        return None
    rank = min(max(_RANK[wanted], floor), ceiling)
    return "1h" if rank == 2 else "5m"
