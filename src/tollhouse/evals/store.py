"""Eval results kept in the config store (ports/config: the `config_store:` database, by
default the keys'), one row per target of each run, so a promotion can ask "did suite S
pass for config version V (and variant X)?" (`eval_passed`) and a dashboard can list them.

The table `eval_results` is a step of the config store's schema
(ports/config/migrations.py, `m002_eval_results`), migrated with it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from tollhouse.ports.config.migrations import CONFIG
from tollhouse.ports.postgres_connection import PostgresConnection
from tollhouse.ports.sqlite_connection import SQLiteThread

if TYPE_CHECKING:
    from tollhouse.config import GatewayConfig
    from tollhouse.evals.gate import Verdict
    from tollhouse.evals.suite import Suite

_COLUMNS = (
    "run_id",
    "created_at",
    "suite_name",
    "suite_hash",
    "target",
    "model",
    "variant",
    "config_version",
    "passed",
    "pass_rate",
    "runs",
    "cost_per_case_usd",
    "latency_p50_ms",
    "latency_p95_ms",
    "figures",
)


class EvalStoreUnavailable(Exception):
    """The results database can't be reached or used now."""


@dataclass(frozen=True, slots=True)
class EvalResult:
    """One target of one eval run: what was run, against what, and how it did."""

    run_id: str
    created_at: datetime
    suite_name: str
    suite_hash: str
    target: str
    model: str
    variant: str | None
    config_version: str | None
    passed: bool
    pass_rate: float
    runs: int
    cost_per_case_usd: Decimal | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    figures: dict[str, Any]


class EvalResultStore(Protocol):
    async def open(self) -> None:
        """Connect and bring the schema up to date: how a caller learns now, before an
        eval runs, that its results could not be kept."""
        ...

    async def record(self, results: list[EvalResult]) -> None:
        """Store the results of one run, in one transaction."""
        ...

    async def latest(
        self, suite: str, *, config_version: str | None = None, variant: str | None = None
    ) -> EvalResult | None:
        """The newest result for `suite` (its hash, else its name) that matches
        `config_version` and `variant` when given; None when there is none."""
        ...

    async def recent(self, limit: int) -> list[EvalResult]:
        """The newest `limit` results of every suite, newest first (the dashboard's list)."""
        ...

    async def aclose(self) -> None: ...


async def eval_passed(
    store: EvalResultStore,
    suite: str,
    *,
    config_version: str | int | None = None,
    variant: str | None = None,
) -> bool:
    """Whether the newest eval of `suite` (a suite file's path, its hash or its name) for
    exactly `config_version` (and `variant`, when given) passed; False when there is none.
    This is what `rollout promote --require-eval SUITE` asks."""
    version = None if config_version is None else str(config_version)
    result = await store.latest(suite_key(suite), config_version=version, variant=variant)
    return result is not None and result.passed


def suite_key(suite: str) -> str:
    """A suite file's hash when `suite` is the path of one; else `suite` itself."""
    if os.path.isfile(suite):
        from tollhouse.evals.suite import load_suite

        return load_suite(suite).digest
    return suite


def _where(
    suite: str, config_version: str | None, variant: str | None, placeholder: str
) -> tuple[str, list[Any]]:
    clauses = [f"(suite_hash = {placeholder} OR suite_name = {placeholder})"]
    params: list[Any] = [suite, suite]
    for column, value in (("config_version", config_version), ("variant", variant)):
        if value is not None:
            clauses.append(f"{column} = {placeholder}")
            params.append(value)
    return " AND ".join(clauses), params


_NEWEST = " ORDER BY created_at DESC, id DESC"
_ORDER = _NEWEST + " LIMIT 1"


