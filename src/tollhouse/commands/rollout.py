"""`tollhouse rollout`: a route's variants, their weights and guardrails, and promotion.

    tollhouse rollout status [--json]
    tollhouse rollout promote ROUTE VARIANT --to PERCENT [--note "…"] [--require-eval SUITE]
    tollhouse rollout promote ROUTE VARIANT --auto [--require-eval SUITE]
    tollhouse rollout rollback ROUTE VARIANT [--note "…"]      (the canary to 0 %)

They work on the config store of the gateway config `--config FILE` names (its
`config_store:`, by default its keys' database) and read the calls of the guardrails'
window from its ledger. Every change is a new config version, served by every gateway on
the store within its `config_store.poll_seconds`.
`--auto` runs in the foreground, printing each step, until the canary reaches the last
of `promotion.steps`, a guardrail breaches, or it is found rolled back.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from tollhouse.commands import Subparsers, table
from tollhouse.config import ConfigError, GatewayConfig, load_config
from tollhouse.config_versions.changes import Applied, ConfigChanges
from tollhouse.errors import TollhouseError
from tollhouse.ports.config.base import ConfigStore, ConfigStoreUnavailable
from tollhouse.ports.config.from_config import config_store_from_config
from tollhouse.ports.ledger.base import LedgerStore
from tollhouse.ports.ledger.from_config import store_from_config
from tollhouse.rollout.promotion import EvalGate, auto_promote, eval_gate, promote, set_weight
from tollhouse.rollout.status import newest_status

T = TypeVar("T")
Command = Callable[[argparse.Namespace], int]


def _store_options() -> argparse.ArgumentParser:
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument(
        "--config", "-c", required=True, help="the gateway config whose config store to use"
    )
    return store


def _reporting_refusals(command: Command) -> Command:
    """The command, ending with its message and status 1 on a refusal."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except (TollhouseError, ConfigError, ConfigStoreUnavailable) as error:
            print(f"tollhouse rollout: {error}", file=sys.stderr)
            return 1

    return run


def _on_store(args: argparse.Namespace, action: Callable[[ConfigStore], Awaitable[T]]) -> T:
    config = _config(args)

    async def main() -> T:
        store = config_store_from_config(config)
        try:
            return await action(store)
        finally:
            await store.aclose()

    return asyncio.run(main())


def _config(args: argparse.Namespace) -> GatewayConfig:
    try:
        return load_config(args.config)
    except ValueError as error:
        raise ConfigError(str(error)) from None


def register(subparsers: Subparsers) -> None:
    store = _store_options()
    rollout = subparsers.add_parser("rollout", help="variants: status, promote, roll back")
    commands = rollout.add_subparsers(dest="rollout_command", required=True)

    status = commands.add_parser(
        "status", parents=[store], help="each route's variants, weights and guardrails"
    )
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status.set_defaults(run=_status)

    promoting = commands.add_parser(
        "promote", parents=[store], help="move a canary up (a new config version)"
    )
    promoting.add_argument("route", metavar="ROUTE")
    promoting.add_argument("variant", metavar="VARIANT")
    how = promoting.add_mutually_exclusive_group(required=True)
    how.add_argument("--to", type=float, metavar="PERCENT", help="the variant's new weight")
    how.add_argument(
        "--auto", action="store_true", help="step through promotion.steps while guardrails hold"
    )
    promoting.add_argument("--note", default="", help="why (kept with the version)")
    promoting.add_argument(
        "--require-eval", metavar="SUITE",
        help="only if this eval suite passed for the newest config version and the variant",
    )  # fmt: skip
    promoting.set_defaults(run=_promote)

    back = commands.add_parser("rollback", parents=[store], help="set a canary to 0 %")
    back.add_argument("route", metavar="ROUTE")
    back.add_argument("variant", metavar="VARIANT")
    back.add_argument("--note", default="")
    back.set_defaults(run=_rollback)


