"""`tollhouse audit`: the lifecycle state of every configured route's models and of every
model the ledger shows in use (reports/lifecycle_audit.py), for CI.

Exit codes: 0 when nothing in use retires within `--within` days, 1 when something does
(the models are named on stderr), 2 when the audit could not run (bad options, config or
catalog, an unreadable ledger). The catalog is the config's: the shipped one, or
`catalog.path`, with the config's overrides.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import sys
from datetime import UTC, datetime

from tollhouse.catalog.models import CatalogError, ModelCatalog
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
from tollhouse.config import ConfigError, GatewayConfig, default_config, load_config
from tollhouse.reports.lifecycle_audit import AuditEntry, due, lifecycle_audit

_COLUMNS = ("model", "state", "retires_on", "days_left", "replacement", "routes", "calls")


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "audit",
        help="lifecycle state of the models routed and used; exit 1 when one retires soon",
        description="Exit 0: nothing in use retires within --within days; 1: something "
        "does (or has retired); 2: the audit could not run.",
    )
    add_store_options(parser)
    parser.add_argument(
        "--since", default="90d", help="ledger period: RFC 3339 time or span (default 90d)"
    )
    parser.add_argument(
        "--within",
        type=int,
        default=60,
        help="fail when a model in use retires within this many days (default 60)",
    )
    parser.add_argument("--format", choices=("table", "json", "csv"), default="table")
    parser.add_argument("--no-ledger", action="store_true", help="audit the configured routes only")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    try:
        config = load_config(args.config) if args.config else default_config()
        catalog = config.catalog.build()
        since = parse_time(args.since, now=now, option="--since")
        if args.within < 0:
            raise CommandError("--within: must be 0 or more days")
        entries = asyncio.run(_audit(args, config, catalog, since, now))
    except (CommandError, ConfigError, CatalogError) as error:
        print(f"tollhouse audit: {error}", file=sys.stderr)
        return 2
    except STORE_ERRORS as error:
        print(f"tollhouse audit: {store_failure(error)}", file=sys.stderr)
        return 2
    print(render(entries, args.format), end="")
    failing = due(entries, args.within)
    for entry in failing:
        when = "retired" if (entry.days_left or 0) <= 0 else f"retires in {entry.days_left} days"
        print(
            f"tollhouse audit: {entry.model} is in use and {when}"
            + (f" (replacement: {entry.replacement})" if entry.replacement else ""),
            file=sys.stderr,
        )
    return 1 if failing else 0


async def _audit(
    args: argparse.Namespace,
    config: GatewayConfig,
    catalog: ModelCatalog,
    since: datetime,
    now: datetime,
) -> list[AuditEntry]:
    store = None if args.no_ledger else store_of(args)
    try:
        return await lifecycle_audit(config, catalog, store, since=since, today=now.date())
    finally:
        if store is not None:
            await store.aclose()


def render(entries: list[AuditEntry], fmt: str) -> str:
    """The audit as `table`, `json` or `csv` text (CSV: one row per model, key and team)."""
    if fmt == "json":
        return json.dumps({"models": [entry.document() for entry in entries]}, indent=2) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([*_COLUMNS, "key_id", "team", "key_team_calls", "cost_usd"])
        for entry in entries:
            doc = entry.document()
            head = [_cell(doc[name]) for name in _COLUMNS]
            for row in doc["by_key_team"] or [None]:
                if row is None:
                    writer.writerow([*head, "", "", "0", "0"])
                else:
                    writer.writerow(
                        [
                            *head,
                            _cell(row["key_id"]),
                            _cell(row["team"]),
                            row["calls"],
                            row["cost_usd"],
                        ]
                    )
        return out.getvalue()
    rows = []
    for entry in entries:
        doc = entry.document()
        rows.append([*(_cell(doc[name]) or "-" for name in _COLUMNS), _money(doc)])
        for row in doc["by_key_team"]:
            who = f"  key {row['key_id'] or '-'} team {row['team'] or '-'}"
            rows.append([who, "", "", "", "", "", str(row["calls"]), _money(row)])
    return table([*_COLUMNS, "cost_usd"], rows, right=(3, 6, 7)) + "\n"


def _money(doc: dict[str, object]) -> str:
    unpriced = doc["unpriced_calls"]
    return f"{doc['cost_usd']}" + (f" +{unpriced} unpriced" if unpriced else "")


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)
