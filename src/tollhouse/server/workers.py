"""`tollhouse serve --workers N`: N gateway processes answering on one listening socket.

The parent binds the socket (runner.listen), then forks: first one probe that builds the
gateway and exits, so a start-up failure (a config error, a spill file that can't be
opened) is said once and stops everything before any worker runs; then the N workers, each
building its own gateway (its own spill file slot, its own connections) and serving the
shared socket, the kernel handing each new connection to one of them. Forking happens before
the parent has started any thread or event loop, which is what makes it safe.

The parent only supervises. SIGTERM or SIGINT to it is passed on as SIGTERM to every worker;
each drains as a lone gateway does (in-flight calls finish, the ledger queue is written) and
the parent exits when all have. A worker that dies on its own is replaced, unless it died
within `START_GRACE` seconds of starting (it would only fail again): then the others are
stopped and the parent exits with its code. Workers die with the parent (Linux), so a
SIGKILL of the parent leaves none behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from types import FrameType

log = logging.getLogger("tollhouse.server")

START_GRACE = 10.0  # seconds: a worker dying sooner after its start is not replaced
_PR_SET_PDEATHSIG = 1


def serve_workers(
    build: Callable[[], object],
    serve: Callable[[], int],
    count: int,
    *,
    started: Callable[[], None] = lambda: None,
) -> int:
    """Run `serve` (which returns an exit code) in `count` worker processes once `build`
    succeeded in a probe process (it raises SystemExit to refuse the start, having said
    why), calling `started` between the two; the exit code of the whole: 0 after a
    signalled shutdown, else the code of the worker that failed."""
    code = _run_in_child(lambda: (build(), 0)[1])
    if code:
        return code
    started()
    workers: dict[int, float] = {}  # pid -> when it started (monotonic)
    stopping = False

    def stop(signum: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
        nonlocal stopping
        stopping = True
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:

        def start() -> None:
            pid = _fork(serve)
            workers[pid] = time.monotonic()
            if stopping:  # the signal came between the fork and the line above
                os.kill(pid, signal.SIGTERM)

        for _ in range(count):
            start()
        exit_code = 0
        while workers:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            began = workers.pop(pid, None)
            if began is None or stopping:
                continue
            code = os.waitstatus_to_exitcode(status)
            if time.monotonic() - began < START_GRACE:
                log.error("worker %d exited (%d) while starting; stopping the others", pid, code)
                exit_code = code if code > 0 else 1
                stop()
                continue
            log.error("worker %d exited (%d); starting another", pid, code)
            start()
        return exit_code
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run_in_child(work: Callable[[], int]) -> int:
    pid = _fork(work)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _fork(work: Callable[[], int]) -> int:
    """Start `work` in a child process; its pid. The child never returns from here."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        _die_with_parent()
        code = work()
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:
        log.exception("worker %d failed", os.getpid())
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _die_with_parent() -> None:
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
