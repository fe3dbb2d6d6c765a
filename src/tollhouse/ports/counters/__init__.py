"""The counters port: rate-limit token buckets, concurrency leases and budget reservations.

- `base`: the interface (`CounterStore`) and what flows through it: an `Admission` of
  `BucketLimit`s, `ConcurrencyLimit`s and `BudgetLimit`s and the call's `Amounts` in, a
  `Decision` out, and the `Reservation` an admitted call hands back to `settle` or
  `release`.
- `in_process.InProcessCounterStore`: the embedded default, exact within one process.
- `redis.RedisCounterStore`: shared by every gateway on one Redis, exact across them
  (one atomic Lua script per admit and per settle, on Redis's clock).
- `nanousd`: money on the counters is whole nano-dollars; Decimal converts at the edge.
"""

from tollhouse.ports.counters.base import (
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
)
from tollhouse.ports.counters.nanousd import from_nanousd, to_nanousd

__all__ = [
    "Admission",
    "Amounts",
    "BucketLimit",
    "BudgetLimit",
    "ConcurrencyLimit",
    "CounterStore",
    "CountersUnavailable",
    "Decision",
    "LimitKind",
    "Reservation",
    "Takes",
    "from_nanousd",
    "to_nanousd",
]
