"""How long `tollhouse eval` takes for one suite at several `--concurrency` values, side by
side in one run: 40 cases against the in-process gateway on a simulator that waits
`--ttft-ms` before each answer (a stand-in for a model's latency), each setting run
`--repeats` times, interleaved; the median wall time of the command (gateway start, calls,
gateway stop, ledger read, report) per setting, and its speed-up over the first. The
command runs in this process (`tollhouse.cli.main`) after one warm-up run, so the time to
import the SDKs (seconds on a loaded machine, paid once per process) is not in the figures.

    .venv/bin/python bench/eval_concurrency.py [--cases 40] [--ttft-ms 200] [--repeats 3]

Writes bench/results/eval_concurrency.md. Not run by CI; loopback only.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "eval_concurrency.md"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=40)
    parser.add_argument("--ttft-ms", type=float, default=200.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", default="1,4,16")
    args = parser.parse_args()
    settings = [int(value) for value in args.concurrency.split(",")]
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="tollhouse-bench-eval-") as folder:
        directory = Path(folder)
        config, suite = _files(directory, args.cases, args.ttft_ms)
        _run(config, suite, max(settings))  # warm-up: imports, first connections
        times: dict[int, list[float]] = {setting: [] for setting in settings}
        for _ in range(args.repeats):
            for setting in settings:
                times[setting].append(_run(config, suite, setting))
    medians = {setting: statistics.median(values) for setting, values in times.items()}
    base = medians[settings[0]]
    lines = [
        "# `tollhouse eval`: wall time by --concurrency",
        "",
        f"{args.cases} cases, simulator ttft {args.ttft_ms:.0f} ms, in-process gateway, "
        "the command run in the bench's process after a warm-up, "
        f"{args.repeats} interleaved repeats, medians (`bench/eval_concurrency.py`, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}).",
        "",
        "| --concurrency | wall s (median) | runs | speed-up vs first |",
        "|--:|--:|---|--:|",
    ]
    for setting in settings:
        runs = ", ".join(f"{value:.2f}" for value in times[setting])
        lines.append(
            f"| {setting} | {medians[setting]:.2f} | {runs} | {base / medians[setting]:.1f}x |"
        )
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def _files(directory: Path, cases: int, ttft_ms: float) -> tuple[Path, Path]:
    config = {
        "providers": {
            "sim": {
                "type": "simulator",
                "simulator": {
                    "format": "anthropic",
                    "ttft_ms": ttft_ms,
                    "scripts": [{"pattern": "capital", "reply": "Paris."}],
                },
            }
        },
        "models": {
            "claude-sonnet-4-5": {
                "deployments": [{"provider": "sim", "model": "claude-sonnet-4-5-20250929"}]
            }
        },
        "lifecycle": {"retired": "allow"},
        "ledger": {
            "sqlite_path": str(directory / "ledger.db"),
            "spill_path": str(directory / "ledger.spill"),
        },
        "keys": {"sqlite_path": str(directory / "keys.db")},
        "logging": {"level": "error"},
    }
    suite = {
        "model": "claude-sonnet-4-5",
        "cases": [
            {
                "id": f"case-{i}",
                "prompt": f"What is the capital of France? ({i})",
                "checks": [{"contains": "Paris"}, {"max_cost_usd": 1}],
            }
            for i in range(cases)
        ],
    }
    config_path, suite_path = directory / "gateway.yaml", directory / "suite.yaml"
    config_path.write_text(json.dumps(config))
    suite_path.write_text(json.dumps(suite))
    return config_path, suite_path


def _run(config: Path, suite: Path, concurrency: int) -> float:
    from tollhouse.cli import main

    command = ["eval", str(suite), "-c", str(config), "--concurrency", str(concurrency)]
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = main([*command, "--no-store", "--format", "json"])
    took = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"eval exited {code}")
    return took


if __name__ == "__main__":
    raise SystemExit(main())
