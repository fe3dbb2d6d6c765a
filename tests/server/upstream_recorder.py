"""An upstream that records exactly what it was sent and answers with a canned document, to
prove what the gateway forwards (unknown fields intact, credentials swapped) and to play
answers the simulator has no fault for."""

from __future__ import annotations

from typing import Any

import orjson

CANNED_MESSAGE = {
    "id": "msg_recorded",
    "type": "message",
    "role": "assistant",
    "model": "recorded-model",
    "content": [{"type": "text", "text": "recorded"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 3, "output_tokens": 1},
}


class RecordingUpstream:
    def __init__(self, status: int = 200, doc: dict[str, Any] | None = None) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.status = status
        self.doc = CANNED_MESSAGE if doc is None else doc

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.requests.append((scope["path"], headers, body))
        await send(
            {
                "type": "http.response.start",
                "status": self.status,
                "headers": [(b"content-type", b"application/json"), (b"request-id", b"req_up_1")],
            }
        )
        await send({"type": "http.response.body", "body": orjson.dumps(self.doc)})
