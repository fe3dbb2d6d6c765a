"""Input guardrails through both SDKs, streaming and not, on the simulator: a call blocked
(400 in the client's format naming the guardrail and rule, never the text), flagged
(recorded only), redacted (the upstream sees `[REDACTED:...]`), and the moderation endpoint
down or broken under `on_error: open` (recorded `error`, never `pass`) and `closed` (503)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from tests.observability.test_call_accounting import metric
from tests.support import GATEWAY_KEY, IN_PROCESS_CONFIG, serve_gateway

from tollhouse.ports.ledger.record import CallRecord
from tollhouse.ports.ledger.sqlite import SQLiteLedgerStore

SECRET = "sk-live1234567890abcdefXYZ"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _route(provider: str, model: str, guardrails: list[str]) -> dict[str, Any]:
    return {"deployments": [{"provider": provider, "model": model}], "input_guardrails": guardrails}


def guarded_config(ledger: Path) -> dict[str, Any]:
    # The simulator answers "saw the secret" when the secret reaches it and "saw a
    # redaction" when the redacted mark does: what the model was sent, told back.
    scripts = [
        {"pattern": r"\[REDACTED:secrets\]", "reply": "saw a redaction"},
        {"pattern": "sk-live", "reply": "saw the secret"},
    ]
    routes: dict[str, Any] = {}
    for family, provider, model in (
        ("claude", "sim-anthropic", "claude-haiku-4-5"),
        ("gpt", "sim-openai", "gpt-4o-mini"),
    ):
        routes[f"{family}-guarded"] = _route(
            provider, model, ["secrets", "banned", "length", "moderation"]
        )
        routes[f"{family}-flagging"] = _route(provider, model, ["moderation-flag", "banned-flag"])
        routes[f"{family}-open"] = _route(provider, model, ["down-open"])
        routes[f"{family}-closed"] = _route(provider, model, ["down-closed"])
        routes[f"{family}-broken"] = _route(provider, model, ["broken-closed", "broken-open"])
        routes[f"{family}-english"] = _route(provider, model, ["english"])
    return {
        **IN_PROCESS_CONFIG,
        "ledger": {"sqlite_path": str(ledger), "spill_path": None, "flush_interval": 0.02},
        "providers": {
            "sim-anthropic": {
                "type": "simulator",
                "simulator": {"format": "anthropic", "scripts": scripts},
            },
            "sim-openai": {
                "type": "simulator",
                "simulator": {"format": "openai", "scripts": scripts},
            },
            "moderator": {"type": "simulator", "simulator": {"format": "openai"}},
            "moderator-broken": {
                "type": "simulator",
                "simulator": {"format": "openai", "faults": [{"fault": "500"}]},
            },
            "moderator-down": {
                "type": "openai",
                "base_url": f"http://127.0.0.1:{closed_port()}/v1",
                "api_key": "env:TOLLHOUSE_TEST_MODERATION_KEY",
            },
        },
        "input_guardrails": {
            "secrets": {
                "kind": "pattern",
                "patterns": {"api_key": r"sk-live[A-Za-z0-9]{8,}"},
                "action": "redact",
            },
            "banned": {"kind": "deny_list", "terms": ["project nightingale"]},
            "banned-flag": {
                "kind": "deny_list",
                "terms": ["project nightingale"],
                "action": "flag",
            },
            "length": {"kind": "max_length", "max_chars": 2000},
            "moderation": {"kind": "moderation", "provider": "moderator"},
            "moderation-flag": {"kind": "moderation", "provider": "moderator", "action": "flag"},
            "down-open": {"kind": "moderation", "provider": "moderator-down", "on_error": "open"},
            "down-closed": {"kind": "moderation", "provider": "moderator-down"},
            "broken-closed": {
                "kind": "moderation",
                "provider": "moderator-broken",
                "on_error": "closed",
            },
            "broken-open": {
                "kind": "moderation",
                "provider": "moderator-broken",
                "on_error": "open",
            },
            "english": {"kind": "language", "allowed": ["en"]},
        },
        "models": routes,
    }


class Guarded:
    def __init__(self, url: str, ledger: Path) -> None:
        self.url = url
        self.ledger = ledger
        self.claude = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0)
        self.gpt = openai.OpenAI(base_url=url + "/v1", api_key=GATEWAY_KEY, max_retries=0)

    def record(self, request_id: str | None) -> CallRecord:
        return record_of(self.ledger, request_id)

    def guardrails(self, request_id: str | None) -> list[dict[str, str]]:
        return recorded_guardrails(self.ledger, request_id)


def record_of(ledger: Path, request_id: str | None) -> CallRecord:
    """The ledger's record of the call `request_id` (records arrive asynchronously)."""
    assert request_id
    deadline = time.monotonic() + 5
    while True:
        found = [r for r in asyncio.run(_records(ledger)) if r.request_id == request_id]
        if found or time.monotonic() > deadline:
            assert found, f"no record of {request_id}"
            return found[0]
        time.sleep(0.02)


