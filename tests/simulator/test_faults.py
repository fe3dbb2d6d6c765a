"""Injected faults reach an HTTP client exactly as the real failure would, so the official
SDKs raise their own exception for each one."""

from __future__ import annotations

import socket
import time
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from tests.simulator.conftest import anthropic_client, error_of, openai_client

from tollhouse.server.runner import BackgroundServer
from tollhouse.simulator.config import FaultRule
from tollhouse.simulator.faults import Fault, FaultSchedule, parse_fault

HI: list[Any] = [{"role": "user", "content": "hi"}]


def fault(spec: str) -> dict[str, str]:
    return {"x-simulator-fault": spec}


def test_429_raises_rate_limit_error_with_retry_after(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.RateLimitError) as caught:
        claude.messages.create(model="m", max_tokens=5, messages=HI, extra_headers=fault("429"))
    assert caught.value.response.headers["retry-after"] == "1"
    assert caught.value.response.headers["retry-after-ms"] == "1000"
    assert error_of(caught.value.body)["type"] == "rate_limit_error"


def test_429_retry_after_can_be_chosen(gpt: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        gpt.chat.completions.create(model="m", messages=HI, extra_headers=fault("429:7"))
    assert caught.value.response.headers["retry-after"] == "7"


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_raise_internal_server_error(
    claude: anthropic.Anthropic, status: int
) -> None:
    with pytest.raises(anthropic.InternalServerError) as caught:
        claude.messages.create(
            model="m", max_tokens=5, messages=HI, extra_headers=fault(str(status))
        )
    assert caught.value.status_code == status
    assert error_of(caught.value.body)["type"] == "api_error"


def test_529_is_anthropic_overloaded_error(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.OverloadedError) as caught:
        claude.messages.create(model="m", max_tokens=5, messages=HI, extra_headers=fault("529"))
    assert error_of(caught.value.body)["type"] == "overloaded_error"


def test_openai_server_errors_use_the_openai_error_body(gpt: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        gpt.chat.completions.create(model="m", messages=HI, extra_headers=fault("500"))
    assert caught.value.type == "server_error"


def test_slow_first_byte_delays_the_answer(claude: anthropic.Anthropic) -> None:
    started = time.monotonic()
    message = claude.messages.create(
        model="m", max_tokens=5, messages=HI, extra_headers=fault("slow-first-byte:300")
    )
    assert time.monotonic() - started >= 0.3
    assert message.content


def test_hang_times_the_client_out(claude: anthropic.Anthropic) -> None:
    started = time.monotonic()
    with pytest.raises(anthropic.APITimeoutError):
        claude.with_options(timeout=0.3).messages.create(
            model="m", max_tokens=5, messages=HI, extra_headers=fault("hang")
        )
    assert time.monotonic() - started < 2


def test_reset_drops_the_connection_before_any_response(
    claude: anthropic.Anthropic, gpt: openai.OpenAI
) -> None:
    with pytest.raises(anthropic.APIConnectionError):
        claude.messages.create(model="m", max_tokens=5, messages=HI, extra_headers=fault("reset"))
    with pytest.raises(openai.APIConnectionError):
        gpt.chat.completions.create(
            model="m", messages=HI, stream=True, extra_headers=fault("reset")
        )


def test_reset_sends_not_even_a_status_line(simulator_server: BackgroundServer) -> None:
    request = (
        b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"x-simulator-fault: reset\r\ncontent-length: 2\r\n\r\n{}"
    )
    with socket.create_connection(
        (simulator_server.host, simulator_server.port), timeout=5
    ) as sock:
        sock.sendall(request)
        assert sock.recv(1024) == b""


def test_mid_stream_error_raises_during_iteration(
    claude: anthropic.Anthropic, gpt: openai.OpenAI
) -> None:
    seen: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        claude.messages.stream(
            model="m", max_tokens=200, messages=HI, extra_headers=fault("mid-stream-error:3")
        ) as stream,
    ):
        seen.extend(event.type for event in stream)
    assert seen == ["message_start", "content_block_start"]  # the third event was the ping
    assert error_of(caught.value.body)["type"] == "overloaded_error"
    with pytest.raises(openai.APIError):
        for _ in gpt.chat.completions.create(
            model="m", messages=HI, stream=True, extra_headers=fault("mid-stream-error")
        ):
            pass


def test_mid_stream_error_on_a_plain_call_is_an_error_status(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.OverloadedError):
        claude.messages.create(
            model="m", max_tokens=5, messages=HI, extra_headers=fault("mid-stream-error")
        )


def test_mid_stream_reset_breaks_the_stream_without_a_clean_end(
    claude: anthropic.Anthropic, gpt: openai.OpenAI
) -> None:
    events: list[str] = []
    with (
        pytest.raises((anthropic.APIConnectionError, httpx2.TransportError)),
        claude.messages.stream(
            model="m", max_tokens=200, messages=HI, extra_headers=fault("mid-stream-reset")
        ) as stream,
    ):
        events.extend(event.type for event in stream)
    assert "message_stop" not in events
    with pytest.raises(openai.APIConnectionError):
        for _ in gpt.chat.completions.create(
            model="m", messages=HI, stream=True, extra_headers=fault("mid-stream-reset")
        ):
            pass


def test_first_n_fails_only_the_first_matching_calls(serve_simulator: Any) -> None:
    server = serve_simulator(faults=[{"fault": "529", "model": "claude-*", "first_n": 2}])
    client = anthropic_client(server)
    for _ in range(2):
        with pytest.raises(anthropic.OverloadedError):
            client.messages.create(model="claude-x", max_tokens=5, messages=HI)
    assert client.messages.create(model="claude-x", max_tokens=5, messages=HI).content
    assert openai_client(server).chat.completions.create(model="gpt-x", messages=HI).choices


def test_probability_rules_are_reproducible_for_a_seed() -> None:
    def outcomes(seed: int) -> list[bool]:
        schedule = FaultSchedule([FaultRule("500", probability=0.5)], seed)
        return [schedule.pick(None, "m", generation=True) is not None for _ in range(40)]

    assert outcomes(3) == outcomes(3)
    assert outcomes(3) != outcomes(4)
    assert 5 < sum(outcomes(3)) < 35


def test_rules_leave_counting_and_listing_alone() -> None:
    schedule = FaultSchedule([FaultRule("500")], 0)
    assert schedule.pick(None, "m", generation=False) is None
    assert schedule.pick("503", "m", generation=False) == Fault("status", status=503)


def test_ttft_header_delays_the_first_token(claude: anthropic.Anthropic) -> None:
    started = time.monotonic()
    with claude.messages.stream(
        model="m", max_tokens=50, messages=HI, extra_headers={"x-simulator-ttft-ms": "250"}
    ) as stream:
        next(iter(stream.text_stream))
        assert time.monotonic() - started >= 0.25


def test_an_unknown_fault_is_refused_with_400(gpt: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        gpt.chat.completions.create(model="m", messages=HI, extra_headers=fault("explode"))
    assert "unknown fault" in caught.value.message


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("429", Fault("status", status=429, retry_after_s=1.0)),
        ("503:2.5", Fault("status", status=503, retry_after_s=2.5)),
        ("529", Fault("status", status=529)),
        ("slow-first-byte:150", Fault("slow-first-byte", delay_ms=150)),
        ("hang", Fault("hang")),
        ("reset", Fault("reset")),
        ("mid-stream-error", Fault("mid-stream-error", after_events=4)),
        ("mid-stream-reset:10", Fault("mid-stream-reset", after_events=10)),
    ],
)
def test_fault_grammar(spec: str, expected: Fault) -> None:
    assert parse_fault(spec) == expected


@pytest.mark.parametrize("spec", ["200", "slow-first-byte", "hang:3", "mid-stream-error:x", "boom"])
def test_fault_grammar_refuses_nonsense(spec: str) -> None:
    with pytest.raises(ValueError, match=r"expected|must be|status"):
        parse_fault(spec)
