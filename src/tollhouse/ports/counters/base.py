"""The interface of a counter store: what one call asks of the limits, and what it is told.

The gateway admits each call with one `CounterStore.admit` and ends it with exactly one
`settle` (the call ran: correct the estimates to what was really used) or `release` (it
ran nothing: give everything back). Every store gives the same answers; they differ only
in who shares the counters (one process, or every gateway on one Redis).

Contract shared by all stores:

- `admit` is all-or-nothing and atomic: every limit is checked first, and only if all
  pass is anything taken. A refused call consumes nothing.
- Buckets are token buckets refilled continuously at `capacity / window_seconds` per
  second; a key never seen before starts full. `settle` may leave a bucket below zero
  (the estimate was low): later calls then wait until the debt has refilled.
- Concurrency leases and budget reservations expire `lease_ttl_seconds` after `admit`
  if nobody settled them (the process died), so a limit is never pinned by a call that
  no longer runs. A `settle` that arrives after the expiry still books the spend.
- Budget spend is booked in nano-USD integers (`nanousd.to_nanousd`), never floats.
- A second `settle`/`release` of the same reservation is a no-op, so a
  `finally: release(...)` after a `settle` does no harm.
- Keys are distinct within one admission (checked when the `Admission` is built).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Protocol

import msgspec


class CountersUnavailable(Exception):
    """The store can't be reached now (or didn't answer within its timeout). Whether the
    call then goes ahead unlimited (fail open) or is refused (fail closed) is the caller's
    choice; the store recovers by itself once the backend answers again."""


class LimitKind(StrEnum):
    BUCKET = "bucket"
    CONCURRENCY = "concurrency"
    BUDGET = "budget"


class BucketLimit(msgspec.Struct, frozen=True):
    """A token bucket of `capacity` per `window_seconds`, from which this call takes
    `amount` now: 1 for a request counter, the estimated input tokens, or `max_tokens`
    reserved for output (corrected to the actual count on `settle`)."""

    key: str  # e.g. "rpm:key:key_abc", "itpm:user:key_abc/alice", "otpm:global"
    capacity: int
    amount: int
    window_seconds: float = 60.0


class ConcurrencyLimit(msgspec.Struct, frozen=True):
    """At most `limit` calls under `key` at once; this call holds one lease."""

    key: str
    limit: int


class BudgetLimit(msgspec.Struct, frozen=True):
    """Spend under `key` (one counter per period: put the period in the key, e.g.
    "budget:key:key_abc:day:2026-11-25") may not exceed `limit_nanousd`. This call holds
    `reserve_nanousd`, its worst-case cost, until it settles with the actual cost."""

    key: str
    limit_nanousd: int
    reserve_nanousd: int
    period_ttl_seconds: int  # how long the period counter lives: the period plus a margin


class Admission(msgspec.Struct, frozen=True):
    """Everything one call asks of the limits, checked and taken together.

    Its limits are validated here, in one pass (one admission is built per call, so its
    parts carry no checks of their own)."""

    buckets: Sequence[BucketLimit] = ()
    concurrency: Sequence[ConcurrencyLimit] = ()
    budgets: Sequence[BudgetLimit] = ()
    lease_ttl_seconds: float = 900.0  # longer than the longest call, else its lease lapses

    def __post_init__(self) -> None:
        keys = set()
        for b in self.buckets:
            if b.capacity <= 0 or b.amount < 0 or b.window_seconds <= 0:
                raise ValueError(f"bucket {b.key!r}: need capacity > 0, amount >= 0, window > 0")
            keys.add(b.key)
        for c in self.concurrency:
            keys.add(c.key)
        for g in self.budgets:
            if g.reserve_nanousd < 0 or g.period_ttl_seconds <= 0:
                raise ValueError(f"budget {g.key!r}: need reserve >= 0, period_ttl > 0")
            keys.add(g.key)
        if len(keys) != len(self.buckets) + len(self.concurrency) + len(self.budgets):
            every = [b.key for b in self.buckets] + [c.key for c in self.concurrency]
            every += [g.key for g in self.budgets]
            raise ValueError(f"limit keys must be distinct within an admission: {every}")
        if self.lease_ttl_seconds <= 0:
            raise ValueError("lease_ttl_seconds must be > 0")


class Reservation(msgspec.Struct):
    """What an admitted call holds; hand it back to `settle` or `release`.

    The store that ends it sets `ended`, which is what makes ending it again a no-op: no
    store has to remember the id of every call it ended (on a busy gateway that memory
    was hundreds of thousands of objects for the garbage collector to walk)."""

    id: str
    admission: Admission
    ended: bool = False


class Decision(msgspec.Struct, frozen=True):
    """The answer to `admit`.

    `remaining` has every limit key of the admission: the headroom left after this call
    if admitted, else as it stands (requests or tokens for a bucket, free slots for a
    concurrency key, nano-USD for a budget), never below zero. `reset_after` has every
    bucket key: seconds until that bucket is full again (the rate-limit reset headers).
    `retry_after` is set only when a bucket refused a call that fits its capacity: the
    seconds until it holds `amount`. Budgets and concurrency don't free up at a known
    time, so a refusal by them (or by a bucket smaller than `amount`) has None.
    """

    admitted: bool
    reservation: Reservation | None = None
    refused_by: str | None = None
    refused_kind: LimitKind | None = None
    retry_after: float | None = None
    remaining: Mapping[str, int] = msgspec.field(default_factory=dict)
    reset_after: Mapping[str, float] = msgspec.field(default_factory=dict)


class CounterStore(Protocol):
    async def admit(self, admission: Admission) -> Decision:
        """Check every limit, then take from all of them or from none (atomically)."""
        ...

    async def settle(
        self,
        reservation: Reservation,
        *,
        actual_amounts: Mapping[str, int],
        actual_cost_nanousd: int | None,
    ) -> None:
        """End an admitted call that ran. Each bucket named in `actual_amounts` is
        corrected from the amount taken to the actual one (unused output tokens come
        back, up to the capacity; an underestimate is taken, even into debt); buckets not
        named keep what was taken. Leases are released. Each budget's reservation is
        replaced by `actual_cost_nanousd`; None means the cost is unknown (the usage
        never arrived), and the reservation is booked as spent: a budget is never
        undercounted by a call whose cost we could not see."""
        ...

    async def release(self, reservation: Reservation) -> None:
        """End an admitted call that consumed nothing (refused upstream, failed before any
        token): everything taken, requests included, goes back."""
        ...

    async def spent(self, budget_key: str) -> int:
        """Settled spend under `budget_key` in nano-USD (0 if unknown or expired)."""
        ...

    async def aclose(self) -> None:
        """Release connections; the store can't be used afterwards."""
        ...
