"""Token usage of one call, read from every shape the gateway sees.

Both formats are reduced to Anthropic's buckets, where each token is counted exactly once:
uncached input, output, cache writes by retention, cache reads. The field mapping itself
lives with the translators (`tollhouse.wire.anthropic_openai.usage`) and is reused here, so
the translated usage a client sees and the usage the gateway bills cannot drift apart.

Beside the tokens, the usage object says what else the call is billed for and how
(`billing_facts`): server-tool counts (`server_tool_use`), compaction iterations (each
billed on its own counts; the top-level counts then leave the compaction step out), the
service tier, inference geography and speed, and OpenAI's audio tokens. Values that come
from the upstream are bounded (`_label`, `_tool_counts`) before they reach a record.

Streams are watched, never altered: an observer is fed each upstream event as it is relayed.
A stream that breaks off still yields what it reported so far, with the output count
estimated from the text seen (`tollhouse.tokens.estimate.text_tokens`) and `estimated` set,
so a partial answer is billed approximately rather than not at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
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
    # Server-tool counts by the usage object's own names (`web_search_requests`...), sorted.
    server_tool_use: tuple[tuple[str, int], ...] = ()
    # Compaction: each iteration's own counts. When present, the token fields above are
    # their sums (what is billed), not the usage object's top-level counts.
    iterations: tuple[Iteration, ...] = ()
    service_tier: str | None = None
    inference_geo: str | None = None
    speed: str | None = None
    # OpenAI audio tokens, taken out of `input_tokens` / `output_tokens` (priced apart).
    audio_input_tokens: int = 0
    audio_output_tokens: int = 0

    def __post_init__(self) -> None:
        for name in (
            "input_tokens",
            "output_tokens",
            "cache_write_5m_tokens",
            "cache_write_1h_tokens",
            "cache_read_tokens",
            "reasoning_tokens",
            "audio_input_tokens",
            "audio_output_tokens",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    @property
    def cache_write_tokens(self) -> int:
        return self.cache_write_5m_tokens + self.cache_write_1h_tokens

    @property
    def prompt_tokens(self) -> int:
        """Every token of the prompt, cached or not: what long-context tiers are measured on."""
        return (
            self.input_tokens
            + self.cache_read_tokens
            + self.cache_write_tokens
            + self.audio_input_tokens
        )

    def tool_count(self, name: str) -> int:
        return dict(self.server_tool_use).get(name, 0)


@dataclass(frozen=True, slots=True)
class Iteration:
    """One step of a compacted call (`usage.iterations[]`), `kind` as the API names it
    ("compaction", "message"), with its own counts in `Usage`'s terms."""

    kind: str
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    cache_read_tokens: int = 0

    def usage(self) -> Usage:
        return Usage(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cache_write_5m_tokens=self.cache_write_5m_tokens,
            cache_write_1h_tokens=self.cache_write_1h_tokens,
            cache_read_tokens=self.cache_read_tokens,
        )

    def record(self) -> dict[str, Any]:
        """The breakdown as the ledger keeps it (the record's metadata)."""
        return {
            "type": self.kind,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_write_5m_tokens": self.cache_write_5m_tokens,
            "cache_write_1h_tokens": self.cache_write_1h_tokens,
            "cache_read_tokens": self.cache_read_tokens,
        }


_LABEL = re.compile(r"[A-Za-z0-9_.:-]{1,32}")
_TOOL = re.compile(r"[a-z0-9_]{1,64}")
_MAX_TOOLS = 16
_MAX_ITERATIONS = 64


def _label(value: object) -> str | None:
    """An upstream's tier, geography or speed name, kept only when it looks like one: the
    ledger and the reports group by it, so it can't be any string an upstream sends."""
    if isinstance(value, str) and _LABEL.fullmatch(value):
        return value
    return "other" if isinstance(value, str) else None


