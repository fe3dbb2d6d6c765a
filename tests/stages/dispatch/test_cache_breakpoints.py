"""Automatic prompt-cache breakpoints (`models.<route>.prompt_cache: {auto: true}`), through
the official SDKs: where they go (a recording upstream shows the request as sent), that the
client's own are kept and counted, never more than 4 (LiteLLM #16062 "Found 5"), that a
client's breakpoint never makes the configured ones go away (LiteLLM #40675), none below
the model's minimum cacheable length, and on the simulator that the next call reads what
the first wrote; a fallback to an OpenAI-format deployment never sees a marker."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import msgspec
import openai
import orjson
import pytest
from tests.observability.test_call_ledger import read_sqlite
from tests.server.upstream_recorder import RecordingUpstream
from tests.support import IN_PROCESS_CONFIG, hermetic_gateway, serve_gateway

from tollhouse.config import parse_config
from tollhouse.config.prompt_cache import UNPUBLISHED_MIN_TOKENS, AutoBreakpoints, PromptCachePolicy
from tollhouse.ports.ledger.record import CallRecord
from tollhouse.server.runner import BackgroundServer
from tollhouse.stages.dispatch.cache_breakpoints import with_auto_breakpoints
from tollhouse.wire.request_edits import anthropic_cache_markers

SONNET = "claude-sonnet-4-5"  # caches prefixes of 1,024 tokens and more
HAIKU = "claude-haiku-4-5"  # 4,096 and more
HANDBOOK = "Support handbook, section on refunds and returns. " * 150  # about 1,900 tokens
EPHEMERAL = {"type": "ephemeral"}
AUTO = {"auto": True}
TOOL: dict[str, Any] = {
    "name": "lookup_order",
    "description": "Find an order by its number",
    "input_schema": {"type": "object", "properties": {"number": {"type": "string"}}},
}
# A tool whose definition alone reaches Sonnet 4.5's minimum.
MANUAL_TOOL: dict[str, Any] = {**TOOL, "name": "consult_manual", "description": HANDBOOK}
OPENAI_ANSWER = {
    "id": "chatcmpl-recorded",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-mini",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}


def conversation(turns: int) -> list[dict[str, Any]]:
    """`turns` user turns with the assistant's answers between them."""
    messages: list[dict[str, Any]] = []
    for n in range(1, turns + 1):
        if messages:
            messages.append({"role": "assistant", "content": f"Answer {n - 1}."})
        messages.append({"role": "user", "content": f"Question {n} about my order."})
    return messages


def markers(body: dict[str, Any]) -> list[tuple[tuple[str, int, int], dict[str, Any]]]:
    return anthropic_cache_markers(body)


# --- what is sent: a recording upstream ---------------------------------------------------


class Recorded:
    def __init__(self, url: str, anthropic_up: RecordingUpstream, openai_up: RecordingUpstream):
        self.url = url
        self.anthropic_up = anthropic_up
        self.openai_up = openai_up

    def claude(self) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.url, api_key="unused", max_retries=0)

    def sent(self) -> dict[str, Any]:
        doc: dict[str, Any] = orjson.loads(self.anthropic_up.requests[-1][2])
        return doc


