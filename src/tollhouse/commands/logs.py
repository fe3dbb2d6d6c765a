"""`tollhouse logs`: the most recent calls in the ledger, oldest first so the newest is
at the bottom, and with `--follow` the calls that arrive after, polled every second until
Ctrl-C. `--json` prints every field of each record, one JSON object per line.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec

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
from tollhouse.ports.ledger.base import LedgerStore
from tollhouse.ports.ledger.record import CallRecord

_HEADERS = ["time", "request id", "model", "status", "in", "out", "ms", "cost", "stop / error"]
_NUMBERS = range(3, 8)
_FOLLOW_BATCH = 1000
_encode = msgspec.json.Encoder().encode


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("logs", help="the most recent calls")
    add_store_options(parser)
    parser.add_argument("-n", type=int, default=20, help="how many calls (default 20)")
    parser.add_argument("--model", help="only calls answered by this model")
    parser.add_argument("--key", help="only calls with this gateway key id")
    parser.add_argument("--user", help="only calls of this end user")
    parser.add_argument("--team", help="only calls of this team")
    parser.add_argument("--project", help="only calls of this project")
    parser.add_argument("--status", type=int, help="only calls answered with this status")
    parser.add_argument("--errors-only", action="store_true", help="only calls with status >= 400")
    parser.add_argument("--search", metavar="TEXT", help="ids, models, user, error, prompt, answer")
    parser.add_argument("--since", help="RFC 3339 time or span back like 1h, 2d")
    parser.add_argument("--follow", "-f", action="store_true", help="keep printing new calls")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--poll-interval", type=float, default=1.0, help=argparse.SUPPRESS)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.n < 0:
        print("tollhouse logs: -n: must be >= 0", file=sys.stderr)
        return 2
    if args.follow:
        # Ctrl-C (or SIGTERM) ends --follow, even in a process started with SIGINT ignored
        # (`nohup`, a shell's background job), where it would otherwise poll forever.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        asyncio.run(_logs(args, _printer(args.json)))
    except CommandError as error:
        print(f"tollhouse logs: {error}", file=sys.stderr)
        return 2
    except STORE_ERRORS as error:
        print(f"tollhouse logs: {store_failure(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass  # the way out of --follow
    return 0


async def _logs(args: argparse.Namespace, show: Callable[[list[CallRecord]], None]) -> None:
    since = parse_time(args.since, now=datetime.now(UTC), option="--since") if args.since else None
    options: dict[str, Any] = {
        "filters": _filters(args),
        "search": args.search,
        "errors_only": args.errors_only,
    }
    store = store_of(args)
    try:
        recent = await store.query(since=since, limit=args.n, **options)
        recent.reverse()
        show(recent)
        if args.follow:
            await _follow(store, recent, since, args.poll_interval, show, options)
    finally:
        await store.aclose()


async def _follow(
    store: LedgerStore,
    shown: list[CallRecord],
    since: datetime | None,
    interval: float,
    show: Callable[[list[CallRecord]], None],
    options: dict[str, Any],
) -> None:
    """Prints calls newer than the last one shown. Records of the last instant seen are
    asked for again and skipped by id, so two calls of the same microsecond both show."""
    last = shown[-1].ts if shown else since or datetime.now(UTC)
    seen = {record.request_id for record in shown if record.ts == last}
    while True:
        await asyncio.sleep(interval)
        fresh = [
            record
            for record in await store.query(
                since=last, limit=_FOLLOW_BATCH, newest_first=False, **options
            )
            if record.request_id not in seen
        ]
        if not fresh:
            continue
        show(fresh)
        if fresh[-1].ts != last:
            last, seen = fresh[-1].ts, set()
        seen.update(record.request_id for record in fresh if record.ts == last)


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    chosen = {
        "model_served": args.model,
        "key_id": args.key,
        "end_user": args.user,
        "team": args.team,
        "project": args.project,
        "status": args.status,
    }
    return {column: value for column, value in chosen.items() if value is not None}


def _printer(as_json: bool) -> Callable[[list[CallRecord]], None]:
    """Prints batches of records; a table's header only above the first batch."""
    headed = False

    def show(records: list[CallRecord]) -> None:
        nonlocal headed
        if as_json:
            for record in records:
                print(_encode(record).decode())
        elif records:
            rows = [_cells(record) for record in records]
            print(table(None if headed else _HEADERS, rows, right=_NUMBERS))
            headed = True
        sys.stdout.flush()

    return show


def _cells(record: CallRecord) -> list[str]:
    cost = "unpriced" if record.cost_usd is None else format(record.cost_usd, "f")
    outcome = record.stop_reason or ""
    if record.error_type:
        outcome = f"{outcome} {record.error_type}".strip()
    if record.cache_hit:
        avoided = record.cost_avoided_usd
        saved = "unpriced" if avoided is None else format(avoided, "f")
        outcome = f"{outcome} cache hit, avoided {saved}".strip()
    return [
        record.ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        record.request_id,
        record.model_served or record.model_requested,
        str(record.status),
        f"{record.input_tokens:,}",
        f"{record.output_tokens:,}",
        f"{record.latency_ms:,.0f}",
        cost,
        outcome,
    ]
