"""Byte markers that locate the few events of a stream a gateway must read.

Relaying a stream must cost next to nothing per event, so the relay never parses the events
it only passes on. These markers, searched in C by `bytes.__contains__` and one regex, say
whether a run of complete events holds something to read: the usage and stop reason (at the
start and end of a stream), an error, or the first content of the answer.
"""

from __future__ import annotations

import re

from tollhouse.types import WireFormat

# Events that carry usage, a stop reason or an error.
ACCOUNTING_MARKERS: dict[WireFormat, tuple[bytes, ...]] = {
    "anthropic": (b"event: message_start", b"event: message_delta", b"event: error"),
    "openai": (
        b'"usage":{',
        b'"usage": {',
        b'"finish_reason":"',
        b'"finish_reason": "',
        b'"error"',
    ),
}

# The first event that shows the user something (the end of a stream's preamble).
_ANTHROPIC_CONTENT = (
    b"event: content_block_delta",
    b"event: message_delta",
    b"event: message_stop",
)
_OPENAI_CONTENT = re.compile(
    rb'"(?:content|refusal)": ?"[^"]|"tool_calls": ?\[|"finish_reason": ?"|data: \[DONE\]'
)
_ERROR = {"anthropic": b"event: error", "openai": b'"error"'}


def holds_accounting(events: bytes, fmt: WireFormat) -> bool:
    return any(marker in events for marker in ACCOUNTING_MARKERS[fmt])


def accounting_events(events: bytes, fmt: WireFormat) -> bytes:
    """Only the events of a run of complete events that hold an accounting marker, in
    order, framed as they came: the rest (content) never needs to be parsed."""
    spans: set[tuple[int, int]] = set()
    for marker in ACCOUNTING_MARKERS[fmt]:
        at = events.find(marker)
        while at >= 0:
            start = events.rfind(b"\n\n", 0, at) + 2 if at else 0
            start = 0 if start == 1 else start
            end = events.find(b"\n\n", at)
            end = len(events) if end < 0 else end + 2
            spans.add((start, end))
            at = events.find(marker, end)
    return b"".join(events[start:end] for start, end in sorted(spans))


def content_started(events: bytes, fmt: WireFormat) -> bool:
    if fmt == "anthropic":
        return any(marker in events for marker in _ANTHROPIC_CONTENT)
    return _OPENAI_CONTENT.search(events) is not None


def may_hold_error(events: bytes, fmt: WireFormat) -> bool:
    return _ERROR[fmt] in events


def complete_events(buffer: bytes) -> int:
    """The length of the leading run of complete events in `buffer` (0: none yet)."""
    end = buffer.rfind(b"\n\n")
    return end + 2 if end >= 0 else 0
