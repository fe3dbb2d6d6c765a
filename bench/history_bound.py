#!/usr/bin/env python3
"""CPU of the history bound (stages/shape/history_bound.py) on one long conversation, in
process, beside the count every bounded call pays anyway (`request_input_tokens`, which the
input limits reuse from the bound):

    .venv/bin/python bench/history_bound.py

The conversation: a 2,000-character system prompt, a task, then rounds of tool call, tool
result, answer and question (4 messages each), cut to `--bound` estimated tokens. Medians
of `--repeats` runs of `--calls` trims each; the ratio is trim / count in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from tollhouse.config.model import HistoryBound
from tollhouse.stages.shape.history_bound import trim_history
from tollhouse.tokens.estimate import request_input_tokens
from tollhouse.wire.formats import ANTHROPIC


def conversation(rounds: int) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "TASK " + "x" * 400}]
    for i in range(rounds):
        use = {"type": "tool_use", "id": f"t{i}", "name": "look", "input": {"q": i}}
        result = {"type": "tool_result", "tool_use_id": f"t{i}", "content": "r" * 800}
        messages += [
            {"role": "assistant", "content": [use]},
            {"role": "user", "content": [result]},
            {"role": "assistant", "content": "a" * 400},
            {"role": "user", "content": "q" * 400},
        ]
    return {"model": "m", "max_tokens": 10, "system": "s" * 2000, "messages": messages}


def median_seconds(run: Callable[[], object], calls: int, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            run()
        samples.append((time.perf_counter() - start) / calls)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--bound", type=int, default=8000)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    body = conversation(args.rounds)
    bound = HistoryBound(max_input_tokens=args.bound)
    estimate = request_input_tokens(body)
    count = median_seconds(lambda: request_input_tokens(body), args.calls, args.repeats)
    trim = median_seconds(
        lambda: trim_history(ANTHROPIC, body, bound, estimate), args.calls, args.repeats
    )
    cut = trim_history(ANTHROPIC, body, bound, estimate)
    assert cut is not None
    print(
        f"{len(body['messages'])} messages, {estimate} estimated tokens, bound {args.bound}: "
        f"{len(cut.dropped)} dropped ({cut.tokens_removed} tokens)"
    )
    print(f"count (request_input_tokens) median {count * 1e6:.0f} us")
    print(f"trim (trim_history, count given) median {trim * 1e6:.0f} us")
    print(f"ratio trim / count {trim / count:.2f}")


if __name__ == "__main__":
    main()
