"""A gateway for the eval to call when none is running: the config's gateway served on a
free loopback port from a thread of this process (server/runner.py), as the tests serve
theirs. Its ledger is the config's, so costs are read from there; leaving the block stops
it, which drains the ledger (every call the eval made has its record once it returns).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from tollhouse.config import GatewayConfig


@contextlib.contextmanager
def in_process_gateway(config: GatewayConfig) -> Iterator[str]:
    """The base URL of `config`'s gateway, served until the block ends (admin API off)."""
    from tollhouse.gateway import Gateway
    from tollhouse.server.app import create_app
    from tollhouse.server.runner import BackgroundServer

    server = BackgroundServer(create_app(Gateway(config), admin_token=None)).start()
    try:
        yield server.url
    finally:
        server.stop()
