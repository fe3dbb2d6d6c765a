"""Bounds on the shape of a request body, so that no single request can hold the process.

Every stage walks a request in time linear in its size, but a large body of tiny JSON values
is still a lot of work: a 32 MB body of empty arrays takes seconds just to parse, and the
event loop answers nothing meanwhile. These bounds (`limits.*`, gateway-wide, before any key
or route is considered) cap that work:

- `max_json_containers`: objects and arrays in the body, counted before it is parsed as the
  `{` and `[` bytes it holds (brackets inside strings count too: the bound errs on the safe
  side and costs two byte scans, not a parse);
- `max_json_depth`: how deeply objects and arrays nest. The gateway re-encodes bodies it
  changes or translates, and the encoder refuses deep nesting, so a limit keeps that a clear
  400 rather than a failure halfway through a call; a body with fewer brackets than the
  limit cannot be that deep and is not walked;
- `max_messages`: the length of `messages` (a key's or route's `input.max_messages` can
  only narrow it).

Within those bounds a large request still takes tens of milliseconds per step, so the steps
that walk it pause in between (`let_others_run`) and the event loop serves other calls
meanwhile rather than after the whole request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tollhouse.config.model import LimitsConfig
from tollhouse.errors import BadRequest, RequestTooLarge

# A body this large takes milliseconds per walk; smaller ones never pause.
LARGE_BODY_BYTES = 256 * 1024


# How long such a step waits: long enough for the loop to carry other requests through
# their several callbacks (read, parse, answer, write), not only the first of them, which is
# all a zero-length sleep lets through before this task runs again. A step over a larger
# body takes longer (about a millisecond per megabyte per pass), and a call that arrives
# meanwhile needs several loop turns of its own: the pause grows with the body, so that
# other calls get about as much of the loop as the large one's steps take.
_PAUSE_SECONDS = 0.001
_PAUSE_SECONDS_PER_BYTE = 1e-9


async def let_others_run(body_size: int) -> None:
    """Give the event loop a turn before the next step over a body of `body_size` bytes,
    when that body is large enough for the step to hold other calls noticeably."""
    if body_size > LARGE_BODY_BYTES:
        await asyncio.sleep(max(_PAUSE_SECONDS, body_size * _PAUSE_SECONDS_PER_BYTE))


def parse_bounded(
    raw: bytes, parse: Callable[[bytes], dict[str, Any]], limits: LimitsConfig
) -> dict[str, Any]:
    """`parse(raw)`, refused first if `raw` holds more containers than `limits` allow, and
    then if it nests deeper or holds more messages than they allow."""
    containers = raw.count(b"{") + raw.count(b"[")
    if containers > limits.max_json_containers:
        raise RequestTooLarge(
            f"request body holds up to {containers} JSON objects and arrays; the limit is "
            f"{limits.max_json_containers} (limits.max_json_containers)"
        )
    doc = parse(raw)
    messages = doc.get("messages")
    if isinstance(messages, list) and len(messages) > limits.max_messages:
        raise BadRequest(
            f"request has {len(messages)} messages; the limit is {limits.max_messages} "
            "(limits.max_messages)",
            param="messages",
        )
    if containers > limits.max_json_depth and nests_deeper(doc, limits.max_json_depth):
        raise BadRequest(
            f"request body nests JSON objects and arrays more than {limits.max_json_depth} "
            "levels deep (limits.max_json_depth)"
        )
    return doc


def nests_deeper(value: Any, limit: int) -> bool:
    """Whether objects and arrays in `value` nest more than `limit` levels deep (the
    top-level object is level 1). Walks one level at a time, in time linear in the number
    of containers."""
    level = [value]
    for _ in range(limit):
        level = [
            child
            for item in level
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, dict | list)
        ]
        if not level:
            return False
    return True
