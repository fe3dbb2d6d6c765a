"""The cache's stores behind real gateways: Redis shared by two `tollhouse serve` processes,
SQLite kept across a restart, and a store that can't be reached serving misses, never
failing a call."""

from __future__ import annotations

from pathlib import Path

import anthropic
import openai
import pytest
from tests.observability.test_call_accounting import metric
from tests.serve_process import ServeProcess
from tests.stages.response_cache.cached_gateway import HI, cached_config
from tests.support import GATEWAY_KEY, serve_gateway

from tollhouse.config import ConfigError, parse_config
from tollhouse.gateway_parts import build_parts
from tollhouse.server.runner import free_port


def answer_of(url: str, stream: bool = False) -> tuple[str, str]:
    """(`x-tollhouse-cache`, the answer's text) of an OpenAI call."""
    client = openai.OpenAI(base_url=url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
    if stream:
        with client.chat.completions.with_streaming_response.create(
            model="gpt-4o-mini",
            messages=HI,  # type: ignore[arg-type]
            stream=True,
        ) as response:
            text = "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
            return response.headers["x-tollhouse-cache"], text
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=HI)  # type: ignore[arg-type]
    return raw.headers["x-tollhouse-cache"], raw.parse().choices[0].message.content or ""


def test_a_redis_cache_is_shared_by_two_gateway_processes(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    config = cached_config(backend="redis", redis_url=redis_url, prefix=redis_prefix)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        ServeProcess(tmp_path / "a", config, name="a") as first,
        ServeProcess(tmp_path / "b", config, name="b") as second,
    ):
        first.wait_ready()
        second.wait_ready()
        header, streamed = answer_of(first.url, stream=True)
        assert header == "miss"
        assert answer_of(second.url) == ("hit", streamed)
        assert answer_of(second.url, stream=True) == ("hit", streamed)


def test_a_sqlite_cache_keeps_its_answers_across_a_restart(tmp_path: Path) -> None:
    config = cached_config(backend="sqlite", sqlite_path=str(tmp_path / "cache.db"))
    server = serve_gateway(config)
    try:
        header, text = answer_of(server.url)
    finally:
        server.stop()
    assert header == "miss"
    server = serve_gateway(config)
    try:
        assert answer_of(server.url) == ("hit", text)
    finally:
        server.stop()


def test_an_unreachable_cache_serves_misses_and_counts_its_failures() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    server = serve_gateway(cached_config(backend="redis", redis_url=url, timeout_seconds=0.2))
    try:
        client = anthropic.Anthropic(base_url=server.url, api_key=GATEWAY_KEY, max_retries=0)
        for _ in range(2):
            raw = client.messages.with_raw_response.create(
                model="claude-haiku-4-5",
                max_tokens=300,
                messages=HI,  # type: ignore[arg-type]
            )
            assert raw.headers["x-tollhouse-cache"] == "miss"
            assert raw.parse().content
        assert metric(server.url, "tollhouse_response_cache_errors_total") == 4
    finally:
        server.stop()


def test_a_store_setting_that_can_t_be_used_is_refused_naming_its_key() -> None:
    with pytest.raises(ConfigError, match=r"\$\.response_cache\.redis_url"):
        build_parts(parse_config(cached_config(backend="redis", redis_url="http://cache:6379")))
    with pytest.raises(ConfigError, match=r"response_cache.*backend"):
        parse_config(cached_config(backend="memcached"))
    with pytest.raises(ConfigError, match=r"response_cache.*max_entry_bytes"):
        parse_config(cached_config(max_entry_bytes=0))
