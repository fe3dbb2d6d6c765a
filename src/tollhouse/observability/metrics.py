"""Prometheus metrics for `/metrics`.

The request path only bumps plain counters and bucket arrays (a dict lookup and an add);
`prometheus_client` renders them at scrape time through a custom collector. Gauges of live
state (breakers, calls in flight, the ledger queue) are read from their owners when scraped,
so they are never stale and cost nothing per call.

Label values come only from the configuration (models served, providers, deployments) and
from the gateway's own fixed vocabularies (statuses, formats, failure classes, token
types): a name a client makes up, a model no route serves, counts as `other`, so no client
can grow the number of series (or the memory behind them) by sending new names.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
TOKEN_TYPES = ("input", "output", "cache_write", "cache_read")
BREAKER_STATE_VALUE = {"closed": 0.0, "half_open": 1.0, "open": 2.0}
OTHER = "other"  # the label value of every name outside the configured set


@dataclass(slots=True)
class Histogram:
    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.buckets) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, float]]:
        running = 0
        out = []
        for bound, count in zip(self.buckets, self.counts, strict=False):
            running += count
            out.append((repr(float(bound)), float(running)))
        out.append(("+Inf", float(running + self.counts[-1])))
        return out


@dataclass(frozen=True, slots=True)
class CallObservation:
    """What one finished call contributes to the metrics."""

    model: str
    provider: str
    client_format: str
    status: int
    latency: float
    ttft: float | None = None
    tokens: tuple[int, int, int, int] = (0, 0, 0, 0)  # input, output, cache write, cache read
    cost: Decimal | None = None
    priced: bool = True
    retries: int = 0
    fallback: bool = False
    truncated: bool = False
    stream: bool = False


UNPRICED_KINDS = frozenset(
    {"model", "tokens", "server_tool_use", "service_tier", "inference_geo", "speed", "batch"}
)


MAX_GUARDRAIL_SERIES = 512


class GatewayMetrics(Collector):
    """The gateway's counters; `models`, `providers` and `deployments` are the label
    values those labels may take (anything else is `other`)."""

    def __init__(
        self,
        *,
        models: Iterable[str] = (),
        providers: Iterable[str] = (),
        deployments: Iterable[str] = (),
    ) -> None:
        self.models = frozenset(models)
        self.providers = frozenset(providers) | {"-"}  # "-": no provider was reached
        self.deployments = frozenset(deployments)
        self.calls: defaultdict[tuple[str, str, str, str], int] = defaultdict(int)
        self.latency: defaultdict[str, Histogram] = defaultdict(lambda: Histogram(LATENCY_BUCKETS))
        self.ttft: defaultdict[str, Histogram] = defaultdict(lambda: Histogram(LATENCY_BUCKETS))
        self.tokens: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.cost: defaultdict[str, Decimal] = defaultdict(Decimal)
        self.unpriced: defaultdict[str, int] = defaultdict(int)
        self.unpriced_lines: defaultdict[str, int] = defaultdict(int)
        self.retries: defaultdict[str, int] = defaultdict(int)
        self.fallbacks: defaultdict[str, int] = defaultdict(int)
        self.truncated: defaultdict[str, int] = defaultdict(int)
        self.failures: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.response_cache: defaultdict[str, int] = defaultdict(int)
        self.guardrail_results: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.gauges: list[Callable[[], Iterable[Metric]]] = []
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def observe_call(self, obs: CallObservation) -> None:
        model = obs.model if obs.model in self.models else OTHER
        provider = obs.provider if obs.provider in self.providers else OTHER
        status = str(obs.status) if 100 <= obs.status <= 599 else OTHER
        self.calls[(model, provider, status, obs.client_format)] += 1
        self.latency[model].observe(obs.latency)
        if obs.ttft is not None:
            self.ttft[model].observe(obs.ttft)
        for kind, count in zip(TOKEN_TYPES, obs.tokens, strict=True):
            if count:
                self.tokens[(model, kind)] += count
        if obs.cost:  # a free call adds nothing, and no series for its model
            self.cost[model] += obs.cost
        if not obs.priced:
            self.unpriced[model] += 1
        if obs.retries:
            self.retries[model] += obs.retries
        if obs.fallback:
            self.fallbacks[model] += 1
        if obs.truncated:
            self.truncated[model] += 1

    def observe_unpriced(self, reasons: Iterable[str]) -> None:
        """A call's lines without a price (`CallCost.unpriced`), counted by their kind: the
        part before `.` or `:` (model, tokens, server_tool_use, service_tier...), a fixed
        vocabulary, so an upstream's new tool names can't grow the label set."""
        for reason in reasons:
            kind = reason.split(".", 1)[0].split(":", 1)[0]
            self.unpriced_lines[kind if kind in UNPRICED_KINDS else OTHER] += 1

    def observe_failure(self, deployment: str, kind: str) -> None:
        """`kind` is a failure class (reliability/failure_class.py), a fixed vocabulary."""
        self.failures[(deployment if deployment in self.deployments else OTHER, kind)] += 1

    def observe_guardrails(self, outcomes: Iterable[Mapping[str, str]]) -> None:
        """A call's input guardrail results (`call.guardrails`). Guardrail names come from
        the config and results from a fixed vocabulary; past `MAX_GUARDRAIL_SERIES` series
        (configs changed many times over), a new name counts as `other`."""
        table = self.guardrail_results
        for outcome in outcomes:
            key = (outcome["guardrail"], outcome["result"])
            if key not in table and len(table) >= MAX_GUARDRAIL_SERIES:
                key = (OTHER, outcome["result"])
            table[key] += 1

    def add_gauges(self, source: Callable[[], Iterable[Metric]]) -> None:
        """Register a callable that yields gauge families of live state at scrape time."""
        self.gauges.append(source)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def collect(self) -> Iterator[Metric]:
        calls = CounterMetricFamily(
            "tollhouse_calls",
            "Calls answered, by model, provider, status and client format",
            labels=["model", "provider", "status", "client_format"],
        )
        for (model, provider, status, fmt), n in self.calls.items():
            calls.add_metric([model, provider, status, fmt], n)
        yield calls
        yield self._histograms("tollhouse_call_latency_seconds", "Whole-call latency", self.latency)
        yield self._histograms(
            "tollhouse_time_to_first_token_seconds", "Time to first token (streams)", self.ttft
        )
        tokens = CounterMetricFamily(
            "tollhouse_tokens", "Tokens by model and type", labels=["model", "type"]
        )
        for (model, kind), n in self.tokens.items():
            tokens.add_metric([model, kind], n)
        yield tokens
        cost = CounterMetricFamily("tollhouse_cost_usd", "Spend in USD", labels=["model"])
        for model, amount in self.cost.items():
            cost.add_metric([model], float(amount))
        yield cost
        for name, doc, table in (
            (
                "tollhouse_unpriced_calls",
                "Calls whose cost is unknown (model without a price)",
                self.unpriced,
            ),
            ("tollhouse_retries", "Upstream attempts beyond the first", self.retries),
            ("tollhouse_fallbacks", "Calls answered by a fallback deployment", self.fallbacks),
            ("tollhouse_truncated_answers", "Answers cut at their length limit", self.truncated),
        ):
            family = CounterMetricFamily(name, doc, labels=["model"])
            for model, n in table.items():
                family.add_metric([model], n)
            yield family
        lines = CounterMetricFamily(
            "tollhouse_unpriced_lines",
            "Billable lines of calls that had no price (the call's cost is then unknown)",
            labels=["line"],
        )
        for kind, n in self.unpriced_lines.items():
            lines.add_metric([kind], n)
        yield lines
        failures = CounterMetricFamily(
            "tollhouse_upstream_failures",
            "Failed upstream attempts by deployment and class",
            labels=["deployment", "class"],
        )
        for (deployment, kind), n in self.failures.items():
            failures.add_metric([deployment, kind], n)
        yield failures
        guardrails = CounterMetricFamily(
            "tollhouse_guardrail_results",
            "Input guardrail checks by guardrail and result (pass, flagged, redacted, "
            "blocked, error)",
            labels=["guardrail", "result"],
        )
        for (guardrail, result), n in self.guardrail_results.items():
            guardrails.add_metric([guardrail, result], n)
        yield guardrails
        for source in self.gauges:
            yield from source()

    @staticmethod
    def _histograms(name: str, doc: str, table: dict[str, Histogram]) -> Metric:
        family = HistogramMetricFamily(name, doc, labels=["model"])
        for model, hist in table.items():
            family.add_metric([model], hist.cumulative(), sum_value=hist.total)
        return family


def gauge(
    name: str, doc: str, labels: list[str], values: Iterable[tuple[list[str], float]]
) -> Metric:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for label_values, value in values:
        family.add_metric(label_values, value)
    return family
