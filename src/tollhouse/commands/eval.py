"""`tollhouse eval SUITE`: run a suite through a gateway and gate on it; `tollhouse eval
capture`: write a starting suite from the ledger's calls of one route.

Exit codes: 0 every cutoff holds (the verdict passes), 1 a cutoff fails, 2 the eval could
not be run (a bad suite or option, the gateway or ledger unreachable, the `eval` extra
missing) or not judged whole (a judge model's call failed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from tollhouse.commands import (
    STORE_ERRORS,
    CommandError,
    Subparsers,
    parse_time,
    store_failure,
    store_of,
)
from tollhouse.config import ConfigError, GatewayConfig, default_config, load_config
from tollhouse.evals.gate import (
    EXIT_ERROR,
    Require,
    Verdict,
    cutoffs_for,
    decide,
    parse_cutoffs,
)
from tollhouse.evals.report import REPORT_FORMATS, render
from tollhouse.evals.store import EvalResultStore, EvalStoreUnavailable
from tollhouse.evals.suite import Suite, SuiteError, load_suite

if TYPE_CHECKING:
    from tollhouse.evals.costs import FigureSource
    from tollhouse.evals.runner import CaseRun, Target

CAPTURE = "capture"
DEFAULT_API_KEY = "tollhouse-eval"

_EPILOG = """\
exit codes: 0 every cutoff holds; 1 a cutoff fails; 2 the eval could not be run (bad suite
or option, gateway or ledger unreachable, the eval extra missing) or not judged whole (a
judge model's call failed).

Without --base-url the gateway of --config (or of the embedded defaults) is started in
this process on a loopback port. Costs come from the gateway's ledger: the --config's,
--sqlite / --postgres, or a running gateway's admin API (--admin-token).
`tollhouse eval capture --route R [--since 7d] [-n 200]` prints a suite built from the
ledger's calls of route R whose text was kept."""


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="run an eval suite through the gateway and gate on it (or capture one)",
        description=__doc__,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("suite", metavar="SUITE", help="suite file (YAML or .jsonl), or `capture`")
    where = parser.add_argument_group("gateway and ledger")
    where.add_argument("--base-url", help="a running gateway (default: one started in process)")
    where.add_argument(
        "--api-key",
        default=os.environ.get("TOLLHOUSE_API_KEY", DEFAULT_API_KEY),
        help="gateway key the calls present (default: $TOLLHOUSE_API_KEY)",
    )
    where.add_argument(
        "--config",
        "-c",
        help="the gateway's config: served in process "
        "unless --base-url, its ledger read for costs, its keys database "
        "keeps the results",
    )
    ledger = where.add_mutually_exclusive_group()
    ledger.add_argument("--sqlite", metavar="PATH", help="read costs from this SQLite ledger")
    ledger.add_argument("--postgres", metavar="CONNINFO", help="read costs from this ledger")
    ledger.add_argument(
        "--admin-token",
        default=None,
        help="with --base-url: ask the gateway's admin API for costs (default: "
        "$TOLLHOUSE_ADMIN_TOKEN when no ledger is named)",
    )
    run = parser.add_argument_group("running")
    run.add_argument(
        "--model",
        action="append",
        default=[],
        help="a model to run the suite on (repeat to compare)",
    )
    run.add_argument(
        "--variant",
        action="append",
        default=[],
        help="a variant of the suite's route to run it on (repeat to compare)",
    )
    run.add_argument("--concurrency", type=_positive, default=4, help="calls at once (4)")
    run.add_argument("--repeat", type=_positive, default=1, help="rounds of every case (1)")
    run.add_argument("--timeout", type=float, default=120.0, help="seconds per call (120)")
    run.add_argument("--ledger-wait", type=float, default=30.0, help=argparse.SUPPRESS)
    run.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: when it is a terminal)",
    )
    gate = parser.add_argument_group("gate and report")
    gate.add_argument(
        "--cutoffs",
        default="",
        help="check=ratio,... over the suite's own "
        "(pass_rate: share of case runs passing every check)",
    )
    gate.add_argument(
        "--require",
        choices=("all", "any"),
        default="all",
        help="every target must pass (all, default) or one (any)",
    )
    gate.add_argument("--format", choices=REPORT_FORMATS, default="table")
    gate.add_argument("--output", "-o", metavar="FILE", help="write the report here")
    store = parser.add_argument_group("results")
    store.add_argument("--results-sqlite", metavar="PATH", help="keep results in this file")
    store.add_argument("--results-postgres", metavar="CONNINFO", help="keep results here")
    store.add_argument("--no-store", action="store_true", help="keep no results")
    store.add_argument(
        "--config-version", help="record this config version when the answers name none"
    )
    capture = parser.add_argument_group("capture (tollhouse eval capture)")
    capture.add_argument("--route", help="the route (model name clients send)")
    capture.add_argument("--since", default="7d", help="RFC 3339 time or span like 7d (7d)")
    capture.add_argument("-n", type=_positive, default=200, help="cases at most (200)")
    parser.set_defaults(run=run_command)


