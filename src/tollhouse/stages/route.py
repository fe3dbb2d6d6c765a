"""Route: the model name a client sends → its ordered deployments and the policies that
govern them (retries, timeouts, fallback rules, degradation, truncation, hedging)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tollhouse.catalog.models import ModelCatalog, ParameterRule
from tollhouse.config import GatewayConfig
from tollhouse.config.model import (
    CachePolicy,
    DegradePolicy,
    FailureName,
    InputLimits,
    ParameterRuleAction,
    RetiredModelAction,
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
    """One deployment: where to send, under which id, its breaker (shared by every route
    that uses the same provider and model), and the catalog's parameter rules of its model
    that the route enforces (none when the route relays such parameters)."""

    provider: Provider
    upstream_model: str
    breaker: CircuitBreaker
    parameter_rules: tuple[ParameterRule, ...] = ()

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
    lifecycle: RetiredModelAction = "refuse"
    parameters: ParameterRuleAction = "drop"


class Router:
    def __init__(
        self,
        config: GatewayConfig,
        providers: Mapping[str, Provider],
        catalog: ModelCatalog,
        *,
        breakers: Mapping[str, CircuitBreaker] | None = None,
    ) -> None:
        """`breakers`: breakers by deployment label (`provider/model`) to keep, with their
        state, for the deployments this config still has (a reload, gateway_snapshot.py)."""
        self.breakers: dict[str, CircuitBreaker] = {}
        self._kept_breakers = breakers or {}
        self._plans: dict[str, RoutePlan] = {}
        self._breaker_policy = config.reliability.breaker
        self._catalog = catalog
        defaults = config.reliability
        for model, route in config.models.items():
            parameters = route.lifecycle.parameters or config.lifecycle.parameters
            targets = [
                self.target(providers[d.provider], d.model, parameters) for d in route.deployments
            ]
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
                lifecycle=route.lifecycle.retired or config.lifecycle.retired,
                parameters=parameters,
            )

    def target(
        self, provider: Provider, upstream_model: str, parameters: ParameterRuleAction
    ) -> Target:
        """The deployment of `upstream_model` on `provider`, with the breaker every route
        sending there shares, for a route that treats refused parameters as `parameters`."""
        key = f"{provider.name}/{upstream_model}"
        breaker = self.breakers.get(key)
        if breaker is None:
            breaker = self._kept_breakers.get(key) or CircuitBreaker(self._breaker_policy, key)
            self.breakers[key] = breaker
        entry = self._catalog.get(upstream_model)
        rules = () if entry is None or parameters == "relay" else entry.parameter_rules
        return Target(provider, upstream_model, breaker, rules)

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

    def find(self, model: str) -> RoutePlan | None:
        """The plan of `model`, or None when no route serves it."""
        return self._plans.get(model)

    @property
    def models(self) -> list[str]:
        return list(self._plans)