@pytest.fixture(scope="module")
def recorded() -> Iterator[Recorded]:
    anthropic_up = RecordingUpstream()
    openai_up = RecordingUpstream(doc=OPENAI_ANSWER)
    failing = RecordingUpstream(status=503, doc={"type": "error", "error": {"type": "x"}})
    with (
        BackgroundServer(anthropic_up) as up,
        BackgroundServer(openai_up) as oa,
        BackgroundServer(failing) as down,
    ):
        providers = {
            "up": {"type": "anthropic", "base_url": up.url},
            "oa": {"type": "openai", "base_url": oa.url + "/v1"},
            "down": {"type": "anthropic", "base_url": down.url},
        }
        gateway = serve_gateway(
            {
                "providers": providers,
                "models": {
                    "auto": {
                        "deployments": [{"provider": "up", "model": SONNET}],
                        "prompt_cache": AUTO,
                    },
                    "auto-1h": {
                        "deployments": [{"provider": "up", "model": SONNET}],
                        "prompt_cache": {"auto": True, "ttl": "1h"},
                    },
                    "auto-haiku": {
                        "deployments": [{"provider": "up", "model": HAIKU}],
                        "prompt_cache": AUTO,
                    },
                    "plain": {"deployments": [{"provider": "up", "model": SONNET}]},
                    "variant": {
                        "deployments": [{"provider": "up", "model": SONNET}],
                        "prompt_cache": AUTO,
                        "variants": {
                            "control": {"weight": 0},
                            "v": {"weight": 100, "cache_control": ["system", "tools"]},
                        },
                    },
                    "openai-direct": {
                        "deployments": [{"provider": "oa", "model": "gpt-4o-mini-2024-07-18"}],
                        "prompt_cache": AUTO,
                    },
                    "falls-to-openai": {
                        "deployments": [
                            {"provider": "down", "model": SONNET},
                            {"provider": "oa", "model": "gpt-4o-mini"},
                        ],
                        "prompt_cache": AUTO,
                        "retry": {"max_attempts": 1},
                    },
                },
                "lifecycle": {"retired": "allow"},
            }
        )
        try:
            yield Recorded(gateway.url, anthropic_up, openai_up)
        finally:
            gateway.stop()


def test_breakpoints_go_on_the_system_prompt_the_latest_turn_the_turn_before_and_the_tools(
    recorded: Recorded,
) -> None:
    recorded.claude().messages.create(
        model="auto",
        max_tokens=10,
        system=HANDBOOK,
        tools=[TOOL, MANUAL_TOOL],
        messages=conversation(3),
    )
    body = recorded.sent()
    assert markers(body) == [
        (("tools", 1, 0), EPHEMERAL),
        (("system", 0, 0), EPHEMERAL),
        (("messages", 2, 0), EPHEMERAL),  # the user turn before the latest
        (("messages", 4, 0), EPHEMERAL),  # the latest turn
    ]
    # The marked string contents became one text block each, with the same text.
    assert body["system"] == [{"type": "text", "text": HANDBOOK, "cache_control": EPHEMERAL}]
    assert body["messages"][4]["content"] == [
        {"type": "text", "text": "Question 3 about my order.", "cache_control": EPHEMERAL}
    ]
    assert body["messages"][1] == {"role": "assistant", "content": "Answer 1."}
    assert body["tools"][0] == TOOL


def test_the_tools_get_no_breakpoint_where_they_alone_are_below_the_minimum(
    recorded: Recorded,
) -> None:
    recorded.claude().messages.create(
        model="auto", max_tokens=10, system=HANDBOOK, tools=[TOOL], messages=conversation(3)
    )
    assert [spot for spot, _ in markers(recorded.sent())] == [
        ("system", 0, 0),
        ("messages", 2, 0),
        ("messages", 4, 0),
    ]


def test_the_ttl_is_the_routes(recorded: Recorded) -> None:
    recorded.claude().messages.create(
        model="auto-1h", max_tokens=10, system=HANDBOOK, messages=conversation(1)
    )
    assert {marker["ttl"] for _, marker in markers(recorded.sent())} == {"1h"}


def test_a_route_without_prompt_cache_forwards_the_request_as_sent(recorded: Recorded) -> None:
    recorded.claude().messages.create(
        model="plain", max_tokens=10, system=HANDBOOK, tools=[TOOL], messages=conversation(3)
    )
    body = recorded.sent()
    assert markers(body) == []
    assert body["system"] == HANDBOOK


def test_no_breakpoint_goes_where_the_prefix_is_below_the_models_minimum(
    recorded: Recorded,
) -> None:
    # About 1,900 tokens: over Sonnet 4.5's 1,024, under Haiku 4.5's 4,096.
    recorded.claude().messages.create(
        model="auto-haiku", max_tokens=10, system=HANDBOOK, messages=conversation(2)
    )
    assert markers(recorded.sent()) == []
    recorded.claude().messages.create(
        model="auto",
        max_tokens=10,
        system="Be brief.",
        messages=[{"role": "user", "content": "Short question."}],
    )
    assert markers(recorded.sent()) == []  # 10 tokens reach no model's minimum


