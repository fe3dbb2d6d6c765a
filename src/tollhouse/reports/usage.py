"""`GET /v1/organizations/usage_report/messages`: token usage per time bucket, shaped as
Anthropic's Admin API answers it, so the scripts and dashboards written for it work
against the gateway unchanged.

Differences from Anthropic's, all additive or documented:

- `group_by[]` also takes `end_user`, `team`, `project`, `provider`, `model_requested`
  (the alias the client asked for; `model` is the model that answered), `route` and
  `variant` (the route's variant that served the call, null for a route without
  variants). `workspace_id`, `service_tier` and `context_window` are accepted and always
  null: a gateway has no workspaces, and tiers and windows aren't in the ledger. Filters
  take `models[]`, `api_key_ids[]`, `end_users[]`, `teams[]`, `projects[]`,
  `providers[]`, `routes[]`, `variants[]`; Anthropic's filters on things the ledger lacks
  (`workspace_ids[]`...) are refused, not ignored.
- Each result also carries `requests` and `error_requests` (status >= 400), and every
  grouping field, null when not grouped by it.
- `server_tool_use.web_search_requests` is always 0: server tools aren't counted yet.
- With `ending_at` inside a bucket, that last bucket counts calls before `ending_at` only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tollhouse.ports.ledger.base import LedgerStore, UsageRow
from tollhouse.reports import params as p
from tollhouse.reports.buckets import bucketed_report

_WIDTH_LIMITS = {"1m": (60, 1440), "1h": (24, 168), "1d": (7, 31)}  # (default, maximum)
_ALWAYS_NULL = ("workspace_id", "service_tier", "context_window")
_GROUP_FIELDS = (*_ALWAYS_NULL, *p.DIMENSIONS)


async def usage_report(
    store: LedgerStore, params: p.Params, *, now: datetime | None = None
) -> dict[str, Any]:
    """The report for the query `params` (each name with its list of values, as a query
    string parses); `now` (default: the clock) ends a report without `ending_at`. Raises
    `BadRequest` naming the parameter at fault."""
    width = p.bucket_width(params, tuple(_WIDTH_LIMITS), "1d")
    default, maximum = _WIDTH_LIMITS[width]
    page_size = p.limit(params, default, maximum)
    names = p.group_by(params, _ALWAYS_NULL)
    allowed = p.filters(params)
    window = p.window(params, width, page_size, now or datetime.now(UTC))
    grouped = [name for name in names if name in p.DIMENSIONS]
    return await bucketed_report(
        store, window, width, grouped, allowed, lambda row: _result(row, grouped)
    )


def _result(row: UsageRow, grouped: list[str]) -> dict[str, Any]:
    fields: dict[str, Any] = dict.fromkeys(_GROUP_FIELDS)
    for name in grouped:
        fields[name] = row.group[p.DIMENSIONS[name]]
    return {
        "uncached_input_tokens": row.input_tokens,
        "cache_creation": {
            "ephemeral_1h_input_tokens": row.cache_write_1h_tokens,
            "ephemeral_5m_input_tokens": row.cache_write_5m_tokens,
        },
        "cache_read_input_tokens": row.cache_read_tokens,
        "output_tokens": row.output_tokens,
        "server_tool_use": {"web_search_requests": 0},
        **fields,
        "requests": row.calls,
        "error_requests": row.error_calls,
    }