def run_command(args: argparse.Namespace) -> int:
    from tollhouse.evals.clients import GatewayUnreachable, MissingExtra
    from tollhouse.evals.costs import LedgerMissing

    try:
        if args.suite == CAPTURE:
            return asyncio.run(_capture(args))
        return _evaluate(args)
    except (CommandError, SuiteError, ValueError, MissingExtra) as error:
        print(f"tollhouse eval: {error}", file=sys.stderr)
    except (GatewayUnreachable, LedgerMissing, EvalStoreUnavailable) as error:
        print(f"tollhouse eval: {error}", file=sys.stderr)
    except STORE_ERRORS as error:
        print(f"tollhouse eval: {store_failure(error)}", file=sys.stderr)
    except ConfigError as error:
        print(f"tollhouse eval: config error: {error}", file=sys.stderr)
    return EXIT_ERROR


def _evaluate(args: argparse.Namespace) -> int:
    from tollhouse.evals.clients import require_sdks
    from tollhouse.evals.runner import targets_for

    require_sdks()
    if args.route:
        raise CommandError("--route is an option of `tollhouse eval capture`")
    suite = load_suite(args.suite)
    targets = targets_for(suite, args.model, args.variant)
    cutoffs = cutoffs_for(suite, parse_cutoffs(args.cutoffs))
    config = load_config(args.config) if args.config else None
    served = None if args.base_url else (config or default_config())
    ledger = _ledger(args, served)
    wants_cost = len(targets) > 1 or any(
        check.kind == "max_cost_usd" for case in suite.cases for check in case.checks
    )
    if ledger is None and wants_cost:
        raise CommandError(
            "costs come from the gateway's ledger: pass --config, --sqlite, --postgres or "
            "--admin-token"
        )
    results = _result_store(args, config or served)
    if results is not None:
        asyncio.run(_open(results()))
    with _gateway(args.base_url, served) as base_url:
        runs = asyncio.run(_run(args, suite, targets, base_url))
    verdict = asyncio.run(_finish(args, suite, targets, runs, cutoffs, ledger))
    report = render(args.format, suite, runs, verdict, args.repeat)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(report + "\n")
    else:
        print(report)
    if args.output or args.format != "table":
        print(verdict.summary(), file=sys.stderr)
    if results is not None:
        # After the report (the store was opened before the run, so this rarely fails; if
        # it does, the verdict is shown and exit code 2 says its results were not kept).
        asyncio.run(_keep(args, suite, verdict, results()))
    return verdict.exit_code


async def _run(
    args: argparse.Namespace, suite: Suite, targets: Sequence[Target], url: str
) -> list[CaseRun]:
    from tollhouse.evals.clients import GatewayClients
    from tollhouse.evals.progress import Progress
    from tollhouse.evals.runner import run_suite

    clients = GatewayClients(url, args.api_key, timeout=args.timeout)
    progress = Progress(len(targets) * args.repeat * len(suite.cases), enabled=args.progress)
    try:
        return await run_suite(
            suite,
            targets,
            clients,
            concurrency=args.concurrency,
            repeat=args.repeat,
            progress=progress,
        )
    finally:
        await clients.aclose()


