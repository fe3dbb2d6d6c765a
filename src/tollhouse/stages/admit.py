"""Admission: rate limits and budgets, decided in one atomic step before a call is sent.

Every scope a call belongs to (the gateway as a whole, its key, the key's end user, its
team and project) contributes its limits: requests per minute (1), input tokens per minute
(the estimate), output tokens per minute (`max_tokens`, reserved), concurrent calls, and
daily / monthly budgets that reserve the call's worst-case cost (estimated input at the
input price plus `max_tokens` at the output price). The counter store admits all of them or
none. When the call ends, however it ends, `settle` puts the buckets right with the usage
the provider reported and turns the budget reservation into the actual cost (or `release`
gives everything back when nothing was used), so concurrent calls can never overshoot a
budget and spend that never happened never pins one.

With no limit or budget configured for any of a call's scopes, the store is not even asked:
the gateway then never answers 429 itself.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import orjson
from prometheus_client.core import CounterMetricFamily, Metric

from tollhouse.accounting import Usage, cost_of
from tollhouse.accounting.server_tools import requested_server_tool_uses, server_tool_reserve
from tollhouse.call import Call
from tollhouse.catalog.models import CatalogModel, ModelCatalog
from tollhouse.config.model import Budget, GatewayConfig, Limits
from tollhouse.errors import BudgetExceeded, PermissionDenied, RateLimited, ServiceUnavailable
from tollhouse.observability.alerts import Alerts
from tollhouse.observability.metrics import OTHER, gauge
from tollhouse.ports.counters import (
    Admission,
    Amounts,
    BucketLimit,
    BudgetLimit,
    ConcurrencyLimit,
    CounterStore,
    CountersUnavailable,
    Decision,
    LimitKind,
    Reservation,
    Takes,
    from_nanousd,
    to_nanousd,
)
from tollhouse.ports.counters.nanousd import NANO_PER_USD
from tollhouse.ports.keys.record import KeyRecord
from tollhouse.stages.rate_limit_headers import HeaderPlan
from tollhouse.stages.route import RoutePlan
from tollhouse.tokens.estimate import request_input_tokens
from tollhouse.types import Header

log = logging.getLogger("tollhouse.admit")

DEFAULT_OUTPUT_RESERVE = 4096  # when a request sets no max_tokens and the model's is unknown
# A budget in `clamp` mode lowers max_tokens no further: below this, the call is refused.
MIN_CLAMPED_TOKENS = 16
_DAY_TTL = 2 * 86400
_MONTH_TTL = 32 * 86400
_RETRY_UNAVAILABLE_AFTER = 1.0  # seconds a down counter store is left alone


@dataclass(frozen=True, slots=True)
class Scope:
    name: str  # "global", "key:key_abc", "user:key_abc/alice", "team:red", "project:x"
    label: str  # how a refusal names it to the client
    limits: Limits
    budget: Budget


class Ticket:
    """What an admitted call carries until it ends: its reservation and the rate-limit
    headers for its reply (`tollhouse.types.AdmissionTicket`, which `Call.admission` is
    typed as). (A plain class, made per call: see ports/counters/base.py.)"""

    __slots__ = ("headers", "reservation")

    def __init__(self, reservation: Reservation, headers: list[Header]) -> None:
        self.reservation: Final = reservation
        self.headers: Final = headers


@dataclass(frozen=True, slots=True)
class _Shape:
    """What admission asks of the counters for calls of one scope set: everything but the
    amounts, which are the call's own."""

    buckets: tuple[BucketLimit, ...]
    concurrency: tuple[ConcurrencyLimit, ...]
    budgets: tuple[tuple[str, int, str], ...]  # (key without its period, cap, "day"|"month")
    budget_use_keys: tuple[tuple[str, str], ...]  # (scope, "day"|"month") per budget
    budget_clamps: tuple[bool, ...]  # per budget: its mode is `clamp` (else `reserve`)
    needs_input: bool  # an input-token bucket or a budget: the prompt must be estimated
    needs_output: bool  # an output-token bucket or a budget: max_tokens is reserved
    labels: dict[str, str]  # how a refusal names each limit (budget keys: by prefix)
    anthropic_headers: HeaderPlan
    openai_headers: HeaderPlan
    # The Admission per (day, month, lease TTL, budgets held): built and validated once
    # per period, not per call.
    admissions: dict[tuple[str, str, float, bool], Admission]

    def admission(self, day: str, month: str, lease_ttl: float, budgets: bool) -> Admission:
        found = self.admissions.get((day, month, lease_ttl, budgets))
        if found is None:
            if len(self.admissions) >= 16:  # periods and routes come and go
                self.admissions.clear()
            found = self.admissions[(day, month, lease_ttl, budgets)] = Admission(
                buckets=self.buckets,
                concurrency=self.concurrency,
                budgets=tuple(
                    BudgetLimit(
                        f"{prefix}{day if every == 'day' else month}",
                        cap,
                        _DAY_TTL if every == "day" else _MONTH_TTL,
                    )
                    for prefix, cap, every in self.budgets
                )
                if budgets
                else (),
                lease_ttl_seconds=lease_ttl,
            )
        return found


