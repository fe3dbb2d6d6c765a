"""`tollhouse flags`: the flags of the newest config version (config/flags.py).

    tollhouse flags list [--json]
    tollhouse flags set NAME VALUE [--note "…"]

`set` is a new config version with only the flag changed, of the kind it already has
(`true`/`false`, a number, or text); every gateway on the store serves it within its
`config_store.poll_seconds`. A new flag is added to the config's `flags:` with
`tollhouse config apply`.
"""

from __future__ import annotations

import argparse
import json

from tollhouse.commands.config_store import on_changes, reporting_refusals, store_options
from tollhouse.config.flags import FlagValue
from tollhouse.config_versions.changes import Applied, ConfigChanges, parse_flag_value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `flags` and its subcommands; each sets `run(args) -> exit status`."""
    store = store_options()
    flags = subparsers.add_parser("flags", help="list and switch the config's flags")
    commands = flags.add_subparsers(dest="flags_command", required=True)

    listing = commands.add_parser("list", parents=[store], help="the newest version's flags")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=_list)

    set_ = commands.add_parser("set", parents=[store], help="set a flag: a new config version")
    set_.add_argument("name", metavar="NAME")
    set_.add_argument("value", metavar="VALUE")
    set_.add_argument("--note", default="", help="why (kept with the version)")
    set_.set_defaults(run=_set)


@reporting_refusals("flags")
def _list(args: argparse.Namespace) -> int:
    version, flags = on_changes(args, lambda changes: changes.flags())
    if args.json:
        print(json.dumps({"version": version, "flags": flags}))
        return 0
    if version is None:
        print("no config version yet")
        return 0
    width = max((len(name) for name in flags), default=0)
    print(f"# flags of config version {version}")
    for name, value in flags.items():
        print(f"{name.ljust(width)}  {json.dumps(value)}")
    return 0


@reporting_refusals("flags")
def _set(args: argparse.Namespace) -> int:
    async def set_flag(changes: ConfigChanges) -> Applied:
        _, flags = await changes.flags()
        value: FlagValue = args.value
        if args.name in flags:  # else `set_flag` refuses the unknown name
            value = parse_flag_value(args.value, flags[args.name])
        return await changes.set_flag(args.name, value, source="cli", note=args.note)

    applied = on_changes(args, set_flag)
    version = applied.version
    if applied.created:
        print(f"{args.name} set: version {version.id} stored; gateways on the store serve it")
        print("within their config_store.poll_seconds")
    else:
        print(f"unchanged: version {version.id} already has {args.name} = {args.value}")
    return 0