async def _finish(
    args: argparse.Namespace,
    suite: Suite,
    targets: Sequence[Target],
    runs: list[CaseRun],
    cutoffs: dict[str, float],
    ledger: FigureSource | None,
) -> Verdict:
    from tollhouse.evals.figures import target_figures
    from tollhouse.evals.runner import judge_failures, settle

    try:
        await settle(runs, ledger, wait_seconds=args.ledger_wait)
    finally:
        if ledger is not None:
            await ledger.aclose()
    figures = [target_figures(target, runs, suite.check_names) for target in targets]
    require: Require = args.require
    return decide(figures, cutoffs, require, judge_failures(runs))


async def _open(results: EvalResultStore) -> None:
    """Fails (exit code 2) before any call when the results could not be kept."""
    await results.open()
    await results.aclose()


async def _keep(
    args: argparse.Namespace, suite: Suite, verdict: Verdict, results: EvalResultStore
) -> None:
    from tollhouse.evals.store import results_of

    kept = results_of(
        uuid.uuid4().hex, datetime.now(UTC), suite, verdict, config_version=args.config_version
    )
    try:
        await results.record(kept)
    finally:
        await results.aclose()


async def _capture(args: argparse.Namespace) -> int:
    from tollhouse.evals.capture import NothingToCapture, capture_suite, suite_yaml

    if not args.route:
        raise CommandError("capture: --route is required (the model name clients send)")
    since = parse_time(args.since, now=datetime.now(UTC), option="--since")
    store = store_of(args)
    try:
        suite, _ = await capture_suite(store, route=args.route, since=since, limit=args.n)
    except NothingToCapture as error:
        raise CommandError(f"capture: {error}") from None
    finally:
        await store.aclose()
    sys.stdout.write(suite_yaml(suite, route=args.route, since=since))
    return 0


def _ledger(args: argparse.Namespace, served: GatewayConfig | None) -> FigureSource | None:
    """Where costs are read: the served config's ledger, else the ledger named, else the
    running gateway's admin API (with an admin token), else nowhere."""
    from tollhouse.evals.costs import AdminApiFigures, LedgerFigures
    from tollhouse.ports.ledger.from_config import store_from_config

    if served is not None:
        store = store_from_config(served.ledger)
        return None if store is None else LedgerFigures(store)
    if args.config or args.sqlite or args.postgres:
        return LedgerFigures(store_of(args))
    token = args.admin_token or os.environ.get("TOLLHOUSE_ADMIN_TOKEN")
    if token:
        return AdminApiFigures(args.base_url, token)
    return None


def _result_store(
    args: argparse.Namespace, config: GatewayConfig | None
) -> Callable[[], EvalResultStore] | None:
    """What makes the (unopened) store the results are kept in; None: not kept. A maker,
    since each event loop of the command needs its own connection."""
    from tollhouse.evals.store import PostgresEvalResultStore, SQLiteEvalResultStore, store_for

    if args.no_store:
        return None
    if args.results_sqlite:
        return lambda: SQLiteEvalResultStore(args.results_sqlite)
    if args.results_postgres:
        return lambda: PostgresEvalResultStore(args.results_postgres)
    if config is None:
        print(
            "tollhouse eval: results not kept (no --config, --results-sqlite or "
            "--results-postgres)",
            file=sys.stderr,
        )
        return None
    return lambda: store_for(config)


@contextlib.contextmanager
def _gateway(base_url: str | None, served: GatewayConfig | None) -> Iterator[str]:
    if base_url is not None:
        yield base_url
        return
    from tollhouse.evals.in_process import in_process_gateway

    assert served is not None
    with in_process_gateway(served) as url:
        yield url


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)