@dataclass(frozen=True, slots=True)
class _RoutePrices:
    """What admission needs to know of a route's deployments, looked up once per route
    (per plan: `plan` is the one they were looked up for, so a call still on the plan of
    the config version before a reload never prices the new one's deployments)."""

    plan: RoutePlan
    entries: tuple[CatalogModel | None, ...]
    output_reserve: int  # for requests that set no max_tokens: the largest known output
    # Per deployment (nano-USD per input token, per output token, valid up to this many
    # prompt tokens or None for any): the worst case as integer arithmetic. None when a
    # deployment is unpriced or priced in fractions of a nano-dollar per token.
    linear: tuple[tuple[int, int, int | None], ...] | None


# (key id, end user, team, project): who a call is for, as far as limits go.
_ShapeKey = tuple[str | None, str | None, str | None, str | None]


def _shape_of(scopes: list[Scope]) -> _Shape | None:
    if not scopes:
        return None
    buckets: list[BucketLimit] = []
    concurrency: list[ConcurrencyLimit] = []
    budgets: list[tuple[str, int, str]] = []
    budget_use_keys: list[tuple[str, str]] = []
    budget_clamps: list[bool] = []
    labels: dict[str, str] = {}
    for scope in scopes:
        limits = scope.limits
        for takes, prefix, capacity in (
            (Takes.REQUESTS, "rpm", limits.rpm),
            (Takes.INPUT, "itpm", limits.input_tpm),
            (Takes.OUTPUT, "otpm", limits.output_tpm),
        ):
            if capacity is not None:
                name = f"{prefix}:{scope.name}"
                buckets.append(BucketLimit(name, capacity, takes))
                labels[name] = scope.label
        if limits.concurrency is not None:
            name = f"conc:{scope.name}"
            concurrency.append(ConcurrencyLimit(name, limits.concurrency))
            labels[name] = scope.label
        for every, cap in (("day", scope.budget.daily_usd), ("month", scope.budget.monthly_usd)):
            if cap is not None:
                prefix = f"budget:{scope.name}:{every}:"
                budgets.append((prefix, to_nanousd(cap), every))
                budget_use_keys.append((scope.name, every))
                budget_clamps.append(scope.budget.mode == "clamp")
                adjective = "daily" if every == "day" else "monthly"
                labels[prefix] = f"the {adjective} budget of ${cap} for {scope.label}"
    return _Shape(
        buckets=tuple(buckets),
        concurrency=tuple(concurrency),
        budgets=tuple(budgets),
        budget_use_keys=tuple(budget_use_keys),
        budget_clamps=tuple(budget_clamps),
        needs_input=bool(budgets) or any(b.takes == Takes.INPUT for b in buckets),
        needs_output=bool(budgets) or any(b.takes == Takes.OUTPUT for b in buckets),
        labels=labels,
        anthropic_headers=HeaderPlan.of("anthropic", [(b.key, b.capacity) for b in buckets]),
        openai_headers=HeaderPlan.of("openai", [(b.key, b.capacity) for b in buckets]),
        admissions={},
    )


def _linear_rates(entry: CatalogModel | None) -> tuple[int, int, int | None] | None:
    """`entry`'s cost of one input and one output token in whole nano-dollars, as `cost_of`
    prices them (so there is one pricing rule), and the prompt size up to which they hold
    (past a long-context threshold `cost_of` applies other rates); None when unpriced or
    when a rate is a fraction of a nano-dollar."""
    if entry is None or entry.pricing is None:
        return None
    per_input = cost_of(entry, Usage(input_tokens=1)).total
    per_output = cost_of(entry, Usage(output_tokens=1)).total
    if per_input is None or per_output is None:
        return None
    nano_input, nano_output = per_input * NANO_PER_USD, per_output * NANO_PER_USD
    if nano_input != int(nano_input) or nano_output != int(nano_output):
        return None
    tier = entry.pricing.long_context
    return int(nano_input), int(nano_output), None if tier is None else tier.threshold_tokens


