#!/usr/bin/env python3
"""What OpenTelemetry tracing costs per call: the same gateway with `tracing` off and on.

    .venv/bin/pip install -e '.[otel]'            # the tracing extra (in dev already)
    .venv/bin/python bench/tracing.py             # ~2 minutes; writes bench/results/tracing.md
    .venv/bin/python bench/tracing.py --duration 3 --repeats 1   # smoke test

Two `tollhouse serve` processes that differ only in `tracing` (ledger off, the in-process
simulator as upstream, no answer delay, so the gateway's own work is what is measured):

- `off`: tracing off (the default): no opentelemetry module is loaded;
- `on`: every call traced (`sample_ratio: 1.0`): a call span and an attempt span, exported
  over OTLP HTTP/protobuf by the batch processor to a discarding receiver (its own process);
- `sampled`: the same at `sample_ratio: 0.1` (the SDK still starts a non-recording span
  for each call and attempt that is not kept).

Load: a closed loop of `--concurrency` keep-alive connections from this process, each
sending the next request when the last answer has been read whole (no wrk needed), for
non-streamed and streamed Anthropic calls. Interleaved repeats, the order rotated; the
figure to quote is the median over repeats of each arm's req/s over off's in the same repeat,
and the gateway's CPU time per call (its process group, from /proc) beside it.

Then, in this process, where a traced call's cost goes: the spans of one call (a call span,
one attempt, the attributes a served call gets) made and handed to a discarding exporter,
against the same with the official OTLP encoder run on them (what the export thread does).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

import run  # bench/run.py: Service, free_port, clean_env
from tollhouse.accounting import Usage
from tollhouse.call import Call
from tollhouse.config.model import BreakerPolicy
from tollhouse.observability.tracing import CallTracing
from tollhouse.observability.tracing_config import TracingConfig
from tollhouse.providers.simulator import SimulatorProvider
from tollhouse.reliability.circuit_breaker import CircuitBreaker
from tollhouse.simulator.config import SimulatorConfig
from tollhouse.simulator.engine import Simulator
from tollhouse.stages.dispatch.attempt import Answer
from tollhouse.stages.route import Target

ARMS = ("off", "on", "sampled")
RATIOS = {"on": 1.0, "sampled": 0.1}
VENV_BIN = Path(sys.executable).parent
RECEIVER = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Discard(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers["content-length"]))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()
    def do_GET(self):
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Discard).serve_forever()
"""


def config(arm: str, work: Path, receiver_port: int) -> str:
    tracing: dict[str, Any] = {"enabled": False}
    if arm in RATIOS:
        tracing = {
            "enabled": True,
            "endpoint": f"http://127.0.0.1:{receiver_port}/v1/traces",
            "sample_ratio": RATIOS[arm],
        }
    doc: dict[str, Any] = {
        "providers": {"sim": {"type": "simulator", "simulator": {"format": "anthropic"}}},
        "models": {
            "claude-haiku-4-5": {
                "deployments": [{"provider": "sim", "model": "claude-haiku-4-5-20251001"}]
            }
        },
        "lifecycle": {"retired": "allow"},
        "ledger": {"backend": "off"},
        "conversations": {"backend": "off"},
        "keys": {"sqlite_path": str(work / f"keys-{arm}.db")},
        "config_store": {"sqlite_path": str(work / f"config-{arm}.db")},
        "tracing": tracing,
    }
    return json.dumps(doc)  # JSON is YAML