class SQLiteEvalResultStore:
    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 5.0) -> None:
        self.path = Path(path)
        self._db = SQLiteThread(
            path,
            busy_timeout,
            CONFIG.migrate_sqlite,
            what="eval result store",
            unavailable=EvalStoreUnavailable,
        )

    async def open(self) -> None:
        await self._db.run(self._db.connection)

    async def record(self, results: list[EvalResult]) -> None:
        await self._db.run(self._insert, [_row(result, _sqlite_value) for result in results])

    async def latest(
        self, suite: str, *, config_version: str | None = None, variant: str | None = None
    ) -> EvalResult | None:
        where, params = _where(suite, config_version, variant, "?")
        sql = f"SELECT {', '.join(_COLUMNS)} FROM eval_results WHERE {where}{_ORDER}"
        rows = await self._db.run(self._select, sql, params)
        return _result(rows[0]) if rows else None

    async def recent(self, limit: int) -> list[EvalResult]:
        sql = f"SELECT {', '.join(_COLUMNS)} FROM eval_results{_NEWEST} LIMIT ?"
        return [_result(row) for row in await self._db.run(self._select, sql, [limit])]

    async def aclose(self) -> None:
        await self._db.aclose()

    def _insert(self, rows: list[tuple[Any, ...]]) -> None:
        conn = self._db.connection()
        marks = ", ".join("?" * len(_COLUMNS))
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                f"INSERT INTO eval_results ({', '.join(_COLUMNS)}) VALUES ({marks})", rows
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _select(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        return list(self._db.connection().execute(sql, params))


class PostgresEvalResultStore:
    def __init__(self, conninfo: str, *, connect_timeout: float = 5.0) -> None:
        self._db = PostgresConnection(
            conninfo,
            connect_timeout=connect_timeout,
            prepare=CONFIG.migrate_postgres,
            what="eval result store",
        )

    async def open(self) -> None:
        async with self._db.lock:
            await self._connection()

    async def record(self, results: list[EvalResult]) -> None:
        values = ", ".join("%s::jsonb" if c == "figures" else "%s" for c in _COLUMNS)
        sql = f"INSERT INTO eval_results ({', '.join(_COLUMNS)}) VALUES ({values})"
        async with self._db.lock:
            conn = await self._connection()
            async with conn.transaction():
                cursor = conn.cursor()
                await cursor.executemany(sql, [_row(result, _postgres_value) for result in results])

    async def latest(
        self, suite: str, *, config_version: str | None = None, variant: str | None = None
    ) -> EvalResult | None:
        where, params = _where(suite, config_version, variant, "%s")
        columns = ", ".join("figures::text" if c == "figures" else c for c in _COLUMNS)
        async with self._db.lock:
            conn = await self._connection()
            cursor = await conn.execute(
                f"SELECT {columns} FROM eval_results WHERE {where}{_ORDER}", params
            )
            rows = await cursor.fetchall()
        return _result(rows[0]) if rows else None

    async def recent(self, limit: int) -> list[EvalResult]:
        columns = ", ".join("figures::text" if c == "figures" else c for c in _COLUMNS)
        async with self._db.lock:
            conn = await self._connection()
            cursor = await conn.execute(
                f"SELECT {columns} FROM eval_results{_NEWEST} LIMIT %s", [limit]
            )
            rows = await cursor.fetchall()
        return [_result(row) for row in rows]

    async def aclose(self) -> None:
        await self._db.aclose()

    async def _connection(self) -> Any:
        import psycopg

        try:
            return await self._db.get()
        except psycopg.OperationalError as error:
            raise EvalStoreUnavailable(str(error)) from error


def _row(result: EvalResult, encode: Any) -> tuple[Any, ...]:
    return tuple(encode(column, getattr(result, column)) for column in _COLUMNS)


def _sqlite_value(column: str, value: Any) -> Any:
    if column == "created_at":
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if column == "figures":
        return orjson.dumps(value).decode()
    if column == "cost_per_case_usd":
        return None if value is None else format(value, "f")
    if column == "passed":
        return int(value)
    return value


def _postgres_value(column: str, value: Any) -> Any:
    if column == "figures":
        return orjson.dumps(value).decode()
    return value


def _result(row: tuple[Any, ...]) -> EvalResult:
    values = dict(zip(_COLUMNS, row, strict=True))
    created = values["created_at"]
    if isinstance(created, str):
        created = datetime.fromisoformat(created)
    figures = values["figures"]
    cost = values["cost_per_case_usd"]
    return EvalResult(
        **{
            **values,
            "created_at": created.astimezone(UTC),
            "passed": bool(values["passed"]),
            "cost_per_case_usd": None if cost is None else Decimal(str(cost)),
            "figures": orjson.loads(figures) if isinstance(figures, str | bytes) else figures,
        }
    )


def store_for(config: GatewayConfig) -> EvalResultStore:
    """The results store of a gateway config: the database of its config store."""
    from tollhouse.ports.config.from_config import config_store_from_config
    from tollhouse.ports.config.postgres import PostgresConfigStore
    from tollhouse.ports.config.sqlite import SQLiteConfigStore

    where = config_store_from_config(config)
    if isinstance(where, PostgresConfigStore):
        return PostgresEvalResultStore(where.conninfo)
    assert isinstance(where, SQLiteConfigStore)  # the only other backend
    return SQLiteEvalResultStore(where.path)


def results_of(
    run_id: str,
    now: datetime,
    suite: Suite,
    verdict: Verdict,
    *,
    config_version: str | None = None,
) -> list[EvalResult]:
    """One result per target of `verdict`. The config version is the one every answer of
    the target named (`x-tollhouse-config-version`), else `config_version`; answers that
    named several leave it unset, since no one version passed."""
    results = []
    for target in verdict.targets:
        figures = target.figures
        versions = figures.config_versions
        version = versions[0] if len(versions) == 1 else None if versions else config_version
        low, high, deviation = figures.pass_rate_spread
        results.append(
            EvalResult(
                run_id=run_id,
                created_at=now,
                suite_name=suite.name,
                suite_hash=suite.digest,
                target=figures.target.label,
                model=figures.target.model,
                variant=figures.target.variant,
                config_version=version,
                passed=target.passed,
                pass_rate=figures.pass_rate,
                runs=figures.runs,
                cost_per_case_usd=figures.cost_per_case_usd,
                latency_p50_ms=figures.latency_p50_ms,
                latency_p95_ms=figures.latency_p95_ms,
                figures={
                    "checks": {name: c.ratio for name, c in figures.checks.items()},
                    "cutoffs": {c.name: [c.required, c.actual, c.holds] for c in target.cutoffs},
                    "pass_rate_spread": [low, high, deviation],
                    "judge_cost_usd": format(figures.judge_cost_usd, "f"),
                    "calls_cost_usd": format(figures.calls_cost_usd, "f"),
                    "config_versions": list(versions),
                    "served_variants": list(figures.served_variants),
                },
            )
        )
    return results
