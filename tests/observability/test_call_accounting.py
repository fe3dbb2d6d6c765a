"""Every call is accounted: usage from the answer (streams included, broken ones estimated),
cost from the catalog, unknown prices counted as unknown, never as $0."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.server.upstream_recorder import CANNED_MESSAGE, RecordingUpstream
from tests.support import GATEWAY_KEY, IN_PROCESS_CONFIG, serve_gateway

from tollhouse.server.runner import BackgroundServer

HI = [{"role": "user", "content": "hi"}]


def metric(url: str, name: str, **labels: str) -> float:
    text = httpx.get(url + "/metrics").text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


@pytest.fixture(scope="module")
def gateway_url() -> Iterator[str]:
    server = serve_gateway(IN_PROCESS_CONFIG)
    yield server.url
    server.stop()


@pytest.fixture
def priced_upstream() -> Iterator[str]:
    usage: dict[str, Any] = {
        "input_tokens": 1000,
        "output_tokens": 500,
        "cache_creation_input_tokens": 2000,
        "cache_read_input_tokens": 3000,
        "cache_creation": {"ephemeral_5m_input_tokens": 2000, "ephemeral_1h_input_tokens": 0},
    }
    upstream = RecordingUpstream(doc={**CANNED_MESSAGE, "usage": usage})
    with BackgroundServer(upstream) as up:
        gateway = serve_gateway(
            {
                "providers": {"up": {"type": "anthropic", "base_url": up.url}},
                "models": {
                    "claude-haiku-4-5": {
                        "deployments": [{"provider": "up", "model": "claude-haiku-4-5-20251001"}]
                    },
                    "house-model": {"deployments": [{"provider": "up", "model": "house-model"}]},
                },
            }
        )
        yield gateway.url
        gateway.stop()


def test_cost_of_a_call_is_exact_for_every_token_type(priced_upstream: str) -> None:
    client = anthropic.Anthropic(base_url=priced_upstream, api_key=GATEWAY_KEY, max_retries=0)
    client.messages.create(model="claude-haiku-4-5", max_tokens=300, messages=HI)  # type: ignore[arg-type]
    # Claude Haiku 4.5, USD per million tokens: input 1, output 5, 5-minute cache write 1.25,
    # cache read 0.10. 1,000 × 1 + 500 × 5 + 2,000 × 1.25 + 3,000 × 0.10 = 6,300 per million
    # = $0.0063.
    assert metric(
        priced_upstream, "tollhouse_cost_usd_total", model="claude-haiku-4-5"
    ) == pytest.approx(0.0063, abs=1e-12)
    assert (
        metric(
            priced_upstream, "tollhouse_tokens_total", model="claude-haiku-4-5", type="cache_read"
        )
        == 3000
    )
    assert (
        metric(
            priced_upstream, "tollhouse_tokens_total", model="claude-haiku-4-5", type="cache_write"
        )
        == 2000
    )


def test_a_model_without_a_price_is_counted_unpriced_not_free(priced_upstream: str) -> None:
    client = anthropic.Anthropic(base_url=priced_upstream, api_key=GATEWAY_KEY, max_retries=0)
    client.messages.create(model="house-model", max_tokens=300, messages=HI)  # type: ignore[arg-type]
    assert metric(priced_upstream, "tollhouse_unpriced_calls_total", model="house-model") == 1
    assert metric(priced_upstream, "tollhouse_cost_usd_total", model="house-model") == 0
    assert (
        metric(priced_upstream, "tollhouse_tokens_total", model="house-model", type="input") == 1000
    )


def test_openai_stream_usage_is_counted_without_showing_the_client_a_usage_chunk(
    gateway_url: str,
) -> None:
    before = metric(gateway_url, "tollhouse_tokens_total", model="gpt-4o-mini", type="input")
    gpt = openai.OpenAI(base_url=gateway_url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
    chunks = list(gpt.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True))  # type: ignore[arg-type]
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)
    after = metric(gateway_url, "tollhouse_tokens_total", model="gpt-4o-mini", type="input")
    assert after > before


def test_a_broken_stream_is_still_accounted(gateway_url: str) -> None:
    before = metric(gateway_url, "tollhouse_tokens_total", model="claude-haiku-4-5", type="output")
    client = anthropic.Anthropic(base_url=gateway_url, api_key=GATEWAY_KEY, max_retries=0)
    with (
        pytest.raises(anthropic.APIStatusError),
        client.messages.stream(
            model="claude-haiku-4-5",
            max_tokens=300,
            messages=HI,  # type: ignore[arg-type]
            extra_headers={"x-simulator-fault": "mid-stream-reset:8"},
        ) as stream,
    ):
        for _ in stream:
            pass
    after = metric(gateway_url, "tollhouse_tokens_total", model="claude-haiku-4-5", type="output")
    assert after > before
