"""`tollhouse keys`: create, list, show, revoke and rotate gateway keys, straight on the
key store (`--sqlite PATH`, the default `tollhouse.db`, or `--postgres CONNINFO`).

A secret is printed once, on stdout, by `create` and `rotate`; the warning that it won't
be shown again goes to stderr, so `tollhouse keys create ... | tail -1` captures the
secret alone.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import re
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TypeVar

import msgspec

from tollhouse.config import load_config
from tollhouse.config.model import Budget, Limits
from tollhouse.errors import TollhouseError
from tollhouse.ports.keys.base import KeyStore, KeyStoreUnavailable
from tollhouse.ports.keys.from_config import key_store_from_config
from tollhouse.ports.keys.postgres import PostgresKeyStore
from tollhouse.ports.keys.record import KeyRecord, KeySpec, public_view
from tollhouse.ports.keys.sqlite import SQLiteKeyStore

T = TypeVar("T")
Command = Callable[[argparse.Namespace], int]

_DURATION = re.compile(r"(\d+)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `keys` and its subcommands; each sets `run(args) -> exit status`."""
    store = argparse.ArgumentParser(add_help=False)
    where = store.add_mutually_exclusive_group()
    where.add_argument("--sqlite", metavar="PATH", help="SQLite file (default: tollhouse.db)")
    where.add_argument("--postgres", metavar="CONNINFO", help="PostgreSQL connection string")
    where.add_argument("--config", "-c", help="gateway config file whose `keys:` store to use")

    keys = subparsers.add_parser("keys", help="manage gateway API keys")
    commands = keys.add_subparsers(dest="keys_command", required=True)

    create = commands.add_parser("create", parents=[store], help="create a key")
    create.add_argument("--name", required=True)
    create.add_argument("--user")
    create.add_argument("--team")
    create.add_argument("--project")
    create.add_argument(
        "--models", action="append", default=[], metavar="MODEL",
        help="a model name or glob the key may use (repeat; default: every model)",
    )  # fmt: skip
    for flag in ("--rpm", "--input-tpm", "--output-tpm", "--concurrency"):
        create.add_argument(flag, type=_positive_int)
    create.add_argument("--daily-budget", type=_usd, metavar="USD")
    create.add_argument("--monthly-budget", type=_usd, metavar="USD")
    create.add_argument(
        "--budget-mode", choices=("clamp", "reserve"), default="clamp",
        help="a call whose worst case exceeds what is left: its max_tokens lowered to fit "
        "(clamp) or the call refused (reserve)",
    )  # fmt: skip
    create.add_argument(
        "--end-users", action="store_true",
        help="the key may name its own end users in requests",
    )  # fmt: skip
    create.add_argument(
        "--scope", action="append", default=[], choices=("variant_override", "batches"),
        dest="scopes", help="grant a scope (repeatable): variant_override lets the key name "
        "the variant of a route that serves its call (x-tollhouse-variant); batches lets it "
        "create and read Message Batches and batch files",
    )  # fmt: skip
    create.add_argument(
        "--expires", type=_expiry, metavar="WHEN",
        help="RFC 3339 time (2026-12-31T00:00:00Z) or a duration from now (30d, 12h)",
    )  # fmt: skip
    create.set_defaults(run=_create)

    listing = commands.add_parser("list", parents=[store], help="list keys")
    listing.add_argument("--json", action="store_true", help="JSON lines, one per key")
    listing.add_argument("--all", action="store_true", help="include revoked keys")
    listing.set_defaults(run=_list)

    show = commands.add_parser("show", parents=[store], help="show one key")
    show.add_argument("key_id", metavar="ID")
    show.set_defaults(run=_show)

    revoke = commands.add_parser("revoke", parents=[store], help="revoke a key for good")
    revoke.add_argument("key_id", metavar="ID")
    revoke.set_defaults(run=_revoke)

    rotate = commands.add_parser("rotate", parents=[store], help="give a key a new secret")
    rotate.add_argument("key_id", metavar="ID")
    rotate.add_argument(
        "--grace", type=_duration, default=0.0, metavar="DURATION",
        help="how long the old secret keeps working (e.g. 1h; default: not at all)",
    )  # fmt: skip
    rotate.set_defaults(run=_rotate)


