"""The provider key never leaves the gateway: not in a response (errors included), a log
line, the ledger, the call log or /metrics, even when the upstream echoes it back."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest
from tests.support import serve_gateway

from tollhouse.server.runner import BackgroundServer
from tollhouse.wire.sse import frame_json

PROVIDER_KEY = "sk-ant-api03-PROVIDERSECRET0123456789abcdefXYZ"


def keyed_gateway(upstream_url: str, **sections: Any) -> BackgroundServer:
    """A gateway whose one model is served by the upstream at `upstream_url`, reached with
    the provider key from TEST_PROVIDER_KEY, with one attempt per call."""
    return serve_gateway(
        {
            "providers": {
                "up": {
                    "type": "anthropic",
                    "base_url": upstream_url,
                    "api_key": "env:TEST_PROVIDER_KEY",
                }
            },
            "models": {
                "claude-haiku-4-5": {
                    "deployments": [{"provider": "up", "model": "claude-haiku-4-5"}]
                }
            },
            "reliability": {"retry": {"max_attempts": 1}},
            **sections,
        }
    )


class EchoingUpstream:
    """An Anthropic-style upstream that answers by what the prompt asks for, and puts the
    credential it received into its error messages, as a careless provider might."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        prompt = orjson.loads(body)["messages"][0]["content"]
        key = headers.get("x-api-key", "")
        status, doc = (
            200,
            {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": "claude-haiku-4-5",
                "content": [{"type": "text", "text": "ok"}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 3, "output_tokens": 1},
            },
        )
        if prompt in ("400", "401", "429", "500"):
            status = int(prompt)
            doc = {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "message": f"bad request with key {key}",
                },
            }
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"x-echo-key", key.encode())],
            }
        )
        await send({"type": "http.response.body", "body": orjson.dumps(doc)})


def test_provider_key_appears_in_no_response_log_ledger_or_metric(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TEST_PROVIDER_KEY", PROVIDER_KEY)
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    with BackgroundServer(EchoingUpstream()) as upstream:
        server = keyed_gateway(
            upstream.url,
            ledger={
                "sqlite_path": str(tmp_path / "ledger.db"),
                "spill_path": str(tmp_path / "spill"),
                "text": "full",
            },
            logging={"call_log": str(tmp_path / "calls.jsonl"), "level": "debug"},
        )
        claude = anthropic.Anthropic(base_url=server.url, api_key="client-key", max_retries=0)
        gpt = openai.OpenAI(base_url=server.url + "/v1", api_key="client-key", max_retries=0)
        try:
            for prompt in ("hello", "400", "401", "429", "500"):
                try:
                    raw = claude.messages.with_raw_response.create(
                        model="claude-haiku-4-5",
                        max_tokens=5,
                        messages=[{"role": "user", "content": prompt}],
                    )
                    seen.append(str(raw.headers) + raw.http_response.text)
                except anthropic.APIStatusError as error:
                    seen.append(str(error.response.headers) + error.response.text)
                try:
                    answer = gpt.chat.completions.with_raw_response.create(
                        model="claude-haiku-4-5",
                        max_tokens=5,
                        messages=[{"role": "user", "content": prompt}],
                    )
                    seen.append(str(answer.headers) + answer.http_response.text)
                except openai.APIStatusError as error:
                    seen.append(str(error.response.headers) + error.response.text)
            try:
                with claude.messages.stream(
                    model="claude-haiku-4-5",
                    max_tokens=5,
                    messages=[{"role": "user", "content": "500"}],
                ) as stream:
                    stream.get_final_message()
            except anthropic.APIStatusError as error:
                seen.append(error.response.text)
            for path in ("/metrics", "/readyz", "/v1/models"):
                seen.append(httpx.get(server.url + path).text)
        finally:
            server.stop()
    assert len(seen) >= 13
    for text in seen:
        assert PROVIDER_KEY not in text
    assert PROVIDER_KEY not in caplog.text
    for path in tmp_path.iterdir():
        assert PROVIDER_KEY.encode() not in path.read_bytes(), path.name
    # The upstream did receive it, so the search above looked for a string really in play.
    assert "bad request with key [REDACTED]" in "".join(seen)


class EchoingStreamUpstream:
    """An Anthropic-style upstream whose stream starts well, then fails with an error event
    that echoes the credential it received, sent in two chunks that split the key."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        key = dict(scope["headers"]).get(b"x-api-key", b"").decode()
        while (await receive()).get("more_body"):
            pass
        start = {
            "type": "message_start",
            "message": {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": "claude-haiku-4-5",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 3, "output_tokens": 1},
            },
        }
        block = {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "text", "text": ""},
        }
        delta = {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": "Hello"},
        }
        error = {
            "type": "error",
            "error": {"type": "overloaded_error", "message": f"overloaded; your key {key}"},
        }
        failing = frame_json("error", error)
        half = failing.index(key.encode()) + len(key) // 2
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        for chunk in (
            frame_json("message_start", start)
            + frame_json("content_block_start", block)
            + frame_json("content_block_delta", delta),
            failing[:half],
            failing[half:],
        ):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await asyncio.sleep(0.02)
        await send({"type": "http.response.body", "body": b""})


def test_provider_key_never_reaches_a_client_in_a_mid_stream_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_PROVIDER_KEY", PROVIDER_KEY)
    with BackgroundServer(EchoingStreamUpstream()) as upstream:
        server = keyed_gateway(upstream.url)
        try:
            claude = anthropic.Anthropic(base_url=server.url, api_key="client-key", max_retries=0)
            with (
                pytest.raises(anthropic.APIStatusError) as anthropic_error,
                claude.messages.stream(
                    model="claude-haiku-4-5",
                    max_tokens=5,
                    messages=[{"role": "user", "content": "hi"}],
                ) as stream,
            ):
                for _ in stream:
                    pass
            gpt = openai.OpenAI(base_url=server.url + "/v1", api_key="client-key", max_retries=0)
            with pytest.raises(openai.APIError) as openai_error:
                for _ in gpt.chat.completions.create(
                    model="claude-haiku-4-5",
                    max_tokens=5,
                    messages=[{"role": "user", "content": "hi"}],
                    stream=True,
                ):
                    pass
            raw = httpx.post(
                server.url + "/v1/messages",
                json={
                    "model": "claude-haiku-4-5",
                    "max_tokens": 5,
                    "stream": True,
                    "messages": [{"role": "user", "content": "hi"}],
                },
                headers={"x-api-key": "client-key"},
            ).content
        finally:
            server.stop()
    for text in (str(anthropic_error.value), str(openai_error.value), raw.decode()):
        assert PROVIDER_KEY not in text
        assert "[REDACTED]" in text
