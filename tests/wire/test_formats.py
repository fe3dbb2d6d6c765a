"""Each wire format is one object the stages ask: the few request fields and renderings
that differ between the formats, answered by the format itself."""

from __future__ import annotations

import orjson

from tollhouse.wire.formats import ANTHROPIC, FORMATS, OPENAI


def test_each_format_is_found_by_its_name() -> None:
    assert FORMATS["anthropic"] is ANTHROPIC
    assert FORMATS["openai"] is OPENAI


def test_the_max_tokens_field_is_the_one_the_format_reads() -> None:
    assert OPENAI.max_tokens_field({"max_tokens": 5}) == "max_tokens"
    assert OPENAI.max_tokens_field({"max_completion_tokens": 5}) == "max_completion_tokens"
    # Anthropic has one field; a stray OpenAI field in its body is not it.
    assert ANTHROPIC.max_tokens_field({"max_completion_tokens": 5}) == "max_tokens"


def test_the_end_user_is_read_where_each_format_names_it() -> None:
    assert ANTHROPIC.end_user({"metadata": {"user_id": "u1"}, "user": "no"}) == "u1"
    assert OPENAI.end_user({"user": "u2", "metadata": {"user_id": "no"}}) == "u2"
    assert ANTHROPIC.end_user({"metadata": {"user_id": ""}}) is None
    assert OPENAI.end_user({"user": 3}) is None


def test_stream_usage_is_wanted_only_when_an_openai_client_asks() -> None:
    assert ANTHROPIC.wants_stream_usage({})
    assert not OPENAI.wants_stream_usage({})
    assert not OPENAI.wants_stream_usage({"stream_options": {"include_usage": "yes"}})
    assert OPENAI.wants_stream_usage({"stream_options": {"include_usage": True}})


def test_only_an_openai_stream_needs_its_usage_asked_for_upstream() -> None:
    assert ANTHROPIC.usage_request_changes({}) is None
    assert OPENAI.usage_request_changes({"stream_options": {"include_usage": True}}) is None
    changes = OPENAI.usage_request_changes({"stream_options": {"x": 1}})
    assert changes == {"stream_options": {"x": 1, "include_usage": True}}


def test_stop_reasons_are_given_in_anthropic_words() -> None:
    assert OPENAI.stop_reason("length") == "max_tokens"
    assert OPENAI.stop_reason("a_new_reason") == "a_new_reason"
    assert OPENAI.stop_reason(None) is None
    assert ANTHROPIC.stop_reason("pause_turn") == "pause_turn"


def test_a_static_answer_replays_as_a_stream_in_its_own_format() -> None:
    for fmt, usage_asked in (
        (ANTHROPIC, {}),
        (OPENAI, {"stream_options": {"include_usage": True}}),
    ):
        answer = fmt.static_answer("hello", "m", "th_1")
        events = b"".join(fmt.replay_as_stream(answer, usage_asked))
        assert b"hello" in events
        assert fmt.answer_facts(orjson.dumps(answer)).stop_reason == "end_turn"
    assert b"data: [DONE]" in b"".join(
        OPENAI.replay_as_stream(OPENAI.static_answer("x", "m", "1"), {})
    )


def test_error_bodies_are_recognised_in_their_own_shape_only() -> None:
    anthropic_error = orjson.dumps({"type": "error", "error": {"type": "x", "message": "m"}})
    openai_error = orjson.dumps({"error": {"message": "m", "type": "x"}})
    assert ANTHROPIC.is_error_body(anthropic_error)
    assert not ANTHROPIC.is_error_body(openai_error)
    assert OPENAI.is_error_body(openai_error)
    assert not OPENAI.is_error_body(b"<html>")