def recorded_guardrails(ledger: Path, request_id: str | None) -> list[dict[str, str]]:
    """What the record of `request_id` says its guardrails found."""
    record = record_of(ledger, request_id)
    assert record.guardrails is not None
    entries: list[dict[str, str]] = json.loads(record.guardrails)
    return entries


async def _records(path: Path) -> list[CallRecord]:
    store = SQLiteLedgerStore(path)
    try:
        return await store.query(limit=1000, newest_first=False)
    finally:
        await store.aclose()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guarded]:
    ledger = tmp_path_factory.mktemp("guardrails") / "ledger.db"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TOLLHOUSE_TEST_MODERATION_KEY", "sk-test-moderation")
        server = serve_gateway(guarded_config(ledger))
    try:
        yield Guarded(server.url, ledger)
    finally:
        server.stop()


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


# The four ways a client asks: (SDK, stream), each returning (answer text, request id).
Ask = Callable[[Guarded, str, str], tuple[str, str | None]]


def claude_plain(g: Guarded, family_route: str, text: str) -> tuple[str, str | None]:
    message = g.claude.messages.create(
        model=f"claude-{family_route}", max_tokens=50, messages=user(text)
    )
    return "".join(b.text for b in message.content if b.type == "text"), message._request_id


def claude_stream(g: Guarded, family_route: str, text: str) -> tuple[str, str | None]:
    with g.claude.messages.stream(
        model=f"claude-{family_route}", max_tokens=50, messages=user(text)
    ) as stream:
        answer = "".join(stream.text_stream)
        return answer, stream.response.headers.get("request-id")


def gpt_plain(g: Guarded, family_route: str, text: str) -> tuple[str, str | None]:
    completion = g.gpt.chat.completions.create(model=f"gpt-{family_route}", messages=user(text))
    return completion.choices[0].message.content or "", completion._request_id


def gpt_stream(g: Guarded, family_route: str, text: str) -> tuple[str, str | None]:
    with g.gpt.chat.completions.with_streaming_response.create(
        model=f"gpt-{family_route}", messages=user(text), stream=True
    ) as response:
        request_id = response.headers.get("x-request-id")
        answer = "".join(
            chunk.choices[0].delta.content or ""
            for chunk in response.parse()
            if chunk.choices and chunk.choices[0].delta
        )
    return answer, request_id


ASKS = [claude_plain, claude_stream, gpt_plain, gpt_stream]
ASK_IDS = ["anthropic", "anthropic-stream", "openai", "openai-stream"]


def refusal(
    g: Guarded, ask: Ask, route: str, text: str
) -> anthropic.APIStatusError | openai.APIStatusError:
    """The SDK's exception for a call the gateway refuses."""
    errors = (anthropic.APIStatusError, openai.APIStatusError)
    with pytest.raises(errors) as raised:
        ask(g, route, text)
    error = raised.value
    assert isinstance(error, errors)
    return error


