"""The behaviour every counter store shares, run on each backend (see conftest.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tollhouse.ports.counters.base import (
    Admission,
    Amounts,
    BucketLimit,
    BudgetLimit,
    ConcurrencyLimit,
    CounterStore,
    Decision,
    LimitKind,
    Takes,
)

Run = Callable[..., Any]
DAY = 86_400
BUDGET_KEY = "budget:key:k1:day:2026-11-25"
PROBE = Amounts(requests=0)  # takes nothing: reads the headroom


def rpm(capacity: int = 100, window: float = 60.0) -> BucketLimit:
    return BucketLimit("rpm:key:k1", capacity, Takes.REQUESTS, window)


def itpm(capacity: int, window: float = 60.0) -> BucketLimit:
    return BucketLimit("itpm:key:k1", capacity, Takes.INPUT, window)


def otpm(capacity: int, window: float = 60.0) -> BucketLimit:
    return BucketLimit("otpm:key:k1", capacity, Takes.OUTPUT, window)


def budget(limit: int) -> BudgetLimit:
    return BudgetLimit(BUDGET_KEY, limit, DAY)


def test_bucket_admits_up_to_capacity_then_refuses(on_store: Run) -> None:
    async def scenario(store: CounterStore) -> list[bool]:
        admission = Admission(buckets=[rpm(3)])
        return [(await store.admit(admission, Amounts())).admitted for _ in range(4)]

    assert on_store(scenario) == [True, True, True, False]


def test_each_bucket_takes_what_it_counts(on_store: Run) -> None:
    admission = Admission(buckets=[rpm(10), itpm(1000), otpm(1000)])

    async def scenario(store: CounterStore) -> Decision:
        return await store.admit(admission, Amounts(input_tokens=250, output_tokens=400))

    assert on_store(scenario).headroom() == {
        "rpm:key:k1": 9,
        "itpm:key:k1": 750,
        "otpm:key:k1": 600,
    }


def test_refusal_by_second_bucket_consumes_nothing_from_first(on_store: Run) -> None:
    async def scenario(store: CounterStore) -> tuple[Decision, Decision]:
        refused = await store.admit(
            Admission(buckets=[itpm(1000), otpm(500)]),
            Amounts(input_tokens=400, output_tokens=600),
        )
        alone = await store.admit(Admission(buckets=[itpm(1000)]), PROBE)
        return refused, alone

    refused, alone = on_store(scenario)
    assert (refused.admitted, refused.refused_by, refused.refused_kind) == (
        False,
        "otpm:key:k1",
        LimitKind.BUCKET,
    )
    assert alone.headroom()["itpm:key:k1"] == 1000


def test_refusal_by_budget_consumes_nothing_from_buckets_or_leases(on_store: Run) -> None:
    lease = ConcurrencyLimit("conc:key:k1", 5)

    async def scenario(store: CounterStore) -> tuple[Decision, Decision]:
        refused = await store.admit(
            Admission(buckets=[rpm(10)], concurrency=[lease], budgets=[budget(100)]),
            Amounts(reserve_nanousd=101),
        )
        after = await store.admit(Admission(buckets=[rpm(10)], concurrency=[lease]), PROBE)
        return refused, after

    refused, after = on_store(scenario)
    assert (refused.admitted, refused.refused_kind) == (False, LimitKind.BUDGET)
    assert after.headroom() == {"rpm:key:k1": 10, "conc:key:k1": 4}


def test_bucket_refusal_tells_retry_after_when_room_returns(on_store: Run) -> None:
    async def scenario(store: CounterStore) -> tuple[Decision, Decision]:
        admission = Admission(buckets=[rpm(2, window=1.0)])
        await store.admit(admission, Amounts())
        await store.admit(admission, Amounts())
        refused = await store.admit(admission, Amounts())
        assert refused.retry_after is not None
        await asyncio.sleep(refused.retry_after + 0.02)
        return refused, await store.admit(admission, Amounts())

    refused, retried = on_store(scenario)
    assert refused.retry_after is not None
    assert 0.4 < refused.retry_after <= 0.5
    assert retried.admitted


def test_bucket_smaller_than_the_amount_refuses_without_retry_after(on_store: Run) -> None:
    async def scenario(store: CounterStore) -> Decision:
        return await store.admit(Admission(buckets=[otpm(100)]), Amounts(output_tokens=101))

    decision = on_store(scenario)
    assert (decision.admitted, decision.retry_after) == (False, None)


def test_remaining_reports_headroom_after_the_call(on_store: Run) -> None:
    async def scenario(store: CounterStore) -> Decision:
        return await store.admit(
            Admission(
                buckets=[rpm(10)],
                concurrency=[ConcurrencyLimit("conc:key:k1", 3)],
                budgets=[budget(100)],
            ),
            Amounts(requests=3, reserve_nanousd=30),
        )

    decision = on_store(scenario)
    assert decision.headroom() == {"rpm:key:k1": 7, "conc:key:k1": 2, BUDGET_KEY: 70}
    assert decision.resets()["rpm:key:k1"] == pytest.approx(18.0, abs=0.1)


def test_settle_refunds_unused_output_tokens(on_store: Run) -> None:
    admission = Admission(buckets=[otpm(1000, window=3600)])

    async def scenario(store: CounterStore) -> int:
        decision = await store.admit(admission, Amounts(output_tokens=400))
        assert decision.reservation is not None
        await store.settle(decision.reservation, input_tokens=0, output_tokens=100, cost_nanousd=0)
        return (await store.admit(admission, PROBE)).headroom()["otpm:key:k1"]

    assert on_store(scenario) == 900


def test_settle_takes_more_when_the_estimate_was_low_even_into_debt(on_store: Run) -> None:
    admission = Admission(buckets=[itpm(100)])

    async def scenario(store: CounterStore) -> Decision:
        decision = await store.admit(admission, Amounts(input_tokens=10))
        assert decision.reservation is not None
        await store.settle(decision.reservation, input_tokens=150, output_tokens=0, cost_nanousd=0)
        return await store.admit(admission, Amounts(input_tokens=1))

    refused = on_store(scenario)
    assert (refused.admitted, refused.headroom()["itpm:key:k1"]) == (False, 0)
    # 50 tokens of debt plus the 1 asked for, at 100 per 60 s.
    assert refused.retry_after == pytest.approx(51 * 0.6, abs=0.1)


def test_settle_keeps_the_requests_taken(on_store: Run) -> None:
    admission = Admission(buckets=[rpm(10), itpm(1000)])

    async def scenario(store: CounterStore) -> dict[str, int]:
        decision = await store.admit(admission, Amounts(input_tokens=100))
        assert decision.reservation is not None
        await store.settle(decision.reservation, input_tokens=40, output_tokens=0, cost_nanousd=0)
        return (await store.admit(admission, PROBE)).headroom()

    assert on_store(scenario) == {"rpm:key:k1": 9, "itpm:key:k1": 960}


def test_release_gives_everything_back(on_store: Run) -> None:
    admission = Admission(
        buckets=[rpm(10), otpm(1000)],
        concurrency=[ConcurrencyLimit("conc:key:k1", 1)],
        budgets=[budget(1000)],
    )
    amounts = Amounts(output_tokens=400, reserve_nanousd=300)

    async def scenario(store: CounterStore) -> tuple[Decision, int]:
        decision = await store.admit(admission, amounts)
        assert decision.reservation is not None
        await store.release(decision.reservation)
        return await store.admit(admission, amounts), await store.spent(BUDGET_KEY)

    again, spent = on_store(scenario)
    assert again.admitted
    assert again.headroom() == {
        "rpm:key:k1": 9,
        "otpm:key:k1": 600,
        "conc:key:k1": 0,
        BUDGET_KEY: 700,
    }
    assert spent == 0


def test_concurrency_refuses_while_leases_are_held_and_admits_after_settle(on_store: Run) -> None:
    admission = Admission(concurrency=[ConcurrencyLimit("conc:key:k1", 2)])

    async def scenario(store: CounterStore) -> list[bool]:
        first = await store.admit(admission, Amounts())
        second = await store.admit(admission, Amounts())
        refused = await store.admit(admission, Amounts())
        assert first.reservation is not None
        assert refused.refused_kind is LimitKind.CONCURRENCY
        await store.settle(first.reservation, input_tokens=0, output_tokens=0, cost_nanousd=0)
        after = await store.admit(admission, Amounts())
        return [first.admitted, second.admitted, refused.admitted, after.admitted]

    assert on_store(scenario) == [True, True, False, True]


def test_budget_settle_replaces_the_reservation_by_the_actual_cost(on_store: Run) -> None:
    admission = Admission(budgets=[budget(1000)])

    async def scenario(store: CounterStore) -> tuple[int, int]:
        decision = await store.admit(admission, Amounts(reserve_nanousd=300))
        assert decision.reservation is not None
        await store.settle(decision.reservation, input_tokens=0, output_tokens=0, cost_nanousd=120)
        probe = await store.admit(admission, PROBE)
        return await store.spent(BUDGET_KEY), probe.headroom()[BUDGET_KEY]

    assert on_store(scenario) == (120, 880)


def test_budget_settle_with_unknown_cost_books_the_reservation(on_store: Run) -> None:
    async def scenario(store: CounterStore) -> int:
        decision = await store.admit(
            Admission(budgets=[budget(1000)]), Amounts(reserve_nanousd=300)
        )
        assert decision.reservation is not None
        await store.settle(decision.reservation, input_tokens=0, output_tokens=0, cost_nanousd=None)
        return await store.spent(BUDGET_KEY)

    assert on_store(scenario) == 300


def test_budget_refuses_a_reserve_larger_than_what_is_left(on_store: Run) -> None:
    admission = Admission(budgets=[budget(1000)])

    async def scenario(store: CounterStore) -> list[bool]:
        decisions = [
            await store.admit(admission, Amounts(reserve_nanousd=reserve))
            for reserve in (700, 301, 300, 0)  # the last finds the budget exhausted
        ]
        return [d.admitted for d in decisions]

    assert on_store(scenario) == [True, False, True, False]


def test_settling_twice_counts_once(on_store: Run) -> None:
    admission = Admission(buckets=[otpm(1000, window=3600)], budgets=[budget(1000)])

    async def scenario(store: CounterStore) -> tuple[int, int]:
        decision = await store.admit(admission, Amounts(output_tokens=400, reserve_nanousd=300))
        assert decision.reservation is not None
        for _ in range(2):
            await store.settle(
                decision.reservation, input_tokens=0, output_tokens=100, cost_nanousd=50
            )
        await store.release(decision.reservation)
        probe = Admission(buckets=[otpm(1000, window=3600)])
        level = (await store.admit(probe, PROBE)).headroom()["otpm:key:k1"]
        return level, await store.spent(BUDGET_KEY)

    assert on_store(scenario) == (900, 50)


def test_unsettled_lease_expires(on_store: Run) -> None:
    admission = Admission(concurrency=[ConcurrencyLimit("conc:key:k1", 1)], lease_ttl_seconds=0.2)

    async def scenario(store: CounterStore) -> list[bool]:
        held = await store.admit(admission, Amounts())
        refused = await store.admit(admission, Amounts())
        await asyncio.sleep(0.3)
        return [held.admitted, refused.admitted, (await store.admit(admission, Amounts())).admitted]

    assert on_store(scenario) == [True, False, True]


def test_unsettled_budget_reservation_expires(on_store: Run) -> None:
    admission = Admission(budgets=[budget(100)], lease_ttl_seconds=0.2)
    amounts = Amounts(reserve_nanousd=100)

    async def scenario(store: CounterStore) -> list[bool]:
        held = await store.admit(admission, amounts)
        refused = await store.admit(admission, amounts)
        await asyncio.sleep(0.3)
        return [held.admitted, refused.admitted, (await store.admit(admission, amounts)).admitted]

    assert on_store(scenario) == [True, False, True]


def test_settle_after_the_reservation_expired_still_books_the_spend(on_store: Run) -> None:
    admission = Admission(budgets=[budget(100)], lease_ttl_seconds=0.2)

    async def scenario(store: CounterStore) -> tuple[int, int]:
        late = await store.admit(admission, Amounts(reserve_nanousd=60))
        await asyncio.sleep(0.3)
        assert late.reservation is not None
        await store.settle(late.reservation, input_tokens=0, output_tokens=0, cost_nanousd=40)
        probe = await store.admit(admission, PROBE)
        return await store.spent(BUDGET_KEY), probe.headroom()[BUDGET_KEY]

    assert on_store(scenario) == (40, 60)


def test_concurrent_first_calls_for_a_never_seen_key_respect_its_limits(on_store: Run) -> None:
    admission = Admission(
        buckets=[BucketLimit("rpm:user:k1/new", 100, Takes.REQUESTS)],
        budgets=[BudgetLimit("budget:user:k1/new:day", 10_000, DAY)],
    )
    leases = Admission(concurrency=[ConcurrencyLimit("conc:user:k1/new", 7)])

    async def scenario(store: CounterStore) -> tuple[int, int]:
        rate = await asyncio.gather(
            *(store.admit(admission, Amounts(reserve_nanousd=10)) for _ in range(400))
        )
        held = await asyncio.gather(*(store.admit(leases, Amounts()) for _ in range(50)))
        return sum(d.admitted for d in rate), sum(d.admitted for d in held)

    assert on_store(scenario) == (100, 7)


def test_admission_refuses_the_same_key_twice() -> None:
    with pytest.raises(ValueError, match="distinct"):
        Admission(buckets=[rpm()], concurrency=[ConcurrencyLimit(rpm().key, 1)])


def test_admission_and_amounts_refuse_impossible_values() -> None:
    with pytest.raises(ValueError, match="capacity > 0"):
        Admission(buckets=[rpm(0)])
    with pytest.raises(ValueError, match="period_ttl > 0"):
        Admission(budgets=[BudgetLimit(BUDGET_KEY, 100, 0)])
    with pytest.raises(ValueError, match=">= 0"):
        Amounts(input_tokens=-1)
