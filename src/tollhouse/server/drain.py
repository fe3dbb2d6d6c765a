"""Graceful shutdown that keeps its promise for long calls.

When a shutdown begins (SIGTERM: the runner calls `Drain.begin`), the server stops taking
connections and the calls in flight get `server.drain_seconds` to finish on their own.
Then every call still running is ended by the gateway itself, not cancelled by the server:
the part of it that runs inside `Drain.cuttable()` raises `Overloaded` (529 for Anthropic
clients, 503 for OpenAI's, the status a client retries elsewhere), which the HTTP layer
answers in the client's format (a stream that has started: an error event that ends it),
and the call is recorded and settled like any other before the process exits.

Each cuttable part is an `asyncio.Timeout` with no deadline, given one when the drain time is
up: no task or timer per call, one set insertion.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from tollhouse.errors import Overloaded


class Drain:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.draining = False  # a shutdown has begun
        self.over = False  # its drain time is up: what still runs is ended
        self._running: set[asyncio.Timeout] = set()
        self._timer: asyncio.TimerHandle | None = None

    def begin(self) -> None:
        """Start the drain (on the serving loop); calls still running after `seconds` are
        ended. Idempotent."""
        if self.draining:
            return
        self.draining = True
        self._timer = asyncio.get_running_loop().call_later(self.seconds, self._end_all)

    def cuttable(self) -> Cuttable:
        """`async with drain.cuttable(): ...` runs the body until the drain is over, then
        raises `Overloaded` out of it."""
        return Cuttable(self)

    def refusal(self) -> Overloaded:
        return Overloaded(
            f"the gateway is shutting down and ended this call after its drain time "
            f"(server.drain_seconds: {self.seconds:g}); retry it",
            headers={"retry-after": "1"},
        )

    def _end_all(self) -> None:
        self.over = True
        now = asyncio.get_running_loop().time()
        for timeout in self._running:
            timeout.reschedule(now)


class Cuttable:
    __slots__ = ("_drain", "_timeout")

    def __init__(self, drain: Drain) -> None:
        self._drain = drain
        self._timeout = asyncio.timeout(0 if drain.over else None)

    async def __aenter__(self) -> None:
        await self._timeout.__aenter__()
        self._drain._running.add(self._timeout)

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._drain._running.discard(self._timeout)
        try:
            await self._timeout.__aexit__(kind, error, traceback)
        except TimeoutError:
            if self._timeout.expired():
                raise self._drain.refusal() from None
            raise