_periods: tuple[int, tuple[str, str]] = (-1, ("", ""))


def _period_names(wall: float) -> tuple[str, str]:
    """The UTC day and month of `wall` as budget keys name them, recomputed once a day."""
    global _periods
    day_number = int(wall // 86400)
    if _periods[0] != day_number:
        moment = datetime.fromtimestamp(wall, UTC)
        _periods = (day_number, (moment.strftime("%Y-%m-%d"), moment.strftime("%Y-%m")))
    return _periods[1]


class Admitter:
    def __init__(
        self, config: GatewayConfig, store: CounterStore, catalog: ModelCatalog, alerts: Alerts
    ) -> None:
        self.spend = config.spend
        self.fail_open = config.counters.on_unavailable == "open"
        self.store = store
        self.catalog = catalog
        self.alerts = alerts
        self.results: Counter[str] = Counter()
        self.unpriced: Counter[str] = Counter()
        self.store_available = True
        self.last_error: str | None = None
        self._skip_until = 0.0
        self._settling: set[asyncio.Task[None]] = set()
        self._anything_configured = _any_limit(config)
        # (headroom, limit) in nano-USD per budget as the last admission saw it, for
        # /metrics (the ratio is worked out when scraped, not per call); bounded with the
        # shapes, which name every budget that can appear here.
        self.budget_use: dict[tuple[str, str], tuple[int, int]] = {}
        self._shapes: dict[_ShapeKey, tuple[KeyRecord | None, _Shape | None]] = {}
        self._prices: dict[str, _RoutePrices] = {}
        self._probe: asyncio.Task[None] | None = None
        thresholds = config.alerts.budget.thresholds
        # Below every alert threshold nothing can fire: the headroom under which a
        # budget is worth showing the alerts, as a fraction of its limit.
        self._alert_headroom = 1.0 - min(thresholds) if thresholds else -1.0

    def reconfigure(self, config: GatewayConfig, catalog: ModelCatalog) -> None:
        """Take the spend policy and catalog of a new config version (a reload); the
        counter store and its state stay. `counters` and `alerts` are read at start."""
        self.spend = config.spend
        self.catalog = catalog
        self._anything_configured = _any_limit(config)
        self._shapes = {}
        self._prices = {}

    def admit(self, call: Call, key: KeyRecord | None, plan: RoutePlan) -> Awaitable[None] | None:
        """Admit `call` or raise RateLimited / BudgetExceeded / PermissionDenied /
        ServiceUnavailable; an admitted call gets its `Ticket` on `call.admission`.

        Decided here and now (None) when nothing limits the call or the store decides in
        line (`CounterStore.admit_now`: counters in this process); else the returned
        awaitable asks the remote store and concludes.
        (Not a coroutine throughout: in process, that was a generator per call for
        nothing to wait on.)"""
        if not self._anything_configured and key is None:
            return None
        shape = self._shape(call, key)
        if shape is None:
            return None
        input_tokens = output_tokens = 0
        if shape.needs_input:
            estimate = call.input_estimate
            input_tokens = estimate if estimate is not None else request_input_tokens(call.body)
        prices = self._route_prices(plan)
        if shape.needs_output and call.has_output:
            asked = call.body.get(call.wire.max_tokens_field(call.body))
            output_tokens = asked if isinstance(asked, int) and asked > 0 else prices.output_reserve
        worst = None
        if shape.budgets:
            worst = self._worst_case(call, input_tokens, output_tokens, prices)
        if not (shape.buckets or shape.concurrency or worst is not None):
            return None
        day, month = _period_names(call.started_wall)
        admission = shape.admission(day, month, plan.timeouts.total + 60.0, worst is not None)
        amounts = Amounts(input_tokens, output_tokens, worst or 0)
        decision = self.store.admit_now(admission, amounts)
        if decision is None:
            return self._admit_remotely(call, shape, admission, amounts, prices)
        clamped = self._conclude(call, shape, decision, amounts, prices, may_clamp=call.has_output)
        if clamped is not None:
            decision = self.store.admit_now(admission, clamped)
            assert decision is not None  # a store that decides in line always does
            self._conclude(call, shape, decision, clamped, prices, may_clamp=False)
        return None

    async def _admit_remotely(
        self,
        call: Call,
        shape: _Shape,
        admission: Admission,
        amounts: Amounts,
        prices: _RoutePrices,
    ) -> None:
        decision = await self._decide(admission, amounts)
        if decision is None:  # the counters are away and the gateway fails open
            return
        clamped = self._conclude(call, shape, decision, amounts, prices, may_clamp=call.has_output)
        if clamped is not None:
            decision = await self._decide(admission, clamped)
            if decision is not None:
                self._conclude(call, shape, decision, clamped, prices, may_clamp=False)

    def _conclude(
        self,
        call: Call,
        shape: _Shape,
        decision: Decision,
        amounts: Amounts,
        prices: _RoutePrices,
        *,
        may_clamp: bool,
    ) -> Amounts | None:
        """Give `call` its ticket, or raise the refusal `decision` holds; or, when only
        budgets in `clamp` mode refused it and `may_clamp`, lower its `max_tokens` to what
        they afford and return the smaller amounts to admit it with instead."""
        header_plan = (
            shape.anthropic_headers if call.client_format == "anthropic" else shape.openai_headers
        )
        headers = header_plan.render(decision, time.time())
        budgets = decision.admission.budgets
        if budgets:
            self._observe_budgets(budgets, shape.budget_use_keys, decision)
        if not decision.admitted:
            if decision.refused_kind == LimitKind.BUDGET:
                return self._fit_budgets(call, shape, decision, amounts, prices, may_clamp, headers)
            self.results[str(decision.refused_kind)] += 1
            raise _refusal(decision, shape.labels, {k.decode(): v.decode() for k, v in headers})
        self.results["admitted"] += 1
        if call.unpriced_admission:
            self.unpriced[call.unpriced_admission] += 1
        assert decision.reservation is not None
        call.admission = Ticket(decision.reservation, headers)
        return None

    def _fit_budgets(
        self,
        call: Call,
        shape: _Shape,
        decision: Decision,
        amounts: Amounts,
        prices: _RoutePrices,
        may_clamp: bool,
        headers: list[Header],
    ) -> Amounts:
        """The call `decision`'s budgets refused, with `max_tokens` lowered to what every
        budget affords, when each budget that refused is in `clamp` mode (and `may_clamp`)
        and at least `MIN_CLAMPED_TOKENS` fit; else raise the refusal, saying which budget,
        what is left of it and the `max_tokens` that would fit, or that the budget is
        reached (not even a minimal answer fits: the 100% alert then fires)."""
        budgets = decision.admission.budgets
        remaining = decision.remaining
        first = len(remaining) - len(budgets)  # budgets come last
        reserve = amounts.reserve_nanousd
        clamp = may_clamp
        binding = 0
        for position in range(len(budgets)):
            headroom = remaining[first + position]
            if headroom < remaining[first + binding]:
                binding = position
            if (headroom == 0 or reserve > headroom) and not shape.budget_clamps[position]:
                clamp = False
        left = remaining[first + binding]
        most = amounts.output_tokens
        fits = self._affordable_output(call, amounts.input_tokens, left, most, prices)
        field = call.wire.max_tokens_field(call.body)
        if clamp and fits >= MIN_CLAMPED_TOKENS:
            asked = call.body.get(field)
            call.body[field] = fits
            call.raw_body = orjson.dumps(call.body)
            call.max_tokens_clamp = ("budget", asked if isinstance(asked, int) else None, fits)
            worst = self._worst_case(call, amounts.input_tokens, fits, prices)
            return Amounts(amounts.input_tokens, fits, worst or 0)
        self.results[str(LimitKind.BUDGET)] += 1
        budget = budgets[binding]
        label = shape.labels.get(budget.key.rsplit(":", 1)[0] + ":", "a budget")
        refusal_headers = {k.decode(): v.decode() for k, v in headers}
        if fits >= (MIN_CLAMPED_TOKENS if shape.budget_clamps[binding] else 1):
            raise BudgetExceeded(
                f"this call's worst case of {_dollars(reserve)} exceeds the {_dollars(left)} "
                f"left of {label}; lower {field} to {fits} to fit",
                headers=refusal_headers,
            )
        scope, _ = shape.budget_use_keys[binding]
        limit = budget.limit_nanousd
        self.alerts.observe_budget(
            scope=scope,
            period=budget.key.rpartition(":")[2],
            spent=from_nanousd(limit),
            limit=from_nanousd(limit),
        )
        raise BudgetExceeded(
            f"{label} is reached ({_dollars(left)} left, not enough for a minimal answer); "
            "calls resume when the period turns",
            headers=refusal_headers,
        )

    def _affordable_output(
        self, call: Call, input_tokens: int, headroom: int, most: int, prices: _RoutePrices
    ) -> int:
        """The largest `max_tokens` up to `most` whose worst case fits in `headroom`
        nano-USD (0 when none does): a bisection over `_worst_case`, the one pricing rule,
        which grows with the output tokens."""
        low, high = 0, most
        if headroom <= 0 or (self._worst_case(call, input_tokens, 0, prices) or 0) > headroom:
            return 0
        while low < high:
            middle = (low + high + 1) // 2
            if (self._worst_case(call, input_tokens, middle, prices) or 0) <= headroom:
                low = middle
            else:
                high = middle - 1
        return low

    async def reserve_batch(
        self, lines: Sequence[tuple[Call, RoutePlan]], key: KeyRecord | None, lease: float
    ) -> None:
        """Admit a Message Batch whose lines are `lines` (each its call and route plan), made
        with `key`, or raise RateLimited / BudgetExceeded / PermissionDenied /
        ServiceUnavailable.

        The batch counts as one request on the request buckets of its scopes; token
        buckets and concurrency don't apply (a batch runs over hours, outside the live
        traffic they pace). Budgets hold each line's worst case (its estimated input plus
        its `max_tokens`, by `_worst_case`, the live calls' one pricing rule, at the batch
        rates), one reservation per line on its call's `admission` so that each settles
        alone, through `finish`, when its result is recorded; held `lease` seconds at most.
        All or nothing: a line that doesn't fit releases those held before it."""
        if not lines or (not self._anything_configured and key is None):
            return
        first = lines[0][0]
        shape = self._shape(first, key)
        requests = (
            ()
            if shape is None
            else tuple(bucket for bucket in shape.buckets if bucket.takes == Takes.REQUESTS)
        )
        if shape is not None and requests:
            decision = await self._decide(Admission(buckets=requests), Amounts())
            if decision is not None and not decision.admitted:
                self.results[str(decision.refused_kind)] += 1
                raise _refusal(decision, shape.labels, {})
            if decision is not None and decision.reservation is not None:
                await self._settle(first, decision.reservation, (0, 0, 0))
        day, month = _period_names(first.started_wall)
        admissions: dict[int, Admission] = {}
        held: list[tuple[Call, Reservation]] = []
        total = 0
        try:
            for call, plan in lines:
                shape = self._shape(call, key)
                if shape is None or not shape.budgets:
                    continue
                prices = self._route_prices(plan)
                input_tokens = request_input_tokens(call.body)
                asked = call.body.get(call.wire.max_tokens_field(call.body))
                output = asked if isinstance(asked, int) and asked > 0 else prices.output_reserve
                worst = self._worst_case(call, input_tokens, output, prices, batch=True)
                if worst is None:
                    continue
                total += worst
                admission = admissions.get(id(shape))
                if admission is None:
                    budgets = shape.admission(day, month, lease, True).budgets
                    admission = admissions[id(shape)] = Admission(
                        budgets=budgets, lease_ttl_seconds=lease
                    )
                amounts = Amounts(input_tokens, output, worst, requests=0)
                decision = await self._decide(admission, amounts)
                if decision is None:  # the counters are away and the gateway fails open
                    continue
                self._observe_budgets(decision.admission.budgets, shape.budget_use_keys, decision)
                if not decision.admitted:
                    self.results[str(LimitKind.BUDGET)] += 1
                    refused = decision.refused_by or ""
                    label = shape.labels.get(refused.rsplit(":", 1)[0] + ":", "a budget")
                    left = decision.headroom().get(refused, 0)
                    raise BudgetExceeded(
                        f"this batch's worst case at batch prices exceeds {label}: its first "
                        f"{len(held) + 1} requests (up to custom_id {call.custom_id!r}) hold "
                        f"{_dollars(total)}, with {_dollars(left)} left before the last of "
                        "them; lower their max_tokens or send fewer requests"
                    )
                assert decision.reservation is not None
                call.admission = Ticket(decision.reservation, [])
                held.append((call, decision.reservation))
        except BaseException:
            for call, reservation in held:
                call.admission = None
                await self._settle(call, reservation, None)
            raise
        self.results["admitted"] += 1

    def finish(self, call: Call) -> None:
        """Settle or release the call's reservation, off the request path."""
        ticket = call.admission
        if ticket is None:
            return
        call.admission = None
        reservation = ticket.reservation
        used = _used(call, reservation)
        if used is None:
            if self.store.release_now(reservation):
                return
        else:
            input_tokens, output_tokens, cost = used
            if self.store.settle_now(
                reservation,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cost_nanousd=cost,
            ):
                return
        task = asyncio.get_running_loop().create_task(self._settle(call, reservation, used))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    def start_probing(self, every: float = 5.0) -> None:
        """Check the counter store now and every `every` seconds, so /readyz tells the
        truth before the first call finds out, and tells of a recovery without traffic."""
        self._probe = asyncio.get_running_loop().create_task(self._probe_forever(every))

    async def _probe_forever(self, every: float) -> None:
        while True:
            try:
                await self.store.spent("readiness-probe")
            except CountersUnavailable as error:
                self._unavailable(error)
            except Exception as error:  # a probe must never end the loop
                self._unavailable(error)
            else:
                if not self.store_available:
                    log.warning("counter store is back: limits and budgets are enforced again")
                self.store_available = True
            await asyncio.sleep(every)

    async def aclose(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
        if self._settling:
            await asyncio.wait(set(self._settling), timeout=10)
        await self.store.aclose()

    async def _settle(
        self, call: Call, reservation: Reservation, used: tuple[int, int, int | None] | None
    ) -> None:
        try:
            if used is None:
                await self.store.release(reservation)
            else:
                input_tokens, output_tokens, cost = used
                await self.store.settle(
                    reservation,
                    input_tokens=input_tokens,
                    output_tokens=output_tokens,
                    cost_nanousd=cost,
                )
        except CountersUnavailable as error:
            # The store retries it until it lands; meanwhile its lease and hold expire.
            self._unavailable(error)
        except Exception:
            log.exception("settling the reservation of %s failed", call.request_id)

    async def _decide(self, admission: Admission, amounts: Amounts) -> Decision | None:
        now = time.monotonic()
        if now < self._skip_until:
            self._when_unavailable()
            return None
        try:
            decision = await self.store.admit(admission, amounts)
        except CountersUnavailable as error:
            self._unavailable(error)
            self._skip_until = now + _RETRY_UNAVAILABLE_AFTER
            self._when_unavailable()
            return None
        if not self.store_available:
            log.warning("counter store is back: limits and budgets are enforced again")
        self.store_available = True
        return decision

    def _when_unavailable(self) -> None:
        """Admit (return) or refuse (raise) a call the counter store can't decide on."""
        if self.fail_open:
            self.results["unavailable_admitted"] += 1
            return
        self.results["unavailable_refused"] += 1
        raise ServiceUnavailable(
            "the gateway can't check rate limits and budgets right now; retry shortly",
            headers={"retry-after": "1"},
        )

    def _unavailable(self, error: Exception) -> None:
        self.last_error = f"{type(error).__name__}: {error}"
        if self.store_available:
            log.error(
                "counter store unavailable (%s): calls are %s until it returns",
                error,
                "admitted without limits or budgets" if self.fail_open else "refused",
            )
        self.store_available = False

    def _shape(self, call: Call, key: KeyRecord | None) -> _Shape | None:
        """The limits that apply to `call`, worked out once per (key, end user, team,
        project) and reused: on a busy gateway the same few shapes come back call after
        call, and building the key names and labels was a third of admission's time.

        A shape is kept with the very key record it was built from and reused only for
        that record: the key ring hands out one record per key until it reloads it, and
        a reloaded record is compared by what limits it (it may have changed). Comparing
        by identity first keeps that comparison off the call path."""
        cache_key = (None if key is None else key.key_id, call.end_user, call.team, call.project)
        cached = self._shapes.get(cache_key)
        if cached is not None:
            if cached[0] is key:
                return cached[1]
            if _limiting(cached[0]) == _limiting(key):
                self._shapes[cache_key] = (key, cached[1])
                return cached[1]
        if len(self._shapes) >= 10_000:
            self._shapes.clear()
            self.budget_use.clear()
        shape = _shape_of(self._scopes(call, key))
        self._shapes[cache_key] = (key, shape)
        return shape

    def _scopes(self, call: Call, key: KeyRecord | None) -> list[Scope]:
        spend = self.spend
        scopes = []
        if _has_any(spend.global_limits, None):
            scopes.append(Scope("global", "this gateway", spend.global_limits, Budget()))
        owner = "-"
        if key is not None:
            owner = key.key_id
            if _has_any(key.limits, key.budget):
                scopes.append(
                    Scope(f"key:{key.key_id}", f"key {key.key_id}", key.limits, key.budget)
                )
        if call.end_user is not None:
            limits = spend.end_user_limits
            budget = spend.end_user_budget
            if key is not None and _has_any(key.end_user_limits, None):
                limits = key.end_user_limits
            if key is not None and _has_any(None, key.end_user_budget):
                budget = key.end_user_budget
            if _has_any(limits, budget):
                scopes.append(
                    Scope(
                        f"user:{owner}/{call.end_user}",
                        f"end user {call.end_user!r}",
                        limits,
                        budget,
                    )
                )
        if call.team is not None:
            limits = spend.teams.get(call.team, Limits())
            budget = spend.team_budgets.get(call.team, Budget())
            if _has_any(limits, budget):
                scopes.append(Scope(f"team:{call.team}", f"team {call.team!r}", limits, budget))
        if call.project is not None:
            budget = spend.project_budgets.get(call.project, Budget())
            if _has_any(None, budget):
                scopes.append(
                    Scope(f"project:{call.project}", f"project {call.project!r}", Limits(), budget)
                )
        return scopes

    def _route_prices(self, plan: RoutePlan) -> _RoutePrices:
        prices = self._prices.get(plan.model)
        if prices is None or prices.plan is not plan:
            entries = tuple(self.catalog.get(target.upstream_model) for target in plan.targets)
            known = [entry.max_output_tokens for entry in entries if entry is not None]
            rates = [_linear_rates(entry) for entry in entries]
            prices = self._prices[plan.model] = _RoutePrices(
                plan=plan,
                entries=entries,
                output_reserve=max(known) if known else DEFAULT_OUTPUT_RESERVE,
                linear=None if None in rates else tuple(r for r in rates if r is not None),
            )
        return prices

    def _worst_case(
        self,
        call: Call,
        input_tokens: int,
        output_tokens: int,
        prices: _RoutePrices,
        *,
        batch: bool = False,
    ) -> int | None:
        """The most this call can cost on any deployment of its route, in nano-dollars; None
        when every deployment is free (free models are never blocked by a budget). An
        unpriced deployment is held at the configured estimate, or refused. Server tools the
        request enables (web search...) are held for every use it allows (`max_uses`).
        `batch`: priced at the deployments' batch rates (a line of a Message Batch)."""
        tools = 0
        uses = requested_server_tool_uses(call.body)
        if uses:
            tools = max(to_nanousd(server_tool_reserve(entry, uses)) for entry in prices.entries)
        if prices.linear is not None and not batch:
            worst = 0
            for per_input, per_output, up_to in prices.linear:
                if up_to is not None and input_tokens > up_to:
                    break  # long-context rates: priced by cost_of below
                worst = max(worst, input_tokens * per_input + output_tokens * per_output)
            else:
                worst += tools
                return worst if worst > 0 else None
        usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens)
        totals = [cost_of(entry, usage, batch=batch).total for entry in prices.entries]
        priced = [to_nanousd(total) for total in totals if total is not None]
        if len(priced) < len(totals):
            if self.spend.unpriced == "refuse":
                self.unpriced["refused"] += 1
                raise PermissionDenied(
                    f"model {call.model!r} has no price, so its cost can't be held against "
                    "your budget; this gateway refuses unpriced models where a budget applies",
                    param="model",
                )
            call.unpriced_admission = "estimated"
            priced.append(to_nanousd(self.spend.unpriced_estimate_usd))
        worst = max(priced) + tools
        return worst if worst > 0 else None

    def _observe_budgets(
        self,
        budgets: Sequence[BudgetLimit],
        use_keys: tuple[tuple[str, str], ...],
        decision: Decision,
    ) -> None:
        remaining_of = decision.remaining
        first = len(remaining_of) - len(budgets)  # budgets come last
        for position, budget in enumerate(budgets):
            use_key = use_keys[position]
            remaining = remaining_of[first + position]
            limit = budget.limit_nanousd
            self.budget_use[use_key] = (remaining, limit)
            if remaining <= limit * self._alert_headroom:
                self.alerts.observe_budget(
                    scope=use_key[0],
                    period=budget.key.rpartition(":")[2],
                    spent=from_nanousd(max(limit - remaining, 0)),
                    limit=from_nanousd(limit),
                )

    def collect(self) -> Iterator[Metric]:
        admissions = CounterMetricFamily(
            "tollhouse_admissions",
            "Admission decisions: admitted, refused by kind (bucket, concurrency, budget), "
            "or taken while the counter store was unavailable",
            labels=["result"],
        )
        for result, count in sorted(self.results.items()):
            admissions.add_metric([result], count)
        yield admissions
        unpriced = CounterMetricFamily(
            "tollhouse_unpriced_admissions",
            "Calls to models without a price where a budget applied, by decision",
            labels=["decision"],
        )
        for decision, count in sorted(self.unpriced.items()):
            unpriced.add_metric([decision], count)
        yield unpriced
        yield gauge(
            "tollhouse_budget_used_ratio",
            "Spend committed (settled and reserved) over the limit, per budget, this period; "
            "end users' budgets as one per key (user:<key>/other), the nearest its limit",
            ["scope", "period"],
            (([scope, every], ratio) for (scope, every), ratio in self._budget_ratios().items()),
        )
        yield gauge(
            "tollhouse_counter_settles_pending",
            "Settles of finished calls that failed (counter store away) and wait for their "
            "retry; their leases and holds expire meanwhile",
            [],
            [([], self.store.settles_pending())],
        )
        yield gauge(
            "tollhouse_counters_up",
            "1 while the counter store (rate limits, budgets) answers, 0 while it fails",
            [],
            [([], int(self.store_available))],
        )

    def _budget_ratios(self) -> dict[tuple[str, str], float]:
        """The used ratio per budget scope and period. End users are named by clients, so
        theirs fold into one value per key (the highest): no client can add series."""
        ratios: dict[tuple[str, str], float] = {}
        for (scope, every), (remaining, limit) in self.budget_use.items():
            if scope.startswith("user:"):
                scope = scope.split("/", 1)[0] + "/" + OTHER
            ratio = _used_ratio(remaining, limit)
            if ratio >= ratios.get((scope, every), -1.0):
                ratios[(scope, every)] = ratio
        return ratios


def _dollars(nanousd: int) -> str:
    return f"${from_nanousd(nanousd):.6f}"


def _used_ratio(remaining: int, limit: int) -> float:
    return max(limit - remaining, 0) / limit if limit else 1.0


def _used(call: Call, reservation: Reservation) -> tuple[int, int, int | None] | None:
    """What the call really used: input tokens (cache writes count as input to the
    buckets), output tokens, and cost in nano-USD (None when unknown); None when it used
    nothing (no usage: refused upstream, failed, cache hit)."""
    usage = call.usage
    if usage is None:
        return None
    used_input = usage.input_tokens + usage.cache_write_tokens
    cost = None
    if reservation.admission.budgets:  # else no budget to book the cost on
        total = call.cost.total if call.cost is not None else None
        if total is not None and call.escalations:  # the answers escalated from, paid too
            extra = call.escalation_cost
            total = None if extra is None else total + extra
        cost = to_nanousd(total) if total is not None else None
    return used_input, usage.output_tokens, cost


def _limiting(key: KeyRecord | None) -> tuple[object, ...] | None:
    """What of `key` decides its calls' shape."""
    if key is None:
        return None
    return (key.limits, key.budget, key.end_users, key.end_user_limits, key.end_user_budget)


def _has_any(limits: Limits | None, budget: Budget | None) -> bool:
    if limits is not None and any(
        value is not None
        for value in (limits.rpm, limits.input_tpm, limits.output_tpm, limits.concurrency)
    ):
        return True
    return budget is not None and (budget.daily_usd is not None or budget.monthly_usd is not None)


def _any_limit(config: GatewayConfig) -> bool:
    spend = config.spend
    return (
        _has_any(spend.global_limits, None)
        or _has_any(spend.end_user_limits, spend.end_user_budget)
        or any(_has_any(limits, None) for limits in spend.teams.values())
        or any(_has_any(None, budget) for budget in spend.team_budgets.values())
        or any(_has_any(None, budget) for budget in spend.project_budgets.values())
    )


def _refusal(decision: Decision, labels: dict[str, str], headers: dict[str, str]) -> RateLimited:
    """The refusal of a bucket or concurrency limit (budgets: `Admitter._fit_budgets`)."""
    key_name = decision.refused_by or ""
    label = labels.get(key_name, "this gateway")
    if decision.refused_kind == LimitKind.CONCURRENCY:
        return RateLimited(
            f"too many concurrent calls for {label}; retry when one finishes",
            headers={**headers, "retry-after": "1"},
        )
    what = {"rpm": "requests", "itpm": "input tokens", "otpm": "output tokens"}[
        key_name.split(":", 1)[0]
    ]
    if decision.retry_after is None:
        return RateLimited(
            f"this call needs more {what} than the per-minute limit of {label} allows",
            headers=headers,
        )
    wait = max(1, math.ceil(decision.retry_after))
    return RateLimited(
        f"rate limit of {label} reached ({what} per minute); retry after {wait} s",
        headers={**headers, "retry-after": str(wait)},
    )