def error_fields(error: anthropic.APIStatusError | openai.APIStatusError) -> dict[str, Any]:
    body = error.body
    assert isinstance(body, dict)
    inner = body.get("error", body)
    assert isinstance(inner, dict)
    return inner


@pytest.mark.parametrize("ask", ASKS, ids=ASK_IDS)
def test_a_clean_request_passes_every_guardrail_and_is_recorded_as_passing(
    guarded: Guarded, ask: Ask
) -> None:
    answer, request_id = ask(guarded, "guarded", "What is the capital of France?")
    assert answer
    assert [(e["guardrail"], e["result"]) for e in guarded.guardrails(request_id)] == [
        ("secrets", "pass"),
        ("banned", "pass"),
        ("length", "pass"),
        ("moderation", "pass"),
    ]


@pytest.mark.parametrize("ask", ASKS, ids=ASK_IDS)
def test_a_denied_term_is_refused_with_400_naming_the_guardrail_not_the_term(
    guarded: Guarded, ask: Ask
) -> None:
    error = refusal(guarded, ask, "guarded", "Tell me all about Project  Nightingale please")
    assert isinstance(error, (anthropic.BadRequestError, openai.BadRequestError))
    assert error.status_code == 400
    fields = error_fields(error)
    assert fields["type"] == "invalid_request_error"
    assert "'banned'" in fields["message"]
    assert "deny_list" in fields["message"]
    assert "nightingale" not in fields["message"].lower()
    if isinstance(error, openai.BadRequestError):
        assert error.code == "guardrail_blocked"
    entries = guarded.guardrails(error.request_id)
    assert [(e["guardrail"], e["result"]) for e in entries] == [
        ("secrets", "pass"),
        ("banned", "blocked"),
    ]
    record = guarded.record(error.request_id)
    assert (record.status, record.error_type, record.input_tokens) == (
        400,
        "invalid_request_error",
        0,
    )


@pytest.mark.parametrize("ask", ASKS, ids=ASK_IDS)
def test_moderation_flagging_a_category_refuses_the_call_naming_the_category(
    guarded: Guarded, ask: Ask
) -> None:
    error = refusal(guarded, ask, "guarded", "something awful [moderation:violence]")
    assert error.status_code == 400
    message = error_fields(error)["message"]
    assert "'moderation'" in message
    assert "violence" in message
    assert "awful" not in message
    assert guarded.guardrails(error.request_id)[-1] == {
        "guardrail": "moderation",
        "kind": "moderation",
        "result": "blocked",
        "rule": "flagged for violence",
    }


@pytest.mark.parametrize("ask", ASKS, ids=ASK_IDS)
def test_flag_records_the_finding_and_lets_the_call_through(guarded: Guarded, ask: Ask) -> None:
    answer, request_id = ask(
        guarded, "flagging", "about project nightingale [moderation:harassment]"
    )
    assert answer
    assert guarded.guardrails(request_id) == [
        {
            "guardrail": "moderation-flag",
            "kind": "moderation",
            "result": "flagged",
            "rule": "flagged for harassment",
        },
        {
            "guardrail": "banned-flag",
            "kind": "deny_list",
            "result": "flagged",
            "rule": "denied term",
        },
    ]
    assert guarded.record(request_id).status == 200


@pytest.mark.parametrize("ask", ASKS, ids=ASK_IDS)
def test_redact_replaces_the_match_before_the_model_sees_it(guarded: Guarded, ask: Ask) -> None:
    answer, request_id = ask(guarded, "guarded", f"my key is {SECRET}, is it valid?")
    assert answer == "saw a redaction"
    entries = guarded.guardrails(request_id)
    assert entries[0] == {
        "guardrail": "secrets",
        "kind": "pattern",
        "result": "redacted",
        "rule": "api_key",
    }
    # moderation, after the redaction, passed on the redacted text
    assert entries[-1]["result"] == "pass"
    assert SECRET not in json.dumps(entries)


