"""Per request and per tenant: `cache-control: no-cache` / `no-store`, the namespace
header, tenants that never share answers, the TTL, and `x-tollhouse-cache` on every answer
of a cached route (errors included) and on none of an uncached one."""

from __future__ import annotations

import time
from collections.abc import Iterator

import anthropic
import openai
import pytest
from tests.stages.response_cache.cached_gateway import HI, cached_config
from tests.support import GATEWAY_KEY, IN_PROCESS_CONFIG, serve_gateway

NAMESPACE = "x-tollhouse-cache-namespace"


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    server = serve_gateway(cached_config())
    yield server.url
    server.stop()


def ask(url: str, key: str = GATEWAY_KEY, question: str = "", **headers: str) -> str:
    """The `x-tollhouse-cache` of an Anthropic call asking `question` with `headers`."""
    client = anthropic.Anthropic(base_url=url, api_key=key, max_retries=0)
    raw = client.messages.with_raw_response.create(
        model="claude-haiku-4-5",
        max_tokens=300,
        messages=[{"role": "user", "content": f"{HI[0]['content']} {question}"}],
        extra_headers=headers,
    )
    return raw.headers["x-tollhouse-cache"]


def test_no_cache_skips_the_lookup_but_stores_the_answer(url: str) -> None:
    assert ask(url, question="no-cache", **{"cache-control": "no-cache"}) == "bypass"
    assert ask(url, question="no-cache") == "hit"
    assert ask(url, question="no-cache", **{"cache-control": "no-cache"}) == "bypass"


def test_no_store_neither_looks_up_nor_stores(url: str) -> None:
    assert ask(url, question="no-store", **{"cache-control": "no-store"}) == "bypass"
    assert ask(url, question="no-store") == "miss"
    assert ask(url, question="no-store") == "hit"
    assert ask(url, question="no-store", **{"cache-control": "max-age=0, no-store"}) == "bypass"


def test_a_namespace_divides_a_tenant_s_answers(url: str) -> None:
    assert ask(url, question="ns", **{NAMESPACE: "staging"}) == "miss"
    assert ask(url, question="ns", **{NAMESPACE: "staging"}) == "hit"
    assert ask(url, question="ns", **{NAMESPACE: "prod"}) == "miss"
    assert ask(url, question="ns") == "miss"
    assert ask(url, question="ns", **{NAMESPACE: "prod"}) == "hit"


def test_tenants_never_share_answers_whatever_namespace_they_name(url: str) -> None:
    assert ask(url, "key-alice", question="tenant", **{NAMESPACE: "shared"}) == "miss"
    assert ask(url, "key-alice", question="tenant", **{NAMESPACE: "shared"}) == "hit"
    assert ask(url, "key-bob", question="tenant", **{NAMESPACE: "shared"}) == "miss"
    assert ask(url, "key-bob", question="tenant") == "miss"


def test_a_bad_namespace_is_refused_in_the_client_s_format(url: str) -> None:
    with pytest.raises(anthropic.BadRequestError) as claude_error:
        ask(url, question="bad", **{NAMESPACE: "has spaces"})
    assert NAMESPACE in claude_error.value.message
    gpt = openai.OpenAI(base_url=url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
    with pytest.raises(openai.BadRequestError) as gpt_error:
        gpt.chat.completions.create(
            model="gpt-4o-mini",
            messages=HI,  # type: ignore[arg-type]
            extra_headers={NAMESPACE: "x" * 65},
        )
    assert NAMESPACE in gpt_error.value.message
    assert gpt_error.value.body["param"] == NAMESPACE  # type: ignore[index]


def test_an_error_answer_of_a_cached_route_says_miss(url: str) -> None:
    with pytest.raises(anthropic.InternalServerError) as error:
        ask(url, question="error", **{"x-simulator-fault": "500"})
    assert error.value.response.headers["x-tollhouse-cache"] == "miss"


def test_an_answer_is_a_miss_again_after_its_ttl() -> None:
    server = serve_gateway(cached_config(ttl=2.0))
    try:
        assert ask(server.url, question="ttl") == "miss"
        assert ask(server.url, question="ttl") == "hit"
        time.sleep(2.1)
        assert ask(server.url, question="ttl") == "miss"
    finally:
        server.stop()


def test_an_uncached_route_says_nothing_of_the_cache() -> None:
    server = serve_gateway(IN_PROCESS_CONFIG)
    try:
        client = anthropic.Anthropic(base_url=server.url, api_key=GATEWAY_KEY, max_retries=0)
        raw = client.messages.with_raw_response.create(
            model="claude-haiku-4-5",
            max_tokens=300,
            messages=HI,  # type: ignore[arg-type]
            extra_headers={"cache-control": "no-cache", NAMESPACE: "not checked here"},
        )
        assert "x-tollhouse-cache" not in raw.headers
    finally:
        server.stop()
