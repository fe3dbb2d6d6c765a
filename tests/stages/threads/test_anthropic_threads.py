"""Anthropic message threads held by the gateway, as the official Python SDK uses them:
`beta.messages.thread()` and the tool runner (threads on by default) send only each turn's
new messages after the first, and every turn must still be answered with its history,
whichever deployment, provider or format serves it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import orjson
import pytest
from anthropic import beta_tool
from tests.reliability.conftest import simulator
from tests.stages.test_keys_limits_budgets import claude, create_key, keyed_gateway
from tests.support import GATEWAY_KEY, IN_PROCESS_CONFIG, serve_gateway

from tollhouse.server.runner import BackgroundServer
from tollhouse.simulator.asgi import create_app as create_simulator_app
from tollhouse.simulator.config import SimulatorConfig
from tollhouse.simulator.engine import Simulator

QUESTION = "Tell me how the aqueducts of Rome carried water over the hills, " * 3
# The simulated model calls the tool while the latest user text is the question or the first
# tool result, and answers in text after the second: a tool loop of three turns.
SCRIPTS = [
    {"pattern": "aqueducts", "tool_call": {"name": "measure"}},
    {"pattern": "reading-1", "tool_call": {"name": "measure"}},
    {"pattern": "reading-2", "reply": "Two readings taken; done."},
]


class SentBodies:
    """The request bodies a client sent, recorded by its HTTP client's event hook."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def client(self, url: str, secret: str = GATEWAY_KEY) -> anthropic.Anthropic:
        http = anthropic.DefaultHttpxClient(event_hooks={"request": [self._record]})
        return anthropic.Anthropic(base_url=url, api_key=secret, max_retries=0, http_client=http)

    def _record(self, request: Any) -> None:
        if request.url.path.endswith("/v1/messages"):
            self.bodies.append(orjson.loads(request.read()))

    @property
    def threads(self) -> list[Any]:
        return [body.get("thread") for body in self.bodies]


def measuring_tool() -> Any:
    readings: list[int] = []

    @beta_tool
    def measure(site: str) -> str:
        """Measure the water flow at a site.

        Args:
            site: where to measure
        """
        readings.append(len(readings) + 1)
        return f"reading-{readings[-1]} at {site}"

    return measure


def unthreaded_input_tokens(client: anthropic.Anthropic, **request: Any) -> int:
    """What the same conversation, sent whole without a thread, counts as input."""
    return client.messages.create(**request).usage.input_tokens


@pytest.fixture
def gateway() -> Iterator[str]:
    server = serve_gateway(IN_PROCESS_CONFIG)
    yield server.url
    server.stop()


@pytest.mark.parametrize("model", ["claude-haiku-4-5", "gpt-4o-mini"])
def test_thread_send_twice_answers_the_second_turn_with_its_history(
    gateway: str, model: str
) -> None:
    sent = SentBodies()
    client = sent.client(gateway)
    thread = client.beta.messages.thread(model=model, max_tokens=200, system="Be brief.")
    first = thread.send({"role": "user", "content": QUESTION})
    second = thread.send({"role": "user", "content": "And then?"})

    assert sent.threads == [
        {"type": "create"},
        {"type": "continue", "previous_message_id": first.id},
    ]
    assert [m["content"] for m in sent.bodies[1]["messages"]] == ["And then?"]
    whole = unthreaded_input_tokens(
        client,
        model=model,
        max_tokens=200,
        system="Be brief.",
        messages=[
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": "And then?"},
        ],
    )
    assert second.usage.input_tokens == whole > first.usage.input_tokens + 10
    assert first.id.startswith("msg_th_")
    assert second.id != first.id


def test_a_streamed_turn_is_kept_for_the_next_one(gateway: str) -> None:
    client = SentBodies().client(gateway)
    thread = client.beta.messages.thread(model="claude-haiku-4-5", max_tokens=200)
    with thread.stream({"role": "user", "content": QUESTION}) as stream:
        first = stream.get_final_message()
    second = thread.send({"role": "user", "content": "And then?"})
    whole = unthreaded_input_tokens(
        client,
        model="claude-haiku-4-5",
        max_tokens=200,
        messages=[
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": "And then?"},
        ],
    )
    assert thread.previous_message_id == second.id
    assert second.usage.input_tokens == whole