@pytest.mark.parametrize("ask", ASKS, ids=ASK_IDS)
def test_an_unreachable_moderation_endpoint_with_on_error_open_lets_the_call_through_recorded_as_error(
    guarded: Guarded, ask: Ask
) -> None:
    answer, request_id = ask(guarded, "open", "hello there")
    assert answer
    assert guarded.guardrails(request_id) == [
        {
            "guardrail": "down-open",
            "kind": "moderation",
            "result": "error",
            "error": "moderator-down unreachable",
            "on_error": "open",
        }
    ]


@pytest.mark.parametrize("ask", ASKS, ids=ASK_IDS)
def test_an_unreachable_moderation_endpoint_with_on_error_closed_refuses_with_503(
    guarded: Guarded, ask: Ask
) -> None:
    error = refusal(guarded, ask, "closed", "hello there")
    assert isinstance(error, (anthropic.InternalServerError, openai.InternalServerError))
    assert error.status_code == 503
    fields = error_fields(error)
    assert "'down-closed'" in fields["message"]
    assert "on_error: closed" in fields["message"]
    if isinstance(error, openai.InternalServerError):
        assert (fields["type"], error.code) == ("server_error", "guardrail_unavailable")
    else:
        assert fields["type"] == "api_error"
    assert guarded.guardrails(error.request_id) == [
        {
            "guardrail": "down-closed",
            "kind": "moderation",
            "result": "error",
            "error": "moderator-down unreachable",
            "on_error": "closed",
        }
    ]


def test_a_moderation_endpoint_answering_500_is_an_error_never_a_pass(guarded: Guarded) -> None:
    error = refusal(guarded, claude_plain, "broken", "hello there")
    assert error.status_code == 503
    assert guarded.guardrails(error.request_id) == [
        {
            "guardrail": "broken-closed",
            "kind": "moderation",
            "result": "error",
            "error": "moderator-broken answered 500",
            "on_error": "closed",
        }
    ]


def test_a_request_over_the_length_limit_is_refused_stating_both_lengths(guarded: Guarded) -> None:
    error = refusal(guarded, gpt_plain, "guarded", "x" * 2500)
    assert error.status_code == 400
    assert "2500 characters; the limit is 2000" in error_fields(error)["message"]


def test_a_request_in_a_language_not_allowed_is_refused(guarded: Guarded) -> None:
    answer, _ = claude_plain(guarded, "english", "Could you tell me how the weather is today?")
    assert answer
    error = refusal(
        guarded, claude_plain, "english", "Pourriez-vous me dire quel temps il fait aujourd'hui ?"
    )
    assert error.status_code == 400
    assert "language 'fr' is not among those allowed" in error_fields(error)["message"]


def test_an_embeddings_input_is_checked_like_a_message(guarded: Guarded) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        guarded.gpt.embeddings.create(
            model="gpt-guarded", input=["fine text", "all about project nightingale"]
        )
    assert raised.value.code == "guardrail_blocked"
    vectors = guarded.gpt.embeddings.create(model="gpt-guarded", input="fine text")
    assert vectors.data


def test_guardrail_results_are_counted_in_metrics_by_guardrail_and_result(
    guarded: Guarded,
) -> None:
    def count(guardrail: str, result: str) -> float:
        return metric(
            guarded.url, "tollhouse_guardrail_results_total", guardrail=guardrail, result=result
        )

    before = (count("banned-flag", "flagged"), count("down-open", "error"))
    gpt_plain(guarded, "flagging", "project nightingale")
    gpt_plain(guarded, "open", "hello")
    deadline = time.monotonic() + 5
    while (count("banned-flag", "flagged"), count("down-open", "error")) != (
        before[0] + 1,
        before[1] + 1,
    ):
        assert time.monotonic() < deadline, "the results were not counted"
        time.sleep(0.02)
