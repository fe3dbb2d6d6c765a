"""`tollhouse logs` over a real SQLite file and the real PostgreSQL, through the argparse
wiring `commands.logs.register` gives it."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from tests.cli.ledger_cli import DAY, Ledger, record, run_cli

from tollhouse.ports.ledger.sqlite import SQLiteLedgerStore

HEADER = [
    "time",
    "request",
    "id",
    "model",
    "status",
    "in",
    "out",
    "ms",
    "cost",
    "stop",
    "/",
    "error",
]


def request_ids(out: str) -> list[str]:
    """The request id column of a logs table."""
    return [line.split()[2] for line in out.splitlines()[1:]]


def test_the_most_recent_calls_print_oldest_first_under_a_header(
    ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger.fill([record(n) for n in range(30)])
    assert run_cli(["logs", *ledger.options]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == HEADER
    assert request_ids(out) == [f"req_{n:04d}" for n in range(10, 30)]


def test_a_row_shows_time_model_status_tokens_latency_cost_and_outcome(
    ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger.fill(
        [
            record(
                1,
                status=529,
                input_tokens=1234,
                output_tokens=0,
                latency_ms=2500.4,
                cost_usd=None,
                error_type="overloaded_error",
                model_served="m-a",
            ),
        ]
    )
    assert run_cli(["logs", *ledger.options]) == 0
    row = capsys.readouterr().out.splitlines()[1].split()
    assert row == [
        "2026-11-25",
        "01:00:01",
        "req_0001",
        "m-a",
        "529",
        "1,234",
        "0",
        "2,500",
        "unpriced",
        "overloaded_error",
    ]


def test_n_bounds_how_many_calls_print(ledger: Ledger, capsys: pytest.CaptureFixture[str]) -> None:
    ledger.fill([record(n) for n in range(5)])
    assert run_cli(["logs", *ledger.options, "-n", "2"]) == 0
    assert request_ids(capsys.readouterr().out) == ["req_0003", "req_0004"]


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        (["--model", "m-b"], ["req_0002"]),
        (["--key", "k3"], ["req_0003"]),
        (["--user", "ann"], ["req_0001"]),
        (["--team", "ads"], ["req_0002"]),
        (["--project", "p4"], ["req_0004"]),
        (["--status", "404"], ["req_0003"]),
        (["--errors-only"], ["req_0003", "req_0004"]),
        (["--search", "CAPYBARA"], ["req_0001", "req_0004"]),
        (["--since", "2026-11-25T01:00:03Z"], ["req_0003", "req_0004"]),
    ],
)
def test_filters_keep_the_matching_calls(
    ledger: Ledger, capsys: pytest.CaptureFixture[str], option: list[str], expected: list[str]
) -> None:
    ledger.fill(
        [
            record(1, end_user="ann", prompt_text="about capybaras"),
            record(2, model_served="m-b", team="ads"),
            record(3, key_id="k3", status=404),
            record(4, project="p4", status=500, answer_text="A Capybara!"),
        ]
    )
    assert run_cli(["logs", *ledger.options, *option]) == 0
    assert request_ids(capsys.readouterr().out) == expected


def test_json_prints_every_field_one_object_per_line(
    ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger.fill([record(1, cost_usd=Decimal("0.000270"), metadata={"tag": "x"}), record(2)])
    assert run_cli(["logs", *ledger.options, "--json"]) == 0
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert first["request_id"] == "req_0001"
    assert first["cost_usd"] == "0.000270"
    assert first["metadata"] == {"tag": "x"}
    assert first["ts"] == "2026-11-25T01:00:01Z"
    assert set(first) == set(record(0).__struct_fields__)
    assert second["request_id"] == "req_0002"


def test_an_empty_ledger_prints_nothing(ledger: Ledger, capsys: pytest.CaptureFixture[str]) -> None:
    ledger.create()
    assert run_cli(["logs", *ledger.options]) == 0
    assert capsys.readouterr().out == ""


def test_a_bad_since_exits_2_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["logs", "--sqlite", str(tmp_path / "l.db"), "--since", "soon"]) == 2
    assert "tollhouse logs: --since" in capsys.readouterr().err


FOLLOW = """
import argparse, sys
from tollhouse.commands import logs
parser = argparse.ArgumentParser()
logs.register(parser.add_subparsers(required=True))
args = parser.parse_args(sys.argv[1:])
sys.exit(args.run(args))
"""


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def following(
    path: Path, *options: str, sigint_ignored: bool = False
) -> Iterator[subprocess.Popen[str]]:
    """`logs --follow` on the SQLite ledger at `path`, as its own process (started as
    `nohup` would, with SIGINT ignored, if asked); never outlives the test."""
    command = [sys.executable, "-c", FOLLOW, "logs", "--sqlite", str(path), "--follow"]
    follower = subprocess.Popen(
        [*command, *options, "--poll-interval", "0.05"],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=_ignore_sigint if sigint_ignored else None,
    )
    try:
        yield follower
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
        assert follower.stdout is not None
        follower.stdout.close()


def test_follow_prints_new_calls_as_they_arrive_until_ctrl_c(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    ledger = Ledger([], lambda: SQLiteLedgerStore(path))
    now = datetime.now(UTC)
    ledger.fill([record(1, ts=now - timedelta(minutes=1))])
    with following(path) as follower:
        assert follower.stdout is not None
        assert follower.stdout.readline().split() == HEADER
        assert follower.stdout.readline().split()[2] == "req_0001"
        same_instant = now + timedelta(seconds=1)
        ledger.fill([record(2, ts=same_instant), record(3, ts=same_instant)])
        arrived = {follower.stdout.readline().split()[2] for _ in range(2)}
        assert arrived == {"req_0002", "req_0003"}
        ledger.fill([record(4, ts=same_instant)])  # same instant, written later
        assert follower.stdout.readline().split()[2] == "req_0004"
        follower.send_signal(signal.SIGINT)
        assert follower.wait(timeout=10) == 0


def test_follow_starts_from_since_when_nothing_matched_yet(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    ledger = Ledger([], lambda: SQLiteLedgerStore(path))
    ledger.fill([record(1, ts=DAY)])
    with following(path, "--json", "--user", "ann") as follower:
        assert follower.stdout is not None
        ledger.fill([record(2, end_user="ann", ts=datetime.now(UTC) + timedelta(seconds=1))])
        assert json.loads(follower.stdout.readline())["request_id"] == "req_0002"
        follower.send_signal(signal.SIGINT)
        assert follower.wait(timeout=10) == 0


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_follow_started_with_sigint_ignored_still_stops_on_ctrl_c_and_sigterm(
    tmp_path: Path, stop: signal.Signals
) -> None:
    # Under `nohup` or as a shell's background job a process starts with SIGINT ignored:
    # --follow then polled forever, and these tests left it behind.
    path = tmp_path / "ledger.db"
    Ledger([], lambda: SQLiteLedgerStore(path)).fill([record(1, ts=datetime.now(UTC))])
    with following(path, sigint_ignored=True) as follower:
        assert follower.stdout is not None
        assert follower.stdout.readline().split() == HEADER
        assert follower.stdout.readline().split()[2] == "req_0001"
        follower.send_signal(stop)
        assert follower.wait(timeout=10) == 0
