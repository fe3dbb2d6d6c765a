"""An upstream that streams slowly and records whether its client went away, to prove that a
client dropping its stream cancels the upstream call."""

from __future__ import annotations

import asyncio
from typing import Any

from tollhouse.wire.sse import frame_json

START = {
    "type": "message_start",
    "message": {
        "id": "msg_slow",
        "type": "message",
        "role": "assistant",
        "model": "slow",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 1},
    },
}


class SlowStreamUpstream:
    def __init__(self, events: int = 400, interval: float = 0.02, text: str = "tick ") -> None:
        self.events = events
        self.interval = interval
        self.text = text
        self.sent = 0
        self.client_left = False
        self.finished = False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                done = message["type"] == "lifespan.shutdown"
                await send({"type": message["type"] + ".complete"})
                if done:
                    return
        while (await receive()).get("more_body"):
            pass
        left = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            left.set()

        watcher = asyncio.ensure_future(watch())
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        await send(
            {
                "type": "http.response.body",
                "body": frame_json("message_start", START),
                "more_body": True,
            }
        )
        start_block = {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "text", "text": ""},
        }
        await send(
            {
                "type": "http.response.body",
                "body": frame_json("content_block_start", start_block),
                "more_body": True,
            }
        )
        for _ in range(self.events):
            if left.is_set():
                self.client_left = True
                watcher.cancel()
                return
            delta = {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": self.text},
            }
            await send(
                {
                    "type": "http.response.body",
                    "body": frame_json("content_block_delta", delta),
                    "more_body": True,
                }
            )
            self.sent += 1
            await asyncio.sleep(self.interval)
        self.finished = True
        watcher.cancel()
        await send({"type": "http.response.body", "body": b"", "more_body": False})
