"""The one-sided tests a guardrail breaches by (config/rollout.py `GuardrailsConfig`).

Each returns a z statistic, compared with `z_critical(confidence)`: a breach is a z above
it, so at `confidence` 0.99 a canary no worse than allowed breaches in at most about 1 check
in 100 by chance (fewer with the margins, which shift the null hypothesis away from it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist, fmean, variance


def z_critical(confidence: float) -> float:
    """The one-sided critical value: P(Z > z) = 1 - confidence."""
    return NormalDist().inv_cdf(confidence)


def _z(excess: float, se: float) -> float:
    if se > 0:
        return excess / se
    return math.inf if excess > 0 else -math.inf


def rate_excess_z(
    bad: int, calls: int, control_bad: int, control_calls: int, margin: float
) -> float:
    """Two-proportion z (unpooled) of H1: canary rate > control rate + `margin`."""
    p, q = bad / calls, control_bad / control_calls
    se = math.sqrt(p * (1 - p) / calls + q * (1 - q) / control_calls)
    return _z(p - q - margin, se)


def mean_ratio_z(values: Sequence[float], control: Sequence[float], ratio: float) -> float:
    """Welch z of H1: canary mean > `ratio` × control mean."""
    se = math.sqrt(_var(values) / len(values) + ratio * ratio * _var(control) / len(control))
    return _z(fmean(values) - ratio * fmean(control), se)


def mean_drop_z(values: Sequence[float], control: Sequence[float], margin: float) -> float:
    """Welch z of H1: canary mean < control mean − `margin`."""
    se = math.sqrt(_var(values) / len(values) + _var(control) / len(control))
    return _z(fmean(control) - margin - fmean(values), se)


def quantile_bounds(ordered: Sequence[float], q: float, z: float) -> tuple[float, float]:
    """A distribution-free confidence interval of the `q` quantile of sorted `ordered`: the
    order statistics at ranks n·q ∓ z·√(n·q·(1−q)) (the normal approximation of the
    binomial count of values below the quantile)."""
    n = len(ordered)
    spread = z * math.sqrt(n * q * (1 - q))
    low = max(0, math.floor(n * q - spread))
    high = min(n - 1, math.ceil(n * q + spread))
    return ordered[low], ordered[high]


def quantile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank `q` quantile of sorted `ordered`."""
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _var(values: Sequence[float]) -> float:
    return variance(values) if len(values) > 1 else 0.0
