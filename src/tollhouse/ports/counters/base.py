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
  no longer runs; a store shared by processes (Redis) gives them a short lease renewed
  while the call runs instead, so they expire seconds after it ends unsettled. A
  `settle` that arrives after the expiry still books the spend.
- A `settle`/`release` that raises `CountersUnavailable` has not landed yet: the store
  retries it by itself, in order, until it lands (for a bounded time), booking it once.
- Budget spend is booked in nano-USD integers (`nanousd.to_nanousd`), never floats.
- A second `settle`/`release` of the same reservation is a no-op, so a
  `finally: release(...)` after a `settle` does no harm.
- Keys are distinct within one admission (checked when the `Admission` is built, which a
  caller does once per set of limits, not per call: the per-call part is `Amounts`).

No msgspec Structs here: nothing serialises these types, and in the compiled build
(mypyc) a class defined here is a native class whose fields admission reads as C struct
members, where a Struct's go through Python attribute lookup. The limits are frozen
dataclasses (built once per set of limits and period); what is made per call (`Amounts`,
`Reservation`, `Decision`) are plain classes with `Final` fields, which mypyc constructs
natively, where a frozen dataclass's generated `__init__` stays interpreted and costs
several times more (bench/results/decisions.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Final


class CountersUnavailable(Exception):
    """The store can't be reached now (or didn't answer within its timeout). Whether the
    call then goes ahead unlimited (fail open) or is refused (fail closed) is the caller's
    choice; the store recovers by itself once the backend answers again."""


class LimitKind(StrEnum):
    BUCKET = "bucket"
    CONCURRENCY = "concurrency"
    BUDGET = "budget"


class Takes(IntEnum):
    """What a bucket counts, and so what a call takes from it."""

    REQUESTS = 0  # `Amounts.requests`: 1 per call
    INPUT = 1  # `Amounts.input_tokens`: estimated at admission, the actual count at settle
    OUTPUT = 2  # `Amounts.output_tokens`: `max_tokens` reserved, the actual count at settle


@dataclass(frozen=True, slots=True)
class BucketLimit:
    """A token bucket of `capacity` per `window_seconds`, counting what `takes` says."""

    key: str  # e.g. "rpm:key:key_abc", "itpm:user:key_abc/alice", "otpm:global"
    capacity: int
    takes: Takes
    window_seconds: float = 60.0


@dataclass(frozen=True, slots=True)
class ConcurrencyLimit:
    """At most `limit` calls under `key` at once; each admitted call holds one lease."""

    key: str
    limit: int


@dataclass(frozen=True, slots=True)
class BudgetLimit:
    """Spend under `key` (one counter per period: put the period in the key, e.g.
    "budget:key:key_abc:day:2026-11-25") may not exceed `limit_nanousd`. Each call holds
    its worst-case cost (`Amounts.reserve_nanousd`) until it settles with the actual cost."""

    key: str
    limit_nanousd: int
    period_ttl_seconds: int  # how long the period counter lives: the period plus a margin


@dataclass(frozen=True, slots=True)
class Admission:
    """The limits a call is held to, checked and taken together: the same for every call
    of one key, end user, team and project in one period, so a caller builds it once and
    reuses it (its limits are validated here, once); what each call takes is `Amounts`."""

    buckets: Sequence[BucketLimit] = ()
    concurrency: Sequence[ConcurrencyLimit] = ()
    budgets: Sequence[BudgetLimit] = ()
    lease_ttl_seconds: float = 900.0  # longer than the longest call, else its lease lapses

    def __post_init__(self) -> None:
        for b in self.buckets:
            if b.capacity <= 0 or b.window_seconds <= 0:
                raise ValueError(f"bucket {b.key!r}: need capacity > 0, window > 0")
        for g in self.budgets:
            if g.period_ttl_seconds <= 0:
                raise ValueError(f"budget {g.key!r}: need period_ttl > 0")
        every = self.keys()
        if len(set(every)) != len(every):
            raise ValueError(f"limit keys must be distinct within an admission: {every}")
        if self.lease_ttl_seconds <= 0:
            raise ValueError("lease_ttl_seconds must be > 0")

    def keys(self) -> list[str]:
        """Every limit key, in the order of `Decision.remaining`."""
        every = [b.key for b in self.buckets] + [c.key for c in self.concurrency]
        return every + [g.key for g in self.budgets]


class Amounts:
    """What one call takes: from each bucket what the bucket counts (`Takes`), from each
    budget its worst-case cost in nano-USD. Read-only (`Final`)."""

    __slots__ = ("input_tokens", "output_tokens", "requests", "reserve_nanousd")

    def __init__(
        self,
        input_tokens: int = 0,
        output_tokens: int = 0,
        reserve_nanousd: int = 0,
        requests: int = 1,
    ) -> None:
        if input_tokens < 0 or output_tokens < 0 or reserve_nanousd < 0 or requests < 0:
            raise ValueError(
                f"amounts must be >= 0: input {input_tokens}, output {output_tokens}, "
                f"reserve {reserve_nanousd}, requests {requests}"
            )
        self.input_tokens: Final = input_tokens
        self.output_tokens: Final = output_tokens
        self.reserve_nanousd: Final = reserve_nanousd
        self.requests: Final = requests

    def by_takes(self) -> list[int]:
        """What this call takes from a bucket, indexed by the bucket's `Takes`. (A list:
        compiled, indexing a fixed tuple by an enum boxes the tuple first.)"""
        return [self.requests, self.input_tokens, self.output_tokens]

    def __repr__(self) -> str:
        return (
            f"Amounts(input_tokens={self.input_tokens}, output_tokens={self.output_tokens}, "
            f"reserve_nanousd={self.reserve_nanousd}, requests={self.requests})"
        )


class Reservation:
    """What an admitted call holds; hand it back to `settle` or `release`.

    The store that ends it sets `ended`, which is what makes ending it again a no-op: no
    store has to remember the id of every call it ended (on a busy gateway that memory
    was hundreds of thousands of objects for the garbage collector to walk)."""

    __slots__ = ("admission", "amounts", "ended", "id")

    def __init__(self, id: str, admission: Admission, amounts: Amounts) -> None:
        self.id: Final = id
        self.admission: Final = admission
        self.amounts: Final = amounts
        self.ended = False

    def __repr__(self) -> str:
        return f"Reservation(id={self.id!r}, amounts={self.amounts!r}, ended={self.ended})"


class Decision:
    """The answer to `admit`. Read-only (`Final`).

    `remaining` is the headroom of every limit of `admission`, in its order (buckets,
    then concurrency keys, then budgets): what is left after this call if admitted, else
    as it stands (requests or tokens for a bucket, free slots for a concurrency key,
    nano-USD for a budget), never below zero. `reset_after` has one entry per bucket, in
    order: seconds until it is full again (the rate-limit reset headers). Positions, not
    keys: the caller built the admission and knows what sits where, and every admitted
    call is told this, so no dict is built per call (`headroom()` gives one by key).
    `retry_after` is set only when a bucket refused a call that fits its capacity: the
    seconds until it holds the call's amount. Budgets and concurrency don't free up at a
    known time, so a refusal by them (or by a bucket smaller than the amount) has None.
    """

    __slots__ = (
        "admission",
        "admitted",
        "refused_by",
        "refused_kind",
        "remaining",
        "reservation",
        "reset_after",
        "retry_after",
    )

    def __init__(
        self,
        admission: Admission,
        admitted: bool,
        *,
        remaining: list[int],
        reset_after: list[float],
        reservation: Reservation | None = None,
        refused_by: str | None = None,
        refused_kind: LimitKind | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.admission: Final = admission
        self.admitted: Final = admitted
        self.remaining: Final = remaining
        self.reset_after: Final = reset_after
        self.reservation: Final = reservation
        self.refused_by: Final = refused_by
        self.refused_kind: Final = refused_kind
        self.retry_after: Final = retry_after

    def headroom(self) -> dict[str, int]:
        """`remaining` by limit key."""
        return dict(zip(self.admission.keys(), self.remaining, strict=True))

    def resets(self) -> dict[str, float]:
        """`reset_after` by bucket key."""
        return dict(zip((b.key for b in self.admission.buckets), self.reset_after, strict=True))

    def __repr__(self) -> str:
        return (
            f"Decision(admitted={self.admitted}, refused_by={self.refused_by!r}, "
            f"refused_kind={self.refused_kind}, retry_after={self.retry_after}, "
            f"headroom={self.headroom()}, resets={self.resets()})"
        )


class CounterStore:
    """The interface of every counter store (the methods below; see the module's contract).

    A base class rather than a Protocol: in the compiled build a call through it is a
    native method call, where a Protocol's goes through Python attribute lookup, and the
    admission path makes two per call. Each store overrides every method; the in-line
    methods (`admit_now`, `settle_now`, `release_now`) default to "can't", which is the
    answer of a store that has to ask a server.
    """

    def admit_now(self, admission: Admission, amounts: Amounts) -> Decision | None:
        """`admit` decided in line, without waiting, by a store whose counters live in
        this process; None from a store that must ask a server (then await `admit`).
        The admission path asks this first, so in process no coroutine runs per call."""
        return None

    def settle_now(
        self,
        reservation: Reservation,
        *,
        input_tokens: int,
        output_tokens: int,
        cost_nanousd: int | None,
    ) -> bool:
        """`settle` done in line (True), or False from a store that must ask a server
        (then await `settle`)."""
        return False

    def release_now(self, reservation: Reservation) -> bool:
        """`release` done in line (True), or False (then await `release`)."""
        return False

    def settles_pending(self) -> int:
        """Settles and releases that failed and wait for the store's own retry (0 from a
        store whose settles can't fail)."""
        return 0

    async def admit(self, admission: Admission, amounts: Amounts) -> Decision:
        """Check every limit, then take `amounts` from all of them or from none
        (atomically)."""
        raise NotImplementedError

    async def settle(
        self,
        reservation: Reservation,
        *,
        input_tokens: int,
        output_tokens: int,
        cost_nanousd: int | None,
    ) -> None:
        """End an admitted call that ran. Input and output buckets are corrected from what
        was taken to the actual counts (unused output tokens come back, up to the
        capacity; an underestimate is taken, even into debt); request buckets keep theirs.
        Leases are released. Each budget's reservation is replaced by `cost_nanousd`; None
        means the cost is unknown (the usage never arrived), and the reservation is booked
        as spent: a budget is never undercounted by a call whose cost we could not see."""
        raise NotImplementedError

    async def release(self, reservation: Reservation) -> None:
        """End an admitted call that consumed nothing (refused upstream, failed before any
        token): everything taken, requests included, goes back."""
        raise NotImplementedError

    async def spent(self, budget_key: str) -> int:
        """Settled spend under `budget_key` in nano-USD (0 if unknown or expired)."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release connections; the store can't be used afterwards."""
        raise NotImplementedError
