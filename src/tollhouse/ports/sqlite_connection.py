"""The SQLite connection every embedded store opens the same way: one file, WAL.

WAL with `synchronous=NORMAL` lets readers (`tollhouse logs`, the admin API, another tool
with the file open) work while a writer commits, and makes a commit an append to the log
rather than an fsync of the database. Several stores may share one file (the ledger and
the keys do by default), each with its own connection and its own schema steps.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable


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
