"""CLI subcommands, one module each (`keys`, `usage`, `logs`), thin layers over the library.

Each module has `register(subparsers)`, which adds its subcommand with `run(args) -> int`
(the exit code) as its default; `tollhouse.cli` calls them.

The commands that read the call ledger share here how they find it and read a time: the
store comes from `--sqlite PATH` or `--postgres CONNINFO` when given, else from the
`ledger:` section of `--config` (or of the defaults: `tollhouse.db` here).
"""

from __future__ import annotations

import argparse
import os
import re
import sqlite3
from collections.abc import Container, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeAlias

import psycopg

from tollhouse.config import ConfigError, load_config
from tollhouse.config.model import LedgerConfig
from tollhouse.ports.ledger.base import LedgerStore, LedgerUnavailable
from tollhouse.ports.ledger.from_config import store_from_config
from tollhouse.ports.ledger.postgres import PostgresLedgerStore
from tollhouse.ports.ledger.sqlite import SQLiteLedgerStore

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_RELATIVE = re.compile(r"(\d+)([smhdw])")


class CommandError(Exception):
    """A problem with what the user asked for; printed as one line, exit code 2."""


def add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", help="gateway config file whose ledger to read")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--sqlite", metavar="PATH", help="read this SQLite ledger file")
    where.add_argument("--postgres", metavar="CONNINFO", help="read this PostgreSQL ledger")


# What reading a ledger fails with when the store itself is unusable (unreachable server,
# a file that is no database): reported as one line, like a `CommandError`.
STORE_ERRORS = (LedgerUnavailable, sqlite3.Error, psycopg.Error)


def store_of(args: argparse.Namespace) -> LedgerStore:
    """The (unopened) ledger store the command's options name. A SQLite file that does not
    exist is an error, not an empty ledger: these commands only read, and opening the store
    would create the file (a mistyped path would then report "no calls")."""
    if args.sqlite:
        store: LedgerStore | None = SQLiteLedgerStore(args.sqlite)
    elif args.postgres:
        store = PostgresLedgerStore(args.postgres)
    else:
        try:
            config = load_config(args.config).ledger if args.config else LedgerConfig()
            store = store_from_config(config)
        except (ConfigError, ValueError) as error:
            raise CommandError(f"config error: {error}") from error
    if store is None:
        raise CommandError("the ledger is off in this config (ledger.backend: off)")
    if isinstance(store, SQLiteLedgerStore) and not os.path.exists(store.path):
        raise CommandError(f"no ledger at {os.fspath(store.path)}: the file does not exist")
    return store


def store_failure(error: BaseException) -> str:
    """One line saying why the ledger could not be read."""
    return "cannot read the ledger: " + " ".join(str(error).split())


def parse_time(text: str, *, now: datetime, option: str) -> datetime:
    """An RFC 3339 time (a bare date is UTC midnight), or a span back from `now` like
    `90s`, `30m`, `24h`, `7d`, `2w`."""
    relative = _RELATIVE.fullmatch(text.strip())
    if relative:
        amount, unit = relative.groups()
        return now - timedelta(**{_UNITS[unit]: int(amount)})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CommandError(
            f"{option}: expected an RFC 3339 time or a span like 24h or 7d, got {text!r}"
        ) from None
    if moment.utcoffset() is None:
        moment = moment.replace(tzinfo=UTC)  # a bare date or time: read as UTC
    return moment.astimezone(UTC)


def table(
    headers: Sequence[str] | None, rows: Sequence[Sequence[str]], *, right: Container[int]
) -> str:
    """`rows` in aligned columns under `headers` (None: rows only); the columns whose index
    is in `right` (numbers) are flush right."""
    lines = [*([headers] if headers else []), *rows]
    widths = [max(len(cell) for cell in column) for column in zip(*lines, strict=True)]
    text = []
    for row in lines:
        cells = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        text.append("  ".join(cells).rstrip())
    return "\n".join(text)
