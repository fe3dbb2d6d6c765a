"""The guardrails' rule: a canary worse than its control by more than the allowed margin,
with enough calls, breaches; noise, or too little traffic, never does."""

from __future__ import annotations

import random

from tollhouse.config.rollout import GuardrailsConfig
from tollhouse.rollout.guardrails import judge
from tollhouse.rollout.window import ArmWindow, Sample

CONFIG = GuardrailsConfig(min_calls=100)


def window(
    n: int,
    *,
    error_rate: float = 0.0,
    latency: float = 1.0,
    cost: float = 0.001,
    truncation_rate: float = 0.0,
    rng: random.Random | None = None,
) -> ArmWindow:
    rng = rng or random.Random(7)
    arm = ArmWindow(300)
    for i in range(n):
        arm.add(
            Sample(
                at=float(i),
                error=rng.random() < error_rate,
                truncated=rng.random() < truncation_rate,
                latency=latency * rng.uniform(0.5, 1.5),
                ttft=latency * rng.uniform(0.1, 0.3),
                cost=cost * rng.uniform(0.5, 1.5),
            )
        )
    return arm


def breached(canary: ArmWindow, control: ArmWindow, config: GuardrailsConfig = CONFIG) -> set[str]:
    return {figure.guardrail for figure in judge(canary, control, config).breaches}


def test_a_canary_failing_30_percent_of_200_calls_breaches_the_error_rate() -> None:
    assert breached(window(200, error_rate=0.3), window(200)) == {"error_rate"}


def test_a_canary_as_good_as_its_control_never_breaches_in_1000_checks() -> None:
    rng = random.Random(1)
    fired = 0
    for _ in range(1000):
        canary = window(150, error_rate=0.02, truncation_rate=0.05, rng=rng)
        control = window(150, error_rate=0.02, truncation_rate=0.05, rng=rng)
        fired += bool(breached(canary, control))
    assert fired == 0


def test_too_few_calls_never_breach_however_bad_they_are() -> None:
    verdict = judge(window(99, error_rate=1.0, latency=50), window(1000), CONFIG)
    assert not verdict.enough
    assert verdict.breaches == ()
    assert verdict.figures[0].canary == 1.0  # the figure is shown all the same


def test_one_bad_call_in_a_small_window_is_not_a_breach() -> None:
    canary = window(120)
    canary.add(Sample(at=0.0, error=True, truncated=True, latency=60.0, ttft=30.0, cost=1.0))
    assert breached(canary, window(120)) == set()


def test_a_canary_three_times_slower_breaches_latency_and_ttft_p95() -> None:
    assert breached(window(200, latency=3.0), window(200)) == {"latency_p95", "ttft_p95"}


def test_a_canary_half_again_as_slow_is_within_a_ratio_of_two() -> None:
    assert breached(window(300, latency=1.5), window(300)) == set()


def test_a_canary_three_times_as_costly_breaches_cost_per_call() -> None:
    assert breached(window(200, cost=0.003), window(200)) == {"cost_per_call"}


def test_more_truncations_than_the_margin_breach_the_truncation_rate() -> None:
    assert breached(window(300, truncation_rate=0.3), window(300)) == {"truncation_rate"}


def test_quality_scores_breach_once_both_arms_have_enough() -> None:
    canary, control = window(200), window(200)
    for i in range(29):
        canary.add_score(float(i), 0.4)
        control.add_score(float(i), 0.9)
    assert breached(canary, control) == set()  # 29 scores each, below min_scores
    canary.add_score(30.0, 0.4)
    control.add_score(30.0, 0.9)
    assert breached(canary, control) == {"quality"}


def test_a_guardrail_set_to_none_is_not_watched() -> None:
    config = GuardrailsConfig(min_calls=100, cost_ratio=None)
    verdict = judge(window(200, cost=0.01), window(200), config)
    assert "cost_per_call" not in {figure.guardrail for figure in verdict.figures}
    assert verdict.breaches == ()
