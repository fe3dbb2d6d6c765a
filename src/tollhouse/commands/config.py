"""`tollhouse config`: the versions of the gateway's config, straight on the config store.

    tollhouse config history [--limit N] [--json]
    tollhouse config show V [--json]
    tollhouse config diff V1 [V2]          (V2: the newest version)
    tollhouse config apply FILE --note "…"
    tollhouse config rollback [V] [--note "…"]

`apply` stores FILE as the newest version if it loads and builds here (the checks of
`check-config`), in the store FILE itself names unless a store flag says otherwise;
every gateway on the store serves it within its `config_store.poll_seconds`. `rollback`
without V goes back to the newest earlier version whose content differs.
"""

from __future__ import annotations

import argparse
import json

from tollhouse.commands.config_store import on_changes, reporting_refusals, store_options
from tollhouse.config import load_document
from tollhouse.config.document import render
from tollhouse.config_versions.changes import Applied, ConfigChanges
from tollhouse.ports.config.base import ConfigVersion


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `config` and its subcommands; each sets `run(args) -> exit status`."""
    store = store_options()
    config = subparsers.add_parser("config", help="config versions: history, diff, apply, rollback")
    commands = config.add_subparsers(dest="config_command", required=True)

    history = commands.add_parser("history", parents=[store], help="list versions, newest first")
    history.add_argument("--limit", type=int, default=20)
    history.add_argument("--json", action="store_true", help="JSON lines, one per version")
    history.set_defaults(run=_history)

    show = commands.add_parser("show", parents=[store], help="print one version's config")
    show.add_argument("version", type=int, metavar="V")
    show.add_argument("--json", action="store_true", help="the version as JSON")
    show.set_defaults(run=_show)

    diff = commands.add_parser("diff", parents=[store], help="what changed between versions")
    diff.add_argument("old", type=int, metavar="V1")
    diff.add_argument("new", type=int, nargs="?", metavar="V2", help="default: the newest")
    diff.set_defaults(run=_diff)

    apply = commands.add_parser("apply", parents=[store], help="store FILE as the newest version")
    apply.add_argument("file", metavar="FILE")
    apply.add_argument("--note", default="", help="why (kept with the version)")
    apply.set_defaults(run=_apply)

    rollback = commands.add_parser("rollback", parents=[store], help="serve an earlier version")
    rollback.add_argument("version", type=int, nargs="?", metavar="V")
    rollback.add_argument("--note", default="")
    rollback.set_defaults(run=_rollback)


@reporting_refusals("config")
def _history(args: argparse.Namespace) -> int:
    versions = on_changes(args, lambda changes: changes.store.history(limit=args.limit))
    if args.json:
        for version in versions:
            print(json.dumps(version.summary()))
        return 0
    header = ("VERSION", "CREATED", "SOURCE", "HASH", "NOTE")
    rows = [header] + [
        (
            str(v.id),
            v.created_at.isoformat(timespec="seconds"),
            v.source if v.restores is None else f"{v.source} to {v.restores}",
            v.content_hash[:12],
            v.note,
        )
        for v in versions
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(header) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]).rstrip())
    return 0


@reporting_refusals("config")
def _show(args: argparse.Namespace) -> int:
    version: ConfigVersion = on_changes(args, lambda changes: changes.store.get(args.version))
    if args.json:
        print(json.dumps({**version.summary(), "document": version.document}, indent=2))
        return 0
    summary = version.summary()
    print(f"# config version {version.id}: {summary['created_at']}, {version.source}")
    if version.note:
        print(f"# note: {version.note}")
    print(render(version.document), end="")
    return 0


@reporting_refusals("config")
def _diff(args: argparse.Namespace) -> int:
    print(on_changes(args, lambda changes: changes.diff(args.old, args.new)), end="")
    return 0


@reporting_refusals("config")
def _apply(args: argparse.Namespace) -> int:
    document = load_document(args.file)

    async def apply(changes: ConfigChanges) -> Applied:
        return await changes.apply(document, source="cli", note=args.note)

    _report(on_changes(args, apply, default_config=args.file))
    return 0


@reporting_refusals("config")
def _rollback(args: argparse.Namespace) -> int:
    async def rollback(changes: ConfigChanges) -> Applied:
        return await changes.rollback(args.version, note=args.note)

    _report(on_changes(args, rollback))
    return 0


def _report(applied: Applied) -> None:
    version = applied.version
    if not applied.created:
        print(f"unchanged: version {version.id} already has this content")
        return
    print(f"version {version.id} stored ({version.content_hash[:12]}); gateways on the store")
    print("serve it within their config_store.poll_seconds")
    if applied.restart_needed:
        print(f"takes effect at the next start: {', '.join(applied.restart_needed)}")
