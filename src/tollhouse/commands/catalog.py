"""`tollhouse catalog show MODEL` and `tollhouse catalog update FILE`: the model catalog a
config serves by, read and replaced without a release.

`show` prints one entry of the config's catalog (the shipped one or `catalog.path`, with the
config's overrides) and its lifecycle state today. `update` validates FILE as a whole
catalog, checks that the config still builds over it (its overrides apply, every
`replacement` resolves), prints what changed, and writes it to the config's `catalog.path`
(atomically, the previous file kept as `<path>.previous`); gateways read it when they
build their config (at start, or for a new config version). The file is not part of a
config version (only `catalog.path` naming it is), so this replaces the file rather than
adding a version.

Exit codes: 0 done, 2 a usage, config or catalog error (nothing written).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from tollhouse.catalog.models import CatalogError, CatalogModel, ModelCatalog, read_catalog_file
from tollhouse.commands import CommandError, Subparsers
from tollhouse.config import ConfigError, default_config, load_config


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
        "update", help="validate a catalog file and install it at the config's catalog.path"
    )
    update.add_argument("file", help="the new catalog (YAML or JSON, the shipped file's shape)")
    update.add_argument("--config", "-c", required=True, help="gateway config (catalog.path)")
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
        target = config.catalog.path
        if target is None:
            raise CommandError(
                f"{args.config}: catalog.path is not set; the gateway reads an updated "
                "catalog from the file it names"
            )
        current = config.catalog.build()
        new = read_catalog_file(args.file)
        served = config.catalog.apply(new)  # the config's overrides must still hold over it
    except (CommandError, ConfigError, CatalogError) as error:
        print(f"tollhouse catalog update: {error}", file=sys.stderr)
        return 2
    for line in changes(current, served):
        print(line)
    if args.dry_run:
        print("dry run: nothing written")
        return 0
    _install(Path(args.file), Path(target))
    print(f"installed at {target}; gateways read it when they start")
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


def _install(source: Path, target: Path) -> None:
    """`source`'s bytes at `target`, replaced atomically; the old file kept beside it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        shutil.copy2(target, target.with_name(target.name + ".previous"))
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(source.read_bytes())
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
