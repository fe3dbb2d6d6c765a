"""The gate: cutoffs each target must hold, the verdict, and the exit code that says it.

Cutoffs are ratios: `pass_rate` (the share of case runs that pass every check; the suite's
`pass_rate`, 1.0 unless it says) and, per check name, the share of that check's
evaluations that pass (the suite's `cutoffs`, then `--cutoffs name=ratio,...` over them).
A target passes when every cutoff holds. The verdict passes when every target passes
(`require="all"`, the default) or at least one does (`"any"`: choosing among candidates),
and names the cheapest passing target by its cost per case in the ledger.

Exit codes: 0 the verdict passes, 1 it fails, 2 the run could not be made (usage or
infrastructure) or could not be judged whole (`Verdict.errors`: a judge model's call
failed, so a check has no grade); `Verdict.exit_code` and `Verdict.summary` decide all
three from the same fields, so the verdict printed and the code returned can't disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from tollhouse.evals.figures import TargetFigures
from tollhouse.evals.suite import PASS_RATE, Suite

EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_ERROR = 2
Require = Literal["all", "any"]


@dataclass(frozen=True, slots=True)
class CutoffResult:
    name: str
    required: float
    actual: float

    @property
    def holds(self) -> bool:
        # Ratios of whole counts: a tiny tolerance keeps 0.9 of 10 runs at 0.9.
        return self.actual + 1e-9 >= self.required


@dataclass(frozen=True, slots=True)
class TargetVerdict:
    figures: TargetFigures
    cutoffs: tuple[CutoffResult, ...]

    @property
    def passed(self) -> bool:
        return all(cutoff.holds for cutoff in self.cutoffs)

    @property
    def failed_cutoffs(self) -> tuple[CutoffResult, ...]:
        return tuple(cutoff for cutoff in self.cutoffs if not cutoff.holds)


@dataclass(frozen=True, slots=True)
class Verdict:
    targets: tuple[TargetVerdict, ...]
    require: Require
    errors: tuple[str, ...] = ()
    """What kept the run from being judged whole (a judge call that failed): such a
    verdict never passes, and exits 2."""

    @property
    def passed(self) -> bool:
        if self.errors:
            return False
        outcomes = [target.passed for target in self.targets]
        return all(outcomes) if self.require == "all" else any(outcomes)

    @property
    def exit_code(self) -> int:
        if self.errors:
            return EXIT_ERROR
        return EXIT_PASSED if self.passed else EXIT_FAILED

    @property
    def cheapest_passing(self) -> TargetVerdict | None:
        """The passing target with the lowest known cost per case (None: no passing target
        has a known cost)."""
        priced = [
            target
            for target in self.targets
            if target.passed and target.figures.cost_per_case_usd is not None
        ]
        return min(priced, key=lambda t: t.figures.cost_per_case_usd or 0, default=None)

    def summary(self) -> str:
        """One line: PASS or FAIL, why, and the cheapest passing target."""
        parts = []
        for target in self.targets:
            label = target.figures.target.label
            if target.passed:
                parts.append(f"{label} passed")
            else:
                why = ", ".join(
                    f"{c.name} {c.actual:.2f} < {c.required:.2f}" for c in target.failed_cutoffs
                )
                parts.append(f"{label} failed ({why})")
        if self.errors:
            more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
            return (
                f"ERROR: the run could not be judged whole: {self.errors[0]}{more}; "
                f"the cutoffs as far as graded: {'; '.join(parts)}"
            )
        line = f"{'PASS' if self.passed else 'FAIL'}: {'; '.join(parts)}"
        if len(self.targets) > 1:
            cheapest = self.cheapest_passing
            if cheapest is not None:
                cost = cheapest.figures.cost_per_case_usd
                line += f"; cheapest passing: {cheapest.figures.target.label} (${cost:f} per case)"
            elif any(target.passed for target in self.targets):
                line += "; cheapest passing: unknown (no cost in the ledger)"
            else:
                line += "; no target passes"
        return line


def parse_cutoffs(text: str) -> dict[str, float]:
    """`name=ratio,...` (`--cutoffs`); raises ValueError saying what is wrong."""
    cutoffs: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        try:
            ratio = float(value)
        except ValueError:
            ratio = -1.0
        if not sep or not name.strip() or not 0 <= ratio <= 1:
            raise ValueError(
                f"--cutoffs: expected name=ratio with a ratio from 0 to 1, got {item!r}"
            )
        cutoffs[name.strip()] = ratio
    return cutoffs


def cutoffs_for(suite: Suite, overrides: Mapping[str, float]) -> dict[str, float]:
    """The suite's cutoffs with `overrides` over them; ValueError for a cutoff naming no
    check of the suite."""
    unknown = [name for name in overrides if name != PASS_RATE and name not in suite.check_names]
    if unknown:
        known = ", ".join([PASS_RATE, *suite.check_names])
        raise ValueError(f"--cutoffs: no check of the suite is called {unknown[0]!r} ({known})")
    return {PASS_RATE: suite.pass_rate, **suite.cutoffs, **overrides}


def decide(
    figures: Sequence[TargetFigures],
    cutoffs: Mapping[str, float],
    require: Require = "all",
    errors: Sequence[str] = (),
) -> Verdict:
    """The verdict on `figures` against `cutoffs`; `errors` say what could not be judged."""
    targets = []
    for target in figures:
        results = []
        for name, required in cutoffs.items():
            actual = target.pass_rate if name == PASS_RATE else target.checks[name].ratio
            results.append(CutoffResult(name, required, actual))
        targets.append(TargetVerdict(target, tuple(results)))
    return Verdict(tuple(targets), require, tuple(errors))
