"""Token usage of one call, read from every shape the gateway sees.

Both formats are reduced to Anthropic's buckets, where each token is counted exactly once:
uncached input, output, cache writes by retention, cache reads. The field mapping itself
lives with the translators (`tollhouse.wire.anthropic_openai.usage`) and is reused here, so
the translated usage a client sees and the usage the gateway bills cannot drift apart.

Streams are watched, never altered: an observer is fed each upstream event as it is relayed.
A stream that breaks off still yields what it reported so far, with the output count
estimated from the text seen (`tollhouse.tokens.estimate.text_tokens`) and `estimated` set,
so a partial answer is billed approximately rather than not at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from tollhouse.tokens.estimate import GeneratedText
from tollhouse.wire.anthropic_openai.usage import (
    anthropic_thinking_tokens,
    anthropic_usage_totals,
    openai_reasoning_tokens,
    openai_usage_to_anthropic,
)
from tollhouse.wire.sse import SSEEvent


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens of one call in Anthropic's terms.

    `input_tokens` excludes cache reads and writes. `cache_write_5m_tokens` holds writes at
    the provider's default retention (Anthropic 5 minutes, OpenAI 30 minutes) and
    `cache_write_1h_tokens` those at its extended retention (Anthropic 1 hour, OpenAI 12
    hours), matching the catalog's rate names. `reasoning_tokens` is informational: those
    tokens are already inside `output_tokens`. `estimated` is True when the upstream never
    reported the final output count and it was estimated from the text seen.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    cache_read_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False

    def __post_init__(self) -> None:
        for name in (
            "input_tokens",
            "output_tokens",
            "cache_write_5m_tokens",
            "cache_write_1h_tokens",
            "cache_read_tokens",
            "reasoning_tokens",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    @property
    def cache_write_tokens(self) -> int:
        return self.cache_write_5m_tokens + self.cache_write_1h_tokens

    @property
    def prompt_tokens(self) -> int:
        """Every token of the prompt, cached or not: what long-context tiers are measured on."""
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens


def usage_from_anthropic(usage: Mapping[str, Any]) -> Usage:
    """Usage from a Messages `usage` object.

    Cache writes are split by `cache_creation`; writes reported only as
    `cache_creation_input_tokens` (older API versions) are 5-minute writes, the default TTL.
    """
    doc = dict(usage)
    totals = anthropic_usage_totals(doc)
    write_5m, write_1h = _split_cache_writes(
        doc.get("cache_creation"), totals["cache_creation_input_tokens"], known_1h=0
    )
    return Usage(
        input_tokens=totals["input_tokens"],
        output_tokens=totals["output_tokens"],
        cache_write_5m_tokens=write_5m,
        cache_write_1h_tokens=write_1h,
        cache_read_tokens=totals["cache_read_input_tokens"],
        reasoning_tokens=anthropic_thinking_tokens(doc) or 0,
    )


def usage_from_openai(usage: Mapping[str, Any], *, extended_cache_retention: bool = False) -> Usage:
    """Usage from a Chat Completions `usage` object.

    `prompt_tokens` includes the cached tokens and the tokens written to cache; both are
    taken out of the input. OpenAI reports one `cache_write_tokens` count whatever the
    retention, so the caller says whether the request asked for extended (12-hour) caching.
    """
    doc = _plain(usage)
    counts = openai_usage_to_anthropic(doc)
    writes = counts["cache_creation_input_tokens"]
    return Usage(
        input_tokens=counts["input_tokens"],
        output_tokens=counts["output_tokens"],
        cache_write_5m_tokens=0 if extended_cache_retention else writes,
        cache_write_1h_tokens=writes if extended_cache_retention else 0,
        cache_read_tokens=counts["cache_read_input_tokens"],
        reasoning_tokens=openai_reasoning_tokens(doc) or 0,
    )


class AnthropicStreamUsage:
    """Usage of a Messages stream, from its events as they pass.

    `message_start` reports the input side and a first output count. Every `message_delta`
    usage is cumulative: its counts replace the earlier ones, and newer API versions restate
    the input and cache counts there too. Until a `message_delta` reports output tokens, the
    output count is the larger of the last one reported and the estimate of everything
    generated so far (text, thinking and tool input), and the usage is marked estimated.
    """

    __slots__ = (
        "_cache_read",
        "_complete",
        "_generated",
        "_input",
        "_output",
        "_output_final",
        "_reasoning",
        "_stop_reason",
        "_write_1h",
        "_write_5m",
    )

    def __init__(self) -> None:
        self._input = 0
        self._output = 0
        self._write_5m = 0
        self._write_1h = 0
        self._cache_read = 0
        self._reasoning = 0
        self._output_final = False
        self._generated = GeneratedText()
        self._stop_reason: str | None = None
        self._complete = False

    @property
    def usage(self) -> Usage:
        output = self._output
        if not self._output_final:
            output = max(output, self._generated.tokens)
        return Usage(
            input_tokens=self._input,
            output_tokens=output,
            cache_write_5m_tokens=self._write_5m,
            cache_write_1h_tokens=self._write_1h,
            cache_read_tokens=self._cache_read,
            reasoning_tokens=self._reasoning,
            estimated=not self._output_final,
        )

    @property
    def usage_estimated(self) -> bool:
        return not self._output_final

    @property
    def stop_reason(self) -> str | None:
        return self._stop_reason

    @property
    def complete(self) -> bool:
        """Whether `message_stop` was seen: the upstream finished the message."""
        return self._complete

    def feed(self, event: SSEEvent) -> None:
        doc = _event_json(event)
        if doc is None:
            return
        kind = doc.get("type")
        if kind == "message_start":
            message = doc.get("message")
            if isinstance(message, Mapping):
                self._take(message.get("usage"), final=False)
        elif kind == "content_block_start":
            block = doc.get("content_block")
            if isinstance(block, Mapping):
                self._keep(block.get("text"), block.get("thinking"))
        elif kind == "content_block_delta":
            delta = doc.get("delta")
            if isinstance(delta, Mapping):
                self._keep(delta.get("text"), delta.get("thinking"), delta.get("partial_json"))
        elif kind == "message_delta":
            delta = doc.get("delta")
            if isinstance(delta, Mapping) and isinstance(delta.get("stop_reason"), str):
                self._stop_reason = delta["stop_reason"]
            self._take(doc.get("usage"), final=True)
        elif kind == "message_stop":
            self._complete = True

    def _keep(self, *pieces: Any) -> None:
        for piece in pieces:
            if isinstance(piece, str) and piece:
                self._generated.add(piece)

    def _take(self, usage: Any, *, final: bool) -> None:
        if not isinstance(usage, Mapping):
            return
        if _is_count(usage.get("input_tokens")):
            self._input = usage["input_tokens"]
        if _is_count(usage.get("cache_read_input_tokens")):
            self._cache_read = usage["cache_read_input_tokens"]
        breakdown = usage.get("cache_creation")
        total = usage.get("cache_creation_input_tokens")
        if isinstance(breakdown, Mapping) and not _is_count(total):
            total = _tokens(breakdown.get("ephemeral_5m_input_tokens")) + _tokens(
                breakdown.get("ephemeral_1h_input_tokens")
            )
        if _is_count(total):
            self._write_5m, self._write_1h = _split_cache_writes(
                breakdown, total, known_1h=self._write_1h
            )
        if _is_count(usage.get("output_tokens")):
            self._output = usage["output_tokens"]
            self._output_final = self._output_final or final
        thinking = anthropic_thinking_tokens(dict(usage))
        if thinking is not None:
            self._reasoning = thinking


def usage_from_responses(usage: Mapping[str, Any]) -> Usage:
    """Usage from a Responses `usage` object: `input_tokens` includes the cached ones
    (`input_tokens_details.cached_tokens`), as Chat Completions' `prompt_tokens` does."""
    doc = _plain(usage)
    details = doc.get("input_tokens_details") or {}
    output_details = doc.get("output_tokens_details") or {}
    return usage_from_openai(
        {
            "prompt_tokens": doc.get("input_tokens"),
            "completion_tokens": doc.get("output_tokens"),
            "prompt_tokens_details": {"cached_tokens": details.get("cached_tokens")},
            "completion_tokens_details": {
                "reasoning_tokens": output_details.get("reasoning_tokens")
            },
        }
    )