def _tool_loop_config(spare_format: str | None, primary: dict[str, Any]) -> dict[str, Any]:
    deployments = [{"provider": "primary", "model": "claude-haiku-4-5"}]
    providers: dict[str, Any] = {"primary": primary}
    if spare_format is not None:
        providers["spare"] = simulator(spare_format, scripts=SCRIPTS)
        deployments.append({"provider": "spare", "model": "spare-model"})
    return {
        **IN_PROCESS_CONFIG,
        "providers": providers,
        "models": {"m": {"deployments": deployments}},
    }


@pytest.mark.parametrize("fmt", ["anthropic", "openai"])
def test_the_tool_runner_loops_over_a_thread_same_and_cross_format(fmt: str) -> None:
    server = serve_gateway(_tool_loop_config(None, simulator(fmt, scripts=SCRIPTS)))
    sent = SentBodies()
    try:
        runner = sent.client(server.url).beta.messages.tool_runner(
            model="m",
            max_tokens=300,
            tools=[measuring_tool()],
            messages=[{"role": "user", "content": QUESTION}],
        )
        replies = list(runner)
    finally:
        server.stop()
    assert [r.stop_reason for r in replies] == ["tool_use", "tool_use", "end_turn"]
    assert replies[-1].content[0].type == "text"
    assert replies[-1].content[0].text == "Two readings taken; done."
    assert [t["type"] for t in sent.threads] == ["create", "continue", "continue"]
    # Turns after the first send only the tool result and no tools: the gateway holds both.
    assert all(len(body["messages"]) == 1 and "tools" not in body for body in sent.bodies[1:])
    inputs = [r.usage.input_tokens for r in replies]
    assert inputs == sorted(inputs)
    assert inputs[2] > inputs[0] + 20


def test_a_thread_survives_a_fallback_to_another_provider_and_format_mid_loop() -> None:
    primary_sim = BackgroundServer(
        create_simulator_app(Simulator(SimulatorConfig.from_mapping({"scripts": SCRIPTS})))
    ).start()
    primary = {"type": "anthropic", "base_url": primary_sim.url, "simulator_headers": True}
    server = serve_gateway(_tool_loop_config("openai", primary))
    sent = SentBodies()
    served_by: list[str] = []
    try:
        client = sent.client(server.url)
        runner = client.beta.messages.tool_runner(
            model="m",
            max_tokens=300,
            tools=[measuring_tool()],
            messages=[{"role": "user", "content": QUESTION}],
        )
        replies = []
        for reply in runner:
            replies.append(reply)
            served_by.append(reply.model)
            primary_sim.stop()  # the primary provider goes away after the first turn
    finally:
        server.stop()
        primary_sim.stop()
    assert [r.stop_reason for r in replies] == ["tool_use", "tool_use", "end_turn"]
    assert replies[-1].content[0].text == "Two readings taken; done."
    assert [t["type"] for t in sent.threads] == ["create", "continue", "continue"]
    assert served_by[0] == "claude-haiku-4-5"
    assert set(served_by[1:]) == {"m"}


def test_an_expired_thread_is_refused_as_not_found_and_the_sdk_resends_it_whole(
    tmp_path: Path,
) -> None:
    conversations = {"ttl_seconds": 0.5, "sqlite_path": str(tmp_path / "c.db")}
    server = serve_gateway({**IN_PROCESS_CONFIG, "conversations": conversations})
    sent = SentBodies()
    try:
        client = sent.client(server.url)
        thread = client.beta.messages.thread(model="claude-haiku-4-5", max_tokens=100)
        first = thread.send({"role": "user", "content": QUESTION})
        time.sleep(1.0)
        with pytest.raises(anthropic.NotFoundError) as refused:
            client.beta.messages.create(
                model="claude-haiku-4-5",
                max_tokens=100,
                messages=[{"role": "user", "content": "And then?"}],
                thread={"type": "continue", "previous_message_id": first.id},
                betas=["message-threads-2026-08-12"],
            )
        second = thread.send({"role": "user", "content": "And then?"})
    finally:
        server.stop()
    assert refused.value.body["error"]["details"] == {"error_code": "thread_not_found"}  # type: ignore[index]
    assert type(refused.value).__name__ == "ThreadNotFoundError"
    # The thread's own turn met the same refusal and replayed everything under a new thread.
    assert [t["type"] for t in sent.threads] == ["create", "continue", "continue", "create"]
    assert [len(b["messages"]) for b in sent.bodies] == [1, 1, 1, 3]
    assert second.usage.input_tokens > first.usage.input_tokens + 10


