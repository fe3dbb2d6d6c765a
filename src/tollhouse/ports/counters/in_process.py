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
from collections.abc import Callable
from dataclasses import dataclass, field

from tollhouse.ports.counters.base import (
    Admission,
    Amounts,
    BucketLimit,
    CounterStore,
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


class InProcessCounterStore(CounterStore):
    """`CounterStore` for one process. `clock` is monotonic seconds (tests may pass one)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._leases: dict[str, _Holds] = {}
        self._budgets: dict[str, _Budget] = {}
        self._next_sweep = clock() + SWEEP_EVERY_SECONDS
        self._ids = itertools.count(1)

    async def admit(self, admission: Admission, amounts: Amounts) -> Decision:
        return self.admit_now(admission, amounts)

    def admit_now(self, admission: Admission, amounts: Amounts) -> Decision:
        """`admit` without a coroutine: nothing here waits, so it always decides in line."""
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        refusal: tuple[str, LimitKind, float | None] | None = None
        taken = amounts.by_takes()
        reserve = amounts.reserve_nanousd

        states: list[_Bucket | None] = []
        levels: list[float] = []
        for bucket in admission.buckets:
            capacity = bucket.capacity
            amount = taken[bucket.takes]
            state = self._buckets.get(bucket.key)
            level = float(capacity) if state is None else state.level(bucket, now)
            states.append(state)
            levels.append(level)
            if level < amount and refusal is None:
                retry = None
                if amount <= capacity:
                    retry = (amount - level) * bucket.window_seconds / capacity
                refusal = (bucket.key, LimitKind.BUCKET, retry)
        # Headroom of the leases and budgets as they stand (lowered below if admitted).
        held: list[int] = []
        for lease in admission.concurrency:
            holds = self._leases.get(lease.key)
            active = 0
            if holds is not None:
                holds.purge(now)
                active = len(holds.amounts)
            held.append(max(0, lease.limit - active))
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
            held.append(max(0, budget.limit_nanousd - used))
            fits = used < budget.limit_nanousd and used + reserve <= budget.limit_nanousd
            if not fits and refusal is None:
                refusal = (budget.key, LimitKind.BUDGET, None)

        remaining: list[int] = []
        reset_after: list[float] = []
        if refusal is not None:
            for position, bucket in enumerate(admission.buckets):
                level = levels[position]
                remaining.append(max(0, math.floor(level)))
                reset_after.append(_seconds_to_full(bucket, level))
            key, kind, retry_after = refusal
            return Decision(
                admission,
                False,
                refused_by=key,
                refused_kind=kind,
                retry_after=retry_after,
                remaining=remaining + held,
                reset_after=reset_after,
            )

        rid = str(next(self._ids))
        expires = now + admission.lease_ttl_seconds
        for position, bucket in enumerate(admission.buckets):
            state = states[position]
            left = levels[position] - taken[bucket.takes]
            remaining.append(int(left) if left > 0 else 0)
            reset_after.append(self._set_level(bucket, state, left, now))
        for lease in admission.concurrency:
            holds = self._leases.get(lease.key)
            if holds is None:
                holds = self._leases[lease.key] = _Holds()
            holds.add(rid, 1, expires)
        for budget in admission.budgets:
            account = self._budgets.get(budget.key)
            if account is None:
                account = self._budgets[budget.key] = _Budget(now + budget.period_ttl_seconds)
            account.holds.add(rid, reserve, expires)
        leases = len(admission.concurrency)
        for position, headroom in enumerate(held):
            remaining.append(headroom - (1 if position < leases else reserve))
        return Decision(
            admission,
            True,
            reservation=Reservation(rid, admission, amounts),
            remaining=remaining,
            reset_after=reset_after,
        )

    async def settle(
        self,
        reservation: Reservation,
        *,
        input_tokens: int,
        output_tokens: int,
        cost_nanousd: int | None,
    ) -> None:
        self.settle_now(
            reservation,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_nanousd=cost_nanousd,
        )

    async def release(self, reservation: Reservation) -> None:
        self.release_now(reservation)

    def settle_now(
        self,
        reservation: Reservation,
        *,
        input_tokens: int,
        output_tokens: int,
        cost_nanousd: int | None,
    ) -> bool:
        """`settle` without a coroutine: always done in line."""
        taken = reservation.amounts
        actual = [taken.requests, input_tokens, output_tokens]
        self._end(reservation, actual, cost_nanousd)
        return True

    def release_now(self, reservation: Reservation) -> bool:
        """`release` without a coroutine: always done in line."""
        self._end(reservation, [0, 0, 0], 0)
        return True

    async def spent(self, budget_key: str) -> int:
        account = self._budgets.get(budget_key)
        if account is None or account.expires_at <= self._clock():
            return 0
        return account.spent

    async def aclose(self) -> None:
        self._buckets.clear()
        self._leases.clear()
        self._budgets.clear()

    def _end(self, reservation: Reservation, actual: list[int], cost_nanousd: int | None) -> None:
        """Give back what `reservation` took beyond `actual` (requests, input, output) and
        book `cost_nanousd` (None: the reservation) on its budgets."""
        if reservation.ended:
            return
        reservation.ended = True
        now = self._clock()
        rid = reservation.id
        amounts = reservation.amounts
        taken = amounts.by_takes()

        admission = reservation.admission
        for bucket in admission.buckets:
            give_back = taken[bucket.takes] - actual[bucket.takes]
            if give_back == 0:
                continue  # the estimate was exact (every request bucket): nothing to correct
            state = self._buckets.get(bucket.key)
            level = float(bucket.capacity) if state is None else state.level(bucket, now)
            self._set_level(bucket, state, min(float(bucket.capacity), level + give_back), now)
        for lease in admission.concurrency:
            holds = self._leases.get(lease.key)
            if holds is not None:
                holds.remove(rid)
        for budget in admission.budgets:
            account = self._budgets.get(budget.key)
            if account is None or account.expires_at <= now:
                account = self._budgets[budget.key] = _Budget(now + budget.period_ttl_seconds)
            account.holds.remove(rid)
            account.spent += amounts.reserve_nanousd if cost_nanousd is None else cost_nanousd

    def _set_level(
        self, bucket: BucketLimit, state: _Bucket | None, level: float, now: float
    ) -> float:
        """Leave `bucket` at `level` as of `now` (its state updated in place: no object per
        bucket per call); the seconds until it is full again."""
        to_full = _seconds_to_full(bucket, level)
        if state is None:
            self._buckets[bucket.key] = _Bucket(level, now, now + to_full)
        else:
            state.tokens = level
            state.at = now
            state.full_at = now + to_full
        return to_full

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
