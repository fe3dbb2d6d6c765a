"""How many server-tool uses a request allows, for the budget reservation (stages/admit.py).

Anthropic's server tools are declared in `tools` with a versioned `type`
(`web_search_20250305`, `web_fetch_20260209`...) and an optional `max_uses`; a Chat
Completions request to an OpenAI search model (`web_search_options`) searches once. The
counts use the usage object's names (`web_search_requests`...), so the catalog's per-use
rates (`CatalogModel.server_tools`) price them as they price the usage afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from tollhouse.catalog.models import CatalogModel

# A server tool without `max_uses` has no upstream bound; the reservation holds this many
# uses of it, and settling the call books what it really used.
DEFAULT_MAX_USES = 10

_TOOL_TYPES = (("web_search_", "web_search_requests"), ("web_fetch_", "web_fetch_requests"))


def requested_server_tool_uses(body: Mapping[str, Any]) -> dict[str, int]:
    """The most uses of each server tool `body` allows, by usage name; {} for none."""
    uses: dict[str, int] = {}
    tools = body.get("tools")
    for tool in tools if isinstance(tools, list) else ():
        kind = tool.get("type") if isinstance(tool, Mapping) else None
        if not isinstance(kind, str):
            continue
        for prefix, name in _TOOL_TYPES:
            if kind.startswith(prefix):
                most = tool.get("max_uses")
                allowed = most if isinstance(most, int) and most >= 0 else DEFAULT_MAX_USES
                uses[name] = uses.get(name, 0) + allowed
    if "web_search_options" in body:
        uses["web_search_requests"] = max(uses.get("web_search_requests", 0), 1)
    return uses


def server_tool_reserve(entry: CatalogModel | None, uses: Mapping[str, int]) -> Decimal:
    """What `uses` cost at `entry`'s per-use rates; a tool without a rate adds nothing here
    (the call's cost is then flagged unknown when it is accounted)."""
    if entry is None:
        return Decimal(0)
    total = Decimal(0)
    for name, count in uses.items():
        rate = entry.server_tools.get(name)
        if rate is not None:
            total += count * rate.usd_per_unit
    return total
