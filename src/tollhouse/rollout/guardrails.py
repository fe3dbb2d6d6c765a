"""The guardrails a canary is held to against its route's control, over their windows:
each guardrail's figures for both, the test statistic and whether it breached (the rule is
`GuardrailsConfig`'s docstring, the tests `statistics.py`).

Nothing breaches until both arms have `min_calls` calls in the window (the quality score:
`min_scores` scores each), so a variant with too little traffic never fires on noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tollhouse.config.rollout import GuardrailsConfig
from tollhouse.rollout.statistics import (
    mean_drop_z,
    mean_ratio_z,
    quantile,
    quantile_bounds,
    rate_excess_z,
    z_critical,
)
from tollhouse.rollout.window import ArmWindow, Sample

P95 = 0.95


@dataclass(frozen=True, slots=True)
class Figure:
    """One guardrail's reading: the canary's and the control's value, what the canary is
    allowed (in words), the statistic (z, or for a p95 the canary's lower bound over the
    control's upper bound times the ratio), and whether it breached."""

    guardrail: str
    canary: float | None
    control: float | None
    allowed: str
    statistic: float | None
    breached: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "guardrail": self.guardrail,
            "canary": self.canary,
            "control": self.control,
            "allowed": self.allowed,
            "statistic": None
            if self.statistic is None or math.isinf(self.statistic)
            else round(self.statistic, 3),
            "breached": self.breached,
        }

    def reason(self) -> str:
        return (
            f"{self.guardrail} {_shown(self.canary)} against the control's "
            f"{_shown(self.control)} (allowed: {self.allowed})"
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    calls: int
    control_calls: int
    enough: bool  # both arms have min_calls in the window
    figures: tuple[Figure, ...]

    @property
    def breaches(self) -> tuple[Figure, ...]:
        return tuple(figure for figure in self.figures if figure.breached)


def judge(canary: ArmWindow, control: ArmWindow, config: GuardrailsConfig) -> Verdict:
    """Every guardrail of `config` for `canary` against `control`, as they stand now."""
    ours, theirs = list(canary.samples), list(control.samples)
    enough = min(len(ours), len(theirs)) >= config.min_calls
    z = z_critical(config.confidence)
    figures = [
        _rate("error_rate", ours, theirs, lambda s: s.error, config.error_rate_margin, z, enough),
        _rate(
            "truncation_rate",
            ours,
            theirs,
            lambda s: s.truncated,
            config.truncation_rate_margin,
            z,
            enough,
        ),
    ]
    if config.latency_p95_ratio is not None:
        figures.append(
            _p95(
                "latency_p95",
                ours,
                theirs,
                lambda s: s.latency,
                config.latency_p95_ratio,
                z,
                enough,
            )
        )
    if config.ttft_p95_ratio is not None:
        figures.append(
            _p95("ttft_p95", ours, theirs, lambda s: s.ttft, config.ttft_p95_ratio, z, enough)
        )
    if config.cost_ratio is not None:
        figures.append(_cost(ours, theirs, config.cost_ratio, z, enough))
    if config.quality_margin is not None:
        figures.append(_quality(canary, control, config, z))
    return Verdict(len(ours), len(theirs), enough, tuple(figures))


def _rate(
    name: str,
    ours: list[Sample],
    theirs: list[Sample],
    bad: Callable[[Sample], bool],
    margin: float,
    z: float,
    enough: bool,
) -> Figure:
    if not ours or not theirs:
        return Figure(name, None, None, f"control + {margin:g}", None, False)
    n_bad, c_bad = sum(map(bad, ours)), sum(map(bad, theirs))
    rate, control_rate = n_bad / len(ours), c_bad / len(theirs)
    statistic = rate_excess_z(n_bad, len(ours), c_bad, len(theirs), margin)
    allowed = f"control + {margin:g}, one-sided z > {z:.2f}"
    return Figure(name, rate, control_rate, allowed, statistic, enough and statistic > z)


def _p95(
    name: str,
    ours: list[Sample],
    theirs: list[Sample],
    value: Callable[[Sample], float | None],
    ratio: float,
    z: float,
    enough: bool,
) -> Figure:
    mine = sorted(v for v in map(value, ours) if v is not None)
    other = sorted(v for v in map(value, theirs) if v is not None)
    allowed = f"{ratio:g} x control (p95 bounds at z {z:.2f})"
    if not mine or not other:
        return Figure(name, None, None, allowed, None, False)
    low, _ = quantile_bounds(mine, P95, z)
    _, high = quantile_bounds(other, P95, z)
    statistic = low / (ratio * high) if high > 0 else math.inf
    sampled = enough and min(len(mine), len(other)) >= 10
    return Figure(
        name,
        quantile(mine, P95),
        quantile(other, P95),
        allowed,
        statistic,
        sampled and statistic > 1,
    )


def _cost(ours: list[Sample], theirs: list[Sample], ratio: float, z: float, enough: bool) -> Figure:
    mine = [s.cost for s in ours if s.cost is not None]
    other = [s.cost for s in theirs if s.cost is not None]
    allowed = f"{ratio:g} x control, one-sided z > {z:.2f}"
    if not mine or not other:
        return Figure("cost_per_call", None, None, allowed, None, False)
    statistic = mean_ratio_z(mine, other, ratio)
    return Figure(
        "cost_per_call",
        sum(mine) / len(mine),
        sum(other) / len(other),
        allowed,
        statistic,
        enough and statistic > z,
    )


def _quality(canary: ArmWindow, control: ArmWindow, config: GuardrailsConfig, z: float) -> Figure:
    mine = [score for _, score in canary.scores]
    other = [score for _, score in control.scores]
    margin = config.quality_margin or 0.0
    allowed = f"control - {margin:g}, one-sided z > {z:.2f}"
    if not mine or not other:
        return Figure("quality", None, None, allowed, None, False)
    statistic = mean_drop_z(mine, other, margin)
    enough = min(len(mine), len(other)) >= config.min_scores
    return Figure(
        "quality",
        sum(mine) / len(mine),
        sum(other) / len(other),
        allowed,
        statistic,
        enough and statistic > z,
    )


def _shown(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def summary(figures: Sequence[Figure]) -> str:
    """The breached figures in one line, for a config version's note and the alert."""
    return "; ".join(figure.reason() for figure in figures)
