"""Gateway keys, rate limits and budgets as a client meets them, through the official SDKs:
who may call, how fast, how much, and what every refusal looks like."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from tests.observability.test_call_accounting import metric
from tests.observability.test_call_ledger import read_sqlite
from tests.support import IN_PROCESS_CONFIG, serve_gateway

from tollhouse.config.model import Budget, Limits
from tollhouse.ports.keys.record import KeySpec
from tollhouse.ports.keys.sqlite import SQLiteKeyStore
from tollhouse.server.runner import BackgroundServer

HI = [{"role": "user", "content": "hi"}]


def create_key(path: Path, **spec: Any) -> tuple[str, str]:
    """A key in the SQLite key store at `path`: (key_id, secret)."""

    async def main() -> tuple[str, str]:
        store = SQLiteKeyStore(path)
        try:
            record, secret = await store.create(KeySpec(name="test", **spec))
            return record.key_id, secret
        finally:
            await store.aclose()

    return asyncio.run(main())


def keyed_gateway(tmp_path: Path, **sections: Any) -> BackgroundServer:
    return serve_gateway(
        {
            **IN_PROCESS_CONFIG,
            "keys": {"required": True, "sqlite_path": str(tmp_path / "keys.db")},
            "ledger": {"sqlite_path": str(tmp_path / "ledger.db"), "spill_path": None},
            **sections,
        }
    )


def claude(url: str, secret: str, retries: int = 0) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key=secret, max_retries=retries)


def gpt(url: str, secret: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=secret, max_retries=0)


# --- keys -------------------------------------------------------------------------------


def test_a_valid_key_is_admitted_and_recorded_by_its_id(tmp_path: Path) -> None:
    key_id, secret = create_key(tmp_path / "keys.db", team="red", project="apollo")
    server = keyed_gateway(tmp_path)
    try:
        claude(server.url, secret).messages.create(
            model="claude-haiku-4-5", max_tokens=5, messages=HI
        )
        gpt(server.url, secret).chat.completions.create(
            model="gpt-4o-mini", max_tokens=5, messages=HI
        )
    finally:
        server.stop()
    records = read_sqlite(tmp_path / "ledger.db")
    assert [(r.key_id, r.team, r.project) for r in records] == [(key_id, "red", "apollo")] * 2


def test_a_missing_or_unknown_key_is_refused_with_401_in_both_formats(tmp_path: Path) -> None:
    create_key(tmp_path / "keys.db")
    server = keyed_gateway(tmp_path)
    try:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            claude(server.url, "th-not-a-real-key").messages.create(
                model="claude-haiku-4-5", max_tokens=5, messages=HI
            )
        assert caught.value.status_code == 401
        assert "th-not-a-real-key" not in caught.value.message
        with pytest.raises(openai.AuthenticationError):
            gpt(server.url, "sk-wrong").chat.completions.create(
                model="gpt-4o-mini", max_tokens=5, messages=HI
            )
        # No key and a malformed body: the key is checked first, the body never read.
        missing = httpx.post(server.url + "/v1/messages", json={"model": "claude-haiku-4-5"})
        assert missing.status_code == 401
        assert missing.json()["error"]["type"] == "authentication_error"
    finally:
        server.stop()


def test_a_key_scoped_to_some_models_gets_403_for_others(tmp_path: Path) -> None:
    _, secret = create_key(tmp_path / "keys.db", allowed_models=("claude-*",))
    server = keyed_gateway(tmp_path)
    try:
        claude(server.url, secret).messages.create(
            model="claude-haiku-4-5", max_tokens=5, messages=HI
        )
        with pytest.raises(openai.PermissionDeniedError) as caught:
            gpt(server.url, secret).chat.completions.create(
                model="gpt-4o-mini", max_tokens=5, messages=HI
            )
        assert "gpt-4o-mini" in caught.value.message
    finally:
        server.stop()


def test_a_revoked_key_stops_working(tmp_path: Path) -> None:
    key_id, secret = create_key(tmp_path / "keys.db")
    server = keyed_gateway(
        tmp_path,
        keys={"required": True, "sqlite_path": str(tmp_path / "keys.db"), "cache_ttl_seconds": 0.1},
    )
    try:
        client = claude(server.url, secret)
        client.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=HI)

        async def revoke() -> None:
            store = SQLiteKeyStore(tmp_path / "keys.db")
            try:
                await store.revoke(key_id)
            finally:
                await store.aclose()

        asyncio.run(revoke())
        asyncio.run(asyncio.sleep(0.2))
        with pytest.raises(anthropic.AuthenticationError) as caught:
            client.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=HI)
        assert "revoked" in caught.value.message
    finally:
        server.stop()


def test_new_limits_on_a_key_apply_once_the_ring_reloads_it(tmp_path: Path) -> None:
    key_id, secret = create_key(tmp_path / "keys.db", limits=Limits(rpm=2))
    server = keyed_gateway(
        tmp_path,
        keys={"required": True, "sqlite_path": str(tmp_path / "keys.db"), "cache_ttl_seconds": 0.1},
    )
    try:
        client = claude(server.url, secret)

        def requests_limit() -> str:
            reply = client.messages.with_raw_response.create(
                model="claude-haiku-4-5", max_tokens=5, messages=HI
            )
            return reply.headers["anthropic-ratelimit-requests-limit"]

        assert requests_limit() == "2"

        async def raise_limit() -> None:
            store = SQLiteKeyStore(tmp_path / "keys.db")
            try:
                await store.update(key_id, limits=Limits(rpm=50))
            finally:
                await store.aclose()

        asyncio.run(raise_limit())
        asyncio.run(asyncio.sleep(0.2))
        # The bucket keeps the level it had and refills at the new rate from there.
        assert requests_limit() == "50"
    finally:
        server.stop()


# --- rate limits ------------------------------------------------------------------------


def test_requests_per_minute_refuse_with_429_retry_after_and_anthropic_headers(
    tmp_path: Path,
) -> None:
    _, secret = create_key(tmp_path / "keys.db", limits=Limits(rpm=3))
    server = keyed_gateway(tmp_path)
    try:
        client = claude(server.url, secret)
        first = client.messages.with_raw_response.create(
            model="claude-haiku-4-5", max_tokens=5, messages=HI
        )
        assert first.headers["anthropic-ratelimit-requests-limit"] == "3"
        assert first.headers["anthropic-ratelimit-requests-remaining"] == "2"
        assert first.headers["anthropic-ratelimit-requests-reset"].endswith("Z")
        for _ in range(2):
            client.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=HI)
        with pytest.raises(anthropic.RateLimitError) as caught:
            client.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=HI)
        response = caught.value.response
        assert response.status_code == 429
        assert 1 <= int(response.headers["retry-after"]) <= 20
        assert response.headers["anthropic-ratelimit-requests-remaining"] == "0"
        assert "requests per minute" in caught.value.message
        assert metric(server.url, "tollhouse_admissions_total", result="bucket") == 1
    finally:
        server.stop()


def test_an_admitted_call_that_fails_upstream_still_reports_its_headroom(
    tmp_path: Path,
) -> None:
    _, secret = create_key(tmp_path / "keys.db", limits=Limits(rpm=5))
    server = keyed_gateway(tmp_path)
    try:
        client = claude(server.url, secret)
        with pytest.raises(anthropic.InternalServerError) as caught:
            client.messages.create(
                model="claude-haiku-4-5",
                max_tokens=5,
                messages=HI,
                extra_headers={"x-simulator-fault": "500"},
            )
        headers = caught.value.response.headers
        assert headers["anthropic-ratelimit-requests-limit"] == "5"
        assert headers["anthropic-ratelimit-requests-remaining"] == "4"
        assert len(headers.get_list("anthropic-ratelimit-requests-remaining")) == 1
    finally:
        server.stop()


def test_openai_clients_get_x_ratelimit_headers(tmp_path: Path) -> None:
    _, secret = create_key(tmp_path / "keys.db", limits=Limits(rpm=2, input_tpm=100_000))
    server = keyed_gateway(tmp_path)
    try:
        client = gpt(server.url, secret)
        ok = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", max_tokens=5, messages=HI
        )
        assert ok.headers["x-ratelimit-limit-requests"] == "2"
        assert ok.headers["x-ratelimit-remaining-requests"] == "1"
        assert ok.headers["x-ratelimit-limit-tokens"] == "100000"
        assert ok.headers["x-ratelimit-reset-requests"].endswith("s")
        client.chat.completions.create(model="gpt-4o-mini", max_tokens=5, messages=HI)
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(model="gpt-4o-mini", max_tokens=5, messages=HI)
        assert caught.value.response.headers["x-ratelimit-remaining-requests"] == "0"
        assert "retry-after" in caught.value.response.headers
    finally:
        server.stop()


def test_unused_output_tokens_are_given_back_after_the_call(tmp_path: Path) -> None:
    # 1,000 output tokens a minute; each call reserves max_tokens=600 but uses far fewer,
    # so calls keep being admitted once the reservations are settled to actual use.
    _, secret = create_key(tmp_path / "keys.db", limits=Limits(output_tpm=1000))
    server = keyed_gateway(tmp_path)
    try:
        client = claude(server.url, secret)
        for _ in range(4):
            client.messages.create(model="claude-haiku-4-5", max_tokens=600, messages=HI)
            asyncio.run(asyncio.sleep(0.05))  # settling happens just after the reply
        with pytest.raises(anthropic.RateLimitError) as caught:
            client.messages.create(model="claude-haiku-4-5", max_tokens=5000, messages=HI)
        assert "more output tokens than the per-minute limit" in caught.value.message
    finally:
        server.stop()


def test_each_end_user_of_a_key_has_a_limit_of_its_own(tmp_path: Path) -> None:
    _, secret = create_key(tmp_path / "keys.db", end_users=True, end_user_limits=Limits(rpm=2))
    server = keyed_gateway(tmp_path)
    try:
        client = claude(server.url, secret)

        def call(user: str) -> None:
            client.messages.create(
                model="claude-haiku-4-5", max_tokens=5, messages=HI, metadata={"user_id": user}
            )

        call("alice")
        call("alice")
        with pytest.raises(anthropic.RateLimitError) as caught:
            call("alice")
        assert "end user 'alice'" in caught.value.message
        call("bob")
        gpt(server.url, secret).chat.completions.create(
            model="gpt-4o-mini", max_tokens=5, messages=HI, user="carol"
        )
    finally:
        server.stop()


def test_concurrent_calls_above_the_concurrency_limit_are_refused(tmp_path: Path) -> None:
    _, secret = create_key(tmp_path / "keys.db", limits=Limits(concurrency=2))
    slow = {
        **IN_PROCESS_CONFIG,
        "providers": {
            **IN_PROCESS_CONFIG["providers"],
            "sim-anthropic": {
                "type": "simulator",
                "simulator": {"format": "anthropic", "ttft_ms": 300},
            },
        },
    }
    server = serve_gateway(
        {
            **slow,
            "keys": {"required": True, "sqlite_path": str(tmp_path / "keys.db")},
            "ledger": {"backend": "off"},
        }
    )
    client = anthropic.AsyncAnthropic(base_url=server.url, api_key=secret, max_retries=0)

    async def burst() -> list[BaseException | None]:
        async def one() -> BaseException | None:
            try:
                await client.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=HI)  # type: ignore[arg-type]
            except anthropic.RateLimitError as error:
                return error
            return None

        return await asyncio.gather(*(one() for _ in range(5)))

    try:
        outcomes = asyncio.run(burst())
        assert sum(o is None for o in outcomes) == 2
        assert all(isinstance(o, anthropic.RateLimitError) for o in outcomes if o is not None)
        # Leases were released when the calls ended: a new call gets through.
        claude(server.url, secret).messages.create(
            model="claude-haiku-4-5", max_tokens=5, messages=HI
        )
    finally:
        server.stop()


def test_without_any_limit_the_gateway_never_answers_429(tmp_path: Path) -> None:
    server = serve_gateway({**IN_PROCESS_CONFIG, "ledger": {"backend": "off"}})
    client = anthropic.AsyncAnthropic(base_url=server.url, api_key="anything", max_retries=0)

    async def burst() -> int:
        async def one() -> int:
            raw = await client.messages.with_raw_response.create(
                model="claude-haiku-4-5",
                max_tokens=5,
                messages=HI,  # type: ignore[arg-type]
            )
            assert not any(name.startswith("anthropic-ratelimit") for name in raw.headers)
            return raw.status_code

        return sum(s == 200 for s in await asyncio.gather(*(one() for _ in range(200))))

    try:
        assert asyncio.run(burst()) == 200
        assert metric(server.url, "tollhouse_admissions_total") == 0
    finally:
        server.stop()


# --- budgets ----------------------------------------------------------------------------

PRICEY = {
    "models": [
        {
            "id": "pricey-model",
            "provider": "anthropic",
            "display_name": "Pricey",
            "context_window": 200000,
            "max_output_tokens": 8192,
            "released": "2026-01-01",
            "pricing": {"input": "1000", "output": "5000"},
        },
        {
            "id": "free-model",
            "provider": "anthropic",
            "display_name": "Free",
            "context_window": 200000,
            "max_output_tokens": 8192,
            "released": "2026-01-01",
            "pricing": {"input": "0", "output": "0"},
        },
    ]
}


def budget_gateway(tmp_path: Path, **spend: Any) -> BackgroundServer:
    models = {
        **IN_PROCESS_CONFIG["models"],
        "pricey": {"deployments": [{"provider": "sim-anthropic", "model": "pricey-model"}]},
        "free": {"deployments": [{"provider": "sim-anthropic", "model": "free-model"}]},
        "house": {"deployments": [{"provider": "sim-anthropic", "model": "house-model"}]},
    }
    return serve_gateway(
        {
            **IN_PROCESS_CONFIG,
            "models": models,
            "catalog": PRICEY,
            "keys": {"required": True, "sqlite_path": str(tmp_path / "keys.db")},
            "ledger": {"sqlite_path": str(tmp_path / "ledger.db"), "spill_path": None},
            "spend": spend,
        }
    )


def test_a_budget_refuses_at_its_cap_with_an_error_the_sdk_does_not_retry(
    tmp_path: Path,
) -> None:
    key_id, secret = create_key(tmp_path / "keys.db", budget=Budget(daily_usd=Decimal("1.00")))
    server = budget_gateway(tmp_path)
    client = claude(server.url, secret, retries=2)
    refused = None
    try:
        for _ in range(200):
            try:
                client.messages.create(model="pricey", max_tokens=20, messages=HI)
            except anthropic.RateLimitError as error:
                refused = error
                break
        used = metric(
            server.url, "tollhouse_budget_used_ratio", scope=f"key:{key_id}", period="day"
        )
        assert 0.9 <= used <= 1.0
    finally:
        server.stop()
    assert isinstance(refused, anthropic.EnforcedSpendLimitReachedError)
    assert refused.response.headers["x-should-retry"] == "false"
    assert "daily budget of $1.00" in refused.message
    records = read_sqlite(tmp_path / "ledger.db")
    spent = sum((r.cost_usd or Decimal(0) for r in records), Decimal(0))
    assert Decimal("0.90") <= spent <= Decimal("1.00")
    # The SDK's two retries were not spent on the refusal: it was asked once.
    assert sum(r.status == 429 for r in records) == 1


def test_openai_clients_see_a_budget_refusal_as_insufficient_quota(tmp_path: Path) -> None:
    _, secret = create_key(tmp_path / "keys.db", budget=Budget(daily_usd=Decimal("0")))
    server = budget_gateway(tmp_path)
    try:
        with pytest.raises(openai.RateLimitError) as caught:
            gpt(server.url, secret).chat.completions.create(
                model="pricey", max_tokens=5, messages=HI
            )
        assert caught.value.code == "insufficient_quota"
    finally:
        server.stop()


def test_free_models_are_never_blocked_by_a_budget(tmp_path: Path) -> None:
    _, secret = create_key(tmp_path / "keys.db", budget=Budget(daily_usd=Decimal("0")))
    server = budget_gateway(tmp_path)
    try:
        for _ in range(3):
            claude(server.url, secret).messages.create(model="free", max_tokens=5, messages=HI)
    finally:
        server.stop()


def test_an_unpriced_model_is_admitted_at_the_stated_estimate_and_marked(tmp_path: Path) -> None:
    _, secret = create_key(tmp_path / "keys.db", budget=Budget(daily_usd=Decimal("0.10")))
    server = budget_gateway(tmp_path, unpriced_estimate_usd="0.04")
    try:
        client = claude(server.url, secret)
        client.messages.create(model="house", max_tokens=5, messages=HI)
        client.messages.create(model="house", max_tokens=5, messages=HI)
        with pytest.raises(anthropic.RateLimitError):  # 0.04 * 3 > 0.10
            client.messages.create(model="house", max_tokens=5, messages=HI)
        assert metric(server.url, "tollhouse_unpriced_admissions_total", decision="estimated") == 2
    finally:
        server.stop()
    records = read_sqlite(tmp_path / "ledger.db")
    assert records[0].metadata["unpriced_admission"] == "estimated"
    assert records[0].cost_usd is None


def test_an_unpriced_model_can_be_refused_where_a_budget_applies(tmp_path: Path) -> None:
    _, secret = create_key(tmp_path / "keys.db", budget=Budget(daily_usd=Decimal("5")))
    server = budget_gateway(tmp_path, unpriced="refuse")
    try:
        with pytest.raises(anthropic.PermissionDeniedError) as caught:
            claude(server.url, secret).messages.create(model="house", max_tokens=5, messages=HI)
        assert "has no price" in caught.value.message
    finally:
        server.stop()


def test_a_reservation_is_released_when_the_upstream_fails(tmp_path: Path) -> None:
    # A budget that holds exactly one worst case: if a failed call kept its reservation,
    # the next call would be refused.
    _, secret = create_key(tmp_path / "keys.db", budget=Budget(daily_usd=Decimal("0.2")))
    server = budget_gateway(tmp_path)
    try:
        client = claude(server.url, secret)
        for _ in range(3):
            with pytest.raises(anthropic.InternalServerError):
                client.messages.create(
                    model="pricey",
                    max_tokens=20,
                    messages=HI,
                    extra_headers={"x-simulator-fault": "500"},
                )
            asyncio.run(asyncio.sleep(0.05))
        client.messages.create(model="pricey", max_tokens=20, messages=HI)
    finally:
        server.stop()


def test_a_client_leaving_mid_stream_frees_its_concurrency_lease(tmp_path: Path) -> None:
    _, secret = create_key(tmp_path / "keys.db", limits=Limits(concurrency=1))
    slow = {
        **IN_PROCESS_CONFIG,
        "providers": {
            **IN_PROCESS_CONFIG["providers"],
            "sim-anthropic": {
                "type": "simulator",
                "simulator": {"format": "anthropic", "tokens_per_second": 20},
            },
        },
    }
    server = serve_gateway(
        {
            **slow,
            "keys": {"required": True, "sqlite_path": str(tmp_path / "keys.db")},
            "ledger": {"backend": "off"},
        }
    )
    try:
        client = claude(server.url, secret)
        with client.messages.stream(
            model="claude-haiku-4-5", max_tokens=400, messages=HI
        ) as stream:
            for event in stream:
                if event.type == "content_block_delta":
                    break  # the client goes away with the answer half sent
        for _ in range(50):  # the gateway notices the disconnect and settles the call
            try:
                client.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=HI)
                break
            except anthropic.RateLimitError:
                asyncio.run(asyncio.sleep(0.05))
        else:
            pytest.fail("the lease of the abandoned stream was never released")
    finally:
        server.stop()
