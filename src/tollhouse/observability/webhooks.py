"""Alert webhooks, delivered off the request path.

`submit` is all an alert does: a bounded in-memory append, no await. One background task
per webhook posts the queued bodies in order, so a slow or dead receiver delays only its own
alerts. Connection errors, timeouts, 429 and 5xx are retried with jittered exponential
backoff up to `max_attempts`; then the delivery is given up, logged and counted. A body that
finds the queue full is counted in `dropped`, never waited for.

The URL and header values may be secret references (`env:NAME`, `file:PATH`): a Slack
webhook URL is itself a credential. They are resolved once at construction and never
logged; logs and metrics name a webhook by its host only.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from urllib.parse import urlsplit

from tollhouse.config.secrets import resolve_secret
from tollhouse.observability.alerts_config import WebhookConfig
from tollhouse.providers.base import (
    UpstreamConnectionError,
    UpstreamRequest,
    UpstreamTimeoutError,
)
from tollhouse.providers.http_transport import HttpTransport
from tollhouse.queue_worker import QueueWorker
from tollhouse.reliability.backoff import backoff_delay

log = logging.getLogger("tollhouse.alerts")


def _resolved(value: str, key_path: str) -> str:
    if value.startswith(("env:", "file:")):
        return resolve_secret(value, key_path=key_path)
    return value


class WebhookSender(QueueWorker):
    """Call `submit` from the event loop's thread; `start` and `aclose` from a coroutine on
    that loop (the task and its shutdown: tollhouse/queue_worker.py). Raises ValueError
    (naming `key_path`, never the value) for an unusable URL and SecretError for a
    reference that does not resolve.

    Counters for the metrics endpoint: `delivered`, `failed` (gave up), `dropped` (no room
    in the queue, or still queued when `aclose` timed out), `retries`."""

    def __init__(
        self,
        config: WebhookConfig,
        *,
        key_path: str,
        max_queue: int = 256,
        retry_base: float = 0.5,
        retry_cap: float = 8.0,
        close_timeout: float = 10.0,
    ) -> None:
        url = urlsplit(_resolved(config.url, f"{key_path}.url"))
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"{key_path}.url: expected an http(s) URL")
        headers = {
            name: _resolved(value, f"{key_path}.headers.{name}")
            for name, value in config.headers.items()
        }
        self.name = url.netloc.rpartition("@")[2]
        super().__init__(f"alert-webhook:{self.name}", close_timeout)
        self.kinds = frozenset(config.kinds)
        self.max_queue = max_queue
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self.retries = 0
        self._config = config
        self._retry_base = retry_base
        self._retry_cap = retry_cap
        self._path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        self._transport = HttpTransport(
            f"{url.scheme}://{self.name}",
            headers,
            max_connections=1,
            connect_timeout=config.timeout_seconds,
            read_idle_timeout=config.timeout_seconds,
        )
        self._queue: deque[bytes] = deque()

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    def submit(self, body: bytes) -> bool:
        """Queue `body` for delivery without waiting; False when it was dropped."""
        if self._closed or len(self._queue) >= self.max_queue:
            self.dropped += 1
            return False
        self._queue.append(body)
        self._wake.set()
        return True

    async def aclose(self) -> None:
        """Deliver what is queued, waiting at most `close_timeout` seconds; the rest is
        dropped (and counted)."""
        if self._closed:
            return
        await self._finish()
        if self._queue:
            log.warning(
                "alert webhook %s: %d alert(s) undelivered at shutdown",
                self.name,
                len(self._queue),
            )
            self.dropped += len(self._queue)
            self._queue.clear()
        await self._transport.aclose()

    async def _run(self) -> None:
        while True:
            while not self._queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
            # Left on the queue while in flight, so a shutdown timeout counts it as dropped.
            await self._deliver(self._queue[0])
            self._queue.popleft()

    async def _deliver(self, body: bytes) -> None:
        timeout = self._config.timeout_seconds
        request = UpstreamRequest(path=self._path, body=body, stream=False, timeout=timeout)
        problem = ""
        attempts = 0
        for attempt in range(self._config.max_attempts):
            attempts = attempt + 1
            if attempt:
                self.retries += 1
                await asyncio.sleep(backoff_delay(attempt - 1, self._retry_base, self._retry_cap))
            try:
                async with asyncio.timeout(timeout):
                    response = await self._transport.send(request)
                    try:
                        await response.read()
                    finally:
                        await response.aclose()
            except (UpstreamConnectionError, UpstreamTimeoutError, TimeoutError) as error:
                problem = str(error) or "timed out"
                continue
            except Exception as error:  # a fault here must not end the sender
                problem = f"{type(error).__name__}: {error}"
                break
            if response.status < 300:
                self.delivered += 1
                return
            problem = f"HTTP {response.status}"
            if response.status != 429 and response.status < 500:
                break  # the receiver refuses this body: sending it again will not help
        self.failed += 1
        log.warning(
            "alert webhook %s: gave up after %d attempt(s): %s", self.name, attempts, problem
        )