def test_the_clients_own_breakpoints_are_kept_unchanged_and_counted(recorded: Recorded) -> None:
    system: Any = [
        {"type": "text", "text": HANDBOOK, "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    ]
    messages: Any = conversation(3)
    messages[0] = {
        "role": "user",
        "content": [{"type": "text", "text": "Question 1.", "cache_control": EPHEMERAL}],
    }
    recorded.claude().messages.create(
        model="auto", max_tokens=10, system=system, tools=[TOOL], messages=messages
    )
    body = recorded.sent()
    found = markers(body)
    assert len(found) == 4
    assert (("system", 0, 0), {"type": "ephemeral", "ttl": "1h"}) in found
    assert (("messages", 0, 0), EPHEMERAL) in found
    assert body["system"] == system
    assert body["messages"][0] == messages[0]
    # The two left went to the latest turn and the user turn before it, before the tools.
    assert (("messages", 4, 0), EPHEMERAL) in found
    assert (("messages", 2, 0), EPHEMERAL) in found


def test_a_client_breakpoint_elsewhere_does_not_drop_the_configured_ones(
    recorded: Recorded,
) -> None:
    # LiteLLM #40675: one client marker made the whole configured list go away.
    system: Any = [{"type": "text", "text": HANDBOOK, "cache_control": EPHEMERAL}]
    recorded.claude().messages.create(
        model="auto", max_tokens=10, system=system, messages=conversation(2)
    )
    found = markers(recorded.sent())
    assert [spot for spot, _ in found] == [("system", 0, 0), ("messages", 0, 0), ("messages", 2, 0)]


def test_four_client_breakpoints_get_none_added(recorded: Recorded) -> None:
    tool = {**TOOL, "cache_control": EPHEMERAL}
    system: Any = [{"type": "text", "text": HANDBOOK, "cache_control": EPHEMERAL}]
    messages: Any = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Part one.", "cache_control": EPHEMERAL},
                {"type": "text", "text": "Part two.", "cache_control": EPHEMERAL},
            ],
        }
    ]
    recorded.claude().messages.create(
        model="auto", max_tokens=10, system=system, tools=[tool], messages=messages
    )
    body = recorded.sent()
    assert len(markers(body)) == 4
    assert body["messages"] == messages
    assert body["system"] == system
    assert body["tools"] == [tool]


def test_a_variants_breakpoints_and_the_automatic_ones_stay_within_four(
    recorded: Recorded,
) -> None:
    messages: Any = conversation(3)
    messages[4] = {
        "role": "user",
        "content": [
            {"type": "text", "text": "Context.", "cache_control": EPHEMERAL},
            {"type": "text", "text": "Question 3.", "cache_control": EPHEMERAL},
        ],
    }
    recorded.claude().messages.create(
        model="variant", max_tokens=10, system=HANDBOOK, tools=[TOOL], messages=messages
    )
    found = markers(recorded.sent())
    # The client's two, then the variant's system and tools: the automatic ones find no room.
    assert [spot for spot, _ in found] == [
        ("tools", 0, 0),
        ("system", 0, 0),
        ("messages", 4, 0),
        ("messages", 4, 1),
    ]


def test_a_fallback_to_an_openai_deployment_never_sees_cache_control(
    recorded: Recorded,
) -> None:
    answer = recorded.claude().messages.create(
        model="falls-to-openai",
        max_tokens=10,
        system=HANDBOOK,
        tools=[TOOL],
        messages=conversation(3),
    )
    assert answer.content[0].type == "text"
    sent = recorded.openai_up.requests[-1][2]
    assert b"cache_control" not in sent
    assert orjson.loads(sent)["messages"][0]["role"] == "system"


