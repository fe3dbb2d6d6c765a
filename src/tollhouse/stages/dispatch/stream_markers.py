"""Byte markers that locate the few events of a stream a gateway must read.

Relaying a stream must cost next to nothing per event, so the relay never parses the events
it only passes on. These markers, searched in C by `bytes.__contains__` and one regex, say
whether a run of complete events holds something to read: the usage and stop reason (at the
start and end of a stream) or an error. The markers are each format's own
(`wire/formats.py`), as is the test for the first content of an answer.
"""

from __future__ import annotations

from tollhouse.wire.formats import Format


def holds_accounting(events: bytes, fmt: Format) -> bool:
    return any(marker in events for marker in fmt.accounting_markers)


def accounting_events(events: bytes, fmt: Format) -> bytes:
    """Only the events of a run of complete events that hold an accounting marker, in
    order, framed as they came: the rest (content) never needs to be parsed."""
    spans: set[tuple[int, int]] = set()
    for marker in fmt.accounting_markers:
        at = events.find(marker)
        while at >= 0:
            start = events.rfind(b"\n\n", 0, at) + 2 if at else 0
            start = 0 if start == 1 else start
            end = events.find(b"\n\n", at)
            end = len(events) if end < 0 else end + 2
            spans.add((start, end))
            at = events.find(marker, end)
    return b"".join(events[start:end] for start, end in sorted(spans))


def may_hold_error(events: bytes, fmt: Format) -> bool:
    return fmt.error_marker in events


def complete_events(buffer: bytes) -> int:
    """The length of the leading run of complete events in `buffer` (0: none yet)."""
    end = buffer.rfind(b"\n\n")
    return end + 2 if end >= 0 else 0