def responses_stop_reason(response: Mapping[str, Any]) -> str:
    """Why a whole response stopped, in the Responses format's terms: `completed`,
    `function_call` (it ends by calling a tool), or the `incomplete_details.reason`
    (`max_output_tokens`, `content_filter`)."""
    if response.get("status") == "incomplete":
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, Mapping) else None
        return str(reason or "max_output_tokens")
    output = response.get("output")
    items = output if isinstance(output, list) else ()
    if any(isinstance(item, Mapping) and item.get("type") == "function_call" for item in items):
        return "function_call"
    return "completed"


class ResponsesStreamUsage:
    """Usage of a Responses stream, from its events as they pass: the final
    `response.completed` (or `response.incomplete`) carries the usage and the output;
    until then, an estimate of the text and tool arguments generated, marked estimated."""

    __slots__ = ("_complete", "_generated", "_reported", "_stop_reason")

    def __init__(self) -> None:
        self._reported: Usage | None = None
        self._generated = GeneratedText()
        self._stop_reason: str | None = None
        self._complete = False

    @property
    def usage(self) -> Usage:
        if self._reported is not None:
            return self._reported
        return Usage(output_tokens=self._generated.tokens, estimated=True)

    @property
    def usage_estimated(self) -> bool:
        return self._reported is None

    @property
    def stop_reason(self) -> str | None:
        return self._stop_reason

    @property
    def complete(self) -> bool:
        return self._complete

    def feed(self, event: SSEEvent) -> None:
        doc = _event_json(event)
        if doc is None:
            return
        kind = doc.get("type")
        if kind in ("response.output_text.delta", "response.function_call_arguments.delta"):
            if isinstance(doc.get("delta"), str):
                self._generated.add(doc["delta"])
        elif kind in ("response.completed", "response.incomplete"):
            response = doc.get("response")
            if isinstance(response, Mapping):
                usage = response.get("usage")
                if isinstance(usage, Mapping):
                    self._reported = usage_from_responses(usage)
                self._stop_reason = responses_stop_reason(response)
            self._complete = True