@_reporting_refusals
def _status(args: argparse.Namespace) -> int:
    async def action(store: ConfigStore) -> dict[str, Any]:
        ledger = _ledger(args)
        try:
            return await newest_status(ConfigChanges(store), ledger, datetime.now(UTC))
        finally:
            if ledger is not None:
                await ledger.aclose()

    report = _on_store(args, action)
    print(json.dumps(report, indent=2) if args.json else _table(report))
    return 0


@_reporting_refusals
def _promote(args: argparse.Namespace) -> int:
    gate = _eval_gate(args) if args.require_eval else None

    async def action(store: ConfigStore) -> int:
        if not args.auto:
            applied = await promote(
                ConfigChanges(store),
                args.route,
                args.variant,
                args.to,
                note=args.note,
                require_eval=gate,
            )
            _print_applied(applied)
            return 0
        ledger = _ledger(args)
        if ledger is None:
            print("tollhouse rollout: --auto reads the ledger, which is off", file=sys.stderr)
            return 1
        try:
            outcome = await auto_promote(
                ConfigChanges(store),
                ledger,
                args.route,
                args.variant,
                sleep=asyncio.sleep,
                on_step=_print_applied,
                require_eval=gate,
            )
        finally:
            await ledger.aclose()
        print(f"{outcome.result}: {outcome.message}")
        return 0 if outcome.result == "promoted" else 1

    return _on_store(args, action)


@_reporting_refusals
def _rollback(args: argparse.Namespace) -> int:
    async def action(store: ConfigStore) -> Applied:
        note = args.note or f"roll back {args.route}/{args.variant} to 0 %"
        changes = ConfigChanges(store)
        return await set_weight(changes, args.route, args.variant, 0, source="cli", note=note)

    _print_applied(_on_store(args, action))
    return 0


def _print_applied(applied: Applied) -> None:
    version = applied.version
    if applied.created:
        print(f"config version {version.id}: {version.note}")
    else:
        print(f"unchanged: config version {version.id} already has this content")


def _ledger(args: argparse.Namespace) -> LedgerStore | None:
    """The ledger of `--config` (None when it is off)."""
    try:
        return store_from_config(_config(args).ledger)
    except ValueError as error:
        raise ConfigError(str(error)) from None


def _eval_gate(args: argparse.Namespace) -> EvalGate:
    return eval_gate(_config(args), args.require_eval)


def _table(report: dict[str, Any]) -> str:
    lines = [f"config version {report['config_version']}"]
    if not report["routes"]:
        lines.append("no route has variants")
    for route in report["routes"]:
        change = route["last_change"]
        lines.append("")
        lines.append(
            f"{route['route']}  (guardrails {'on' if route['guardrails'] else 'off'}, "
            f"window {route['window_seconds']:g} s; last change: version {change['version']} "
            f"{change['at']} {change['source']}: {change['note'] or '-'})"
        )
        rows = []
        for variant in route["variants"]:
            name = variant["variant"] + (" (control)" if variant["control"] else "")
            figures = {f["guardrail"]: f for f in variant.get("guardrails", [])}
            rows.append(
                [
                    name,
                    f"{variant['weight']:g}%",
                    str(variant.get("calls", "-")),
                    *(_figure(figures.get(g)) for g in _SHOWN),
                ]
            )
        lines.append(
            table(["variant", "weight", "calls", *_SHOWN], rows, right=range(1, 3 + len(_SHOWN)))
        )
    return "\n".join(lines)


_SHOWN = ("error_rate", "truncation_rate", "latency_p95", "ttft_p95", "cost_per_call", "quality")


def _figure(figure: dict[str, Any] | None) -> str:
    """`canary/control`, with `!` when it breached; `-` for the control's own row."""
    if figure is None:
        return "-"
    canary, control = figure["canary"], figure["control"]
    text = f"{_num(canary)}/{_num(control)}"
    return text + (" !" if figure["breached"] else "")


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"
