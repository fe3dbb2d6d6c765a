"""One gateway for the dashboard tests, served over loopback with a config file's versions,
keys required, a route with a canary, budgets, and the ledger keeping redacted text; and
traffic through the official SDKs before any test looks at it."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import anthropic
import httpx
import openai
import pytest
from tests.support import TEST_RELIABILITY

from tollhouse.config import parse_config
from tollhouse.gateway import Gateway
from tollhouse.ports.ledger.record import CallRecord
from tollhouse.ports.ledger.sqlite import SQLiteLedgerStore
from tollhouse.server.app import create_app
from tollhouse.server.runner import BackgroundServer

ADMIN_TOKEN = "dashboard-admin-token-7f3a"
READ_TOKEN = "dashboard-read-token-19c2"
T = TypeVar("T")
READ_TOKEN_ENV = "TOLLHOUSE_TEST_DASHBOARD_READ_TOKEN"
HOSTILE = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2">'


def run_apart(work: Coroutine[Any, Any, T]) -> T:
    """`work` run to its end on a thread of its own: Playwright's sync API keeps an event
    loop running on the test's thread, where `asyncio.run` is refused."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result()


@dataclass
class Site:
    url: str
    ledger_path: Path
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> created key doc
    hostile_request_id: str = ""

    def records(self) -> list[CallRecord]:
        async def read() -> list[CallRecord]:
            store = SQLiteLedgerStore(self.ledger_path)
            try:
                return await store.query(limit=100_000)
            finally:
                await store.aclose()

        return run_apart(read())

    def admin(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30
        )

    def wait_for_calls(self, count: int) -> list[CallRecord]:
        deadline = time.monotonic() + 10
        while True:
            found = self.records()
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


def site_config(directory: Path) -> dict[str, Any]:
    return {
        "providers": {
            "sim-anthropic": {"type": "simulator", "simulator": {"format": "anthropic"}},
            "sim-openai": {"type": "simulator", "simulator": {"format": "openai"}},
        },
        "models": {
            "claude-haiku-4-5": {
                "deployments": [{"provider": "sim-anthropic", "model": "claude-haiku-4-5-20251001"}]
            },
            "gpt-4o-mini": {"deployments": [{"provider": "sim-openai", "model": "gpt-4o-mini"}]},
            "support": {
                "deployments": [{"provider": "sim-anthropic", "model": "claude-haiku-4-5"}],
                "variants": {
                    "control": {"weight": 50},
                    "canary": {
                        "weight": 50,
                        "deployments": [
                            {"provider": "sim-anthropic", "model": "claude-sonnet-4-5"}
                        ],
                    },
                },
                "guardrails": {"enabled": False},
            },
        },
        "reliability": TEST_RELIABILITY,
        "timeouts": {"first_byte": 5.0, "read_idle": 5.0},
        "lifecycle": {"retired": "allow"},
        "ledger": {
            "sqlite_path": str(directory / "ledger.db"),
            "spill_path": str(directory / "ledger.spill"),
            "text": "redacted",
            "flush_interval": 0.05,
        },
        "keys": {"required": True, "sqlite_path": str(directory / "keys.db")},
        "conversations": {"backend": "off"},
        "spend": {"team_budgets": {"alpha": {"daily_usd": "5", "monthly_usd": "50"}}},
        "dashboard": {"read_only_token": f"env:{READ_TOKEN_ENV}"},
    }


def drive_traffic(site: Site) -> None:
    """Calls through both SDKs: two keys, end users, a canary route, a streamed call, a
    truncated call, an error, and a prompt that is HTML meant to run."""
    alpha = site.keys["alpha"]["secret"]
    beta = site.keys["beta"]["secret"]
    claude = anthropic.Anthropic(base_url=site.url, api_key=alpha, max_retries=0)
    gpt = openai.OpenAI(base_url=site.url + "/v1", api_key=beta, max_retries=0)
    for user in range(6):
        claude.messages.create(
            model="claude-haiku-4-5",
            max_tokens=50,
            messages=[{"role": "user", "content": f"hello number {user}"}],
            metadata={"user_id": f"user-{user % 3}"},
        )
    for user in range(8):
        claude.messages.create(
            model="support",
            max_tokens=30,
            messages=[{"role": "user", "content": "help me"}],
            metadata={"user_id": f"support-{user}"},
        )
    for _ in range(4):
        gpt.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi there"}], max_tokens=40
        )
    with claude.messages.stream(
        model="claude-haiku-4-5", max_tokens=40, messages=[{"role": "user", "content": "stream"}]
    ) as stream:
        stream.get_final_message()
    claude.messages.create(
        model="claude-haiku-4-5",
        max_tokens=1,
        messages=[{"role": "user", "content": "write a long story please"}],
    )
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.create(
            model="no-such-model", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    hostile = claude.messages.with_raw_response.create(
        model="claude-haiku-4-5", max_tokens=20, messages=[{"role": "user", "content": HOSTILE}]
    )
    site.hostile_request_id = hostile.headers["x-tollhouse-request-id"]


CALLS_DRIVEN = 6 + 8 + 4 + 1 + 1 + 1 + 1


@pytest.fixture(scope="package")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    directory = tmp_path_factory.mktemp("dashboard-site")
    previous = os.environ.get(READ_TOKEN_ENV)
    os.environ[READ_TOKEN_ENV] = READ_TOKEN
    try:
        document = site_config(directory)
        gateway = Gateway(parse_config(document), document=document, note="dashboard tests")
        with BackgroundServer(create_app(gateway, admin_token=ADMIN_TOKEN)) as server:
            found = Site(server.url, directory / "ledger.db")
            with found.admin() as admin:
                for name in ("alpha", "beta"):
                    spec: dict[str, Any] = {"name": f"{name} app", "team": name}
                    if name == "alpha":
                        spec["budget"] = {"daily_usd": "2"}
                    answer = admin.post("/admin/keys", json=spec)
                    assert answer.status_code == 201, answer.text
                    found.keys[name] = answer.json()
            drive_traffic(found)
            assert len(found.wait_for_calls(CALLS_DRIVEN)) >= CALLS_DRIVEN
            yield found
    finally:
        if previous is None:
            os.environ.pop(READ_TOKEN_ENV, None)
        else:
            os.environ[READ_TOKEN_ENV] = previous
