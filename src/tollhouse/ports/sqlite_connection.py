"""The SQLite connection every embedded store opens the same way (one file, WAL), on a
thread of its own (`SQLiteThread`).

WAL with `synchronous=NORMAL` lets readers (`tollhouse logs`, the admin API, another tool
with the file open) work while a writer commits, and makes a commit an append to the log
rather than an fsync of the database. Several stores may share one file (the ledger and
the keys do by default), each with its own connection and its own schema steps.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar


def open_sqlite(
    path: str | os.PathLike[str],
    busy_timeout: float,
    prepare: Callable[[sqlite3.Connection], object],
) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are the store's), waiting up to
    `busy_timeout` seconds for another process's write lock, after `prepare` (migrations,
    SQL functions) ran on it; closed again if anything fails."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        prepare(conn)
    except BaseException:
        conn.close()
        raise
    return conn


T = TypeVar("T")


class SQLiteThread:
    """The one connection of an embedded store, owned by a dedicated thread: sqlite3
    blocks, so every statement runs there and the event loop only awaits it.

    `run(job, *args)` runs `job(*args)` on that thread, where `connection()` opens the
    connection on first use (through `open_sqlite` with `prepare`). `unavailable` turns a
    `sqlite3.OperationalError` (locked, disk full, read-only, I/O) into the store's own
    error; `rejected`, given, turns the errors in `rejected_errors` (data the database
    refuses) into another. `what` names the store in the error a closed one raises."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        busy_timeout: float,
        prepare: Callable[[sqlite3.Connection], object],
        *,
        what: str,
        unavailable: Callable[[str], Exception],
        rejected_errors: tuple[type[Exception], ...] = (),
        rejected: Callable[[str], Exception] | None = None,
    ) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self._prepare = prepare
        self._what = what
        self._unavailable = unavailable
        self._rejected_errors = rejected_errors
        self._rejected = rejected
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=what.replace(" ", "-")
        )
        self._conn: sqlite3.Connection | None = None
        self._closed = False

    async def run(self, job: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise RuntimeError(f"the {self._what} is closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, job, *args)
        except self._rejected_errors as error:
            assert self._rejected is not None
            raise self._rejected(str(error)) from error
        except sqlite3.OperationalError as error:
            raise self._unavailable(str(error)) from error

    def connection(self) -> sqlite3.Connection:
        """The connection; only on the store's thread (inside a job given to `run`)."""
        if self._conn is None:
            self._conn = open_sqlite(self.path, self.busy_timeout, self._prepare)
        return self._conn

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(self._executor, self._disconnect)
        self._executor.shutdown(wait=False)

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
