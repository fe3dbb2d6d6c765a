#!/usr/bin/env python3
"""What automatic prompt-cache breakpoints save, from the ledger, on a replayed workload.

    .venv/bin/python bench/prompt_cache_savings.py                  # 1,000 conversations
    .venv/bin/python bench/prompt_cache_savings.py --conversations 50   # smoke test

Multi-turn conversations (`--turns` user turns each, every turn re-sending the whole
conversation, as an SDK does) sharing one system prompt of about 3,000 tokens, through the
official Anthropic SDK against a gateway whose route is served by the built-in simulator
(claude-sonnet-4-6: $3 input, $3.75 cache write, $0.30 cache read per million). The same
workload runs twice, side by side in one process: the route without `prompt_cache`
(baseline) and with `prompt_cache: {auto: true}`. Cost and tokens are the ledger's sums
(`LedgerStore.aggregate`), so they are exactly what `tollhouse usage` reports. The
simulator's usage is deterministic, so repeats give the same figures; `--repeats` is there
to show it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic

from tollhouse.config import parse_config
from tollhouse.gateway import Gateway
from tollhouse.ports.ledger.sqlite import SQLiteLedgerStore
from tollhouse.server.app import create_app
from tollhouse.server.runner import BackgroundServer

MODEL = "claude-sonnet-4-6"
# About 3,000 tokens by the gateway's estimate (4 bytes a token).
SYSTEM = ("You are the support assistant of a furniture shop. " * 240).strip()


def config(directory: Path, auto: bool) -> dict[str, Any]:
    route: dict[str, Any] = {"deployments": [{"provider": "sim", "model": MODEL}]}
    if auto:
        route["prompt_cache"] = {"auto": True}
    return {
        "providers": {"sim": {"type": "simulator", "simulator": {"format": "anthropic"}}},
        "models": {"support": route},
        "lifecycle": {"retired": "allow"},
        "ledger": {"sqlite_path": str(directory / "ledger.db"), "spill_path": None},
        "keys": {"sqlite_path": str(directory / "keys.db")},
        "conversations": {"backend": "off"},
        "alerts": {"model_retirement": {"enabled": False}},
    }


async def conversation(client: anthropic.AsyncAnthropic, n: int, turns: int) -> None:
    messages: list[Any] = []
    for turn in range(turns):
        messages.append(
            {"role": "user", "content": f"Customer {n}, question {turn}: where is order {n}?"}
        )
        answer = await client.messages.create(
            model="support", max_tokens=40, system=SYSTEM, messages=messages
        )
        messages.append({"role": "assistant", "content": answer.content[0].text})  # type: ignore[union-attr]


async def workload(url: str, conversations: int, turns: int, concurrency: int) -> None:
    client = anthropic.AsyncAnthropic(base_url=url, api_key="unused", max_retries=0)
    queue = list(range(conversations))

    async def worker() -> None:
        while queue:
            await conversation(client, queue.pop(), turns)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    await client.close()


async def ledger_sums(path: Path) -> dict[str, Any]:
    store = SQLiteLedgerStore(path)
    try:
        now = datetime.now(UTC)
        (row,) = await store.aggregate(since=now - timedelta(days=1), until=now + timedelta(days=1))
    finally:
        await store.aclose()
    prompt = (
        row.input_tokens
        + row.cache_write_5m_tokens
        + row.cache_write_1h_tokens
        + row.cache_read_tokens
    )
    return {
        "calls": row.calls,
        "cost": row.cost_usd,
        "input": row.input_tokens,
        "write": row.cache_write_5m_tokens + row.cache_write_1h_tokens,
        "read": row.cache_read_tokens,
        "hit_ratio": row.cache_read_tokens / prompt if prompt else 0.0,
    }


def run_arm(auto: bool, conversations: int, turns: int, concurrency: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tollhouse-bench-") as name:
        directory = Path(name)
        gateway = Gateway(parse_config(config(directory, auto)))
        with BackgroundServer(create_app(gateway)) as server:
            asyncio.run(workload(server.url, conversations, turns, concurrency))
        return asyncio.run(ledger_sums(directory / "ledger.db"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    runs: dict[str, list[dict[str, Any]]] = {"off": [], "auto": []}
    for _ in range(args.repeats):
        for arm in ("off", "auto"):  # interleaved, side by side in each repeat
            runs[arm].append(
                run_arm(arm == "auto", args.conversations, args.turns, args.concurrency)
            )
    rows = []
    for arm, results in runs.items():
        cost = statistics.median(r["cost"] for r in results)
        rows.append((arm, results[0], cost))
    baseline = rows[0][2]
    lines = [
        "# Automatic prompt-cache breakpoints: cost from the ledger",
        "",
        f"Command: `.venv/bin/python bench/prompt_cache_savings.py --conversations "
        f"{args.conversations} --turns {args.turns} --repeats {args.repeats}`",
        "",
        f"{args.conversations} conversations x {args.turns} user turns, a shared system "
        f"prompt of about 3,000 tokens, claude-sonnet-4-6 on the simulator; medians of "
        f"{args.repeats} repeat(s) (the simulator's usage is deterministic).",
        "",
        "| route | calls | uncached input | cache writes | cache reads | hit ratio "
        "| cost (USD) | vs off |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for arm, r, cost in rows:
        ratio = Decimal(cost) / Decimal(baseline) if baseline else Decimal(0)
        lines.append(
            f"| {arm} | {r['calls']:,} | {r['input']:,} | {r['write']:,} | {r['read']:,} | "
            f"{r['hit_ratio']:.1%} | {cost:.4f} | {ratio:.3f} |"
        )
    if args.repeats > 1:
        same = all(len({str(r["cost"]) for r in results}) == 1 for results in runs.values())
        lines += ["", f"Repeats identical: {same}."]
    lines += ["", "Cost includes the output tokens, the same in both arms."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out is not None:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
