"""`tollhouse rollout rollback` restores the exact prior behaviour: every user gets the
same answer from the seeded simulator as before the canary was promoted."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import anthropic
import pytest
from tests.serve_process import ServeProcess
from tests.support import GATEWAY_KEY, IN_PROCESS_CONFIG

from tollhouse.cli import main

USERS = [f"user-{i}" for i in range(40)]


def answers(url: str) -> tuple[dict[str, str], set[str]]:
    """Each user's answer text, and the config versions that served them."""
    client = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0)
    texts, versions = {}, set()
    for user in USERS:
        raw = client.messages.with_raw_response.create(
            model="support",
            max_tokens=40,
            system="You help.",
            messages=[{"role": "user", "content": "Where is my order?"}],
            metadata={"user_id": user},
        )
        block = raw.parse().content[0]
        texts[user] = block.text if block.type == "text" else ""
        versions.add(raw.headers.get("x-tollhouse-config-version", "-"))
    return texts, versions


def wait_for(url: str, version: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if answers(url)[1] == {str(version)}:
            return
        time.sleep(0.2)
    raise AssertionError(f"version {version} not served within 30 s")


@pytest.mark.timeout(300)
def test_rolling_back_a_canary_gives_every_user_the_answers_of_before(tmp_path: Path) -> None:
    config: dict[str, Any] = {
        **IN_PROCESS_CONFIG,
        "models": {
            "support": {
                "deployments": [{"provider": "sim-anthropic", "model": "claude-haiku-4-5"}],
                "variants": {
                    "control": {"weight": 100},
                    "concise": {
                        "weight": 0,
                        "system": {"mode": "append", "text": "Answer in one sentence."},
                    },
                },
            }
        },
        "ledger": {"sqlite_path": str(tmp_path / "ledger.db")},
        "keys": {"sqlite_path": str(tmp_path / "keys.db")},
        "config_store": {"poll_seconds": 0.2},
    }
    path = tmp_path / "gateway.yaml"
    path.write_text(json.dumps(config))
    with ServeProcess(tmp_path, config).wait_ready(60) as gateway:
        before, _ = answers(gateway.url)
        assert (
            main(["rollout", "promote", "support", "concise", "--to", "50", "-c", str(path)]) == 0
        )
        wait_for(gateway.url, 2)
        during, _ = answers(gateway.url)
        assert main(["rollout", "rollback", "support", "concise", "-c", str(path)]) == 0
        wait_for(gateway.url, 3)
        after, _ = answers(gateway.url)
    assert any(during[u] != before[u] for u in USERS), "the canary changed some answers"
    assert after == before