def _tool_counts(doc: object) -> tuple[tuple[str, int], ...]:
    """`server_tool_use` as sorted (name, count) pairs, zero counts dropped; names that
    aren't identifiers, and more than `_MAX_TOOLS` names, are summed under "other"."""
    if not doc or not isinstance(doc, Mapping):  # `not` first: None skips the ABC check
        return ()
    counts: dict[str, int] = {}
    for name, value in doc.items():
        if not _is_count(value) or value == 0:
            continue
        key = name if isinstance(name, str) and _TOOL.fullmatch(name) else "other"
        if key not in counts and len(counts) >= _MAX_TOOLS:
            key = "other"
        counts[key] = counts.get(key, 0) + value
    return tuple(sorted(counts.items()))


def _iterations(doc: object) -> tuple[Iteration, ...]:
    if not doc or not isinstance(doc, list):
        return ()
    steps = []
    for item in doc[:_MAX_ITERATIONS]:
        if not isinstance(item, Mapping):
            continue
        totals = anthropic_usage_totals(dict(item))
        write_5m, write_1h = _split_cache_writes(
            item.get("cache_creation"), totals["cache_creation_input_tokens"], known_1h=0
        )
        steps.append(
            Iteration(
                kind=_label(item.get("type")) or "message",
                input_tokens=totals["input_tokens"],
                output_tokens=totals["output_tokens"],
                cache_write_5m_tokens=write_5m,
                cache_write_1h_tokens=write_1h,
                cache_read_tokens=totals["cache_read_input_tokens"],
            )
        )
    return tuple(steps)


def with_iterations(usage: Usage, iterations: tuple[Iteration, ...]) -> Usage:
    """`usage` billed over `iterations`: its token counts become their sums."""
    if not iterations:
        return usage
    return replace(
        usage,
        iterations=iterations,
        input_tokens=sum(step.input_tokens for step in iterations),
        output_tokens=sum(step.output_tokens for step in iterations),
        cache_write_5m_tokens=sum(step.cache_write_5m_tokens for step in iterations),
        cache_write_1h_tokens=sum(step.cache_write_1h_tokens for step in iterations),
        cache_read_tokens=sum(step.cache_read_tokens for step in iterations),
    )


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
    top = Usage(
        input_tokens=totals["input_tokens"],
        output_tokens=totals["output_tokens"],
        cache_write_5m_tokens=write_5m,
        cache_write_1h_tokens=write_1h,
        cache_read_tokens=totals["cache_read_input_tokens"],
        reasoning_tokens=anthropic_thinking_tokens(doc) or 0,
        server_tool_use=_tool_counts(doc.get("server_tool_use")),
        service_tier=_label(doc.get("service_tier")),
        inference_geo=_label(doc.get("inference_geo")),
        speed=_label(doc.get("speed")),
    )
    return with_iterations(top, _iterations(doc.get("iterations")))


def usage_from_openai(
    usage: Mapping[str, Any],
    *,
    extended_cache_retention: bool = False,
    service_tier: object = None,
) -> Usage:
    """Usage from a Chat Completions `usage` object.

    `prompt_tokens` includes the cached tokens, the tokens written to cache and the audio
    tokens (`prompt_tokens_details.audio_tokens`); all are taken out of the input. Likewise
    `completion_tokens` includes the audio output, taken out of the output, and the
    reasoning tokens, which stay in it (they are billed as output). OpenAI reports one
    `cache_write_tokens` count whatever the retention, so the caller says whether the
    request asked for extended (12-hour) caching. `service_tier` is the response's own
    top-level field (OpenAI puts it beside the usage, not in it).
    """
    doc = _plain(usage)
    counts = openai_usage_to_anthropic(doc)
    writes = counts["cache_creation_input_tokens"]
    audio_in = _tokens(_detail(doc, "prompt_tokens_details", "audio_tokens"))
    audio_out = _tokens(_detail(doc, "completion_tokens_details", "audio_tokens"))
    audio_in = min(audio_in, counts["input_tokens"])
    audio_out = min(audio_out, counts["output_tokens"])
    return Usage(
        input_tokens=counts["input_tokens"] - audio_in,
        output_tokens=counts["output_tokens"] - audio_out,
        cache_write_5m_tokens=0 if extended_cache_retention else writes,
        cache_write_1h_tokens=writes if extended_cache_retention else 0,
        cache_read_tokens=counts["cache_read_input_tokens"],
        reasoning_tokens=openai_reasoning_tokens(doc) or 0,
        server_tool_use=_tool_counts(doc.get("server_tool_use")),
        service_tier=_label(service_tier),
        audio_input_tokens=audio_in,
        audio_output_tokens=audio_out,
    )


