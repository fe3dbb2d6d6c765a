"""`GET /v1/organizations/cost_report`: spend per UTC day, shaped as Anthropic's Admin API
answers it. `amount` is a decimal string in cents (`"123.4567"` is $1.234567, trailing
zeros dropped), summed exactly from the ledger's Decimal costs: no float on the way.

A call whose price is unknown (a model missing from the catalog, a server tool or tier
without a rate) is not a free call: each group's first result carries `unpriced_calls`, how
many calls its `amount` leaves out, so a report with unknown prices reads as incomplete
rather than cheap.

Priority Tier calls (Anthropic bills them against a commitment, not per token) are left
out of `amount`, as Anthropic's cost report leaves them out; each group's first result
says how many there were (`commitment_calls`) and what they would cost at standard rates
(`commitment_amount`, cents), so the omission is stated, not silent. Budgets count them.

`group_by[]=description` gives line items, one result per line with a cost: `cost_type`
`tokens` with its `token_type` (`uncached_input_tokens`, `output_tokens`,
`cache_creation.ephemeral_5m_input_tokens`, `cache_creation.ephemeral_1h_input_tokens`,
`cache_read_input_tokens`, and `audio_tokens`), `web_search`, `web_fetch` and
`server_tools` (any other server tool), each with the model that answered and a
`description` ("<model> usage - input tokens"). Calls recorded before the ledger kept
lines show as one line of `token_type: null` ("not itemized"), so the lines of a group
always add up to its amount.

Differences from Anthropic's, all additive or documented:

- `group_by[]` takes `workspace_id` (always null: a gateway has no workspaces),
  `description`, `service_tier`, `context_window`, `inference_geo`, `speed` (as the usage
  report), and `model`, `api_key_id`, `end_user`, `team`, `project`, `provider`,
  `model_requested`, `route`, `variant`, and the filters of the usage report.
- Each result also carries every grouping field, null when not grouped by it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Context, Decimal, Inexact
from typing import Any

from tollhouse.ports.ledger.base import LedgerStore, UsageRow
from tollhouse.reports import params as p
from tollhouse.reports.buckets import bucketed_report

_DEFAULT_LIMIT, _MAX_LIMIT = 7, 31
_ALWAYS_NULL = ("workspace_id", "description")
_EXACT = Context(prec=200, traps=[Inexact])  # a rounded amount raises rather than lies

# Ledger cost line -> (cost_type, token_type, description suffix)
_LINE_ITEMS: dict[str, tuple[str, str | None, str]] = {
    "input": ("tokens", "uncached_input_tokens", "input tokens"),
    "output": ("tokens", "output_tokens", "output tokens"),
    "cache_write_5m": (
        "tokens",
        "cache_creation.ephemeral_5m_input_tokens",
        "5m cache write tokens",
    ),
    "cache_write_1h": (
        "tokens",
        "cache_creation.ephemeral_1h_input_tokens",
        "1h cache write tokens",
    ),
    "cache_read": ("tokens", "cache_read_input_tokens", "cache read tokens"),
    "audio": ("tokens", "audio_tokens", "audio tokens"),
    "web_search": ("web_search", None, "web search"),
    "web_fetch": ("web_fetch", None, "web fetch"),
    "other_tool": ("server_tools", None, "server tools"),
}


async def cost_report(
    store: LedgerStore, params: p.Params, *, now: datetime | None = None
) -> dict[str, Any]:
    """The report for the query `params` (each name with its list of values, as a query
    string parses); `now` (default: the clock) ends a report without `ending_at`. Raises
    `BadRequest` naming the parameter at fault."""
    width = p.bucket_width(params, ("1d",), "1d")
    page_size = p.limit(params, _DEFAULT_LIMIT, _MAX_LIMIT)
    names = p.group_by(params, _ALWAYS_NULL)
    allowed = p.filters(params)
    window = p.window(params, width, page_size, now or datetime.now(UTC))
    grouped = [name for name in names if name in p.DIMENSIONS]
    by_description = "description" in names
    if by_description and "model" not in grouped:
        grouped.append("model")
    return await bucketed_report(
        store, window, width, grouped, allowed, lambda row: _results(row, grouped, by_description)
    )


def cents(dollars: Decimal) -> str:
    """`dollars` in cents as a plain decimal string without trailing zeros; exact."""
    return format(dollars.scaleb(2, _EXACT).normalize(_EXACT), "f")


def _results(row: UsageRow, grouped: list[str], by_description: bool) -> list[dict[str, Any]]:
    fields: dict[str, Any] = dict.fromkeys(("workspace_id", *p.DIMENSIONS))
    for name in grouped:
        fields[name] = row.group[p.DIMENSIONS[name]]
    group = {
        "unpriced_calls": row.unpriced_calls,
        "commitment_calls": row.commitment_calls,
        "commitment_amount": cents(row.commitment_cost_usd),
    }
    if not by_description:
        return [{**_result(row.cost_usd, None, None, None, fields), **group}]
    model = fields["model"] or "unknown model"
    items = []
    for line, (cost_type, token_type, what) in _LINE_ITEMS.items():
        amount = row.cost_lines.get(line, Decimal(0))
        if amount:
            description = f"{model} usage - {what}"
            items.append(_result(amount, description, cost_type, token_type, fields))
    unitemized = _EXACT.subtract(row.cost_usd, sum(row.cost_lines.values(), Decimal(0)))
    if unitemized or not items:
        description = f"{model} usage" + (" (not itemized)" if unitemized else "")
        items.append(_result(unitemized, description, "tokens", None, fields))
    zeros = dict.fromkeys(group, 0) | {"commitment_amount": "0"}
    return [{**item, **(group if index == 0 else zeros)} for index, item in enumerate(items)]


def _result(
    amount: Decimal,
    description: str | None,
    cost_type: str | None,
    token_type: str | None,
    fields: dict[str, Any],
) -> dict[str, Any]:
    return {
        "currency": "USD",
        "amount": cents(amount),
        "description": description,
        "cost_type": cost_type,
        "token_type": token_type,
        **fields,
    }
