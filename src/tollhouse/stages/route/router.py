"""Route: the model name a client sends → its variant (stages/route/variant_split.py) →
that variant's ordered deployments, the policies that govern them (retries, timeouts,
fallback rules, degradation, truncation, hedging) and its changes to the request
(stages/shape/variant_request.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from tollhouse.call import Call
from tollhouse.catalog.models import ModelCatalog, ParameterRule
from tollhouse.config import GatewayConfig
from tollhouse.config.input_guardrails import UntrustedContentConfig
from tollhouse.config.model import (
    CachePolicy,
    DegradePolicy,
    Deployment,
    EscalationName,
    FailureName,
    HistoryBound,
    InputLimits,
    ModelRoute,
    ParameterRuleAction,
    RetiredModelAction,
    RetryPolicy,
    StructuredOutputPolicy,
    TimeoutsConfig,
    TruncationPolicy,
    Variant,
)
from tollhouse.config.prompt_cache import AutoBreakpoints, PromptCachePolicy
from tollhouse.errors import NotFound
from tollhouse.ports.keys.record import KeyRecord
from tollhouse.providers.base import Provider
from tollhouse.reliability.circuit_breaker import CircuitBreaker
from tollhouse.stages.check.json_schemas import SchemaCache, compile_schema
from tollhouse.stages.check.structured_output import OutputRequirement, requirement_for
from tollhouse.stages.route.candidates import CandidateChoice
from tollhouse.stages.route.variant_split import VariantSplit, refuse_override_without_variants
from tollhouse.stages.shape.guardrails.base import Guardrail
from tollhouse.stages.shape.guardrails.build import build_guardrails
from tollhouse.stages.shape.input_limits import NO_LIMITS, tightest
from tollhouse.stages.shape.variant_request import VariantEdits

NO_PROMPT_CACHE = PromptCachePolicy()


@dataclass(frozen=True, slots=True)
class Target:
    """One deployment: where to send, under which id, its breaker (shared by every route
    that uses the same provider and model), the catalog's parameter rules of its model
    that the route enforces (none when the route relays such parameters), and the
    prompt-cache breakpoints the route places on its requests."""

    provider: Provider
    upstream_model: str
    breaker: CircuitBreaker
    parameter_rules: tuple[ParameterRule, ...] = ()
    # The prompt-cache breakpoints its Anthropic-format requests get (None: none placed).
    breakpoints: AutoBreakpoints | None = None

    @property
    def label(self) -> str:
        return f"{self.provider.name}/{self.upstream_model}"


@dataclass(frozen=True, slots=True)
class RoutePlan:
    """How calls to `model` are served: by `variant` of the route (None for a route
    without variants), with that variant's `edits` to the request (None: none), through
    the route's `input_guardrails` and `untrusted`-content marking (None: none).

    `candidates`: the targets are listed cheapest first (stages/route/candidates.py), so
    moving on to a later one escalates; `choice` picks a call's starting candidate by the
    route's rules (None: it starts at the first); `escalate_on`: the kinds of answers that
    move on instead of reaching the client (stages/dispatch/escalation.py)."""

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
    history: HistoryBound | None = None
    lifecycle: RetiredModelAction = "refuse"
    parameters: ParameterRuleAction = "drop"
    variant: str | None = None
    edits: VariantEdits | None = None
    prompt_cache: PromptCachePolicy = NO_PROMPT_CACHE
    structured_output: OutputRequirement | None = None
    input_guardrails: tuple[Guardrail, ...] = ()
    untrusted: UntrustedContentConfig | None = None
    candidates: bool = False
    escalate_on: frozenset[EscalationName] = frozenset()
    choice: CandidateChoice | None = None


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
        self.splits: dict[str, VariantSplit] = {}
        self._breaker_policy = config.reliability.breaker
        self._catalog = catalog
        self._config = config
        self._providers = providers
        # The config's schemas, compiled once for this snapshot; the schemas requests bring
        # (their tools') in one bounded cache.
        self._request_schemas = SchemaCache()
        self.schemas: dict[str, OutputRequirement] = {}
        for name in config.schemas:
            self.schemas[name] = self._requirement(StructuredOutputPolicy(schema=name))
        self._guardrails = build_guardrails(config, providers)
        for model, route in config.models.items():
            if not route.variants:
                self._plans[model] = self._plan(model, route, route.deployments)
                continue
            plans = {
                name: self._plan(model, route, self._deployments(route, variant), name, variant)
                for name, variant in route.variants.items()
            }
            weights = {name: variant.weight for name, variant in route.variants.items()}
            self.splits[model] = VariantSplit(model, route.split, route.control, plans, weights)
            self._plans[model] = plans[route.control]

    def _deployments(self, route: ModelRoute, variant: Variant) -> tuple[Deployment, ...]:
        """The chain serving `variant`: its own, another route's, the route's own with the
        variant's model, or the route's own."""
        if variant.deployments is not None:
            return variant.deployments
        if variant.model is None:
            return route.deployments
        other = self._config.models.get(variant.model)
        if other is not None:
            return other.deployments
        return tuple(Deployment(d.provider, variant.model) for d in route.deployments)

    def _plan(
        self,
        model: str,
        route: ModelRoute,
        deployments: tuple[Deployment, ...],
        variant_name: str | None = None,
        variant: Variant | None = None,
    ) -> RoutePlan:
        config = self._config
        defaults = config.reliability
        parameters = route.lifecycle.parameters or config.lifecycle.parameters
        targets = [
            self.target(self._providers[d.provider], d.model, parameters, route.prompt_cache)
            for d in deployments
        ]
        retry = route.retry
        timeouts = route.timeouts
        truncation = route.truncation
        hedge_after_ms = route.hedge_after_ms
        input_limits = route.input_limits
        if variant is not None:
            retry = variant.retry or retry
            timeouts = variant.timeouts or timeouts
            truncation = variant.truncation or truncation
            if variant.hedge_after_ms is not None:
                hedge_after_ms = variant.hedge_after_ms
            input_limits = variant.input_limits or input_limits
        plan = RoutePlan(
            model=model,
            targets=tuple(targets),
            retry=retry or defaults.retry,
            timeouts=timeouts or config.timeouts,
            fallback_on=frozenset(route.fallback_on),
            degrade=route.degrade,
            truncation=truncation,
            hedge_after=None if hedge_after_ms is None else hedge_after_ms / 1000,
            cache=route.cache,
            input_limits=tightest((config.limits.input, input_limits)),
            history=route.history,
            lifecycle=route.lifecycle.retired or config.lifecycle.retired,
            parameters=parameters,
            variant=variant_name,
            edits=None if variant is None else VariantEdits.of(variant),
            prompt_cache=route.prompt_cache,
            structured_output=(
                None
                if route.structured_output is None
                else self._requirement(route.structured_output)
            ),
            input_guardrails=tuple(self._guardrails[name] for name in route.input_guardrails),
            untrusted=route.untrusted,
            candidates=bool(route.escalate_on) or any(d.when for d in deployments),
            escalate_on=frozenset(route.escalate_on),
        )
        if any(d.when for d in deployments):
            plan = replace(plan, choice=CandidateChoice(deployments))
        return plan

    def _requirement(self, policy: StructuredOutputPolicy) -> OutputRequirement:
        name = policy.schema
        doc = None if name is None else self._config.schemas[name]
        compiled = self.schemas[name].schema if name in self.schemas else None
        if doc is not None and compiled is None:
            compiled = compile_schema(doc)
        return OutputRequirement(policy, compiled, name, doc, self._request_schemas)

    def target(
        self,
        provider: Provider,
        upstream_model: str,
        parameters: ParameterRuleAction,
        prompt_cache: PromptCachePolicy = NO_PROMPT_CACHE,
    ) -> Target:
        """The deployment of `upstream_model` on `provider`, with the breaker every route
        sending there shares, for a route that treats refused parameters as `parameters`
        and places prompt-cache breakpoints as `prompt_cache` says."""
        key = f"{provider.name}/{upstream_model}"
        breaker = self.breakers.get(key)
        if breaker is None:
            breaker = self._kept_breakers.get(key) or CircuitBreaker(self._breaker_policy, key)
            self.breakers[key] = breaker
        entry = self._catalog.get(upstream_model)
        rules = () if entry is None or parameters == "relay" else entry.parameter_rules
        floor = entry.prompt_cache if entry is not None else None
        breakpoints = AutoBreakpoints.of(prompt_cache, floor.min_tokens if floor else None)
        return Target(provider, upstream_model, breaker, rules, breakpoints)

    def route(self, call: Call, key: KeyRecord | None) -> RoutePlan:
        """The plan serving `call` (made with `key`): its route's, or the one of the variant
        the split gives it (named on `call.variant`); on a route of candidates, the whole
        chain (`candidates.choose_candidate` picks where the call starts). Raises
        `NotFound` for a model no route serves, `BadRequest`/`PermissionDenied` for a
        variant the request may not name."""
        split = self.splits.get(call.model)
        if split is None:
            plan = self.resolve(call.model)
            refuse_override_without_variants(call)
        else:
            plan = split.choose(call, key)
            call.variant = plan.variant
        return plan

    def require_output(self, call: Call, plan: RoutePlan) -> RoutePlan:
        """`plan` (the lifecycle check's, the last step of routing) with the structured
        output `call` must give: its route's, or the schema its `x-tollhouse-schema` header
        names (stages/check/structured_output.py)."""
        required = requirement_for(call, plan.structured_output, self.schemas)
        if required is plan.structured_output:
            return plan
        return replace(plan, structured_output=required)

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
        """The plan of `model` (its control's, for a route with variants), or None when no
        route serves it."""
        return self._plans.get(model)

    @property
    def models(self) -> list[str]:
        return list(self._plans)

    def plans(self) -> list[RoutePlan]:
        """Every plan of the snapshot: each route's, each variant's."""
        plans = [plan for name, plan in self._plans.items() if name not in self.splits]
        for split in self.splits.values():
            plans.extend(split.plans.values())
        return plans