def _detail(doc: Mapping[str, Any], section: str, name: str) -> object:
    details = doc.get(section)
    return details.get(name) if isinstance(details, Mapping) else None


class AnthropicStreamUsage:
    """Usage of a Messages stream, from its events as they pass.

    `message_start` reports the input side and a first output count. Every `message_delta`
    usage is cumulative: its counts replace the earlier ones, and newer API versions restate
    the input and cache counts there too. Until a `message_delta` reports output tokens, the
    output count is the larger of the last one reported and the estimate of everything
    generated so far (text, thinking and tool input), and the usage is marked estimated.
    """

    __slots__ = (
        "_billing",
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
        # The latest non-token facts (tier, geo, speed, tools, iterations), by field name.
        self._billing: dict[str, Any] = {}

    @property
    def usage(self) -> Usage:
        output = self._output
        if not self._output_final:
            output = max(output, self._generated.tokens)
        billing = self._billing
        usage = Usage(
            input_tokens=self._input,
            output_tokens=output,
            cache_write_5m_tokens=self._write_5m,
            cache_write_1h_tokens=self._write_1h,
            cache_read_tokens=self._cache_read,
            reasoning_tokens=self._reasoning,
            estimated=not self._output_final,
            server_tool_use=_tool_counts(billing.get("server_tool_use")),
            service_tier=_label(billing.get("service_tier")),
            inference_geo=_label(billing.get("inference_geo")),
            speed=_label(billing.get("speed")),
        )
        return with_iterations(usage, _iterations(billing.get("iterations")))

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
        for name in ("server_tool_use", "service_tier", "inference_geo", "speed", "iterations"):
            if usage.get(name) is not None:  # cumulative, as the counts: the last one holds
                self._billing[name] = usage[name]


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


class _UsageReportedAtTheEnd:
    """What the OpenAI formats' streams share: the usage arrives whole in one event near the
    end; until then it is an estimate of the output generated so far (no input count),
    marked estimated."""

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
        """The upstream's stop reason, in its format's vocabulary."""
        return self._stop_reason

    @property
    def complete(self) -> bool:
        """Whether the stream's end was seen: the upstream finished it."""
        return self._complete


class ResponsesStreamUsage(_UsageReportedAtTheEnd):
    """Usage of a Responses stream, from its events as they pass: the final
    `response.completed` (or `response.incomplete`) carries the usage and the output, and
    ends it; until then, an estimate of the text and tool arguments generated."""

    __slots__ = ()

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


class OpenAIStreamUsage(_UsageReportedAtTheEnd):
    """Usage of a Chat Completions stream, from its chunks as they pass.

    The usage arrives in one chunk near the end, and only when the request asked for it
    (`stream_options.include_usage`); the gateway should ask upstream whatever the client
    asked. Until it arrives, the usage is an estimate of the output generated so far
    (content, refusal and tool-call arguments). `stop_reason` is the first choice's
    `finish_reason`; `complete` says `data: [DONE]` was seen.
    """

    __slots__ = ("_extended", "_tier")

    def __init__(self, *, extended_cache_retention: bool = False) -> None:
        super().__init__()
        self._extended = extended_cache_retention
        self._tier: str | None = None

    def feed(self, event: SSEEvent) -> None:
        if event.data.strip() == "[DONE]":
            self._complete = True
            return
        doc = _event_json(event)
        if doc is None:
            return
        if isinstance(doc.get("service_tier"), str):
            self._tier = doc["service_tier"]
        usage = doc.get("usage")
        if isinstance(usage, Mapping):
            self._reported = usage_from_openai(
                usage, extended_cache_retention=self._extended, service_tier=self._tier
            )
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