def test_another_keys_thread_is_not_found(tmp_path: Path) -> None:
    _, mine = create_key(tmp_path / "keys.db")
    _, theirs = create_key(tmp_path / "keys.db")
    server = keyed_gateway(tmp_path, conversations={"sqlite_path": str(tmp_path / "c.db")})
    try:
        first = (
            claude(server.url, mine)
            .beta.messages.thread(model="claude-haiku-4-5", max_tokens=50)
            .send({"role": "user", "content": "hi"})
        )
        with pytest.raises(anthropic.NotFoundError) as refused:
            claude(server.url, theirs).beta.messages.create(
                model="claude-haiku-4-5",
                max_tokens=50,
                messages=[{"role": "user", "content": "what did I say?"}],
                thread={"type": "continue", "previous_message_id": first.id},
                betas=["message-threads-2026-08-12"],
            )
    finally:
        server.stop()
    assert refused.value.body["error"]["details"] == {"error_code": "thread_not_found"}  # type: ignore[index]


def test_threads_off_refuses_with_thread_unsupported_and_the_tool_runner_goes_on() -> None:
    config = _tool_loop_config(None, simulator("anthropic", scripts=SCRIPTS))
    server = serve_gateway({**config, "conversations": {"backend": "off"}})
    sent = SentBodies()
    try:
        client = sent.client(server.url)
        with pytest.raises(anthropic.BadRequestError) as refused:
            client.beta.messages.thread(model="m", max_tokens=50).send(
                {"role": "user", "content": "hi"}
            )
        sent.bodies.clear()
        replies = list(
            client.beta.messages.tool_runner(
                model="m",
                max_tokens=300,
                tools=[measuring_tool()],
                messages=[{"role": "user", "content": QUESTION}],
            )
        )
    finally:
        server.stop()
    details = refused.value.body["error"]["details"]  # type: ignore[index]
    assert details["error_code"] == "thread_unsupported_request"
    assert replies[-1].stop_reason == "end_turn"
    assert [t for t in sent.threads] == [{"type": "create"}, None, None, None]


def test_a_continuation_that_changes_the_system_prompt_is_refused(gateway: str) -> None:
    client = SentBodies().client(gateway)
    first = client.beta.messages.thread(
        model="claude-haiku-4-5", max_tokens=50, system="Be brief."
    ).send({"role": "user", "content": "hi"})
    with pytest.raises(anthropic.BadRequestError) as refused:
        client.beta.messages.create(
            model="claude-haiku-4-5",
            max_tokens=50,
            system="Be verbose.",
            messages=[{"role": "user", "content": "more"}],
            thread={"type": "continue", "previous_message_id": first.id},
            betas=["message-threads-2026-08-12"],
        )
    details = refused.value.body["error"]["details"]  # type: ignore[index]
    assert details["error_code"] == "thread_fingerprint_mismatch"


@pytest.fixture(params=["postgres", "redis"])
def shared_store(request: pytest.FixtureRequest) -> dict[str, Any]:
    """A `conversations:` section on a real shared server, fresh for the test."""
    if request.param == "postgres":
        conninfo = request.getfixturevalue("postgres_conninfo")
        request.getfixturevalue("monkeypatch").setenv("TH_TEST_CONVERSATIONS_PG", conninfo)
        return {"backend": "postgres", "postgres": "env:TH_TEST_CONVERSATIONS_PG"}
    return {
        "backend": "redis",
        "redis_url": request.getfixturevalue("redis_url"),
        "prefix": request.getfixturevalue("redis_prefix"),
    }


def test_a_thread_continues_on_another_gateway_sharing_the_store(
    shared_store: dict[str, Any],
) -> None:
    config = {**IN_PROCESS_CONFIG, "conversations": shared_store}
    one, other = serve_gateway(config), serve_gateway(config)
    try:
        first = (
            SentBodies()
            .client(one.url)
            .beta.messages.thread(model="claude-haiku-4-5", max_tokens=100)
            .send({"role": "user", "content": QUESTION})
        )
        second = (
            SentBodies()
            .client(other.url)
            .beta.messages.create(
                model="claude-haiku-4-5",
                max_tokens=100,
                messages=[{"role": "user", "content": "And then?"}],
                thread={"type": "continue", "previous_message_id": first.id},
                betas=["message-threads-2026-08-12"],
            )
        )
        whole = unthreaded_input_tokens(
            SentBodies().client(other.url),
            model="claude-haiku-4-5",
            max_tokens=100,
            messages=[
                {"role": "user", "content": QUESTION},
                {"role": "assistant", "content": first.content},
                {"role": "user", "content": "And then?"},
            ],
        )
    finally:
        one.stop()
        other.stop()
    assert second.usage.input_tokens == whole
