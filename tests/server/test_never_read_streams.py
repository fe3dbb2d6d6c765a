"""A client that never reads its stream (server/http_protocol.py's write deadline): dropped
after `timeouts.read_idle`, its upstream call cancelled, and recorded as a client that left."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import orjson
from tests.observability.test_call_ledger import read_sqlite
from tests.server.raw_http import closed_within
from tests.server.stream_upstream import SlowStreamUpstream
from tests.support import GATEWAY_KEY, serve_gateway

from tollhouse.server.runner import BackgroundServer


def test_a_client_that_reads_nothing_of_its_stream_is_dropped_and_recorded(
    tmp_path: Path,
) -> None:
    # About 200 KB a second: with the kernel's autotuned send buffer (megabytes) a client
    # that reads nothing was noticed only after ~17 s; with the gateway's fixed one, in ~2 s.
    upstream_app = SlowStreamUpstream(events=20_000, interval=0.01, text="x" * 2000)
    with BackgroundServer(upstream_app) as upstream:
        gateway = serve_gateway(
            {
                "providers": {"slow": {"type": "anthropic", "base_url": upstream.url}},
                "models": {"slow": {"deployments": [{"provider": "slow", "model": "slow"}]}},
                "timeouts": {"read_idle": 1.0},
                "ledger": {"sqlite_path": str(tmp_path / "ledger.db"), "spill_path": None},
            }
        )
        try:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            host, port = gateway.url.removeprefix("http://").split(":")
            sock.connect((host, int(port)))
            body = orjson.dumps(
                {
                    "model": "slow",
                    "max_tokens": 5,
                    "stream": True,
                    "messages": [{"role": "user", "content": "hi"}],
                }
            )
            sock.sendall(
                b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                b"x-api-key: %s\r\nanthropic-version: 2023-06-01\r\ncontent-length: %d\r\n\r\n%s"
                % (GATEWAY_KEY.encode(), len(body), body)
            )
            deadline = time.monotonic() + 10  # generous: read_idle is 1 s
            while time.monotonic() < deadline and not upstream_app.client_left:
                time.sleep(0.1)
            assert upstream_app.client_left
            assert not upstream_app.finished
            assert closed_within(sock, 30) is not None
            sock.close()
        finally:
            gateway.stop()
    (record,) = read_sqlite(tmp_path / "ledger.db")
    assert record.status == 499
    assert record.error_type == "client_disconnected"
