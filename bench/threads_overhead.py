"""What holding a thread costs the gateway: a conversation of `--turns` turns through the
Anthropic SDK's `beta.messages.thread()` (each turn sends only its new message; the gateway
reads the conversation, expands it, and keeps the new turn in its SQLite store) against the
same conversation sent whole each turn with `messages.create` (no store), side by side in
one run: the two interleaved turn by turn, `--repeats` conversations each, on an in-process
simulator answering at once. Reports the median latency per turn of each, their ratio, and
the bytes each client sent.

    .venv/bin/python bench/threads_overhead.py [--turns 20] [--repeats 5]

Writes bench/results/threads.md. Not run by CI; loopback only.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anthropic

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "threads.md"
TURN = "Tell me one more thing about the aqueducts of Rome and how they were built. "


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    sys.path.insert(0, str(ROOT))
    from tests.support import IN_PROCESS_CONFIG

    from tollhouse.config import parse_config
    from tollhouse.gateway import Gateway
    from tollhouse.server.app import create_app
    from tollhouse.server.runner import BackgroundServer

    with tempfile.TemporaryDirectory(prefix="tollhouse-bench-threads-") as folder:
        config = {
            **IN_PROCESS_CONFIG,
            "ledger": {"backend": "off"},
            "keys": {"sqlite_path": f"{folder}/keys.db"},
            "conversations": {"sqlite_path": f"{folder}/conversations.db"},
        }
        server = BackgroundServer(create_app(Gateway(parse_config(config)))).start()
        try:
            sent = {"thread": 0, "whole": 0}

            def count(kind: str) -> Any:
                def hook(request: Any) -> None:
                    sent[kind] += len(request.read())

                return anthropic.DefaultHttpxClient(event_hooks={"request": [hook]})

            threaded = anthropic.Anthropic(
                base_url=server.url, api_key="k", max_retries=0, http_client=count("thread")
            )
            whole = anthropic.Anthropic(
                base_url=server.url, api_key="k", max_retries=0, http_client=count("whole")
            )
            times: dict[str, list[float]] = {"thread": [], "whole": []}
            for _ in range(args.repeats):
                thread = threaded.beta.messages.thread(model="claude-haiku-4-5", max_tokens=100)
                history: list[Any] = []
                for turn in range(args.turns):
                    message = {"role": "user", "content": f"{turn}. {TURN}"}
                    started = time.perf_counter()
                    thread.send(message)  # type: ignore[arg-type]
                    times["thread"].append(time.perf_counter() - started)
                    history.append(message)
                    started = time.perf_counter()
                    reply = whole.messages.create(
                        model="claude-haiku-4-5", max_tokens=100, messages=history
                    )
                    times["whole"].append(time.perf_counter() - started)
                    history.append({"role": "assistant", "content": reply.content})
        finally:
            server.stop()
    medians = {kind: statistics.median(values) * 1000 for kind, values in times.items()}
    lines = [
        "# What a gateway-held thread costs per turn",
        "",
        f"`bench/threads_overhead.py --turns {args.turns} --repeats {args.repeats}` "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}): conversations of "
        f"{args.turns} turns, {args.repeats} each, interleaved turn by turn, in-process "
        "simulator answering at once, conversation store on SQLite, ledger off; loopback, "
        "a shared 2-core machine.",
        "",
        "| client | median ms per turn | bytes sent by the client |",
        "|---|---|---|",
        f"| `beta.messages.thread().send()` (gateway expands and keeps) | "
        f"{medians['thread']:.2f} | {sent['thread']} |",
        f"| `messages.create` with the whole history | {medians['whole']:.2f} | {sent['whole']} |",
        "",
        f"Ratio thread / whole: {medians['thread'] / medians['whole']:.2f}.",
        "",
    ]
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
