#!/usr/bin/env python3
"""CPU per call of the account stage alone, in process: no HTTP, no upstream.

    .venv/bin/python bench/account_micro.py
    bench/.venv-tollhouse/bin/python bench/account_micro.py   # the compiled install

What stages/account.py runs for every call, on the bench config (ledger off: its own cost
is bench/ledger.py's), split by moment, each against a baseline measured in the same run:

- per streamed chunk: `chunk_sent` (time to first byte, the last two chunks kept for the
  stream's error check) against the same first-byte and capture statements written inline;
- per streamed call: `stream_error` on the end of a stream that ended normally (the check
  every stream pays since broken streams are recorded as errors);
- per call: `Accounting.finish` (cost, settle, alerts, metrics with the configured label
  sets) for a whole answer and for a stream of the canned answer's chunks.

Medians of repeats; a whole call through the gateway costs a few hundred µs
(bench/results/latest.md), against which these figures are to be read.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # bench/run.py: the bench config and request bodies
from tollhouse.accounting import Usage
from tollhouse.call import Call
from tollhouse.config.loader import load_config
from tollhouse.gateway import Gateway
from tollhouse.stages.account import ANSWER_CAPTURE_LIMIT, chunk_sent, stream_error

CANNED = Path(__file__).resolve().parent / "upstream" / "canned"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20_000, help="calls per repeat")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    os.environ["BENCH_UPSTREAM_KEY"] = run.UPSTREAM_KEY  # the config refers to it; no call is sent
    asyncio.run(measure(args.calls, args.repeats))
    return 0


def inline_chunk(call: Call, chunk: bytes) -> None:
    """The baseline: what the HTTP layer did per chunk for accounting, written inline."""
    if call.first_byte_at is None:
        call.first_byte_at = time.perf_counter()
    capture = call.answer_capture
    if capture is not None and len(capture) < ANSWER_CAPTURE_LIMIT:
        capture += chunk


async def measure(calls: int, repeats: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="tollhouse-account-"))
    config = work / "tollhouse.yaml"
    config.write_text((run.CONFIGS / "tollhouse.yaml").read_text() + "ledger:\n  backend: off\n")
    body = orjson.loads((run.WRK_DIR / "bodies" / "anthropic.json").read_bytes())
    raw = orjson.dumps(body)
    events = (CANNED / "anthropic.sse").read_bytes()
    chunks = [event + b"\n\n" for event in events.split(b"\n\n") if event]
    usage = Usage(input_tokens=60, output_tokens=40)
    gateway = Gateway(load_config(config))
    await gateway.start()
    accounting = gateway.accounting

    def new_call(stream: bool) -> Call:
        call = Call(
            client_format="anthropic",
            endpoint="messages",
            body={**body, "stream": stream},
            raw_body=raw,
            headers={},
        )
        call.provider_name = "bench-anthropic"
        call.upstream_model = "claude-haiku-4-5-20251001"
        call.attempts = 1
        call.usage = usage
        return call

    streamed = new_call(True)
    for chunk in chunks:
        chunk_sent(streamed, chunk)
    assert stream_error(streamed) is None

    def per_chunk_new() -> None:
        call = new_call(True)
        for chunk in chunks:
            chunk_sent(call, chunk)

    def per_chunk_inline() -> None:
        call = new_call(True)
        for chunk in chunks:
            inline_chunk(call, chunk)

    def stream_check() -> None:
        stream_error(streamed)

    def finish_whole() -> None:
        accounting.finish(new_call(False), 200)

    def finish_stream() -> None:
        call = new_call(True)
        for chunk in chunks:
            chunk_sent(call, chunk)
        accounting.finish(call, 200)

    def make_call() -> None:
        new_call(True)

    loops = {
        "make a Call (baseline of the others)": make_call,
        f"chunk_sent x {len(chunks)} chunks": per_chunk_new,
        f"inline statements x {len(chunks)} chunks": per_chunk_inline,
        "stream_error, normal end": stream_check,
        "finish, whole answer": finish_whole,
        f"finish, stream of {len(chunks)} chunks": finish_stream,
    }
    try:
        for loop in loops.values():  # warm-up
            for _ in range(2_000):
                loop()
        timings: dict[str, list[float]] = {name: [] for name in loops}
        for _ in range(repeats):
            for name, loop in loops.items():
                started = time.perf_counter()
                for _ in range(calls):
                    loop()
                timings[name].append((time.perf_counter() - started) / calls * 1e6)
    finally:
        await gateway.aclose()
    print(f"{sys.executable}: per call, median of {repeats} x {calls:,} calls:")
    for name, values in timings.items():
        print(f"  {name:42s} {statistics.median(values):7.2f} µs")


if __name__ == "__main__":
    sys.exit(main())
