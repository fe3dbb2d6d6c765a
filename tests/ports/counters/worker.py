"""One gateway process for the cross-process tests: `python worker.py MODE URL PREFIX
START_AT`. It connects, waits until the wall clock reaches START_AT (so all workers fire
together), runs its calls on a RedisCounterStore and prints one integer.

- rate: 100 concurrent admits against 100 requests per minute; prints how many passed.
- budget: 25 tasks each admit (reserving $0.05), settle a smaller random cost, and go on
  until the budget of $1.00 can't fit another reservation; prints how many settled.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time

from tollhouse.ports.counters.base import Admission, Amounts, BucketLimit, BudgetLimit, Takes
from tollhouse.ports.counters.redis import RedisCounterStore

RATE = Admission(buckets=[BucketLimit("rpm:key:shared", 100, Takes.REQUESTS, 60.0)])
BUDGET_LIMIT = 1_000_000_000
RESERVE = 50_000_000
BUDGET = Admission(budgets=[BudgetLimit("budget:key:shared:day", BUDGET_LIMIT, 86_400)])


async def rate(store: RedisCounterStore) -> int:
    decisions = await asyncio.gather(*(store.admit(RATE, Amounts()) for _ in range(100)))
    return sum(d.admitted for d in decisions)


async def budget(store: RedisCounterStore) -> int:
    settled = 0

    async def caller() -> None:
        nonlocal settled
        while True:
            decision = await store.admit(BUDGET, Amounts(reserve_nanousd=RESERVE))
            if decision.reservation is not None:
                await asyncio.sleep(random.uniform(0, 0.005))
                cost = random.randint(10_000_000, RESERVE)
                await store.settle(
                    decision.reservation, input_tokens=0, output_tokens=0, cost_nanousd=cost
                )
                settled += 1
            elif await store.spent("budget:key:shared:day") > BUDGET_LIMIT - RESERVE:
                return
            else:
                await asyncio.sleep(0.001)

    await asyncio.gather(*(caller() for _ in range(25)))
    return settled


async def main(mode: str, url: str, prefix: str, start_at: float) -> int:
    # A generous timeout: four processes connecting at once on a small CI machine.
    store = RedisCounterStore(url, prefix=prefix, timeout=5.0)
    try:
        # Connect before the start, so the burst is all admits.
        warm = Admission(buckets=[BucketLimit("warm-up", 1, Takes.REQUESTS)])
        await store.admit(warm, Amounts(requests=0))
        await asyncio.sleep(max(0.0, start_at - time.time()))
        return await (rate(store) if mode == "rate" else budget(store))
    finally:
        await store.aclose()


if __name__ == "__main__":
    print(asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]))))
