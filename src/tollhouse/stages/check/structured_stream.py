"""Structured output on a stream that is relayed as it comes (`structured_output.stream:
validate_at_end`, the default): the client's stream passes through untouched while it is
put back together (`Format.stream_assembly`), and its normal end (Anthropic's
`message_stop`, OpenAI's `data: [DONE]`) is held until the whole answer has been checked.
Valid, or invalid under `on_invalid: flag`, the end follows; invalid under `refuse`, the
client format's error event (422's type, saying what was wrong) comes in its place, so no
SDK takes the answer for a good one. The content has been read by then: there is no retry
(a route that needs one hidden buffers instead, stages/check/stream_buffer.py).

A stream that ends without its normal end (an upstream failure, a cut stream refused by the
truncation check) is not judged: its own error event already says it failed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson

from tollhouse.call import Call
from tollhouse.stages.check.structured_output import (
    InvalidStructuredOutput,
    OutputRequirement,
    judge_answer,
    refusal,
)
from tollhouse.wire.sse import SSEParser

# Past this much streamed data the answer is not put back together (memory stays bounded
# whatever the stream's length) and counts as not checkable: invalid.
MAX_ASSEMBLED_BYTES = 8 << 20


async def validate_stream_at_end(
    call: Call, chunks: AsyncIterator[bytes], requirement: OutputRequirement
) -> AsyncIterator[bytes]:
    """`chunks` (the client's stream) as they come, but its normal end only once the whole
    answer passed the check (else the error event, under `refuse`)."""
    fmt = call.wire
    assembly = fmt.stream_assembly()
    marker = fmt.stream_end_marker
    if assembly is None or not marker:
        async for chunk in chunks:
            yield chunk
        return
    parser = SSEParser()
    size = 0
    held = b""  # the stream from its end marker on
    tail = b""  # a chunk's last bytes that may be the start of the end marker
    async for chunk in chunks:
        size += len(chunk)
        if size <= MAX_ASSEMBLED_BYTES:
            for event in parser.feed(chunk):
                assembly.feed(event)
        if held:
            held += chunk
            continue
        data = tail + chunk if tail else chunk
        at = data.find(marker)
        if at >= 0:
            out, held, tail = data[:at], data[at:], b""
        else:
            keep = _marker_prefix_at_end(data, marker)
            out, tail = (data[:-keep], data[-keep:]) if keep else (data, b"")
        if out:
            yield out
    if size <= MAX_ASSEMBLED_BYTES:
        for event in parser.flush():
            assembly.feed(event)
    end = tail + held
    answer = assembly.answer if size <= MAX_ASSEMBLED_BYTES else None
    if not held:
        if end:
            yield end
        return
    if answer is None:
        call.structured_output = "invalid"
        call.structured_output_errors = "the answer is too long to be checked"
        problems_message = call.structured_output_errors
    else:
        stop_reason = fmt.answer_facts(orjson.dumps(answer)).stop_reason
        problems = judge_answer(call, requirement, answer, stop_reason)
        if problems is None:
            yield end
            return
        problems_message = refusal(call, problems)
    if requirement.policy.on_invalid == "flag":
        yield end
        return
    yield fmt.stream_error_event(problems_message, InvalidStructuredOutput.status)


def _marker_prefix_at_end(data: bytes, marker: bytes) -> int:
    """The length of the longest end of `data` that begins `marker` (0: none), so that a
    marker split across two chunks is still found."""
    for length in range(min(len(marker) - 1, len(data)), 0, -1):
        if marker.startswith(data[-length:]):
            return length
    return 0