def request(stream: bool, port: int) -> bytes:
    body = json.dumps(
        {
            "model": "claude-haiku-4-5",
            "max_tokens": 100,
            "stream": stream,
            "messages": [{"role": "user", "content": "Hello"}],
        }
    ).encode()
    head = (
        f"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n"
        "content-type: application/json\r\nx-api-key: bench\r\n"
        f"anthropic-version: 2023-06-01\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _read_answer(reader: asyncio.StreamReader) -> int:
    """Read one whole answer (content-length or chunked); its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    lower = head.lower()
    if b"transfer-encoding: chunked" in lower:
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.strip().split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                return status
    length = 0
    for line in lower.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return status


async def drive(port: int, stream: bool, concurrency: int, duration: float) -> dict[str, Any]:
    raw = request(stream, port)
    done = 0
    errors = 0
    stop_at = time.monotonic() + duration

    async def loop() -> None:
        nonlocal done, errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.monotonic() < stop_at:
                writer.write(raw)
                status = await _read_answer(reader)
                if status == 200:
                    done += 1
                else:
                    errors += 1
        finally:
            writer.close()

    started = time.monotonic()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    elapsed = time.monotonic() - started
    return {"rps": done / elapsed, "calls": done, "errors": errors}


class _Discard(SpanExporter):
    def export(self, spans: Any) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class _Encode(SpanExporter):
    """What OTLPSpanExporter does before its HTTP request."""

    def export(self, spans: Any) -> SpanExportResult:
        encode_spans(spans).SerializePartialToString()
        return SpanExportResult.SUCCESS


class _Answered:
    def __init__(self) -> None:
        self.status = 200
        self.headers: dict[str, str] = {}


def in_process(calls: int, repeats: int) -> dict[str, float]:
    """CPU µs per call, medians of `repeats`: the spans of one served call, exported to a
    discarding exporter and to the official encoder."""
    target = Target(
        SimulatorProvider("sim", "anthropic", Simulator(SimulatorConfig())),
        "claude-haiku-4-5-20251001",
        CircuitBreaker(BreakerPolicy()),
    )
    body = b'{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant"}'
    answer = Answer(target, _Answered(), body=body)  # type: ignore[arg-type]

    def one(tracing: CallTracing) -> None:
        call = Call(
            "anthropic", "messages", {"model": "claude-haiku-4-5", "max_tokens": 100}, b"", {}
        )
        trace = tracing.start_call(call)
        call.attempts = 1
        trace.attempt_started(call, target).ended(answer)
        call.served_by = target.label
        call.upstream_model = target.upstream_model
        call.stop_reason = "end_turn"
        call.usage = Usage(input_tokens=12, output_tokens=60)
        tracing.end_call(call, 200)

    figures: dict[str, float] = {}
    for name, exporter in (("discard", _Discard()), ("otlp_encode", _Encode())):
        tracing = CallTracing(TracingConfig(enabled=True, max_queue=calls * 2), exporter)
        runs = []
        for _ in range(repeats):
            # CPU time of the process (the export thread's included), not the wall clock,
            # which on a shared machine counts the other processes' turns
            started = time.process_time()
            for _ in range(calls):
                one(tracing)
            tracing.provider.force_flush()
            runs.append((time.process_time() - started) / calls * 1e6)
        tracing.provider.shutdown()
        figures[name] = statistics.median(runs)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10, help="seconds per run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--calls", type=int, default=5000, help="in-process calls per repeat")
    parser.add_argument("--output", default=str(run.RESULTS / "tracing.md"))
    args = parser.parse_args()

    run.WORK.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="tracing-", dir=run.WORK))
    receiver_port = run.free_port()
    receiver = subprocess.Popen(
        [sys.executable, "-c", RECEIVER, str(receiver_port)], stdin=subprocess.DEVNULL
    )
    services: dict[str, run.Service] = {}
    results: list[dict[str, Any]] = []
    try:
        for arm in ARMS:
            conf = work / f"tollhouse-{arm}.yaml"
            conf.write_text(config(arm, work, receiver_port))
            port = run.free_port()
            services[arm] = run.Service(
                f"tollhouse-tracing-{arm}",
                [str(VENV_BIN / "tollhouse"), "serve", "-c", str(conf), "-p", str(port)],
                port,
                "/readyz",
                run.clean_env(),
            )
            services[arm].start()
        for service in services.values():
            service.wait_ready(60)
        for stream in (False, True):
            for service in services.values():  # warm-up
                asyncio.run(drive(service.port, stream, args.concurrency, 2))
            for repeat in range(args.repeats):
                order = list(services.items())
                order = order[repeat % len(order) :] + order[: repeat % len(order)]
                for arm, service in order:
                    cpu = service.cpu_seconds()
                    res = asyncio.run(drive(service.port, stream, args.concurrency, args.duration))
                    res["cpu_us_per_call"] = (
                        (service.cpu_seconds() - cpu) / res["calls"] * 1e6 if res["calls"] else None
                    )
                    res.update(arm=arm, repeat=repeat, stream=stream)
                    results.append(res)
                    run.log(
                        f"{'stream' if stream else 'whole '} repeat {repeat} {arm:3s} "
                        f"{res['rps']:,.0f} req/s, {res['cpu_us_per_call'] or 0:,.0f} µs CPU/call, "
                        f"{res['errors']} errors"
                    )
    finally:
        for service in services.values():
            service.stop()
        receiver.terminate()
        receiver.wait(10)

    report = render(args, results, in_process(args.calls, args.repeats))
    Path(args.output).write_text(report)
    print(report)
    return 0 if all(r["errors"] == 0 for r in results) else 1


_RATIO_NOTE = {arm: f" ({ratio:g})" for arm, ratio in RATIOS.items()}


def render(
    args: argparse.Namespace, results: list[dict[str, Any]], breakdown: dict[str, float]
) -> str:
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [
        f"# Tracing on vs off ({when})",
        "",
        f"`.venv/bin/python bench/tracing.py --duration {args.duration:g} --repeats "
        f"{args.repeats} --concurrency {args.concurrency}`: the in-process simulator as "
        "upstream, ledger off, a closed loop of keep-alive connections; medians over "
        "interleaved repeats.",
        "",
        "| answer | tracing | req/s | vs off (median of per-repeat ratios) "
        "| gateway CPU µs/call | errors |",
        "|---|---|--:|--:|--:|--:|",
    ]
    for stream in (False, True):
        runs = [r for r in results if r["stream"] == stream]
        by_repeat = {(r["arm"], r["repeat"]): r for r in runs}
        for arm in ARMS:
            ratios = [
                by_repeat[(arm, n)]["rps"] / by_repeat[("off", n)]["rps"]
                for n in range(args.repeats)
                if (arm, n) in by_repeat and ("off", n) in by_repeat
            ]
            mine = [r for r in runs if r["arm"] == arm]
            rps = statistics.median(r["rps"] for r in mine)
            cpus = [r["cpu_us_per_call"] for r in mine if r["cpu_us_per_call"] is not None]
            cpu = f"{statistics.median(cpus):,.0f}" if cpus else "-"
            ratio = f"{statistics.median(ratios):.1%}"
            lines.append(
                f"| {'stream' if stream else 'whole'} | {arm}{_RATIO_NOTE.get(arm, '')} "
                f"| {rps:,.0f} | {ratio} | {cpu} "
                f"| {sum(r['errors'] for r in mine)} |"
            )
    lines += [
        "",
        f"In process, CPU µs per traced call (medians of {args.repeats} runs of {args.calls:,}):",
        f"spans made and handed to a discarding exporter {breakdown['discard']:,.0f}; "
        f"with the official OTLP encoder run on them {breakdown['otlp_encode']:,.0f}.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
