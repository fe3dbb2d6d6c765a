"""The gateway: what serves calls across config versions, and the snapshot it serves now.

`Gateway.handle` is the path of one call (see DESIGN.md); the HTTP layer only decodes the
request into a `Call`, writes the `Reply` back and hands the call to `accounting`
(stages/account.py) once the reply is sent.

What a config version decides (router, catalog, lifecycle, per-route policies) is the
`Snapshot` in `self.snapshot` (gateway_snapshot.py); a call reads it once, when it starts.
`swap` puts the next one in place: one reference assignment, made with the few parts
that stay (admission's spend policy, accounting's catalog, metrics' label sets) told in
the same synchronous step, so no call ever sees half of a version. What outlives every
version belongs to the gateway itself: counters, ledger, key ring, metrics, alerts, the
response cache. Their settings (`START_ONLY` in config_versions/changes.py) are read at
start.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, Metric

from tollhouse.accounting.call_ledger import CallLedger
from tollhouse.batches.endpoints import BatchEndpoints
from tollhouse.call import Call
from tollhouse.catalog.models import ModelCatalog
from tollhouse.config import GatewayConfig
from tollhouse.config_versions.changes import ConfigChanges
from tollhouse.config_versions.watch import VersionWatch
from tollhouse.errors import NotFound, TollhouseError
from tollhouse.gateway_parts import build_parts
from tollhouse.gateway_snapshot import NextSnapshot, Snapshot, first_snapshot
from tollhouse.observability.metrics import (
    BREAKER_STATE_VALUE,
    GatewayMetrics,
    gauge,
)
from tollhouse.observability.prompt_cache_watch import PromptCacheWatch
from tollhouse.observability.retirement_alerts import RetirementAlerts, served_models
from tollhouse.ports.keys.base import KeyStore
from tollhouse.ports.keys.key_ring import KeyRing
from tollhouse.ports.keys.record import KeyRecord
from tollhouse.providers.base import Provider
from tollhouse.providers.pool_metrics import pool_metrics, provider_pools
from tollhouse.rollout.monitor import GuardrailMonitor
from tollhouse.rollout.promotion import set_weight
from tollhouse.stages.account import Accounting
from tollhouse.stages.admit import Admitter
from tollhouse.stages.auth import Authenticator
from tollhouse.stages.dispatch import dispatch
from tollhouse.stages.lifecycle import LifecycleCheck
from tollhouse.stages.response_cache import ResponseCache
from tollhouse.stages.route import RoutePlan, Router
from tollhouse.stages.route.candidates import choose_candidate
from tollhouse.stages.route.embeddings import embeddings_plan
from tollhouse.stages.shape.history_summary import HistorySummaries
from tollhouse.stages.shape.policy import shape_request
from tollhouse.stages.shape.request_policies import request_policies
from tollhouse.stages.threads.anthropic_threads import AnthropicThreads
from tollhouse.stages.threads.held_conversations import HeldConversations
from tollhouse.stages.threads.response_history import ResponseHistory
from tollhouse.tokens.estimate import request_input_tokens
from tollhouse.types import Reply, WireFormat, json_reply
from tollhouse.wire import anthropic as anthropic_wire
from tollhouse.wire import openai as openai_wire
from tollhouse.wire.body_bounds import let_others_run
from tollhouse.wire.formats import FORMATS

if TYPE_CHECKING:  # imported only when tracing is on
    from opentelemetry.sdk.trace.export import SpanExporter

    from tollhouse.observability.tracing import CallTracing

log = logging.getLogger("tollhouse")


class Gateway:
    """With `document` (the config as written, `config` validated from it), the gateway
    keeps to config versions (config_versions/watch.py): at start it records `document`
    in the config store, noted `note`, unless the newest version has its content, then it
    follows the newest version. Without, it serves `config` alone, as no version.
    `span_exporter`: where spans go instead of `tracing.endpoint` when tracing is on (a
    test's in-memory exporter)."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        document: dict[str, Any] | None = None,
        note: str = "",
        span_exporter: SpanExporter | None = None,
    ) -> None:
        parts = build_parts(config)
        self.snapshot: Snapshot = first_snapshot(config, parts.providers, parts.catalog)
        self.versions: VersionWatch | None = None
        if document is not None:
            self.versions = VersionWatch(
                self,
                parts.config_store,
                document,
                poll_seconds=config.config_store.poll_seconds,
                note=note,
            )
        self.started_at = int(time.time())
        self.response_cache = ResponseCache(
            parts.response_store, max_entry_bytes=config.response_cache.max_entry_bytes
        )
        self.metrics = GatewayMetrics(
            models=config.models, providers=config.providers, deployments=self.router.breakers
        )
        self.metrics.add_gauges(self._live_gauges)
        self.metrics.add_gauges(lambda: self.snapshot.lifecycle.collect())
        # the providers of the config version in force, read at each scrape
        self.metrics.add_gauges(lambda: pool_metrics(provider_pools(self.providers)))
        self.ledger = CallLedger(config, parts.ledger_store)
        self.alerts = parts.alerts
        self.retirement_alerts = RetirementAlerts(
            config.alerts.model_retirement,
            served_models(self.router, self.catalog),
            self.alerts,
            parts.ledger_store,
        )
        self.metrics.add_gauges(self.retirement_alerts.collect)
        self.keys: KeyStore = parts.keys
        counters = parts.counters
        self.key_ring = KeyRing(self.keys, ttl=config.keys.cache_ttl_seconds)
        self.auth = Authenticator(config.keys, self.key_ring)
        self.admitter = Admitter(config, counters, self.catalog, self.alerts)
        self.history_summaries = HistorySummaries(self._side_call)
        self.request_policies = request_policies(self.history_summaries)
        self.conversations = HeldConversations(config.conversations, parts.conversations)
        self.threads = AnthropicThreads(self.conversations)
        self.responses = ResponseHistory(self.conversations)
        self.metrics.add_gauges(self.conversations.collect)
        self.metrics.add_gauges(self.ledger.collect)
        self.metrics.add_gauges(self.alerts.collect)
        self.metrics.add_gauges(self.admitter.collect)
        self.guardrails = GuardrailMonitor(config, self.alerts)
        self.metrics.add_gauges(self.guardrails.collect)
        self.prompt_cache = PromptCacheWatch(config, self.alerts)
        self.metrics.add_gauges(self.prompt_cache.collect)
        self.tracing: CallTracing | None = None
        if config.tracing.enabled:  # off, no opentelemetry module is ever imported
            from tollhouse.observability.tracing import CallTracing

            self.tracing = CallTracing(config.tracing, span_exporter)
        self.accounting = Accounting(
            self.catalog,
            self.admitter,
            self.ledger,
            self.alerts,
            self.metrics,
            self.guardrails,
            self.prompt_cache,
            self.tracing,
        )
        self._retiring: set[asyncio.Task[None]] = set()
        self.batches = BatchEndpoints(self)

    # The current snapshot's parts, for code that serves no call (admin, metrics, /readyz).
    @property
    def config(self) -> GatewayConfig:
        return self.snapshot.config

    @property
    def config_version(self) -> int | None:
        return self.snapshot.version

    @property
    def router(self) -> Router:
        return self.snapshot.router

    @property
    def catalog(self) -> ModelCatalog:
        return self.snapshot.catalog

    @property
    def lifecycle(self) -> LifecycleCheck:
        return self.snapshot.lifecycle

    @property
    def providers(self) -> dict[str, Provider]:
        return dict(self.snapshot.providers)

    def swap(self, following: NextSnapshot) -> None:
        """Serve `following.snapshot` from the next call on (on the serving loop). Calls
        in flight finish on the snapshot they started with; the providers it retires are
        closed once those calls can have ended (`timeouts.total` of the old version, plus
        its read timeout for a stream's last chunks)."""
        old, new = self.snapshot, following.snapshot
        self.snapshot = new
        self.admitter.reconfigure(new.config, new.catalog)
        self.accounting.catalog = new.catalog
        self.retirement_alerts.served = served_models(new.router, new.catalog)
        self.guardrails.configure(new.config)
        self.prompt_cache.configure(new.config)
        self.metrics.models = frozenset(new.config.models)
        self.metrics.providers = frozenset(new.config.providers) | {"-"}
        self.metrics.deployments = frozenset(new.router.breakers)
        if following.retired:
            linger = old.config.timeouts.total + old.config.timeouts.read_idle
            task = asyncio.ensure_future(self._close_later(following.retired, linger))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    async def _roll_back_canary(self, route: str, variant: str, note: str) -> int | None:
        """A breaching canary set to 0 % as a new config version (rollout/monitor.py),
        served here at once; the version's id."""
        assert self.versions is not None
        changes = ConfigChanges(self.versions.store)
        applied = await set_weight(changes, route, variant, 0, source="auto", note=note)
        await self.versions.check_now()
        return applied.version.id

    async def _close_later(self, providers: list[Provider], delay: float) -> None:
        try:
            await asyncio.sleep(delay)
        finally:  # the gateway closing cancels the wait: close them now
            await _close_providers(providers)

    async def start(self) -> None:
        """Start what runs beside the calls (the ledger's writers); on the serving loop."""
        await self.ledger.start()
        self.batches.start()
        self.alerts.start()
        self.retirement_alerts.start()
        if self.versions is not None:
            # The version is known before the first call (the store unreachable: served
            # as no version, and recorded once it answers).
            await self.versions.check_now()
            self.versions.start()
            self.guardrails.start(self._roll_back_canary)
        elif any(route.variants for route in self.config.models.values()):
            log.warning(
                "guardrails watch the routes' canaries but can't roll one back: this gateway "
                "keeps no config versions (start it with a config file)"
            )
        if self.config.counters.backend != "in_process":
            self.admitter.start_probing()
        if self.config.keys.required:  # else the admin API opens it on first use
            try:
                await self.keys.open()
            except Exception as error:  # calls get 503 until the store answers
                log.error("key store unavailable at start: %s", error)

    @property
    def simulated_providers(self) -> list[str]:
        return [n for n, p in self.config.providers.items() if p.type == "simulator"]

    def _live_gauges(self) -> Iterator[Metric]:
        cache = self.response_cache
        lookups = CounterMetricFamily(
            "tollhouse_response_cache_lookups",
            "Response cache lookups by result",
            labels=["result"],
        )
        for result, count in (
            ("hit", cache.hits),
            ("stale", cache.stale_hits),
            ("miss", cache.misses),
            ("bypass", cache.bypasses),
        ):
            lookups.add_metric([result], count)
        yield lookups
        stores = CounterMetricFamily(
            "tollhouse_response_cache_stores",
            "Answers of cached routes stored, or not stored for being larger than "
            "response_cache.max_entry_bytes",
            labels=["result"],
        )
        stores.add_metric(["stored"], cache.stored)
        stores.add_metric(["too_large"], cache.too_large)
        yield stores
        yield CounterMetricFamily(
            "tollhouse_response_cache_errors",
            "Response cache lookups and stores that failed (the store unavailable)",
            value=cache.errors,
        )
        yield gauge(
            "tollhouse_response_cache_entries",
            "Answers in the response cache (as last known to this process)",
            [],
            [([], cache.store.entries)],
        )
        yield gauge(
            "tollhouse_breaker_state",
            "Circuit breaker per deployment: 0 closed, 1 half-open, 2 open",
            ["deployment"],
            (([key], BREAKER_STATE_VALUE[b.state]) for key, b in self.router.breakers.items()),
        )

    async def handle(self, call: Call, key: KeyRecord | None) -> Reply:
        """Answer `call`, made with `key` (from `self.auth.identify`, None when open).
        Its span, when tracing is on, opens here and closes in accounting."""
        if self.tracing is not None:
            self.tracing.start_call(call)
        self.auth.authorize(call, key)
        snapshot = self.snapshot  # this call's version, to its end
        call.config_version = snapshot.version
        await self.threads.expand(call)
        await self.responses.expand(call)
        plan = snapshot.lifecycle.check(call, snapshot.router.route(call, key))
        plan = snapshot.router.require_output(call, plan)
        plan = choose_candidate(call, plan)  # a route of candidates: where the call starts
        if call.endpoint == "embeddings":
            plan = embeddings_plan(plan)
        if call.endpoint == "count_tokens":
            if "count_tokens" not in FORMATS[plan.targets[0].provider.wire_format].upstream_paths:
                # The upstream's format has no count endpoint: answer with the documented estimate.
                return json_reply({"input_tokens": request_input_tokens(call.body)})
        else:
            shaping = shape_request(self.request_policies, call, plan, key)
            if shaping is not None:  # a policy that waits (a guardrail endpoint, a summary)
                await shaping
            await let_others_run(len(call.raw_body))  # a large body: others get a turn
            waiting = self.admitter.admit(call, key, plan)
            if waiting is not None:  # a remote counter store
                await waiting
        reply = await self.response_cache.serve(
            call, plan, snapshot.catalog, lambda: dispatch(call, plan, self._stale_answer)
        )
        return await self._record(call, reply)

    async def _record(self, call: Call, reply: Reply) -> Reply:
        """Keep the turn of a conversation the gateway holds (threads, Responses)."""
        reply = await self.threads.record(call, reply)
        return await self.responses.record(call, reply)

    async def _side_call(self, call: Call, key: KeyRecord | None) -> Reply:
        """A call the gateway makes itself (a history summary), for `key`: routed on the
        snapshot served now, admitted, dispatched and accounted like a client's call."""
        snapshot = self.snapshot
        call.config_version = snapshot.version
        status = 500
        try:
            plan = choose_candidate(call, snapshot.router.resolve(call.model))
            waiting = self.admitter.admit(call, key, plan)
            if waiting is not None:
                await waiting
            reply = await dispatch(call, plan)
            status = reply.status
            return reply
        except TollhouseError as error:
            status = error.status_for(call.client_format)
            raise
        finally:
            self.accounting.finish(call, status)

    async def _stale_answer(self, call: Call, plan: RoutePlan) -> Reply | None:
        return await self.response_cache.stale_answer(call, plan)

    def models_reply(self, fmt: WireFormat, model_id: str | None = None) -> Reply:
        """`GET /v1/models` (all served names) or `GET /v1/models/{id}` (one, or 404).

        A route whose retired model is refused today is not served: the list leaves it out
        and asking for it is the 404 a call to it gets."""
        if model_id is None:
            names = [name for name in self.router.models if self.lifecycle.refused(name) is None]
        else:
            self.router.resolve(model_id)
            refusal = self.lifecycle.refused(model_id)
            if refusal is not None:
                raise NotFound(refusal, param="model", code="model_not_found")
            names = [model_id]
        if fmt == "anthropic":
            catalog = self.catalog
            described: list[tuple[str, str, str]] = []
            for name in names:
                entry = catalog.get(name)
                created = f"{entry.released}T00:00:00Z" if entry else "1970-01-01T00:00:00Z"
                described.append((name, entry.display_name if entry else name, created))
            if model_id is not None:
                return json_reply(anthropic_wire.model_object(*described[0]))
            return json_reply(anthropic_wire.models_list(described))
        owned = [
            (name, self.config.models[name].deployments[0].provider, self.started_at)
            for name in names
        ]
        if model_id is not None:
            return json_reply(openai_wire.model_object(*owned[0]))
        return json_reply(openai_wire.models_list(owned))

    async def aclose(self) -> None:
        """Drain the ledger (every call served gets its record), then close providers."""
        closing_order = [
            (self.batches.aclose, "batch poll"),
            (self.retirement_alerts.aclose, "model retirement checks"),
            (self.guardrails.aclose, "guardrail monitor"),
            (self.admitter.aclose, "counters"),
            (self.ledger.aclose, "ledger"),
            (self.alerts.aclose, "alerts"),
            (self.keys.aclose, "key store"),
            (self.conversations.aclose, "conversation store"),
            (self.response_cache.store.aclose, "response cache"),
        ]
        if self.tracing is not None:
            closing_order.append((self.tracing.aclose, "span exporter"))
        if self.versions is not None:
            closing_order.insert(0, (self.versions.aclose, "config store"))
        for closing, what in closing_order:
            try:
                await closing()
            except Exception:
                log.exception("closing the %s failed", what)
        for task in list(self._retiring):
            task.cancel()
        await asyncio.gather(*self._retiring, return_exceptions=True)
        await _close_providers(list(self.snapshot.providers.values()))


async def _close_providers(providers: list[Provider]) -> None:
    for provider in providers:
        try:
            await provider.aclose()
        except Exception:  # a provider failing to close must not stop the others
            log.exception("closing provider %s failed", provider.name)
