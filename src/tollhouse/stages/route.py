"""Route: the model name a client sends → its ordered deployments and the policies that
govern them (retries, timeouts, fallback rules, degradation, truncation, hedging)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tollhouse.config import GatewayConfig
from tollhouse.config.model import (
    CachePolicy,
    DegradePolicy,
    FailureName,
    InputLimits,
    RetryPolicy,
    TimeoutsConfig,
    TruncationPolicy,
)
from tollhouse.errors import NotFound
from tollhouse.providers.base import Provider
from tollhouse.reliability.circuit_breaker import CircuitBreaker
from tollhouse.stages.shape.input_limits import NO_LIMITS, tightest


@dataclass(frozen=True, slots=True)
class Target:
    """One deployment: where to send, under which id, and its breaker (shared by every
    route that uses the same provider and model)."""

    provider: Provider
    upstream_model: str
    breaker: CircuitBreaker

    @property
    def label(self) -> str:
        return f"{self.provider.name}/{self.upstream_model}"


@dataclass(frozen=True, slots=True)
class RoutePlan:
    model: str
    targets: tuple[Target, ...]
    retry: RetryPolicy
    timeouts: TimeoutsConfig
    fallback_on: frozenset[FailureName]
    degrade: DegradePolicy
    truncation: TruncationPolicy
    hedge_after: float | None
    cache: CachePolicy
    input_limits: InputLimits = NO_LIMITS


class Router:
    def __init__(self, config: GatewayConfig, providers: Mapping[str, Provider]) -> None:
        self.breakers: dict[str, CircuitBreaker] = {}
        self._plans: dict[str, RoutePlan] = {}
        defaults = config.reliability
        for model, route in config.models.items():
            targets = []
            for d in route.deployments:
                key = f"{d.provider}/{d.model}"
                breaker = self.breakers.setdefault(key, CircuitBreaker(defaults.breaker, key))
                targets.append(Target(providers[d.provider], d.model, breaker))
            self._plans[model] = RoutePlan(
                model=model,
                targets=tuple(targets),
                retry=route.retry or defaults.retry,
                timeouts=route.timeouts or config.timeouts,
                fallback_on=frozenset(route.fallback_on),
                degrade=route.degrade,
                truncation=route.truncation,
                hedge_after=None if route.hedge_after_ms is None else route.hedge_after_ms / 1000,
                cache=route.cache,
                input_limits=tightest((config.limits.input, route.input_limits)),
            )

    def resolve(self, model: str) -> RoutePlan:
        plan = self._plans.get(model)
        if plan is None:
            raise NotFound(
                f"model: {model!r} is not served by this gateway; "
                "GET /v1/models lists the models it serves",
                param="model",
                code="model_not_found",
            )
        return plan

    @property
    def models(self) -> list[str]:
        return list(self._plans)
