"""One background task working through an in-memory queue, and its bounded shutdown.

The ledger writer (ports/ledger/writer.py) and each alert webhook sender
(observability/webhooks.py) are one: `submit` appends on the event loop and sets `_wake`;
the task `start` creates takes from the queue until `_closing` is set and nothing is left.
`_finish` (their `aclose`) asks the task to finish, waits for it at most `close_timeout`
seconds, and cancels it past that; `_closed` is then set, and what is still queued is the
subclass's to account for (spilled, dropped, counted).
"""

from __future__ import annotations

import asyncio
import contextlib


class QueueWorker:
    """Call `start` and `_finish` from a coroutine on the loop that runs the task."""

    def __init__(self, task_name: str, close_timeout: float) -> None:
        self.close_timeout = close_timeout
        self._task_name = task_name
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = False

    def start(self) -> None:
        """Start the background task on the running loop (once)."""
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._run(), name=self._task_name)

    async def _run(self) -> None:
        """The task: work through the queue; return once `_closing` and nothing is left."""
        raise NotImplementedError

    async def _finish(self) -> bool:
        """Ask the task to finish what is queued and wait for it, at most `close_timeout`
        seconds, cancelling it past that; True when it finished in time."""
        self._closing = True
        self.start()
        self._wake.set()
        assert self._task is not None
        _, pending = await asyncio.wait({self._task}, timeout=self.close_timeout)
        if pending:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._closed = True
        return not pending
