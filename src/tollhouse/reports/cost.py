"""`GET /v1/organizations/cost_report`: spend per UTC day, shaped as Anthropic's Admin API
answers it. `amount` is a decimal string in cents (`"123.4567"` is $1.234567, trailing
zeros dropped), summed exactly from the ledger's Decimal costs: no float on the way.

A call whose price is unknown (a model missing from the catalog) is not a free call: each
result carries `unpriced_calls`, how many calls its `amount` leaves out, so a report with
unknown prices reads as incomplete rather than cheap.

Differences from Anthropic's, all additive or documented:

- `group_by[]` takes `workspace_id` (always null: a gateway has no workspaces) and
  `description`, which groups by the model that answered and fills `model`,
  `description` (`"<model> usage"`) and `cost_type: "tokens"`. The ledger keeps one cost
  per call, not one per token type, so `token_type`, `service_tier`, `context_window` and
  `inference_geo` stay null. It also takes `model`, `api_key_id`, `end_user`, `team`,
  `project`, `provider`, `model_requested`, `route`, `variant`, and the filters of the
  usage report.
- Each result also carries `unpriced_calls` and every grouping field, null when not
  grouped by it.
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
_NULL_FIELDS = ("context_window", "service_tier", "token_type", "inference_geo")
_EXACT = Context(prec=200, traps=[Inexact])  # a rounded amount raises rather than lies


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
        store, window, width, grouped, allowed, lambda row: _result(row, grouped, by_description)
    )


def cents(dollars: Decimal) -> str:
    """`dollars` in cents as a plain decimal string without trailing zeros; exact."""
    return format(dollars.scaleb(2, _EXACT).normalize(_EXACT), "f")


def _result(row: UsageRow, grouped: list[str], by_description: bool) -> dict[str, Any]:
    fields: dict[str, Any] = dict.fromkeys(("workspace_id", *p.DIMENSIONS))
    for name in grouped:
        fields[name] = row.group[p.DIMENSIONS[name]]
    model = fields["model"]
    return {
        "currency": "USD",
        "amount": cents(row.cost_usd),
        "description": f"{model or 'unknown model'} usage" if by_description else None,
        "cost_type": "tokens" if by_description else None,
        **dict.fromkeys(_NULL_FIELDS),
        **fields,
        "unpriced_calls": row.unpriced_calls,
    }