class OpenAIStreamUsage:
    """Usage of a Chat Completions stream, from its chunks as they pass.

    The usage arrives in one chunk near the end, and only when the request asked for it
    (`stream_options.include_usage`); the gateway should ask upstream whatever the client
    asked. Until it arrives, the usage is an estimate of the output generated so far
    (content, refusal and tool-call arguments), with no input count, marked estimated.
    """

    __slots__ = ("_complete", "_extended", "_generated", "_reported", "_stop_reason")

    def __init__(self, *, extended_cache_retention: bool = False) -> None:
        self._extended = extended_cache_retention
        self._reported: Usage | None = None
        self._generated = GeneratedText()
        self._stop_reason: str | None = None
        self._complete = False

    @property
    def usage(self) -> Usage:
        if self._reported is not None:
            return self._reported
        return Usage(output_tokens=self._generated.tokens, estimated=True)

    @property
    def usage_estimated(self) -> bool:
        return self._reported is None

    @property
    def stop_reason(self) -> str | None:
        """The first choice's `finish_reason`, in OpenAI's vocabulary."""
        return self._stop_reason

    @property
    def complete(self) -> bool:
        """Whether `data: [DONE]` was seen: the upstream finished the stream."""
        return self._complete

    def feed(self, event: SSEEvent) -> None:
        if event.data.strip() == "[DONE]":
            self._complete = True
            return
        doc = _event_json(event)
        if doc is None:
            return
        usage = doc.get("usage")
        if isinstance(usage, Mapping):
            self._reported = usage_from_openai(usage, extended_cache_retention=self._extended)
        choices = doc.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if isinstance(choice, Mapping):
                self._take_choice(choice)

    def _take_choice(self, choice: Mapping[str, Any]) -> None:
        delta = choice.get("delta")
        if isinstance(delta, Mapping):
            for key in ("content", "refusal"):
                if isinstance(delta.get(key), str):
                    self._generated.add(delta[key])
            calls = delta.get("tool_calls")
            for call in calls if isinstance(calls, list) else ():
                function = call.get("function") if isinstance(call, Mapping) else None
                if isinstance(function, Mapping):
                    for key in ("name", "arguments"):
                        if isinstance(function.get(key), str):
                            self._generated.add(function[key])
        finish = choice.get("finish_reason")
        if isinstance(finish, str) and choice.get("index", 0) == 0:
            self._stop_reason = finish


def _split_cache_writes(breakdown: Any, total: int, *, known_1h: int) -> tuple[int, int]:
    """(5m, 1h) cache writes. Without a breakdown, writes not known to be 1-hour ones are
    5-minute ones: a cumulative `message_delta` restates only the total, and the split seen
    in `message_start` must survive it."""
    if isinstance(breakdown, Mapping):
        write_1h = _tokens(breakdown.get("ephemeral_1h_input_tokens"))
        write_5m = _tokens(breakdown.get("ephemeral_5m_input_tokens"))
        return write_5m + max(total - write_5m - write_1h, 0), write_1h
    write_1h = min(known_1h, total)
    return total - write_1h, write_1h


def _is_count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _tokens(value: Any) -> int:
    return value if _is_count(value) else 0


def _plain(usage: Mapping[str, Any]) -> dict[str, Any]:
    """A dict copy whose detail objects are dicts too, as the translators' mapping expects."""
    return {key: dict(val) if isinstance(val, Mapping) else val for key, val in usage.items()}


def _event_json(event: SSEEvent) -> Mapping[str, Any] | None:
    if not event.data.strip():
        return None
    try:
        doc = event.json()
    except ValueError:
        return None
    return doc if isinstance(doc, Mapping) else None