def test_an_openai_upstream_gets_the_clients_keys_in_their_order(recorded: Recorded) -> None:
    # The model id is rewritten in place, nothing is reordered: the prompt's prefix is the
    # same bytes on every call, which OpenAI's automatic prefix cache needs.
    client = openai.OpenAI(base_url=recorded.url + "/v1", api_key="unused", max_retries=0)
    messages: Any = [
        {"content": HANDBOOK, "role": "system"},
        {"role": "user", "content": "Where is my order?"},
    ]
    client.chat.completions.create(
        messages=messages, model="openai-direct", max_tokens=10, temperature=0.5
    )
    sent = orjson.loads(recorded.openai_up.requests[-1][2])
    assert sent["model"] == "gpt-4o-mini-2024-07-18"
    assert list(sent["messages"][0]) == ["content", "role"]
    assert sent["messages"] == messages
    assert b"cache_control" not in recorded.openai_up.requests[-1][2]


# --- what the provider does with them: the simulator --------------------------------------


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    directory = tmp_path_factory.mktemp("breakpoints")
    gateway = serve_gateway(
        {
            **IN_PROCESS_CONFIG,
            "ledger": {"sqlite_path": str(directory / "ledger.db"), "spill_path": None},
            "models": {
                "auto": {
                    "deployments": [{"provider": "sim-anthropic", "model": SONNET}],
                    "prompt_cache": AUTO,
                },
                "plain": {"deployments": [{"provider": "sim-anthropic", "model": SONNET}]},
                "gpt": {
                    "deployments": [{"provider": "sim-openai", "model": "gpt-4o-mini"}],
                    "prompt_cache": AUTO,
                },
            },
        }
    )
    try:
        yield gateway.url, directory / "ledger.db"
    finally:
        gateway.stop()


def record_of(path: Path, request_id: str | None) -> CallRecord:
    """The ledger's record of the call `request_id`, once written (it is, in batches)."""
    deadline = time.monotonic() + 5
    while True:
        found = [r for r in read_sqlite(path) if r.request_id == request_id]
        if found or time.monotonic() > deadline:
            assert found, f"no record of {request_id}"
            return found[0]
        time.sleep(0.05)


def claude_at(url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key="unused", max_retries=0)


def test_the_second_call_with_the_same_prefix_reads_the_cache(
    simulated: tuple[str, Path],
) -> None:
    client = claude_at(simulated[0])
    system = HANDBOOK + " Edition: second-call."
    first = client.messages.create(
        model="auto", max_tokens=10, system=system, messages=conversation(1)
    )
    second = client.messages.create(
        model="auto", max_tokens=10, system=system, messages=conversation(1)
    )
    assert first.usage.cache_read_input_tokens == 0
    assert (first.usage.cache_creation_input_tokens or 0) > 1024
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert second.usage.cache_creation_input_tokens == 0


def test_the_same_calls_on_a_route_without_prompt_cache_read_nothing(
    simulated: tuple[str, Path],
) -> None:
    client = claude_at(simulated[0])
    system = HANDBOOK + " Edition: plain."
    for _ in range(2):
        answer = client.messages.create(
            model="plain", max_tokens=10, system=system, messages=conversation(1)
        )
        assert answer.usage.cache_read_input_tokens == 0
        assert answer.usage.cache_creation_input_tokens == 0


def test_a_growing_conversation_reads_what_its_previous_turn_wrote(
    simulated: tuple[str, Path],
) -> None:
    client = claude_at(simulated[0])
    system = HANDBOOK + " Edition: growing."
    first = client.messages.create(
        model="auto", max_tokens=10, system=system, messages=conversation(1)
    )
    with client.messages.stream(
        model="auto", max_tokens=10, system=system, messages=conversation(2)
    ) as stream:
        second = stream.get_final_message()
    written = first.usage.cache_creation_input_tokens or 0
    # The whole first call's prompt, system prompt and its turn, is read back.
    assert second.usage.cache_read_input_tokens == written
    assert (second.usage.cache_creation_input_tokens or 0) > 0  # the new turns


