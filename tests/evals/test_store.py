"""Eval results kept on SQLite and PostgreSQL, and "did suite S pass for version V (and
variant X)?", as `rollout promote --require-eval` asks it."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tests.evals.conftest import CAPITALS, EvalSetup

from tollhouse.cli import main
from tollhouse.config import parse_config
from tollhouse.evals.store import (
    EvalResult,
    EvalResultStore,
    PostgresEvalResultStore,
    SQLiteEvalResultStore,
    eval_passed,
)
from tollhouse.evals.suite import load_suite
from tollhouse.gateway import Gateway
from tollhouse.server.app import create_app
from tollhouse.server.runner import BackgroundServer, free_port

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], EvalResultStore]:
    if request.param == "sqlite":
        return lambda: SQLiteEvalResultStore(tmp_path / "results.db")
    conninfo: str = request.getfixturevalue("postgres_conninfo")
    return lambda: PostgresEvalResultStore(conninfo)


def result(**changes: Any) -> EvalResult:
    fields: dict[str, Any] = {
        "run_id": "run-1",
        "created_at": NOW,
        "suite_name": "capitals",
        "suite_hash": "a" * 64,
        "target": "claude-sonnet-4-5",
        "model": "claude-sonnet-4-5",
        "variant": None,
        "config_version": "7",
        "passed": True,
        "pass_rate": 1.0,
        "runs": 2,
        "cost_per_case_usd": Decimal("0.000123456789"),
        "latency_p50_ms": 12.5,
        "latency_p95_ms": 20.0,
        "figures": {"checks": {"contains": 1.0}},
    }
    return EvalResult(**{**fields, **changes})


def using(make_store: Callable[[], EvalResultStore], job: Callable[[EvalResultStore], Any]) -> Any:
    async def run() -> Any:
        store = make_store()
        try:
            return await job(store)
        finally:
            await store.aclose()

    return asyncio.run(run())


def test_a_result_reads_back_as_it_was_stored(make_store: Callable[[], EvalResultStore]) -> None:
    stored = result()

    async def job(store: EvalResultStore) -> EvalResult | None:
        await store.record([stored])
        return await store.latest("capitals")

    assert using(make_store, job) == stored


def test_the_newest_result_for_the_version_and_variant_answers(
    make_store: Callable[[], EvalResultStore],
) -> None:
    later = NOW + timedelta(minutes=5)
    results = [
        result(config_version="7", variant="candidate", passed=True),
        result(config_version="7", variant="control", passed=False, target="control"),
        result(config_version="8", variant="candidate", passed=True, created_at=later),
        result(config_version="7", variant="candidate", passed=False, created_at=later),
    ]

    async def job(store: EvalResultStore) -> list[bool]:
        await store.record(results)
        return [
            await eval_passed(store, "capitals", config_version=7, variant="candidate"),
            await eval_passed(store, "a" * 64, config_version="8", variant="candidate"),
            await eval_passed(store, "capitals", config_version="8"),
            await eval_passed(store, "capitals", config_version="9"),
            await eval_passed(store, "other", config_version="8"),
        ]

    # 7/candidate: its newest run failed; 8: passed; 9 and another suite: never run.
    assert using(make_store, job) == [False, True, True, False, False]


def test_an_eval_run_keeps_its_results_in_the_configs_config_store(
    setup: EvalSetup, capsys: pytest.CaptureFixture[str]
) -> None:
    config_store = setup.directory / "config-store.db"
    setup.config_path.write_text(
        json.dumps({**setup.config, "config_store": {"sqlite_path": str(config_store)}})
    )
    suite_path = setup.suite(CAPITALS)
    options = ["--config", str(setup.config_path), "--config-version", "12"]

    codes = [
        main(["eval", str(suite_path), *options, "--model=claude-sonnet-4-5"]),
        main(["eval", str(suite_path), *options, "--model=claude-haiku-4-5"]),
    ]

    async def ask(store: EvalResultStore) -> tuple[bool, EvalResult | None]:
        passed = await eval_passed(store, str(suite_path), config_version=12)
        return passed, await store.latest(load_suite(suite_path).digest)

    passed, newest = using(lambda: SQLiteEvalResultStore(config_store), ask)
    assert codes == [0, 1]
    assert passed is False  # the newest run for version 12 (on Haiku) failed
    assert newest is not None
    assert (newest.target, newest.passed, newest.pass_rate, newest.runs) == (
        "claude-haiku-4-5",
        False,
        0.5,
        2,
    )
    assert newest.cost_per_case_usd is not None
    assert newest.cost_per_case_usd > 0
    assert newest.figures["cutoffs"]["pass_rate"] == [1.0, 0.5, False]


def test_a_results_database_that_cannot_be_reached_stops_the_eval_before_any_call(
    setup: EvalSetup, capsys: pytest.CaptureFixture[str]
) -> None:
    unreachable = f"host=127.0.0.1 port={free_port()} user=postgres connect_timeout=2"

    code = main(
        [
            "eval",
            str(setup.suite(CAPITALS)),
            "--config",
            str(setup.config_path),
            "--results-postgres",
            unreachable,
        ]
    )

    assert code == 2
    assert capsys.readouterr().err.startswith("tollhouse eval: connection failed: ")
    assert not setup.ledger_path.exists()  # no gateway started, no call made


def test_results_carry_the_config_version_the_running_gateway_served(
    setup: EvalSetup, capsys: pytest.CaptureFixture[str]
) -> None:
    results = setup.directory / "results.db"
    # A gateway keeping to config versions: it records its config as version 1 and names
    # it on every answer (x-tollhouse-config-version).
    gateway = Gateway(parse_config(setup.config), document=setup.config)
    with BackgroundServer(create_app(gateway)) as server:
        code = main(
            [
                "eval",
                str(setup.suite(CAPITALS)),
                f"--base-url={server.url}",
                f"--sqlite={setup.ledger_path}",
                f"--results-sqlite={results}",
            ]
        )

    async def ask(store: EvalResultStore) -> list[bool]:
        return [
            await eval_passed(store, "capitals", config_version=1),
            await eval_passed(store, "capitals", config_version=2),
        ]

    assert code == 0
    assert using(lambda: SQLiteEvalResultStore(results), ask) == [True, False]


def test_a_database_that_had_the_results_table_before_it_joined_the_config_schema(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # what the table's own schema made before
        conn.executescript(
            "CREATE TABLE eval_results (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL,"
            " created_at TEXT NOT NULL, suite_name TEXT NOT NULL, suite_hash TEXT NOT NULL,"
            " target TEXT NOT NULL, model TEXT NOT NULL, variant TEXT, config_version TEXT,"
            " passed INTEGER NOT NULL, pass_rate REAL NOT NULL, runs INTEGER NOT NULL,"
            " cost_per_case_usd TEXT, latency_p50_ms REAL, latency_p95_ms REAL,"
            " figures TEXT NOT NULL);"
            "CREATE INDEX eval_results_suite_hash ON eval_results (suite_hash, created_at);"
            "CREATE INDEX eval_results_suite_name ON eval_results (suite_name, created_at);"
        )
    stored = result()

    async def job(store: EvalResultStore) -> EvalResult | None:
        await store.record([stored])
        return await store.latest("capitals")

    assert using(lambda: SQLiteEvalResultStore(path), job) == stored
