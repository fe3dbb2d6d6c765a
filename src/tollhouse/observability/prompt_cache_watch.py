"""Prompt-cache visibility on `/metrics`: the cache-hit ratio (cache reads over all input
tokens: uncached, cache writes and cache reads) by route, model and system prompt, and the
`prompt_cache_floor` alert of a route whose ratio falls under its configured floor
(`models.<route>.prompt_cache.hit_ratio_floor`, rule in alert_rules.py).

Accounting feeds `observe` once per finished call that used tokens (O(1): a few dict
updates, and one sliding window per route that has a floor).

Label sets are bounded whatever clients send: `route` is a configured route (else
`other`), `model` a model some configured deployment names (else `other`), and
`system_prompt` the short hash of the system prompt (the ledger's `system_prompt_hash`),
`none` without one. Each route keeps its first `SYSTEM_PROMPTS_PER_ROUTE` hashes as labels
and counts every later one as `other`: an app has a handful of system prompts, while a
client that puts a fresh one in each call can add at most that many series.

Series:
- `tollhouse_prompt_cache_tokens_total{route,model,system_prompt,part}`: input tokens by
  `part` (`uncached`, `cache_write`, `cache_read`), since the process started;
- `tollhouse_prompt_cache_hit_ratio{route,model,system_prompt}`: cache_read / all of them,
  since the process started (a rate over an interval is
  `rate(..{part="cache_read"}[5m]) / ignoring(part) sum without(part)(rate(..[5m]))`);
- `tollhouse_prompt_cache_floor_breached{route}`: 1 while the route's alert is firing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, Metric

from tollhouse.config import GatewayConfig
from tollhouse.observability.alert_rules import HitRatioFloorRule
from tollhouse.observability.alerts import Alerts
from tollhouse.observability.metrics import OTHER, gauge

SYSTEM_PROMPTS_PER_ROUTE = 8
NO_SYSTEM_PROMPT = "none"
PARTS = ("uncached", "cache_write", "cache_read")

Labels = tuple[str, str, str]  # route, model, system prompt


class PromptCacheWatch:
    def __init__(self, config: GatewayConfig, alerts: Alerts) -> None:
        self.alerts = alerts
        self.tokens: defaultdict[Labels, list[int]] = defaultdict(lambda: [0, 0, 0])
        self._prompts: dict[str, set[str]] = {}
        self.routes: frozenset[str] = frozenset()
        self.models: frozenset[str] = frozenset()
        self.floors: dict[str, HitRatioFloorRule] = {}
        self.configure(config)

    def configure(self, config: GatewayConfig) -> None:
        """Take the routes, models and floors of `config` (a new config version); a floor
        left unchanged keeps its window and episode."""
        self.routes = frozenset(config.models)
        models: set[str] = set()
        for route in config.models.values():
            models.update(d.model for d in route.deployments)
            for variant in route.variants.values():
                models.update(d.model for d in variant.deployments or ())
                if variant.model is not None:
                    models.add(variant.model)
        self.models = frozenset(models)
        floors: dict[str, HitRatioFloorRule] = {}
        for name, route in config.models.items():
            policy = route.prompt_cache
            if policy.hit_ratio_floor is None:
                continue
            rule = self.floors.get(name)
            same = rule is not None and (
                rule.floor,
                rule.window_seconds,
                rule.min_input_tokens,
            ) == (
                policy.hit_ratio_floor,
                policy.floor_window_seconds,
                policy.floor_min_input_tokens,
            )
            floors[name] = (
                rule
                if rule is not None and same
                else HitRatioFloorRule(
                    name,
                    policy.hit_ratio_floor,
                    policy.floor_window_seconds,
                    policy.floor_min_input_tokens,
                )
            )
        self.floors = floors

    def observe(
        self,
        *,
        now: float,
        route: str,
        model: str | None,
        system_prompt: str | None,
        uncached: int,
        cache_write: int,
        cache_read: int,
    ) -> None:
        """A finished call's input tokens by part, `now` in `time.time()` seconds."""
        route_label = route if route in self.routes else OTHER
        model_label = model if model is not None and model in self.models else OTHER
        counts = self.tokens[
            (route_label, model_label, self._prompt_label(route_label, system_prompt))
        ]
        counts[0] += uncached
        counts[1] += cache_write
        counts[2] += cache_read
        rule = self.floors.get(route)
        if rule is not None:
            event = rule.observe(now, uncached + cache_write + cache_read, cache_read)
            if event is not None:
                self.alerts.notify(event)

    def _prompt_label(self, route: str, system_prompt: str | None) -> str:
        if system_prompt is None:
            return NO_SYSTEM_PROMPT
        seen = self._prompts.setdefault(route, set())
        if system_prompt in seen:
            return system_prompt
        if len(seen) < SYSTEM_PROMPTS_PER_ROUTE:
            seen.add(system_prompt)
            return system_prompt
        return OTHER

    def collect(self) -> Iterator[Metric]:
        """Metric families for `GatewayMetrics.add_gauges`."""
        tokens = CounterMetricFamily(
            "tollhouse_prompt_cache_tokens",
            "Input tokens by route, model, system prompt (short hash) and part: uncached, "
            "cache_write, cache_read",
            labels=["route", "model", "system_prompt", "part"],
        )
        ratios = []
        for labels, counts in self.tokens.items():
            for part, count in zip(PARTS, counts, strict=True):
                tokens.add_metric([*labels, part], count)
            total = sum(counts)
            if total:
                ratios.append((list(labels), counts[2] / total))
        yield tokens
        yield gauge(
            "tollhouse_prompt_cache_hit_ratio",
            "Cache reads over all input tokens since the process started, by route, model "
            "and system prompt",
            ["route", "model", "system_prompt"],
            ratios,
        )
        yield gauge(
            "tollhouse_prompt_cache_floor_breached",
            "1 while a route's prompt-cache hit ratio is under its configured floor",
            ["route"],
            [([name], float(rule.firing)) for name, rule in self.floors.items()],
        )
