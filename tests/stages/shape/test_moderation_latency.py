"""Moderation adds one round trip before a stream starts and nothing after (LiteLLM PR
#29123: moderation added seconds to streams): the same stream through a route with a
moderation guardrail and through one without, side by side, with a moderation endpoint
that takes 150 ms. The first byte comes one moderation later, the rest at the same pace,
and the endpoint is asked once per call."""

from __future__ import annotations

import statistics
import time
from typing import Any

import anthropic
from tests.support import GATEWAY_KEY, IN_PROCESS_CONFIG, hermetic_gateway

from tollhouse.providers.simulator import SimulatorProvider
from tollhouse.server.app import create_app
from tollhouse.server.runner import BackgroundServer

MODERATION_MS = 150.0


def _stream_timings(client: anthropic.Anthropic, model: str) -> tuple[float, float]:
    """(seconds to the first text, seconds from it to the end) of one stream."""
    started = time.perf_counter()
    first = None
    with client.messages.stream(
        model=model, max_tokens=40, messages=[{"role": "user", "content": "tell me a story"}]
    ) as stream:
        for _text in stream.text_stream:
            if first is None:
                first = time.perf_counter()
    ended = time.perf_counter()
    assert first is not None
    return first - started, ended - first


def test_a_moderated_stream_starts_one_moderation_later_and_runs_at_the_same_pace() -> None:
    deployment = [{"provider": "paced", "model": "claude-haiku-4-5"}]
    config: dict[str, Any] = {
        **IN_PROCESS_CONFIG,
        "ledger": {"backend": "off"},
        "providers": {
            "paced": {
                "type": "simulator",
                "simulator": {"format": "anthropic", "ttft_ms": 50, "tokens_per_second": 400},
            },
            "moderator": {
                "type": "simulator",
                "simulator": {"format": "openai", "ttft_ms": MODERATION_MS},
            },
        },
        "input_guardrails": {"moderation": {"kind": "moderation", "provider": "moderator"}},
        "models": {
            "plain": {"deployments": deployment},
            "moderated": {"deployments": deployment, "input_guardrails": ["moderation"]},
        },
    }
    gateway = hermetic_gateway(config)
    moderator = gateway.snapshot.providers["moderator"]
    assert isinstance(moderator, SimulatorProvider)
    client = anthropic.Anthropic(base_url="http://unused", api_key=GATEWAY_KEY, max_retries=0)
    with BackgroundServer(create_app(gateway)) as server:
        client = client.with_options(base_url=server.url)
        _stream_timings(client, "plain")  # warm the connection
        plain: list[tuple[float, float]] = []
        moderated: list[tuple[float, float]] = []
        for _ in range(5):  # interleaved, so both see the same machine
            plain.append(_stream_timings(client, "plain"))
            moderated.append(_stream_timings(client, "moderated"))
    first_byte_added = statistics.median(m[0] for m in moderated) - statistics.median(
        p[0] for p in plain
    )
    rest_added = statistics.median(m[1] for m in moderated) - statistics.median(p[1] for p in plain)
    print(
        f"\nmoderation of {MODERATION_MS:g} ms: first byte +{first_byte_added * 1000:.0f} ms, "
        f"rest of the stream {rest_added * 1000:+.1f} ms (medians of 5)"
    )
    assert moderator.simulator.moderation_calls == 5
    # one moderation round trip, give or take a shared machine's noise
    assert MODERATION_MS / 1000 * 0.8 < first_byte_added < MODERATION_MS / 1000 + 0.15
    # a moderation anywhere after the first byte would add a whole one (150 ms) or more
    assert abs(rest_added) < MODERATION_MS / 1000 / 2
