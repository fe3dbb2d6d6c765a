"""`tollhouse usage` over a real SQLite file and the real PostgreSQL, through the argparse
wiring `commands.usage.register` gives it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from tests.cli.ledger_cli import DAY, Ledger, record, run_cli

from tollhouse.ports.ledger.sqlite import SQLiteLedgerStore

ONE_DAY = ["--since", "2026-11-25T00:00:00Z", "--until", "2026-11-26T00:00:00Z"]


def lines(out: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines()]


def test_totals_print_one_row_under_the_column_names(
    ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger.fill(
        [
            record(1, cache_write_5m_tokens=3, cache_write_1h_tokens=4, cache_read_tokens=9),
            record(2, status=529, cost_usd=Decimal("0.2")),
        ]
    )
    assert run_cli(["usage", *ledger.options, *ONE_DAY]) == 0
    _, header, row = lines(capsys.readouterr().out)
    assert header == [
        "calls",
        "errors",
        "input",
        "output",
        "cache_write",
        "cache_read",
        "hit_ratio",
        "web_search",
        "cost_usd",
    ]
    assert row == ["2", "1", "200", "20", "7", "9", "4.2%", "0", "0.3"]


def test_by_model_prints_a_row_per_model_and_their_total(
    ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger.fill(
        [
            record(1, model_served="m-a"),
            record(2, model_served="m-b"),
            record(3, model_served="m-a"),
        ]
    )
    assert run_cli(["usage", *ledger.options, *ONE_DAY, "--by", "model"]) == 0
    _, header, *rows = lines(capsys.readouterr().out)
    assert header[0] == "model"
    assert [row[:2] for row in rows] == [["m-a", "2"], ["m-b", "1"], ["total", "3"]]


def test_by_route_and_variant_compares_a_canary_with_its_control(
    ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger.fill(
        [
            record(1, route="support", variant="control"),
            record(2, route="support", variant="canary", status=500),
            record(3, route="support", variant="control"),
            record(4, route="plain"),
        ]
    )
    assert run_cli(["usage", *ledger.options, *ONE_DAY, "--by", "route", "--by", "variant"]) == 0
    _, header, *rows = lines(capsys.readouterr().out)
    assert header[:4] == ["route", "variant", "calls", "errors"]
    assert [row[:4] for row in rows] == [
        ["plain", "-", "1", "0"],
        ["support", "canary", "1", "1"],
        ["support", "control", "2", "0"],
        ["total", "4", "1", "400"],  # input: 100 a record
    ]


def test_by_version_compares_config_versions(
    ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger.fill([record(1, config_version=3), record(2, config_version=4), record(3)])
    assert run_cli(["usage", *ledger.options, *ONE_DAY, "--by", "version"]) == 0
    _, header, *rows = lines(capsys.readouterr().out)
    assert header[:2] == ["version", "calls"]
    assert [row[:2] for row in rows] == [["3", "1"], ["4", "1"], ["-", "1"], ["total", "3"]]


def test_by_prompt_shows_each_system_prompts_cache_hit_ratio(
    ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger.fill(
        [
            record(1, system_prompt_hash="5f2a9c0d1e7b3a44", cache_read_tokens=300),
            record(2, system_prompt_hash="5f2a9c0d1e7b3a44", cache_write_5m_tokens=300),
            record(3),
        ]
    )
    assert run_cli(["usage", *ledger.options, *ONE_DAY, "--by", "prompt"]) == 0
    _, header, *rows = lines(capsys.readouterr().out)
    ratio = header.index("hit_ratio")
    assert header[:2] == ["prompt", "calls"]
    # input: 100 a record; 300 read of 100 + 100 + 300 + 300
    assert [[*row[:2], row[ratio]] for row in rows] == [
        ["5f2a9c0d1e7b3a44", "2", "37.5%"],
        ["-", "1", "0.0%"],
        ["total", "3", "33.3%"],  # 300 read of 900
    ]
    assert run_cli(["usage", *ledger.options, *ONE_DAY, "--by", "prompt", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [row["hit_ratio"] for row in report["rows"]] == [0.375, 0.0]


def test_by_day_and_team_splits_by_both(ledger: Ledger, capsys: pytest.CaptureFixture[str]) -> None:
    ledger.fill(
        [
            record(1, team="ads"),
            record(2, team="search", ts=DAY + timedelta(days=1, hours=2)),
            record(3, team="search"),
        ]
    )
    assert (
        run_cli(
            [
                "usage",
                *ledger.options,
                "--since",
                "2026-11-25",
                "--until",
                "2026-11-27",
                "--by",
                "day",
                "--by",
                "team",
            ]
        )
        == 0
    )
    _, header, *rows = lines(capsys.readouterr().out)
    assert header[:3] == ["day", "team", "calls"]
    assert [row[:3] for row in rows] == [
        ["2026-11-25T00:00:00Z", "ads", "1"],
        ["2026-11-25T00:00:00Z", "search", "1"],
        ["2026-11-26T00:00:00Z", "search", "1"],
        ["total", "3", "0"],
    ]


def test_unknown_costs_show_as_unpriced_calls_not_as_zero(
    ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger.fill([record(1, cost_usd=None), record(2, cost_usd=None), record(3)])
    assert run_cli(["usage", *ledger.options, *ONE_DAY]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("0.1 +2 unpriced")


def test_json_gives_exact_costs_as_strings(
    ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger.fill([record(n, cost_usd=Decimal("0.000001"), key_id=f"k{n % 2}") for n in range(10)])
    assert run_cli(["usage", *ledger.options, *ONE_DAY, "--by", "key", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(row["key"], row["calls"], row["cost_usd"]) for row in report["rows"]] == [
        ("k0", 5, "0.000005"),
        ("k1", 5, "0.000005"),
    ]
    assert report["total"]["cost_usd"] == "0.000010"
    assert report["since"] == "2026-11-25T00:00:00Z"


def test_the_default_period_is_the_last_seven_days(
    ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)
    ledger.fill(
        [
            record(1, ts=now - timedelta(hours=1)),
            record(2, ts=now - timedelta(days=6)),
            record(3, ts=now - timedelta(days=8)),
        ]
    )
    assert run_cli(["usage", *ledger.options, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"]["calls"] == 2


def test_a_relative_since_counts_back_from_now(
    ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)
    ledger.fill([record(1, ts=now - timedelta(hours=1)), record(2, ts=now - timedelta(hours=3))])
    assert run_cli(["usage", *ledger.options, "--since", "2h", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"]["calls"] == 1


def test_a_period_without_calls_says_so(ledger: Ledger, capsys: pytest.CaptureFixture[str]) -> None:
    ledger.create()
    assert run_cli(["usage", *ledger.options, *ONE_DAY]) == 0
    assert capsys.readouterr().out.strip().endswith(": no calls")


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        (["--since", "last tuesday"], "--since"),
        (["--since", "2026-11-25T00:00:00Z", "--until", "2026-11-24T00:00:00Z"], "--until"),
        (["--by", "day", "--by", "hour"], "--by"),
    ],
)
def test_a_bad_option_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], complaint: str
) -> None:
    assert run_cli(["usage", "--sqlite", str(tmp_path / "l.db"), *options]) == 2
    assert f"tollhouse usage: {complaint}" in capsys.readouterr().err


def test_the_ledger_of_a_config_file_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ledger.db"
    Ledger([], lambda: SQLiteLedgerStore(path)).fill([record(1)])
    config = tmp_path / "tollhouse.yaml"
    config.write_text(f"ledger:\n  sqlite_path: {path}\n")
    assert run_cli(["usage", "--config", str(config), *ONE_DAY, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"]["calls"] == 1
