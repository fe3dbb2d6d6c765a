"""A webhook receiver for alert tests: a tiny ASGI app, served on a real loopback port, that
records every POST and answers the statuses it was told to (then 200)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

ASGIMessage = dict[str, Any]


@dataclass(frozen=True)
class Post:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class WebhookReceiver:
    def __init__(self, statuses: Iterable[int] = ()) -> None:
        self._statuses = deque(statuses)
        self._lock = threading.Lock()
        self._posts: list[Post] = []
        self.requests = 0

    @property
    def posts(self) -> list[Post]:
        """The posts answered with 2xx, in order of arrival."""
        with self._lock:
            return list(self._posts)

    def statuses_of(self, kind: str) -> list[str]:
        return [p.body["status"] for p in self.posts if p.body["kind"] == kind]

    async def __call__(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Any],
        send: Callable[[ASGIMessage], Any],
    ) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        with self._lock:
            self.requests += 1
            status = self._statuses.popleft() if self._statuses else 200
            if status < 300:
                headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
                path = scope["path"] + (
                    "?" + scope["query_string"].decode() if scope["query_string"] else ""
                )
                self._posts.append(Post(path, headers, json.loads(body)))
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def wait_until(condition: Callable[[], bool]) -> None:
    """Poll `condition` until it holds; fail the test after 5 seconds."""
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met within 5 s")
