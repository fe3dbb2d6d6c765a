"""Bad input and upstream failures: never a crash, never a bare 500; always the caller's own
error format with the right status, so the official SDKs raise their own exception classes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest
from tests.server.stream_upstream import SlowStreamUpstream
from tests.support import GATEWAY_KEY, IN_PROCESS_CONFIG, serve_gateway

from tollhouse.server.runner import BackgroundServer

CLAUDE = "claude-haiku-4-5"
GPT = "gpt-4o-mini"
HI = [{"role": "user", "content": "hi"}]
ANTHROPIC_HEADERS = {"x-api-key": GATEWAY_KEY, "anthropic-version": "2023-06-01"}


def fault(name: str) -> dict[str, str]:
    return {"x-simulator-fault": name}


def assert_anthropic_error(body: Any, error_type: str) -> None:
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert body["error"]["message"]


def assert_openai_error(body: Any) -> None:
    assert set(body["error"]) >= {"message", "type", "param", "code"}
    assert body["error"]["message"]


# --- malformed requests -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "empty"),
        (b"[1, 2]", "JSON object"),
        (
            b'{"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "x"}]}',
            "max_tokens",
        ),
        (b'{"model": "claude-haiku-4-5", "max_tokens": "ten", "messages": []}', "max_tokens"),
        (b'{"model": "claude-haiku-4-5", "max_tokens": 10, "messages": []}', "messages"),
        (
            b'{"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "robot", "content": "x"}]}',
            "role",
        ),
        (b'{"max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}', "model"),
        (
            b'{"model": 7, "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}',
            "model",
        ),
        (
            b'{"model": "claude-haiku-4-5", "max_tokens": 10, "stream": "yes", "messages": [{"role": "user", "content": "x"}]}',
            "stream",
        ),
    ],
)
def test_malformed_anthropic_requests_get_400_in_anthropic_shape(
    gateway_url: str, payload: bytes, fragment: str
) -> None:
    response = httpx.post(
        gateway_url + "/v1/messages",
        content=payload,
        headers={**ANTHROPIC_HEADERS, "content-type": "application/json"},
    )
    assert response.status_code == 400
    body = response.json()
    assert_anthropic_error(body, "invalid_request_error")
    assert fragment in body["error"]["message"]


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        (b'{"model": "gpt-4o-mini"}', "messages"),
        (b'{"model": "gpt-4o-mini", "messages": "hello"}', "messages"),
        (
            b'{"model": "gpt-4o-mini", "messages": [{"role": "wizard", "content": "x"}]}',
            "messages[0].role",
        ),
        (
            b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}',
            "max_tokens",
        ),
        (
            b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "n": true}',
            "n",
        ),
    ],
)
def test_malformed_openai_requests_get_400_in_openai_shape(
    gateway_url: str, payload: bytes, param: str
) -> None:
    response = httpx.post(
        gateway_url + "/v1/chat/completions",
        content=payload,
        headers={"authorization": f"Bearer {GATEWAY_KEY}", "content-type": "application/json"},
    )
    assert response.status_code == 400
    body = response.json()
    assert_openai_error(body)
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["param"] == param


def test_anthropic_sdk_raises_bad_request_for_missing_max_tokens(
    anthropic_client: anthropic.Anthropic,
) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        anthropic_client.post(
            "/v1/messages", body={"model": CLAUDE, "messages": HI}, cast_to=anthropic.types.Message
        )
    assert "max_tokens" in caught.value.message


def test_openai_sdk_raises_bad_request_for_a_wrong_role(openai_client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(
            model=GPT,
            messages=[{"role": "robot", "content": "x"}],  # type: ignore[misc,list-item]
        )
    assert caught.value.param == "messages[0].role"  # type: ignore[attr-defined]


def test_unknown_model_raises_not_found_in_both_sdks(
    anthropic_client: anthropic.Anthropic, openai_client: openai.OpenAI
) -> None:
    with pytest.raises(anthropic.NotFoundError) as a:
        anthropic_client.messages.create(model="claude-nonexistent", max_tokens=5, messages=HI)  # type: ignore[arg-type]
    assert "claude-nonexistent" in a.value.message
    with pytest.raises(openai.NotFoundError) as o:
        openai_client.chat.completions.create(model="gpt-nonexistent", messages=HI)  # type: ignore[arg-type]
    assert o.value.code == "model_not_found"


def test_wrong_content_type_gets_415(gateway_url: str) -> None:
    response = httpx.post(
        gateway_url + "/v1/messages",
        content=b"model=x",
        headers={**ANTHROPIC_HEADERS, "content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415
    assert_anthropic_error(response.json(), "invalid_request_error")


def test_wrong_method_and_unknown_path(gateway_url: str) -> None:
    wrong_method = httpx.get(gateway_url + "/v1/chat/completions")
    assert wrong_method.status_code == 405
    assert_openai_error(wrong_method.json())
    unknown = httpx.get(gateway_url + "/v1/nothing-here", headers=ANTHROPIC_HEADERS)
    assert unknown.status_code == 404
    assert_anthropic_error(unknown.json(), "not_found_error")


@pytest.fixture(scope="module")
def small_limit_gateway() -> Iterator[str]:
    server = serve_gateway({**IN_PROCESS_CONFIG, "limits": {"max_body_bytes": 2048}})
    yield server.url
    server.stop()


def test_body_over_the_limit_is_refused_with_413(small_limit_gateway: str) -> None:
    big = [{"role": "user", "content": "x" * 5000}]
    client = anthropic.Anthropic(base_url=small_limit_gateway, api_key=GATEWAY_KEY, max_retries=0)
    with pytest.raises(anthropic.ContentTooLargeError) as a:
        client.messages.create(model=CLAUDE, max_tokens=5, messages=big)  # type: ignore[arg-type]
    assert "2048" in a.value.message
    oai = openai.OpenAI(base_url=small_limit_gateway + "/v1", api_key=GATEWAY_KEY, max_retries=0)
    with pytest.raises(openai.APIStatusError) as o:
        oai.chat.completions.create(model=GPT, messages=big)  # type: ignore[arg-type]
    assert o.value.status_code == 413
    assert_openai_error(o.value.body and {"error": o.value.body})


def test_chunked_body_over_the_limit_is_refused(small_limit_gateway: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}]}'

    response = httpx.post(
        small_limit_gateway + "/v1/messages",
        content=chunks(),
        headers={**ANTHROPIC_HEADERS, "content-type": "application/json"},
    )
    assert response.status_code == 413
    assert_anthropic_error(response.json(), "request_too_large")


# --- upstream failures relayed ----------------------------------------------------------------


def test_upstream_429_is_relayed_with_retry_after(anthropic_client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.RateLimitError) as caught:
        anthropic_client.messages.create(
            model=CLAUDE,
            max_tokens=5,
            messages=HI,
            extra_headers=fault("429"),  # type: ignore[arg-type]
        )
    assert caught.value.response.headers["retry-after"]
    assert caught.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]


def test_upstream_500_and_529_raise_the_sdk_classes(anthropic_client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.InternalServerError):
        anthropic_client.messages.create(
            model=CLAUDE,
            max_tokens=5,
            messages=HI,
            extra_headers=fault("500"),  # type: ignore[arg-type]
        )
    with pytest.raises(anthropic.OverloadedError) as caught:
        anthropic_client.messages.create(
            model=CLAUDE,
            max_tokens=5,
            messages=HI,
            extra_headers=fault("529"),  # type: ignore[arg-type]
        )
    assert caught.value.status_code == 529


def test_upstream_error_is_translated_for_a_cross_format_client(
    openai_client: openai.OpenAI,
) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        openai_client.chat.completions.create(
            model=CLAUDE,
            messages=HI,
            extra_headers=fault("429"),  # type: ignore[arg-type]
        )
    assert caught.value.type == "rate_limit_error"  # type: ignore[attr-defined]


def test_connection_reset_on_every_attempt_ends_in_a_clean_overload_error(
    anthropic_client: anthropic.Anthropic,
) -> None:
    with pytest.raises(anthropic.OverloadedError) as caught:
        anthropic_client.messages.create(
            model=CLAUDE,
            max_tokens=5,
            messages=HI,
            extra_headers=fault("reset"),  # type: ignore[arg-type]
        )
    assert caught.value.status_code == 529
    assert "(connection)" in caught.value.message
    assert caught.value.response.headers["retry-after"]
    assert caught.value.response.headers["x-should-retry"] == "false"


@pytest.fixture(scope="module")
def impatient_gateway() -> Iterator[str]:
    server = serve_gateway(
        {
            **IN_PROCESS_CONFIG,
            "timeouts": {"first_byte": 0.3, "read_idle": 0.3},
            "reliability": {"retry": {"max_attempts": 1}},
        }
    )
    yield server.url
    server.stop()


def test_hanging_upstream_is_abandoned_after_the_first_byte_timeout(impatient_gateway: str) -> None:
    client = anthropic.Anthropic(base_url=impatient_gateway, api_key=GATEWAY_KEY, max_retries=0)
    started = time.monotonic()
    with pytest.raises(anthropic.OverloadedError, match="timeout"):
        client.messages.create(
            model=CLAUDE,
            max_tokens=5,
            messages=HI,
            extra_headers=fault("hang"),  # type: ignore[arg-type]
        )
    assert time.monotonic() - started < 3


def test_mid_stream_upstream_error_reaches_the_anthropic_client_as_an_error_event(
    anthropic_client: anthropic.Anthropic,
) -> None:
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        anthropic_client.messages.stream(
            model=CLAUDE,
            max_tokens=200,
            messages=HI,
            extra_headers=fault("mid-stream-error"),  # type: ignore[arg-type]
        ) as stream,
    ):
        for _ in stream:
            pass
    assert caught.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


def test_mid_stream_reset_becomes_an_error_event_not_a_silent_end(
    anthropic_client: anthropic.Anthropic, openai_client: openai.OpenAI
) -> None:
    with (
        pytest.raises(anthropic.APIStatusError) as a,
        anthropic_client.messages.stream(
            model=CLAUDE,
            max_tokens=200,
            messages=HI,
            extra_headers=fault("mid-stream-reset"),  # type: ignore[arg-type]
        ) as stream,
    ):
        for _ in stream:
            pass
    assert "incomplete" in a.value.message
    with pytest.raises(openai.APIError) as o:
        for _ in openai_client.chat.completions.create(
            model=GPT,
            messages=HI,
            stream=True,
            extra_headers=fault("mid-stream-reset"),  # type: ignore[arg-type]
        ):
            pass
    assert "incomplete" in o.value.message


def test_mid_stream_error_is_translated_for_a_cross_format_stream(
    openai_client: openai.OpenAI,
) -> None:
    with pytest.raises(openai.APIError):
        for _ in openai_client.chat.completions.create(
            model=CLAUDE,
            messages=HI,
            stream=True,
            extra_headers=fault("mid-stream-error"),  # type: ignore[arg-type]
        ):
            pass


def test_client_dropping_a_stream_cancels_the_upstream_call() -> None:
    upstream_app = SlowStreamUpstream(events=400, interval=0.02)
    with BackgroundServer(upstream_app) as upstream:
        gateway = serve_gateway(
            {
                "providers": {"slow": {"type": "anthropic", "base_url": upstream.url}},
                "models": {"slow": {"deployments": [{"provider": "slow", "model": "slow"}]}},
            }
        )
        try:
            with httpx.stream(
                "POST",
                gateway.url + "/v1/messages",
                content=orjson.dumps(
                    {"model": "slow", "max_tokens": 5, "stream": True, "messages": HI}
                ),
                headers={**ANTHROPIC_HEADERS, "content-type": "application/json"},
            ) as response:
                assert response.status_code == 200
                lines = response.iter_lines()
                for _ in range(6):
                    next(lines)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not upstream_app.client_left:
                time.sleep(0.05)
            assert upstream_app.client_left
            assert not upstream_app.finished
            assert upstream_app.sent < 100
            assert httpx.get(gateway.url + "/healthz").status_code == 200
        finally:
            gateway.stop()
