"""`GET /v1/organizations/usage_report/messages`: token usage per time bucket, shaped as
Anthropic's Admin API answers it, so the scripts and dashboards written for it work
against the gateway unchanged.

Differences from Anthropic's, all additive or documented:

- `group_by[]` takes Anthropic's `service_tier`, `context_window`, `inference_geo` and
  `speed` with the values the upstream reported (`context_window` is the band of the
  prompt: `0-200k`, `200k-1M`, split at the model's long-context threshold), and also
  `end_user`, `team`, `project`, `provider`, `model_requested` (the alias the client
  asked for; `model` is the model that answered), `route`, `variant` (the route's
  variant that served the call, null for a route without variants), `config_version`
  (the config version that served it, as text; null for calls recorded without one) and
  `system_prompt` (the short hash of the system prompt, null without one). `workspace_id`
  is accepted and always null: a gateway has no workspaces. Filters take `models[]`,
  `api_key_ids[]`, `end_users[]`, `teams[]`, `projects[]`, `providers[]`, `routes[]`,
  `variants[]`, `config_versions[]`, `system_prompts[]`, `service_tiers[]`,
  `context_window[]`, `inference_geos[]`, `speeds[]`; Anthropic's filters on things the
  ledger lacks (`workspace_ids[]`...) are refused, not ignored.
- Priority Tier calls are in the usage report like any other (the cost report leaves
  their cost out, as Anthropic's does).
- `server_tool_use` also counts `web_fetch_requests`. Each result also carries
  `requests` and `error_requests` (status >= 400), `cache_hit_ratio` (cache reads over
  all input tokens, uncached, cache writes and reads; null without input), and every
  grouping field, null when not grouped by it.
- With `ending_at` inside a bucket, that last bucket counts calls before `ending_at` only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tollhouse.ports.ledger.base import LedgerStore, UsageRow
from tollhouse.reports import params as p
from tollhouse.reports.buckets import bucketed_report

_WIDTH_LIMITS = {"1m": (60, 1440), "1h": (24, 168), "1d": (7, 31)}  # (default, maximum)
_ALWAYS_NULL = ("workspace_id",)
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
        store, window, width, grouped, allowed, lambda row: [_result(row, grouped)]
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
        "server_tool_use": {
            "web_search_requests": row.web_search_requests,
            "web_fetch_requests": row.web_fetch_requests,
        },
        **fields,
        "requests": row.calls,
        "error_requests": row.error_calls,
        "cache_hit_ratio": cache_hit_ratio(row),
    }


def cache_hit_ratio(row: UsageRow) -> float | None:
    """Cache reads over all input tokens of `row` (uncached, cache writes, cache reads),
    rounded to 4 places; None when it has no input."""
    total = (
        row.input_tokens
        + row.cache_write_5m_tokens
        + row.cache_write_1h_tokens
        + row.cache_read_tokens
    )
    return round(row.cache_read_tokens / total, 4) if total else None