def test_four_client_breakpoints_never_become_five(simulated: tuple[str, Path]) -> None:
    # LiteLLM #16062: the provider refuses a fifth ("Found 5"); the simulator does too.
    client = claude_at(simulated[0])
    content: Any = [
        {"type": "text", "text": f"Part {n}.", "cache_control": EPHEMERAL} for n in range(4)
    ]
    answer = client.messages.create(
        model="auto",
        max_tokens=10,
        system=HANDBOOK,
        messages=[*conversation(2)[:-1], {"role": "user", "content": content}],
    )
    assert answer.stop_reason is not None
    with pytest.raises(anthropic.BadRequestError, match="Found 5"):
        client.messages.create(
            model="auto",
            max_tokens=10,
            system=[{"type": "text", "text": HANDBOOK, "cache_control": EPHEMERAL}],
            messages=[{"role": "user", "content": content}],
        )


def test_a_clients_one_hour_breakpoint_after_the_automatic_ones_stays_valid(
    simulated: tuple[str, Path],
) -> None:
    # The API refuses a 1-hour breakpoint after a 5-minute one: the route's 5-minute ones
    # before the client's 1-hour one are made 1-hour too (the simulator checks the order).
    client = claude_at(simulated[0])
    last: Any = {
        "role": "user",
        "content": [
            {
                "type": "text",
                "text": "Question 2.",
                "cache_control": {"type": "ephemeral", "ttl": "1h"},
            }
        ],
    }
    answer = client.messages.create(
        model="auto",
        max_tokens=10,
        system=HANDBOOK + " Edition: one hour.",
        messages=[*conversation(2)[:-1], last],
    )
    assert answer.usage.cache_creation is not None
    assert answer.usage.cache_creation.ephemeral_1h_input_tokens == (
        answer.usage.cache_creation_input_tokens
    )


def test_an_openai_client_routed_to_claude_gets_breakpoints_and_sees_cached_tokens(
    simulated: tuple[str, Path],
) -> None:
    client = openai.OpenAI(base_url=simulated[0] + "/v1", api_key="unused", max_retries=0)
    messages: Any = [
        {"role": "system", "content": HANDBOOK + " Edition: openai client."},
        {"role": "user", "content": "Where is my order?"},
    ]
    client.chat.completions.create(model="auto", max_tokens=10, messages=messages)
    again = client.chat.completions.create(model="auto", max_tokens=10, messages=messages)
    assert again.usage is not None
    assert again.usage.prompt_tokens_details is not None
    assert (again.usage.prompt_tokens_details.cached_tokens or 0) > 1024


def test_an_openai_client_on_an_openai_route_sees_and_records_cached_tokens(
    simulated: tuple[str, Path],
) -> None:
    client = openai.OpenAI(base_url=simulated[0] + "/v1", api_key="unused", max_retries=0)
    messages: Any = [
        {"role": "system", "content": "Long policy for OpenAI clients. " * 200},
        {"role": "user", "content": "First question"},
    ]
    client.chat.completions.create(model="gpt", max_tokens=10, messages=messages)
    messages += [
        {"role": "assistant", "content": "An answer."},
        {"role": "user", "content": "Second question"},
    ]
    second = client.chat.completions.create(model="gpt", max_tokens=10, messages=messages)
    assert second.usage is not None
    assert second.usage.prompt_tokens_details is not None
    cached = second.usage.prompt_tokens_details.cached_tokens or 0
    assert cached >= 1024
    assert record_of(simulated[1], second._request_id).cache_read_tokens == cached


def test_an_openai_upstream_keeps_the_prefix_stable_and_its_cached_tokens_are_recorded(
    simulated: tuple[str, Path],
) -> None:
    # An Anthropic client on an OpenAI deployment: no markers, but the translated prefix is
    # the same bytes each call, so the provider's own cache hits on the next turn.
    client = claude_at(simulated[0])
    system = "Long policy for the OpenAI route. " * 200
    client.messages.create(model="gpt", max_tokens=10, system=system, messages=conversation(1))
    second = client.messages.create(
        model="gpt", max_tokens=10, system=system, messages=conversation(2)
    )
    assert (second.usage.cache_read_input_tokens or 0) >= 1024
    record = record_of(simulated[1], second._request_id)
    assert record.cache_read_tokens == second.usage.cache_read_input_tokens


# --- the placement rules, on request documents --------------------------------------------

