"""`tollhouse catalog show MODEL` and `tollhouse catalog update FILE`: the model catalog a
config serves by, read and replaced without a release.

`show` prints one entry of the config's catalog (the shipped one, `catalog.base` or
`catalog.path`, with the config's overrides) and its lifecycle state today. `update`
validates FILE as a whole catalog and stores it as `catalog.base` of a new config version
(on the newest one, through `ConfigChanges`, so the version's overrides must still apply
over it and every `replacement` resolve), after printing what changed; every gateway on
the config store serves it within its poll interval, and `tollhouse config rollback`
restores the catalog before. `--dry-run` prints the changes only.

Exit codes: 0 done, 2 a usage, config, catalog or store error (nothing stored).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from tollhouse.catalog.models import (
    CatalogError,
    CatalogModel,
    ModelCatalog,
    parse_catalog,
    read_catalog_document,
)
from tollhouse.commands import CommandError, Subparsers
from tollhouse.config import ConfigError, GatewayConfig, default_config, load_config, parse_config
from tollhouse.config.document import Document
from tollhouse.config_versions.changes import ConfigChanges
from tollhouse.errors import TollhouseError
from tollhouse.ports.config.base import ConfigStoreUnavailable, ConfigVersion
from tollhouse.ports.config.from_config import config_store_from_config


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "catalog", help="show a model's catalog entry; update the catalog"
    )
    actions = parser.add_subparsers(dest="catalog_action", required=True)
    show = actions.add_parser("show", help="one model's entry and its state today")
    show.add_argument("model", help="a catalog id or alias")
    show.add_argument("--config", "-c", help="gateway config whose catalog to read")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(run=run_show)
    update = actions.add_parser(
        "update", help="validate a catalog file and serve it as a new config version"
    )
    update.add_argument("file", help="the new catalog (YAML or JSON, the shipped file's shape)")
    update.add_argument(
        "--config", "-c", required=True, help="gateway config whose config store to use"
    )
    update.add_argument("--note", default="", help="why (kept with the version)")
    update.add_argument("--dry-run", action="store_true", help="validate and compare only")
    update.set_defaults(run=run_update)


def run_show(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config) if args.config else default_config()
        catalog = config.catalog.build()
        entry = catalog.get(args.model)
        if entry is None:
            raise CommandError(f"{args.model!r} is not in the catalog")
    except (CommandError, ConfigError, CatalogError) as error:
        print(f"tollhouse catalog show: {error}", file=sys.stderr)
        return 2
    document = entry_document(entry)
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        print(_text(document))
    return 0


def entry_document(entry: CatalogModel) -> dict[str, Any]:
    """`entry` as JSON, with its state and days left today (UTC)."""
    today = datetime.now(UTC).date()
    document: dict[str, Any] = msgspec.to_builtins(entry)
    retires_on = entry.lifecycle.retires_on
    document["state_today"] = entry.lifecycle.effective_state(today)
    document["days_left"] = None if retires_on is None else (retires_on - today).days
    return document


def _text(document: dict[str, Any]) -> str:
    lines = []
    for key, value in document.items():
        if isinstance(value, dict):
            inner = ", ".join(f"{k}: {v}" for k, v in value.items() if v is not None)
            lines.append(f"{key}: {inner}")
        elif isinstance(value, list):
            items = [json.dumps(v) if isinstance(v, dict) else str(v) for v in value]
            lines.append(f"{key}: {', '.join(items) or '-'}")
        else:
            lines.append(f"{key}: {'-' if value is None else value}")
    return "\n".join(lines)


def run_update(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
        path = Path(args.file)
        new = read_catalog_document(path)
        parse_catalog(new, origin=str(path))  # the file alone is a whole, valid catalog
        return asyncio.run(_update(config, new, args))
    except (CommandError, ConfigError, CatalogError, TollhouseError) as error:
        print(f"tollhouse catalog update: {error}", file=sys.stderr)
        return 2
    except ConfigStoreUnavailable as error:
        print(
            f"tollhouse catalog update: the config store is unavailable: {error}", file=sys.stderr
        )
        return 2


async def _update(config: GatewayConfig, catalog: Any, args: argparse.Namespace) -> int:
    """Store `catalog` as the base of a new config version (unless `--dry-run`), after
    printing what changes from the newest version's catalog."""
    lines: list[str] = []

    def with_catalog(newest: ConfigVersion) -> Document:
        section = {k: v for k, v in (newest.document.get("catalog") or {}).items() if k != "path"}
        document = {**newest.document, "catalog": {**section, "base": catalog}}
        where = f"config version {newest.id}"
        try:
            served = parse_config(newest.document, source=where).catalog.build()
            # The version's overrides must still hold over the new catalog.
            updated = parse_config(document, source=f"{where} with {args.file}").catalog.build()
        except CatalogError as error:
            raise ConfigError(f"{args.file} over {where}: {error}") from None
        lines[:] = changes(served, updated)
        return document

    store = config_store_from_config(config)
    try:
        config_changes = ConfigChanges(store)
        if args.dry_run:
            with_catalog(await config_changes.newest())
            print("\n".join(lines))
            print("dry run: no version stored")
            return 0
        note = args.note or f"catalog update from {os.path.basename(args.file)}"
        applied = await config_changes.edit(with_catalog, source="cli", note=note)
    finally:
        await store.aclose()
    print("\n".join(lines))
    if applied.created:
        print(
            f"config version {applied.version.id}: {note}; every gateway on the store serves "
            f"it within config_store.poll_seconds ({config.config_store.poll_seconds:g} s)"
        )
    else:
        print(f"unchanged: config version {applied.version.id} already serves this catalog")
    return 0


def changes(current: ModelCatalog, new: ModelCatalog) -> list[str]:
    """One line per model added, removed or changed (pricing, lifecycle, limits) from
    `current` to `new`."""
    old = {entry.id: entry for entry in current.models}
    lines = []
    for entry in new.models:
        before = old.pop(entry.id, None)
        if before is None:
            lines.append(f"added {entry.id}")
            continue
        for field in ("pricing", "lifecycle", "context_window", "max_output_tokens"):
            was, now = getattr(before, field), getattr(entry, field)
            if was != now:
                lines.append(f"changed {entry.id} {field}: {_json(was)} -> {_json(now)}")
    lines += [f"removed {model}" for model in old]
    return lines or ["no model changed"]


def _json(value: Any) -> str:
    return json.dumps(msgspec.to_builtins(value), sort_keys=True)
