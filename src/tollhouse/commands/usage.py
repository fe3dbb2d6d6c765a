"""`tollhouse usage`: calls, tokens, the prompt-cache hit ratio, server-tool uses and cost
over a period, optionally by model, key, user, team, project, provider, route, variant,
config version, system prompt (its short hash), service tier, inference geography, speed,
context window, day or hour, summed by the ledger's database.

Cost is exact (the ledger's Decimal sums, printed in full) and never pretends: calls whose
price is unknown are counted beside it (`0.0054 +2 unpriced`), not added as $0. Calls
billed against a commitment (Anthropic's Priority Tier) are counted in the tokens and shown
apart from the cost (`+1 commitment 0.0125`), as the provider's cost report leaves them out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tollhouse.commands import (
    STORE_ERRORS,
    CommandError,
    Subparsers,
    add_store_options,
    parse_time,
    store_failure,
    store_of,
    table,
)
from tollhouse.ports.ledger.base import BucketWidth, LedgerStore, UsageRow
from tollhouse.reports.usage import cache_hit_ratio

# --by name -> ledger column
_COLUMNS = {
    "model": "model_served",
    "key": "key_id",
    "user": "end_user",
    "team": "team",
    "project": "project",
    "provider": "provider",
    "route": "route",
    "variant": "variant",
    "version": "config_version",
    "prompt": "system_prompt_hash",
    "tier": "service_tier",
    "geo": "inference_geo",
    "speed": "speed",
    "context": "context_window",
}
_WIDTHS: dict[str, BucketWidth] = {"day": "1d", "hour": "1h"}
_SUMS = (
    "calls",
    "errors",
    "input",
    "output",
    "cache_write",
    "cache_read",
    "hit_ratio",
    "web_search",
    "cost_usd",
)


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("usage", help="calls, tokens and cost over a period")
    add_store_options(parser)
    parser.add_argument(
        "--since", default="7d", help="RFC 3339 time or span back like 24h, 7d (default 7d)"
    )
    parser.add_argument("--until", help="RFC 3339 time or span back (default: now)")
    parser.add_argument(
        "--by",
        action="append",
        default=[],
        choices=[*_COLUMNS, *_WIDTHS],
        help="split by this (repeatable)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        report = asyncio.run(_report(args, datetime.now(UTC)))
    except CommandError as error:
        print(f"tollhouse usage: {error}", file=sys.stderr)
        return 2
    except STORE_ERRORS as error:
        print(f"tollhouse usage: {store_failure(error)}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(_table(report))
    return 0


async def _report(args: argparse.Namespace, now: datetime) -> dict[str, Any]:
    since = parse_time(args.since, now=now, option="--since")
    until = parse_time(args.until, now=now, option="--until") if args.until else None
    if until is not None and until <= since:
        raise CommandError("--until: must be after --since")
    widths = {_WIDTHS[by] for by in args.by if by in _WIDTHS}
    if len(widths) > 1:
        raise CommandError("--by: day and hour can't be combined")
    groups = list(dict.fromkeys(by for by in args.by if by in _COLUMNS))
    width = widths.pop() if widths else None
    store = store_of(args)
    try:
        rows = await _rows(store, since, until, width, groups)
    finally:
        await store.aclose()
    bucket = {"1d": "day", "1h": "hour"}.get(width or "")
    return {
        "since": _iso(since),
        "until": _iso(until) if until else None,
        "by": [*([bucket] if bucket else []), *groups],
        "rows": [_json_row(row, bucket, groups) for row in rows],
        "total": _json_row(_total(rows), None, []),
    }


async def _rows(
    store: LedgerStore,
    since: datetime,
    until: datetime | None,
    width: BucketWidth | None,
    groups: list[str],
) -> list[UsageRow]:
    return await store.aggregate(
        since=since,
        until=until,
        bucket_width=width,
        group_by=[_COLUMNS[name] for name in groups],
    )


def _total(rows: list[UsageRow]) -> UsageRow:
    return UsageRow(
        bucket=None,
        group={},
        calls=sum(row.calls for row in rows),
        error_calls=sum(row.error_calls for row in rows),
        input_tokens=sum(row.input_tokens for row in rows),
        output_tokens=sum(row.output_tokens for row in rows),
        cache_write_5m_tokens=sum(row.cache_write_5m_tokens for row in rows),
        cache_write_1h_tokens=sum(row.cache_write_1h_tokens for row in rows),
        cache_read_tokens=sum(row.cache_read_tokens for row in rows),
        cost_usd=sum((row.cost_usd for row in rows), Decimal(0)),
        unpriced_calls=sum(row.unpriced_calls for row in rows),
        web_search_requests=sum(row.web_search_requests for row in rows),
        web_fetch_requests=sum(row.web_fetch_requests for row in rows),
        commitment_calls=sum(row.commitment_calls for row in rows),
        commitment_cost_usd=sum((row.commitment_cost_usd for row in rows), Decimal(0)),
    )


def _json_row(row: UsageRow, bucket: str | None, groups: list[str]) -> dict[str, Any]:
    keys: dict[str, Any] = {}
    if bucket and row.bucket is not None:
        keys[bucket] = _iso(row.bucket)
    for name in groups:
        keys[name] = row.group[_COLUMNS[name]]
    return {
        **keys,
        "calls": row.calls,
        "errors": row.error_calls,
        "input": row.input_tokens,
        "output": row.output_tokens,
        "cache_write": row.cache_write_5m_tokens + row.cache_write_1h_tokens,
        "cache_read": row.cache_read_tokens,
        "hit_ratio": cache_hit_ratio(row),
        "web_search": row.web_search_requests,
        "web_fetch": row.web_fetch_requests,
        "cost_usd": format(row.cost_usd, "f"),  # a string: exact, unlike a JSON number
        "unpriced_calls": row.unpriced_calls,
        "commitment_calls": row.commitment_calls,
        "commitment_cost_usd": format(row.commitment_cost_usd, "f"),
    }


def _table(report: dict[str, Any]) -> str:
    period = f"{report['since']} .. {report['until'] or 'now'}"
    if not report["rows"]:
        return f"usage {period}: no calls"
    keys: list[str] = report["by"]
    rows = [[*(_text(row[key]) for key in keys), *_sums(row)] for row in report["rows"]]
    if keys:  # split rows: their total below them
        rows.append(["total", *[""] * (len(keys) - 1), *_sums(report["total"])])
    return f"usage {period}\n" + table(
        [*keys, *_SUMS], rows, right=range(len(keys), len(keys) + len(_SUMS))
    )


def _sums(row: dict[str, Any]) -> list[str]:
    cost = row["cost_usd"]
    if row["unpriced_calls"]:
        cost = f"{cost} +{row['unpriced_calls']} unpriced"
    if row["commitment_calls"]:
        cost = f"{cost} +{row['commitment_calls']} commitment {row['commitment_cost_usd']}"
    ratio = row["hit_ratio"]
    return [
        *(
            ("-" if ratio is None else f"{ratio:.1%}") if name == "hit_ratio" else f"{row[name]:,}"
            for name in _SUMS[:-1]
        ),
        cost,
    ]


def _text(value: Any) -> str:
    return "-" if value is None else str(value)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
