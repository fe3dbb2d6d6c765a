"""Counters held in this process: exact for one gateway process, shared with no other.

Every method runs without awaiting, so under asyncio each is atomic by construction: no
lock, no I/O, a few microseconds per call. Expired leases and reservations are dropped
lazily (a heap per key, popped on each check), and keys that have gone back to their
initial state are swept once a minute so memory follows the active keys, not all keys
ever seen.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from tollhouse.ports.counters.base import (
    Admission,
    BucketLimit,
    Decision,
    LimitKind,
    Reservation,
)

SWEEP_EVERY_SECONDS = 60.0


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float
    full_at: float  # when it is back to capacity, i.e. no different from a key never seen

    def level(self, limit: BucketLimit, now: float) -> float:
        rate = limit.capacity / limit.window_seconds
        return min(float(limit.capacity), self.tokens + max(0.0, now - self.at) * rate)


@dataclass(slots=True)
class _Holds:
    """Amounts held by reservation id until they expire or are removed."""

    amounts: dict[str, tuple[int, float]] = field(default_factory=dict)
    expiries: list[tuple[float, str]] = field(default_factory=list)
    total: int = 0

    def purge(self, now: float) -> None:
        while self.expiries and self.expiries[0][0] <= now:
            expires, rid = heapq.heappop(self.expiries)
            held = self.amounts.get(rid)
            if held is not None and held[1] == expires:
                del self.amounts[rid]
                self.total -= held[0]

    def add(self, rid: str, amount: int, expires: float) -> None:
        self.amounts[rid] = (amount, expires)
        self.total += amount
        heapq.heappush(self.expiries, (expires, rid))

    def remove(self, rid: str) -> None:
        held = self.amounts.pop(rid, None)
        if held is not None:
            self.total -= held[0]
        # Settled ids stay in the heap until they would have expired; rebuild it once they
        # outnumber the live ones, so a busy key's heap stays the size of what it holds.
        if len(self.expiries) > 2 * len(self.amounts) + 64:
            self.expiries = [(expires, rid) for rid, (_, expires) in self.amounts.items()]
            heapq.heapify(self.expiries)


@dataclass(slots=True)
class _Budget:
    expires_at: float
    spent: int = 0
    holds: _Holds = field(default_factory=_Holds)


class InProcessCounterStore:
    """`CounterStore` for one process. `clock` is monotonic seconds (tests may pass one)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._leases: dict[str, _Holds] = {}
        self._budgets: dict[str, _Budget] = {}
        self._next_sweep = clock() + SWEEP_EVERY_SECONDS
        self._ids = itertools.count(1)

    async def admit(self, admission: Admission) -> Decision:
        return self.admit_now(admission)

    def admit_now(self, admission: Admission) -> Decision:
        """`admit` without a coroutine: nothing here waits, so the gateway admits in line
        (as it settles in line, `settle_now`) instead of awaiting a coroutine per call."""
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        remaining: dict[str, int] = {}
        reset_after: dict[str, float] = {}
        refusal: tuple[str, LimitKind, float | None] | None = None

        buckets = self._buckets
        states: list[_Bucket | None] = []
        levels: list[float] = []
        for bucket in admission.buckets:
            capacity = bucket.capacity
            state = buckets.get(bucket.key)
            if state is None:
                level = float(capacity)
            else:
                level = state.tokens + (now - state.at) * capacity / bucket.window_seconds
                if level > capacity:
                    level = float(capacity)
            states.append(state)
            levels.append(level)
            if level < bucket.amount and refusal is None:
                retry = None
                if bucket.amount <= capacity:
                    retry = (bucket.amount - level) * bucket.window_seconds / capacity
                refusal = (bucket.key, LimitKind.BUCKET, retry)
        for lease in admission.concurrency:
            holds = self._leases.get(lease.key)
            active = 0
            if holds is not None:
                holds.purge(now)
                active = len(holds.amounts)
            remaining[lease.key] = max(0, lease.limit - active)
            if active >= lease.limit and refusal is None:
                refusal = (lease.key, LimitKind.CONCURRENCY, None)
        for budget in admission.budgets:
            account = self._budgets.get(budget.key)
            if account is not None and account.expires_at <= now:
                del self._budgets[budget.key]
                account = None
            used = 0
            if account is not None:
                account.holds.purge(now)
                used = account.spent + account.holds.total
            remaining[budget.key] = max(0, budget.limit_nanousd - used)
            fits = used < budget.limit_nanousd and used + budget.reserve_nanousd <= (
                budget.limit_nanousd
            )
            if not fits and refusal is None:
                refusal = (budget.key, LimitKind.BUDGET, None)

        if refusal is not None:
            for bucket, level in zip(admission.buckets, levels, strict=True):
                remaining[bucket.key] = max(0, math.floor(level))
                reset_after[bucket.key] = _seconds_to_full(bucket, level)
            key, kind, retry_after = refusal
            return Decision(
                admitted=False,
                refused_by=key,
                refused_kind=kind,
                retry_after=retry_after,
                remaining=remaining,
                reset_after=reset_after,
            )

        rid = str(next(self._ids))
        expires = now + admission.lease_ttl_seconds
        for bucket, state, level in zip(admission.buckets, states, levels, strict=True):
            left = level - bucket.amount
            to_full = (bucket.capacity - left) * bucket.window_seconds / bucket.capacity
            if state is None:
                buckets[bucket.key] = _Bucket(left, now, now + to_full)
            else:  # updated in place: no object per bucket per call
                state.tokens = left
                state.at = now
                state.full_at = now + to_full
            remaining[bucket.key] = int(left) if left > 0 else 0
            reset_after[bucket.key] = to_full
        for lease in admission.concurrency:
            holds = self._leases.get(lease.key)
            if holds is None:
                holds = self._leases[lease.key] = _Holds()
            holds.add(rid, 1, expires)
            remaining[lease.key] -= 1
        for budget in admission.budgets:
            account = self._budgets.get(budget.key)
            if account is None:
                account = self._budgets[budget.key] = _Budget(now + budget.period_ttl_seconds)
            account.holds.add(rid, budget.reserve_nanousd, expires)
            remaining[budget.key] -= budget.reserve_nanousd
        return Decision(
            admitted=True,
            reservation=Reservation(rid, admission),
            remaining=remaining,
            reset_after=reset_after,
        )

    async def settle(
        self,
        reservation: Reservation,
        *,
        actual_amounts: Mapping[str, int],
        actual_cost_nanousd: int | None,
    ) -> None:
        self._end(reservation, actual_amounts, actual_cost_nanousd, release=False)

    async def release(self, reservation: Reservation) -> None:
        self._end(reservation, {}, 0, release=True)

    def settle_now(
        self,
        reservation: Reservation,
        *,
        actual_amounts: Mapping[str, int],
        actual_cost_nanousd: int | None,
    ) -> None:
        """`settle` without a coroutine: nothing here waits, so the gateway settles in
        line when a call ends instead of scheduling a task per call."""
        self._end(reservation, actual_amounts, actual_cost_nanousd, release=False)

    def release_now(self, reservation: Reservation) -> None:
        """`release` without a coroutine (see `settle_now`)."""
        self._end(reservation, {}, 0, release=True)

    async def spent(self, budget_key: str) -> int:
        account = self._budgets.get(budget_key)
        if account is None or account.expires_at <= self._clock():
            return 0
        return account.spent

    async def aclose(self) -> None:
        self._buckets.clear()
        self._leases.clear()
        self._budgets.clear()

    def _end(
        self,
        reservation: Reservation,
        actual_amounts: Mapping[str, int],
        actual_cost_nanousd: int | None,
        *,
        release: bool,
    ) -> None:
        if reservation.ended:
            return
        reservation.ended = True
        now = self._clock()
        rid = reservation.id

        admission = reservation.admission
        buckets = self._buckets
        for bucket in admission.buckets:
            actual = 0 if release else actual_amounts.get(bucket.key, bucket.amount)
            if actual == bucket.amount:
                continue  # the estimate was exact (every request bucket): nothing to correct
            capacity = bucket.capacity
            window = bucket.window_seconds
            state = buckets.get(bucket.key)
            level = float(capacity)
            if state is not None:
                level = min(level, state.tokens + (now - state.at) * capacity / window)
            level = min(float(capacity), level + bucket.amount - actual)
            to_full = (capacity - level) * window / capacity
            if state is None:
                buckets[bucket.key] = _Bucket(level, now, now + to_full)
            else:
                state.tokens = level
                state.at = now
                state.full_at = now + to_full
        for lease in admission.concurrency:
            holds = self._leases.get(lease.key)
            if holds is not None:
                holds.remove(rid)
        for budget in admission.budgets:
            account = self._budgets.get(budget.key)
            if account is None or account.expires_at <= now:
                account = self._budgets[budget.key] = _Budget(now + budget.period_ttl_seconds)
            account.holds.remove(rid)
            cost = budget.reserve_nanousd if actual_cost_nanousd is None else actual_cost_nanousd
            account.spent += cost

    def _sweep(self, now: float) -> None:
        """Forget keys that hold nothing a fresh key wouldn't: full buckets, idle
        concurrency keys, budgets past their period."""
        self._next_sweep = now + SWEEP_EVERY_SECONDS
        for key in [k for k, b in self._buckets.items() if b.full_at <= now]:
            del self._buckets[key]
        for key, holds in list(self._leases.items()):
            holds.purge(now)
            if not holds.amounts:
                del self._leases[key]
        for key in [k for k, b in self._budgets.items() if b.expires_at <= now]:
            del self._budgets[key]


def _seconds_to_full(bucket: BucketLimit, level: float) -> float:
    return max(0.0, (bucket.capacity - level) * bucket.window_seconds / bucket.capacity)
