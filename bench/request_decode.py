#!/usr/bin/env python3
"""CPU of decoding a request body, in process: `decode_json_object` (jiter, refusing
duplicate keys) against what it was before (an emptiness check and `orjson.loads`, which
keeps the last of a duplicate key silently), on the bench's own ~600-byte body, a 10 KB
conversation of many short strings, and a 200 KB single prompt.

    .venv/bin/python bench/request_decode.py [--seconds 1.0] [--repeats 5]

Prints one line per body: microseconds per decode for each, the best of the repeats (as
timeit advises: on a shared machine the slower runs measure the neighbours), and the ratio.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from tollhouse.wire.request_body import decode_json_object

BENCH = Path(__file__).resolve().parent


def bodies() -> dict[str, bytes]:
    turn = [{"type": "text", "text": 'Some "quoted" text and a few more words here. ' * 10}]
    conversation = {
        "model": "claude-haiku-4-5",
        "max_tokens": 1024,
        "system": "You are helpful. " * 20,
        "messages": [
            {"role": "user" if i % 2 == 0 else "assistant", "content": turn} for i in range(20)
        ],
    }
    prompt = {
        "model": "m",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "x" * 200_000}],
    }
    return {
        "bench body": (BENCH / "wrk" / "bodies" / "anthropic.json").read_bytes(),
        "10 KB conversation": orjson.dumps(conversation),
        "200 KB prompt": orjson.dumps(prompt),
    }


def orjson_decode(body: bytes) -> object:
    """decode_json_object before duplicate keys were refused, less its error handling."""
    if not body.strip():
        raise ValueError("empty")
    return orjson.loads(body)


def per_call_us(decode: Callable[[bytes], object], body: bytes, seconds: float) -> float:
    calls = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(100):
            decode(body)
        calls += 100
    return elapsed / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="per measurement")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print("| body | bytes | before (orjson) µs | decode_json_object (jiter) µs | ratio |")
    print("|---|--:|--:|--:|--:|")
    for name, body in bodies().items():
        before, after = [], []
        for _ in range(args.repeats):  # interleaved, so drift hits both alike
            before.append(per_call_us(orjson_decode, body, args.seconds))
            after.append(per_call_us(decode_json_object, body, args.seconds))
        b, a = min(before), min(after)
        print(f"| {name} | {len(body):,} | {b:.2f} | {a:.2f} | {a / b:.2f} |")


if __name__ == "__main__":
    main()
