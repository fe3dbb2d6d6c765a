"""The provider key never leaves the gateway: not in a response (errors included), a log
line, the ledger, the call log or /metrics, even when the upstream echoes it back."""

from __future__ import annotations

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

PROVIDER_KEY = "sk-ant-api03-PROVIDERSECRET0123456789abcdefXYZ"


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
        server = serve_gateway(
            {
                "providers": {
                    "up": {
                        "type": "anthropic",
                        "base_url": upstream.url,
                        "api_key": "env:TEST_PROVIDER_KEY",
                    }
                },
                "models": {
                    "claude-haiku-4-5": {
                        "deployments": [{"provider": "up", "model": "claude-haiku-4-5"}]
                    }
                },
                "reliability": {"retry": {"max_attempts": 1}},
                "ledger": {
                    "sqlite_path": str(tmp_path / "ledger.db"),
                    "spill_path": str(tmp_path / "spill"),
                    "text": "full",
                },
                "logging": {"call_log": str(tmp_path / "calls.jsonl"), "level": "debug"},
            }
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
