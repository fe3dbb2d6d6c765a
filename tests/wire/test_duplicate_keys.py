"""Bodies with a key twice in one object are refused (wire/request_body.py): the gateway
would scope and price the last `model` / `max_tokens` while an upstream handed the same bytes
may read the first, so a key scoped to a cheap model could reach an expensive one. The SDKs
can't send such a body (their requests are dicts), so these tests send the bytes with httpx."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from tests.server.upstream_recorder import RecordingUpstream
from tests.stages.test_keys_limits_budgets import create_key
from tests.support import GATEWAY_KEY, serve_gateway

from tollhouse.server.runner import BackgroundServer

ANTHROPIC = {"x-api-key": GATEWAY_KEY, "anthropic-version": "2023-06-01"}
OPENAI = {"authorization": f"Bearer {GATEWAY_KEY}"}
USER = b'{"role": "user", "content": "hi"}'


def post(url: str, path: str, headers: dict[str, str], body: bytes) -> httpx.Response:
    return httpx.post(
        url + path, content=body, headers={**headers, "content-type": "application/json"}
    )


ANTHROPIC_CASES = [
    (
        b'{"model": "claude-sonnet-4-5", "model": "claude-haiku-4-5", "max_tokens": 5, "messages": [%s]}'
        % USER,
        "model",
    ),
    (
        b'{"model": "claude-haiku-4-5", "max_tokens": 5, "max_tokens": 9000, "messages": [%s]}'
        % USER,
        "max_tokens",
    ),
    (
        b'{"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [{"role": "user", "role": "assistant", "content": "hi"}]}',
        "role",
    ),
    (
        b'{"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "text", "text": "a", "text": "b"}]}]}',
        "text",
    ),
]
OPENAI_CASES = [
    (b'{"model": "gpt-4o", "model": "gpt-4o-mini", "messages": [%s]}' % USER, "model"),
    (
        b'{"model": "gpt-4o-mini", "max_tokens": 5, "max_tokens": 9000, "messages": [%s]}' % USER,
        "max_tokens",
    ),
    (
        b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "a", "content": "b"}]}',
        "content",
    ),
]


@pytest.mark.parametrize(
    ("path", "body", "key"),
    [("/v1/messages", body, key) for body, key in ANTHROPIC_CASES]
    + [("/v1/chat/completions", body, key) for body, key in OPENAI_CASES],
)
def test_a_body_with_a_duplicate_key_gets_400_in_the_clients_format(
    gateway_url: str, path: str, body: bytes, key: str
) -> None:
    anthropic_client = path == "/v1/messages"
    response = post(gateway_url, path, ANTHROPIC if anthropic_client else OPENAI, body)
    assert response.status_code == 400
    doc = response.json()
    assert (doc.get("type") == "error") is anthropic_client  # Anthropic's shape, else OpenAI's
    assert doc["error"]["type"] == "invalid_request_error"
    assert f'duplicate key "{key}"' in doc["error"]["message"]


def test_an_escaped_duplicate_of_model_is_refused_too(gateway_url: str) -> None:
    body = (
        b'{"model": "claude-sonnet-4-5", "mod\\u0065l": "claude-haiku-4-5", "max_tokens": 5, "messages": [%s]}'
        % USER
    )
    response = post(gateway_url, "/v1/messages", ANTHROPIC, body)
    assert response.status_code == 400
    assert "duplicate key" in response.json()["error"]["message"]


def test_a_key_scoped_to_a_cheap_model_cannot_reach_another_with_a_duplicate_model(
    tmp_path: Path,
) -> None:
    _, secret = create_key(tmp_path / "keys.db", allowed_models=("cheap",))
    recorder = RecordingUpstream()
    with BackgroundServer(recorder) as upstream:
        gateway = serve_gateway(
            {
                "providers": {"up": {"type": "anthropic", "base_url": upstream.url}},
                "models": {
                    name: {"deployments": [{"provider": "up", "model": name}]}
                    for name in ("cheap", "expensive")
                },
                "keys": {"required": True, "sqlite_path": str(tmp_path / "keys.db")},
            }
        )
        try:
            headers = {**ANTHROPIC, "x-api-key": secret}
            body = (
                b'{"model": "expensive", "model": "cheap", "max_tokens": 5, "messages": [%s]}'
                % USER
            )
            response = post(gateway.url, "/v1/messages", headers, body)
            assert response.status_code == 400
            fine = b'{"model": "cheap", "max_tokens": 5, "messages": [%s]}' % USER
            assert post(gateway.url, "/v1/messages", headers, fine).status_code == 200
        finally:
            gateway.stop()
    assert [body for _, _, body in recorder.requests] == [fine]
