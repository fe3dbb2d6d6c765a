"""`/metrics` in the Prometheus text format, read back with the Prometheus client's own
parser after real calls through the SDKs."""

from __future__ import annotations

import time
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.support import GATEWAY_KEY, IN_PROCESS_CONFIG, serve_gateway

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def gateway_url() -> Iterator[str]:
    server = serve_gateway(IN_PROCESS_CONFIG)
    yield server.url
    server.stop()


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    response = httpx.get(url + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def value(
    samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str
) -> float:
    return sum(
        v for lab, v in samples.get(name, []) if all(lab.get(k) == x for k, x in labels.items())
    )


def test_calls_latency_and_ttft_are_counted(gateway_url: str) -> None:
    claude = anthropic.Anthropic(base_url=gateway_url, api_key=GATEWAY_KEY, max_retries=0)
    gpt = openai.OpenAI(base_url=gateway_url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
    before = scrape(gateway_url)
    claude.messages.create(model="claude-haiku-4-5", max_tokens=300, messages=HI)  # type: ignore[arg-type]
    with claude.messages.stream(model="claude-haiku-4-5", max_tokens=300, messages=HI) as s:  # type: ignore[arg-type]
        s.get_final_message()
    gpt.chat.completions.create(model="gpt-4o-mini", messages=HI)  # type: ignore[arg-type]
    after = scrape(gateway_url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("tollhouse_calls_total", model="claude-haiku-4-5", status="200") == 2
    assert delta("tollhouse_calls_total", model="gpt-4o-mini", client_format="openai") == 1
    assert delta("tollhouse_call_latency_seconds_count", model="claude-haiku-4-5") == 2
    assert delta("tollhouse_time_to_first_token_seconds_count", model="claude-haiku-4-5") == 1
    assert (
        value(after, "tollhouse_call_latency_seconds_bucket", model="gpt-4o-mini", le="+Inf") >= 1
    )


def test_failures_retries_and_breakers_are_visible(gateway_url: str) -> None:
    claude = anthropic.Anthropic(base_url=gateway_url, api_key=GATEWAY_KEY, max_retries=0)
    with pytest.raises(anthropic.InternalServerError):
        claude.messages.create(
            model="claude-haiku-4-5",
            max_tokens=300,
            messages=HI,  # type: ignore[arg-type]
            extra_headers={"x-simulator-fault": "500"},
        )
    samples = scrape(gateway_url)
    deployment = "sim-anthropic/claude-haiku-4-5-20251001"
    assert (
        value(
            samples,
            "tollhouse_upstream_failures_total",
            deployment=deployment,
            **{"class": "server_error"},
        )
        >= 2
    )
    assert value(samples, "tollhouse_retries_total", model="claude-haiku-4-5") >= 1
    assert value(samples, "tollhouse_calls_total", model="claude-haiku-4-5", status="529") >= 1
    states = dict((lab["deployment"], v) for lab, v in samples["tollhouse_breaker_state"])
    assert states[deployment] == 0.0
    assert "tollhouse_in_flight_calls" in samples


def series(url: str) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    return {
        (name, tuple(sorted(labels.items())))
        for name, samples in scrape(url).items()
        for labels, _ in samples
    }


def test_model_names_and_end_users_from_clients_add_no_series() -> None:
    """Label values come from the configuration: any model name a client makes up counts
    as `other`, and end users' budgets show per key, not per end user."""
    server = serve_gateway({**IN_PROCESS_CONFIG, "spend": {"end_user_budget": {"daily_usd": "5"}}})
    claude = anthropic.Anthropic(base_url=server.url, api_key=GATEWAY_KEY, max_retries=0)
    gpt = openai.OpenAI(base_url=server.url + "/v1", api_key=GATEWAY_KEY, max_retries=0)

    def calls(tag: str) -> None:
        with pytest.raises(anthropic.NotFoundError):
            claude.messages.create(model=f"made-up-{tag}", max_tokens=5, messages=HI)  # type: ignore[arg-type]
        with pytest.raises(openai.NotFoundError):
            gpt.chat.completions.create(model=f"gpt-{tag}", messages=HI)  # type: ignore[arg-type]
        claude.messages.create(
            model="claude-haiku-4-5",
            max_tokens=5,
            messages=HI,  # type: ignore[arg-type]
            metadata={"user_id": f"user-{tag}"},
        )

    try:
        calls("first")
        before = series(server.url)
        for n in range(20):
            calls(f"{n}-{n * 7919 % 1000}")
        after = series(server.url)
    finally:
        server.stop()
    assert after == before
    models = {dict(labels).get("model") for _, labels in before} - {None}
    # The route and, on the prompt-cache series, the model its deployment names.
    assert models == {"claude-haiku-4-5", "claude-haiku-4-5-20251001", "other"}
    scopes = {
        dict(labels)["scope"] for name, labels in before if name == "tollhouse_budget_used_ratio"
    }
    assert scopes == {"user:-/other"}


def test_event_loop_tasks_return_to_their_idle_count_after_calls(gateway_url: str) -> None:
    """`tollhouse_event_loop_tasks` counts the serving loop's tasks: what a call starts
    (its stream relay, its settlement) ends with it, so after many calls, whole and
    streamed, the idle count comes back (the soak benchmark watches this under load)."""
    claude = anthropic.Anthropic(base_url=gateway_url, api_key=GATEWAY_KEY, max_retries=0)
    idle = value(scrape(gateway_url), "tollhouse_event_loop_tasks")
    assert idle >= 1
    for _ in range(10):
        claude.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=HI)  # type: ignore[arg-type]
        with claude.messages.stream(model="claude-haiku-4-5", max_tokens=50, messages=HI) as s:  # type: ignore[arg-type]
            s.get_final_message()
    deadline = time.monotonic() + 30
    while (after := value(scrape(gateway_url), "tollhouse_event_loop_tasks")) > idle:
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert after <= idle
