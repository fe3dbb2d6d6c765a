"""When every deployment fails: a static answer marked degraded, or a clean overload error
with Retry-After; and load shedding past the in-flight cap."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import anthropic
import openai
import pytest
from tests.reliability.conftest import simulator
from tests.support import GATEWAY_KEY

HI = [{"role": "user", "content": "hi"}]
Make = Callable[[dict[str, Any]], str]
SORRY = "The assistant is busy right now; please try again in a minute."


def failing_route(fmt: str = "anthropic", fault: str = "500", **policy: Any) -> dict[str, Any]:
    return {
        "providers": {"a": simulator(fmt, {"fault": fault}), "b": simulator(fmt, {"fault": fault})},
        "models": {
            "m": {
                "deployments": [{"provider": "a", "model": "a"}, {"provider": "b", "model": "b"}],
                **policy,
            }
        },
    }


def test_static_answer_is_served_and_marked_degraded(make_gateway: Make) -> None:
    url = make_gateway(failing_route(degrade={"mode": "static", "static_text": SORRY}))
    client = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0)
    raw = client.messages.with_raw_response.create(model="m", max_tokens=300, messages=HI)  # type: ignore[arg-type]
    message = raw.parse()
    assert message.content[0].type == "text"
    assert message.content[0].text == SORRY
    assert raw.headers["x-tollhouse-degraded"] == "true"


def test_count_tokens_is_never_answered_with_a_static_message(make_gateway: Make) -> None:
    url = make_gateway(failing_route(degrade={"mode": "static", "static_text": SORRY}))
    client = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0)
    with pytest.raises(anthropic.InternalServerError):
        client.messages.count_tokens(
            model="m",
            messages=HI,  # type: ignore[arg-type]
            extra_headers={"x-simulator-fault": "500"},  # config rules fault generation only
        )


def test_static_answer_streams_in_the_openai_format(make_gateway: Make) -> None:
    url = make_gateway(
        failing_route("openai", "529", degrade={"mode": "static", "static_text": SORRY})
    )
    client = openai.OpenAI(base_url=url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model="m",
            messages=HI,
            stream=True,
            stream_options={"include_usage": True},  # type: ignore[arg-type]
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == SORRY
    assert chunks[-1].usage is not None


def test_exhausted_route_is_a_clean_overload_error_with_retry_after(make_gateway: Make) -> None:
    url = make_gateway(failing_route())
    anthropic_client = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0)
    with pytest.raises(anthropic.OverloadedError) as a:
        anthropic_client.messages.create(model="m", max_tokens=300, messages=HI)  # type: ignore[arg-type]
    assert a.value.status_code == 529
    assert int(a.value.response.headers["retry-after"]) >= 1
    assert "every deployment of 'm' failed after 6 attempt(s)" in a.value.message
    openai_client = openai.OpenAI(base_url=url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
    with pytest.raises(openai.InternalServerError) as o:
        openai_client.chat.completions.create(model="m", messages=HI)  # type: ignore[arg-type]
    assert o.value.status_code == 503
    assert o.value.type == "server_error"  # type: ignore[attr-defined]


def test_only_rate_limits_make_a_429(make_gateway: Make) -> None:
    url = make_gateway(failing_route(fault="429:0"))
    client = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0)
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model="m", max_tokens=300, messages=HI)  # type: ignore[arg-type]
    assert caught.value.response.headers["retry-after"]


def test_calls_past_the_in_flight_cap_are_shed_at_once(make_gateway: Make) -> None:
    url = make_gateway(
        {
            "reliability": {"max_in_flight": 2},
            "providers": {"slow": simulator("anthropic", {"fault": "slow-first-byte:500"})},
            "models": {"m": {"deployments": [{"provider": "slow", "model": "slow"}]}},
        }
    )
    client = anthropic.AsyncAnthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0)

    async def one() -> tuple[str, float]:
        started = time.monotonic()
        try:
            await client.messages.create(model="m", max_tokens=300, messages=HI)  # type: ignore[arg-type]
        except anthropic.OverloadedError as exc:
            return f"shed after {exc.response.headers['retry-after']}s", time.monotonic() - started
        return "ok", time.monotonic() - started

    async def run() -> list[tuple[str, float]]:
        return list(await asyncio.gather(*(one() for _ in range(6))))

    results = asyncio.run(run())
    assert sorted(kind for kind, _ in results) == ["ok", "ok"] + ["shed after 1s"] * 4
    assert all(elapsed < 0.3 for kind, elapsed in results if kind != "ok")
