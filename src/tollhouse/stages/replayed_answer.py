"""A whole answer the gateway already holds (cached, or its own static answer), served to
the client as it is, or replayed as the events of a stream when the client asked for one."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson

from tollhouse.call import Call
from tollhouse.types import SSE_CONTENT_TYPE, Reply


def replayed_answer(call: Call, body: bytes) -> Reply:
    """`body`: a whole answer in the client's format."""
    reply = Reply(status=200)
    if call.stream:
        reply.stream = _events(call.wire.replay_as_stream(orjson.loads(body), call.body))
        reply.content_type = SSE_CONTENT_TYPE
    else:
        reply.body = body
    return reply


async def _events(events: list[bytes]) -> AsyncIterator[bytes]:
    for event in events:
        yield event
