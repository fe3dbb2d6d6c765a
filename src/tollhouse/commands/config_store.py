"""The config store a `tollhouse config` / `tollhouse flags` command works on, named by the
same flags as `tollhouse keys`: `--sqlite PATH`, `--postgres CONNINFO`, or `--config FILE`
(the store that file's `config_store:` names, by default its keys store's); with none of
them, `tollhouse.db`, the default SQLite file."""

from __future__ import annotations

import argparse
import asyncio
import functools
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tollhouse.config import ConfigError, load_config
from tollhouse.config_versions.changes import ConfigChanges
from tollhouse.errors import TollhouseError
from tollhouse.ports.config.base import ConfigStore, ConfigStoreUnavailable
from tollhouse.ports.config.from_config import config_store_from_config
from tollhouse.ports.config.postgres import PostgresConfigStore
from tollhouse.ports.config.sqlite import SQLiteConfigStore

T = TypeVar("T")
Command = Callable[[argparse.Namespace], int]


def store_options() -> argparse.ArgumentParser:
    """The parent parser of every subcommand: where the store is."""
    store = argparse.ArgumentParser(add_help=False)
    where = store.add_mutually_exclusive_group()
    where.add_argument("--sqlite", metavar="PATH", help="SQLite file (default: tollhouse.db)")
    where.add_argument("--postgres", metavar="CONNINFO", help="PostgreSQL connection string")
    where.add_argument("--config", "-c", help="gateway config file whose config store to use")
    return store


def reporting_refusals(name: str) -> Callable[[Command], Command]:
    """The command, ending with its message and status 1 on a refusal (a config the
    loader refuses, an unknown version or flag, a conflict, an unreachable database)."""

    def wrap(command: Command) -> Command:
        @functools.wraps(command)
        def run(args: argparse.Namespace) -> int:
            try:
                return command(args)
            except (TollhouseError, ConfigError, ConfigStoreUnavailable) as error:
                print(f"tollhouse {name}: {error}", file=sys.stderr)
                return 1

        return run

    return wrap


def on_changes(
    args: argparse.Namespace,
    action: Callable[[ConfigChanges], Awaitable[T]],
    *,
    default_config: str | None = None,
) -> T:
    """Run `action` on the versions of the store the flags name (`default_config`: the
    config file whose store to use when no flag names one), closing it afterwards."""

    async def main() -> T:
        store = _store(args, default_config)
        try:
            return await action(ConfigChanges(store))
        finally:
            await store.aclose()

    return asyncio.run(main())


def _store(args: argparse.Namespace, default_config: str | None) -> ConfigStore:
    if args.postgres:
        return PostgresConfigStore(args.postgres)
    config_file = args.config or (None if args.sqlite else default_config)
    if config_file:
        try:
            return config_store_from_config(load_config(config_file))
        except ValueError as error:  # an unresolvable reference to the store
            raise ConfigError(str(error)) from None
    return SQLiteConfigStore(args.sqlite or "tollhouse.db")
