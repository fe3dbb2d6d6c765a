"""Tollhouse's ASGI app served by granian instead of uvicorn: for bench/relay_cost.py's
server comparison only (`--gateway "granian=VENV/bin/python bench/granian_serve.py"`), in a
venv that has granian (`pip install granian`). Same gateway, same config; one granian worker
process (its Rust HTTP/1.1 server, one runtime thread, uvloop). None of our edge protections
(server/http_protocol.py: body timeout, 431 in the client's format, connection cap,
write-idle drop) is in front of it: granian has only its own header-read timeout.

    python bench/granian_serve.py serve --config CONFIG --port PORT
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

CONFIG_ENV = "TOLLHOUSE_BENCH_CONFIG"


def app_factory() -> Any:
    """The app `tollhouse serve` would run, for granian's worker to import."""
    from tollhouse.config import load_config
    from tollhouse.gateway import Gateway
    from tollhouse.server.app import create_app

    return create_app(Gateway(load_config(os.environ[CONFIG_ENV])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--config", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    os.environ[CONFIG_ENV] = str(Path(args.config).resolve())
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parent), os.environ.get("PYTHONPATH", "")]
    )
    from granian import Granian
    from granian.constants import Interfaces, Loops

    Granian(
        "granian_serve:app_factory",
        address="127.0.0.1",
        port=args.port,
        interface=Interfaces.ASGI,
        workers=1,
        loop=Loops.uvloop,
        factory=True,
        log_access=False,
        backlog=4096,
    ).serve()


if __name__ == "__main__":
    main()
