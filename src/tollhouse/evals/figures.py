"""What a target's case runs add up to: pass rates (whole and per check), cost per case
from the ledger, latency p50/p95 as the client saw it, and how much `--repeat` rounds
disagreed (the spread of the pass rate between rounds, and the cases that flipped).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from tollhouse.evals.runner import CaseRun, Target


@dataclass(frozen=True, slots=True)
class CheckFigure:
    name: str
    passed: int
    total: int

    @property
    def ratio(self) -> float:
        return self.passed / self.total if self.total else 1.0


@dataclass(frozen=True, slots=True)
class TargetFigures:
    target: Target
    runs: int
    passed_runs: int
    checks: dict[str, CheckFigure]
    cost_per_case_usd: Decimal | None
    """The mean cost of the target's own calls over the runs whose cost is known (None:
    none is); judge calls are not in it (`judge_cost_usd`)."""
    unpriced_runs: int
    calls_cost_usd: Decimal
    judge_cost_usd: Decimal
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    pass_rate_by_round: tuple[float, ...]
    flaky_cases: tuple[str, ...]
    config_versions: tuple[str, ...]
    served_variants: tuple[str, ...]

    @property
    def pass_rate(self) -> float:
        return self.passed_runs / self.runs if self.runs else 0.0

    @property
    def pass_rate_spread(self) -> tuple[float, float, float]:
        """Lowest and highest pass rate of a round, and their standard deviation."""
        rates = self.pass_rate_by_round
        deviation = statistics.pstdev(rates) if len(rates) > 1 else 0.0
        return min(rates), max(rates), deviation


def target_figures(
    target: Target, runs: Sequence[CaseRun], check_names: Sequence[str]
) -> TargetFigures:
    mine = [run for run in runs if run.target == target]
    checks = {name: [0, 0] for name in check_names}
    for run in mine:
        for result in run.results:
            tally = checks.setdefault(result.name, [0, 0])
            tally[0] += result.passed
            tally[1] += 1
    priced = [run.cost_usd for run in mine if run.cost_usd is not None]
    rounds = sorted({run.repeat for run in mine})
    by_round = tuple(
        _share([run.passed for run in mine if run.repeat == round_]) for round_ in rounds
    )
    outcomes: dict[str, set[bool]] = {}
    for run in mine:
        outcomes.setdefault(run.case.id, set()).add(run.passed)
    latencies = sorted(run.answer.latency_ms for run in mine if run.answer.error is None)
    return TargetFigures(
        target=target,
        runs=len(mine),
        passed_runs=sum(run.passed for run in mine),
        checks={name: CheckFigure(name, passed, total) for name, (passed, total) in checks.items()},
        cost_per_case_usd=sum(priced, Decimal(0)) / len(priced) if priced else None,
        unpriced_runs=len(mine) - len(priced),
        calls_cost_usd=sum(priced, Decimal(0)),
        judge_cost_usd=sum((run.judge_cost_usd for run in mine), Decimal(0)),
        latency_p50_ms=percentile(latencies, 50),
        latency_p95_ms=percentile(latencies, 95),
        pass_rate_by_round=by_round or (0.0,),
        flaky_cases=tuple(case for case, seen in outcomes.items() if len(seen) > 1),
        config_versions=_distinct(run.answer.config_version for run in mine),
        served_variants=_distinct(run.answer.variant for run in mine),
    )


def percentile(ordered: Sequence[float], p: float) -> float | None:
    """The nearest-rank percentile of sorted values; None for none."""
    if not ordered:
        return None
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def _share(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags) if flags else 0.0


def _distinct(values: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(sorted({value for value in values if value is not None}))