def _reporting_refusals(command: Callable[[argparse.Namespace], int]) -> Command:
    """`command`, ending with its message and status 1 on a refusal (unknown id, revoked
    key, bad value, unreachable database) instead of a traceback."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except (TollhouseError, KeyStoreUnavailable, msgspec.ValidationError) as error:
            print(f"tollhouse keys: {error}", file=sys.stderr)
            return 1

    return run


@_reporting_refusals
def _create(args: argparse.Namespace) -> int:
    spec = KeySpec(
        name=args.name,
        user=args.user,
        team=args.team,
        project=args.project,
        allowed_models=tuple(args.models),
        limits=Limits(
            rpm=args.rpm,
            input_tpm=args.input_tpm,
            output_tpm=args.output_tpm,
            concurrency=args.concurrency,
        ),
        budget=Budget(
            daily_usd=args.daily_budget, monthly_usd=args.monthly_budget, mode=args.budget_mode
        ),
        end_users=args.end_users,
        scopes=tuple(args.scopes),
        expires_at=args.expires,
    )
    record, secret = _on_store(args, lambda store: store.create(spec))
    _print_secret(record, secret)
    return 0


@_reporting_refusals
def _list(args: argparse.Namespace) -> int:
    records = _on_store(args, lambda store: store.list(include_revoked=args.all))
    now = datetime.now(UTC)
    if args.json:
        for record in records:
            print(json.dumps(public_view(record, now)))
        return 0
    header = ("ID", "NAME", "PREFIX", "USER", "TEAM", "PROJECT", "STATUS", "EXPIRES")
    rows = [header] + [
        (
            record.key_id,
            record.name,
            record.prefix + "…",
            record.user or "-",
            record.team or "-",
            record.project or "-",
            record.status(now),
            record.expires_at.isoformat(timespec="seconds") if record.expires_at else "never",
        )
        for record in records
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    return 0


@_reporting_refusals
def _show(args: argparse.Namespace) -> int:
    record = _on_store(args, lambda store: store.get(args.key_id))
    print(json.dumps(public_view(record, datetime.now(UTC)), indent=2))
    return 0


@_reporting_refusals
def _revoke(args: argparse.Namespace) -> int:
    record = _on_store(args, lambda store: store.revoke(args.key_id))
    print(f"{record.key_id} revoked (gateways stop accepting it within their cache TTL)")
    return 0


@_reporting_refusals
def _rotate(args: argparse.Namespace) -> int:
    record, secret = _on_store(args, lambda store: store.rotate(args.key_id, args.grace))
    if args.grace:
        until = record.previous_secret_valid_until
        assert until is not None
        print(f"the old secret works until {until.isoformat(timespec='seconds')}", file=sys.stderr)
    _print_secret(record, secret)
    return 0


def _print_secret(record: KeyRecord, secret: str) -> None:
    print(f"{record.key_id} ({record.name})", file=sys.stderr)
    print("The secret below is shown once and cannot be recovered: store it now.", file=sys.stderr)
    print(secret)


def _on_store(args: argparse.Namespace, action: Callable[[KeyStore], Awaitable[T]]) -> T:
    """Run `action` on the store the flags name, closing it afterwards."""

    async def main() -> T:
        store: KeyStore
        if args.postgres:
            store = PostgresKeyStore(args.postgres)
        elif args.config:
            store = key_store_from_config(load_config(args.config).keys)
        else:
            store = SQLiteKeyStore(args.sqlite or "tollhouse.db")
        try:
            return await action(store)
        finally:
            await store.aclose()

    return asyncio.run(main())


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _usd(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount (e.g. 25.00)") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError("must be an amount >= 0")
    return value


def _is_duration(text: str) -> bool:
    parts = _DURATION.findall(text)
    return bool(parts) and "".join(number + unit for number, unit in parts) == text


def _duration(text: str) -> float:
    """Seconds in `30d`, `1h30m`, `45s`."""
    parts = _DURATION.findall(text)
    if not _is_duration(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 30d, 12h, 1h30m)")
    return float(sum(int(number) * _UNIT_SECONDS[unit] for number, unit in parts))


def _expiry(text: str) -> datetime:
    if _is_duration(text):
        return datetime.now(UTC) + timedelta(seconds=_duration(text))
    try:
        moment: datetime | None = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.utcoffset() is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither an RFC 3339 time with a zone (2026-12-31T00:00:00Z)"
            " nor a duration (30d)"
        )
    return moment.astimezone(UTC)
