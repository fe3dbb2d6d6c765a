"""A streamed call on a route that buffers (`structured_output.stream: buffer`): the upstream
is asked for a whole answer, which is checked (and retried, unseen) like any whole answer,
then replayed to the client as the stream it asked for (stages/replayed_answer.py)."""

from __future__ import annotations

import orjson

from tollhouse.call import Call
from tollhouse.stages.replayed_answer import replayed_answer
from tollhouse.types import Reply

# The request fields that make a call a stream, in every client format.
_STREAM_FIELDS = ("stream", "stream_options")


def buffer_stream(call: Call) -> None:
    """Take the stream fields off a streamed call's request (kept on the call)."""
    if not call.stream or call.buffered_stream is not None:
        return
    call.buffered_stream = {k: call.body[k] for k in _STREAM_FIELDS if k in call.body}
    call.body = {k: v for k, v in call.body.items() if k not in _STREAM_FIELDS}
    call.raw_body = orjson.dumps(call.body)


def restore_stream(call: Call) -> None:
    """Put a buffered call's stream fields back, so it is a stream again for its reply and
    its record."""
    if call.buffered_stream is not None:
        call.body = {**call.body, **call.buffered_stream}
        call.raw_body = orjson.dumps(call.body)
        call.buffered_stream = None


def unbuffered_reply(call: Call, body: bytes) -> Reply:
    """The whole answer `body` (client's format) of a buffered call, as its stream."""
    restore_stream(call)
    return replayed_answer(call, body)