SONNET_AUTO = AutoBreakpoints("5m", 1024)


def test_a_breakpoint_after_a_clients_five_minute_one_is_five_minutes_too() -> None:
    body = {
        "system": [{"type": "text", "text": HANDBOOK, "cache_control": EPHEMERAL}],
        "messages": conversation(2),
    }
    placed = with_auto_breakpoints(body, AutoBreakpoints("1h", 1024))
    assert [marker for _, marker in markers(placed)] == [EPHEMERAL, EPHEMERAL, EPHEMERAL]


def test_a_breakpoint_before_a_clients_one_hour_one_is_one_hour_too() -> None:
    last: Any = {
        "type": "text",
        "text": "Question 2.",
        "cache_control": {"type": "ephemeral", "ttl": "1h"},
    }
    body = {
        "system": HANDBOOK,
        "messages": [*conversation(2)[:-1], {"role": "user", "content": [last]}],
    }
    placed = with_auto_breakpoints(body, SONNET_AUTO)
    assert [marker.get("ttl") for _, marker in markers(placed)] == ["1h", "1h", "1h"]


def test_thinking_blocks_and_empty_text_never_carry_a_breakpoint() -> None:
    body: dict[str, Any] = {
        "system": HANDBOOK,
        "messages": [
            {"role": "user", "content": "Question 1."},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Answer."},
                    {"type": "thinking", "thinking": "hmm", "signature": "s"},
                ],
            },
            {
                "role": "user",
                "content": [{"type": "text", "text": "Q2"}, {"type": "text", "text": ""}],
            },
        ],
    }
    placed = with_auto_breakpoints(body, SONNET_AUTO)
    assert [spot for spot, _ in markers(placed)] == [
        ("system", 0, 0),
        ("messages", 0, 0),
        ("messages", 2, 0),
    ]
    assert body["system"] == HANDBOOK  # the request given is left as it was
    assert body["messages"][2]["content"][0] == {"type": "text", "text": "Q2"}


def test_top_level_automatic_caching_takes_one_of_the_four() -> None:
    body = {
        "cache_control": EPHEMERAL,
        "system": HANDBOOK,
        "tools": [TOOL],
        "messages": conversation(3),
    }
    placed = with_auto_breakpoints(body, SONNET_AUTO)
    assert len(markers(placed)) == 3


def test_a_model_without_a_published_minimum_is_given_the_largest_one() -> None:
    gateway = hermetic_gateway(
        {
            **IN_PROCESS_CONFIG,
            "models": {
                name: {
                    "deployments": [{"provider": "sim-anthropic", "model": name}],
                    "prompt_cache": AUTO,
                }
                for name in ("claude-opus-4-7", "claude-fable-5-2", "not-in-the-catalog")
            },
        }
    )
    floors = {
        name: gateway.router.resolve(name).targets[0].breakpoints
        for name in ("claude-opus-4-7", "claude-fable-5-2", "not-in-the-catalog")
    }
    assert floors == {
        "claude-opus-4-7": AutoBreakpoints("5m", 2048),
        "claude-fable-5-2": AutoBreakpoints("5m", UNPUBLISHED_MIN_TOKENS),
        "not-in-the-catalog": AutoBreakpoints("5m", UNPUBLISHED_MIN_TOKENS),
    }
    assert AutoBreakpoints.of(PromptCachePolicy(), 1024) is None


@pytest.mark.parametrize(
    ("setting", "key"),
    [
        ({"ttl": "10m"}, "ttl"),
        ({"auto": "yes"}, "auto"),
        ({"hit_ratio_floor": 1.5}, "hit_ratio_floor"),
    ],
)
def test_a_bad_prompt_cache_setting_is_refused_naming_the_key(
    setting: dict[str, Any], key: str
) -> None:
    config = {
        **IN_PROCESS_CONFIG,
        "models": {
            "r": {
                "deployments": [{"provider": "sim-anthropic", "model": SONNET}],
                "prompt_cache": setting,
            }
        },
    }
    with pytest.raises((ValueError, msgspec.ValidationError), match=rf"prompt_cache\.{key}"):
        parse_config(config)
