"""The response cache across config versions: a version that moves a route to another model
is answered by that model, never from the answers the old one left in the cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import httpx
from tests.support import GATEWAY_KEY, IN_PROCESS_CONFIG

from tollhouse.config import parse_config
from tollhouse.gateway import Gateway
from tollhouse.server.app import create_app
from tollhouse.server.runner import BackgroundServer

TOKEN = "cache-versions-admin-token"
HI = [{"role": "user", "content": "What is the capital of France?"}]


def cached_route(tmp_path: Path, model: str) -> dict[str, Any]:
    return {
        **IN_PROCESS_CONFIG,
        "ledger": {"backend": "off"},
        "keys": {"sqlite_path": str(tmp_path / "keys.db")},
        "models": {
            "m": {
                "deployments": [{"provider": "sim-anthropic", "model": model}],
                "cache": {"ttl_seconds": 600},
            }
        },
    }


def test_a_version_that_changes_the_model_is_not_served_the_old_models_answers(
    tmp_path: Path,
) -> None:
    first_doc = cached_route(tmp_path, "claude-haiku-4-5")
    gateway = Gateway(parse_config(first_doc), document=first_doc, note="test start")
    with (
        BackgroundServer(create_app(gateway, admin_token=TOKEN)) as server,
        httpx.Client(
            base_url=server.url, headers={"authorization": f"Bearer {TOKEN}"}, timeout=30
        ) as admin,
        anthropic.Anthropic(base_url=server.url, api_key=GATEWAY_KEY, max_retries=0) as client,
    ):

        def ask() -> Any:
            return client.messages.with_raw_response.create(
                model="m",
                max_tokens=300,
                messages=HI,  # type: ignore[arg-type]
            )

        first = ask()
        assert first.headers["x-tollhouse-cache"] == "miss"
        assert first.headers["x-tollhouse-served-by"] == "sim-anthropic/claude-haiku-4-5"
        hit = ask()
        assert hit.headers["x-tollhouse-cache"] == "hit"
        assert hit.parse().model == first.parse().model

        moved = cached_route(tmp_path, "claude-sonnet-4-5")
        applied = admin.post("/admin/config/versions", json={"document": moved, "note": "move"})
        assert applied.status_code < 300, applied.text

        after = ask()
        assert after.headers["x-tollhouse-cache"] == "miss"
        assert after.headers["x-tollhouse-served-by"] == "sim-anthropic/claude-sonnet-4-5"
        assert after.parse().model == "claude-sonnet-4-5"
        assert ask().headers["x-tollhouse-cache"] == "hit"  # the new model's answer is cached
