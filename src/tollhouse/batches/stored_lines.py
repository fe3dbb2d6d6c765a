"""A batch line's call as the batch store keeps it, and the call made again from it in
any gateway process: what the line's record needs (who it was for, what it asked, where
it went) and nothing of the process that made it (no reservation: that stays with it)."""

from __future__ import annotations

import time
from typing import Any

from tollhouse.call import Call, Endpoint
from tollhouse.types import WireFormat

_FIELDS = (
    "key_id",
    "end_user",
    "team",
    "project",
    "session_id",
    "variant",
    "config_version",
    "provider_name",
    "upstream_model",
    "started_wall",
)


def stored_line(call: Call) -> dict[str, Any]:
    return {
        "custom_id": call.custom_id,
        "body": call.body,
        **{name: getattr(call, name) for name in _FIELDS},
    }


def line_call(client_format: WireFormat, batch_id: str, line: dict[str, Any]) -> Call:
    """The call `stored_line` kept, its request id `<batch id>:<custom_id>` as when made."""
    custom_id = str(line["custom_id"])
    endpoint: Endpoint = "message_batches" if client_format == "anthropic" else "batches"
    started_wall = float(line["started_wall"])
    call = Call(
        client_format,
        endpoint,
        line["body"],
        b"",
        {},
        request_id=f"{batch_id}:{custom_id}",
        # Its latency is counted from when the batch was made, as in the process that made it.
        started=time.perf_counter() - max(0.0, time.time() - started_wall),
        batch_id=batch_id,
        custom_id=custom_id,
    )
    for name in _FIELDS:
        setattr(call, name, line.get(name))
    call.started_wall = started_wall
    return call
