"""Promotion: a canary's weight moved up a step as a new config version, by hand
(`tollhouse rollout promote ROUTE VARIANT --to 10`) or on
a schedule (`--auto`: through the route's `promotion.steps`, one every
`promotion.interval_seconds`, while every guardrail holds).

A step can wait for an eval gate: `require_eval` is asked whether the eval suite passed
for the newest config version and the variant (the `evals` store), and the step is refused
when it did not. Every change is made by `ConfigChanges` (config_versions/changes.py), so
it is checked as any applied version is, and based on the newest version (compare-and-add):
two operators, or an operator and a guardrail's rollback, never overwrite each other; the
later one is made again on top, and `--auto` stops when it finds the canary rolled back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from tollhouse.config import GatewayConfig, parse_config
from tollhouse.config_versions.changes import Applied, ConfigChanges
from tollhouse.errors import BadRequest, NotFound
from tollhouse.ports.config.base import VersionSource
from tollhouse.ports.ledger.base import LedgerStore
from tollhouse.rollout.status import canary_verdict
from tollhouse.rollout.weights import variants_of, weight_of, with_weight

# Whether the eval gate passed for (config version, variant).
EvalGate = Callable[[int, str], Awaitable[bool]]


def eval_gate(config: GatewayConfig, suite: str) -> EvalGate:
    """The gate `--require-eval SUITE` asks: whether `suite` (a suite file, its hash or its
    name) passed for the version and variant, in the eval results of `config`'s store."""
    from tollhouse.evals.store import eval_passed, store_for

    async def passed(version: int, variant: str) -> bool:
        store = store_for(config)
        try:
            return await eval_passed(store, suite, config_version=version, variant=variant)
        finally:
            await store.aclose()

    return passed


async def set_weight(
    changes: ConfigChanges,
    route: str,
    variant: str,
    weight: float,
    *,
    source: VersionSource,
    note: str,
) -> Applied:
    """A new version: the newest with `variant` of `route` at `weight` % (the control
    holding the rest), checked as every version is (`ConfigChanges.apply`), made again on
    top of a change that came first."""
    return await changes.edit(
        lambda version: with_weight(version.document, route, variant, weight),
        source=source,
        note=note,
    )


async def promote(
    changes: ConfigChanges,
    route: str,
    variant: str,
    to: float,
    *,
    note: str = "",
    source: VersionSource = "cli",
    require_eval: EvalGate | None = None,
) -> Applied:
    """`variant` of `route` moved to `to` %, after the eval gate (when given) passed for
    the newest version."""
    version = await changes.newest()
    _, variants = variants_of(version.document, route)
    current = weight_of(variants, variant, route)
    if require_eval is not None and not await require_eval(version.id, variant):
        raise BadRequest(
            f"the eval gate did not pass for {route}/{variant} at config version "
            f"{version.id}: run the suite against it first (tollhouse eval ... "
            f"--variant {variant})"
        )
    return await set_weight(
        changes,
        route,
        variant,
        to,
        source=source,
        note=note or f"promote {route}/{variant} from {current:g} % to {to:g} %",
    )


@dataclass(frozen=True, slots=True)
class AutoOutcome:
    """How `auto_promote` ended: `promoted` to the last step, `rolled_back` (found at 0 %
    after it had traffic), or `held` (a guardrail breached: the monitor rolls it back)."""

    result: str
    weight: float
    message: str


async def auto_promote(
    changes: ConfigChanges,
    ledger: LedgerStore,
    route: str,
    variant: str,
    *,
    sleep: Callable[[float], Awaitable[None]],
    on_step: Callable[[Applied], None] = lambda applied: None,
    require_eval: EvalGate | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> AutoOutcome:
    """Step `variant` of `route` through its `promotion.steps`, one step an interval,
    while its guardrails hold over the ledger's window with at least `min_calls` calls;
    an interval with too few calls waits another. Returns how it ended."""
    if require_eval is not None:
        version = await changes.newest()
        if not await require_eval(version.id, variant):
            raise BadRequest(
                f"the eval gate did not pass for {route}/{variant} at config version "
                f"{version.id}; nothing was promoted"
            )
    started = False
    while True:
        version = await changes.newest()
        config = parse_config(version.document, source=f"config version {version.id}")
        entry = config.models.get(route)
        if entry is None or variant not in entry.variants:
            raise NotFound(f"route {route!r} has no variant {variant!r} any more")
        weight = entry.variants[variant].weight
        if weight == 0 and started:
            return AutoOutcome("rolled_back", 0.0, f"{route}/{variant} was set back to 0 %")
        following = [step for step in entry.promotion.steps if step > weight]
        if not following:
            return AutoOutcome("promoted", weight, f"{route}/{variant} is at {weight:g} %")
        if started or weight > 0:
            await sleep(entry.promotion.interval_seconds)
            verdict = await canary_verdict(ledger, config, route, variant, clock())
            if verdict.breaches:
                reasons = "; ".join(figure.reason() for figure in verdict.breaches)
                return AutoOutcome("held", weight, f"a guardrail breached: {reasons}")
            if not verdict.enough and weight > 0:
                continue
        stepped = await set_weight(
            changes,
            route,
            variant,
            following[0],
            source="auto",
            note=f"auto-promote {route}/{variant} from {weight:g} % to {following[0]:g} %",
        )
        started = True
        on_step(stepped)
