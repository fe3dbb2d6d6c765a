"""A Redis stall with calls in flight must not lock a key out (#13.1): through the SDK, a
concurrency-12 key whose 12 calls end while Redis is stalled serves 12 calls again within
seconds of its recovery, with no lease or budget hold left behind. The Redis is a private
redis-server the test stalls with SIGSTOP (never the shared one)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import redis
from tests.observability.test_call_accounting import metric
from tests.ports.counters.redis_server import private_redis_server
from tests.stages.test_keys_limits_budgets import HI, claude, create_key, keyed_gateway

from tollhouse.config.model import Budget, Limits

CALLS = 12


def test_a_key_serves_again_within_seconds_of_a_redis_stall_with_calls_in_flight(
    tmp_path: Path,
) -> None:
    key_id, secret = create_key(
        tmp_path / "keys.db",
        limits=Limits(concurrency=CALLS),
        budget=Budget(daily_usd=Decimal("100")),
    )
    with private_redis_server() as private:
        server = keyed_gateway(
            tmp_path,
            counters={
                "backend": "redis",
                "redis_url": private.url,
                "prefix": "stall:",
                "timeout_seconds": 0.3,
            },
        )
        client = redis.Redis.from_url(private.url)

        def live_leases() -> int:
            now_ms = int(time.time() * 1000)
            return int(client.zcount(f"stall:c:conc:key:{key_id}", now_ms + 1, "+inf"))

        def held() -> int:
            holds = client.keys("stall:$:budget:*")
            return sum(int(client.hget(k, "held") or 0) for k in holds)

        def one(slow_ms: int) -> int:
            claude(server.url, secret).messages.create(
                model="claude-haiku-4-5",
                max_tokens=20,
                messages=HI,
                extra_headers={"x-simulator-fault": f"slow-first-byte:{slow_ms}"},
            )
            return 1

        try:
            with ThreadPoolExecutor(CALLS) as pool:
                in_flight = [pool.submit(one, 2500) for _ in range(CALLS)]
                deadline = time.monotonic() + 10
                while live_leases() < CALLS:  # every call admitted, holding its lease
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
                private.pause()  # the calls end (and settle) while Redis is stalled
                try:
                    time.sleep(4.0)
                    pending = metric(server.url, "tollhouse_counter_settles_pending")
                finally:
                    private.resume()
                assert sum(future.result(timeout=30) for future in in_flight) == CALLS
                assert pending >= 1
            recovered = time.monotonic()
            while (
                live_leases() or held() or metric(server.url, "tollhouse_counter_settles_pending")
            ):
                assert time.monotonic() - recovered < 10, (live_leases(), held())
                time.sleep(0.1)
            # The key serves its full concurrency again.
            with ThreadPoolExecutor(CALLS) as pool:
                assert sum(pool.map(one, [200] * CALLS)) == CALLS
        finally:
            private.resume()
            server.stop()
