"""The data behind each view of the dashboard, aggregated on the server: every answer is a
bounded JSON document (a fixed number of time buckets, the top groups, one page of calls),
never the ledger's rows wholesale.

    overview    calls, errors, truncations, latency/TTFT percentiles per bucket; spend per
                bucket by model, key, team, end user or project; prompt-cache hit ratio
                by route; response-cache hits
    budgets     each configured cap (key, team, project, end user) against today's and
                this month's spend, with the alert thresholds
    rollouts    (the admin API's GET /admin/rollout: rollout/admin_api.py)
    lifecycle   reports/lifecycle_audit.py over the period's calls
    evals       the newest eval results (evals/store.py)

Each is a function of the gateway and the parsed query string; refusals are `BadRequest`s
naming the parameter. Calls (the table, one call, replay) live in dashboard/calls.py.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from tollhouse.config.model import Budget
from tollhouse.errors import BadRequest, NotFound
from tollhouse.evals.store import EvalStoreUnavailable, store_for
from tollhouse.gateway import Gateway
from tollhouse.ports.ledger.base import BucketWidth, LedgerStore, UsageRow
from tollhouse.ports.ledger.call_health import HealthRow, Histogram
from tollhouse.reports.lifecycle_audit import lifecycle_audit
from tollhouse.reports.params import WIDTHS, snap

Params = Mapping[str, Sequence[str]]

RANGES: dict[str, tuple[timedelta, BucketWidth]] = {
    "1h": (timedelta(hours=1), "1m"),
    "24h": (timedelta(days=1), "1h"),
    "7d": (timedelta(days=7), "1h"),
    "30d": (timedelta(days=30), "1d"),
}
SPEND_BY: dict[str, str] = {
    "model": "model_served",
    "key": "key_id",
    "team": "team",
    "user": "end_user",
    "project": "project",
}
TOP_GROUPS = 8  # spend series drawn; the rest are summed as one "other" series
TOP_ROUTES = 50
MAX_KEYS_SHOWN = 500
MAX_EVALS = 200
NO_VERSIONS = "config versions are off: the gateway was started without a config file"
QUANTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))


def one(params: Params, name: str, default: str, allowed: Sequence[str] | None = None) -> str:
    """The last value of `name` (else `default`), refused unless in `allowed`."""
    found = params.get(name)
    value = found[-1] if found else default
    if allowed is not None and value not in allowed:
        raise BadRequest(f"{name}: expected one of {', '.join(allowed)}, got {value!r}", param=name)
    return value


def ledger_of(gateway: Gateway) -> LedgerStore:
    store = gateway.ledger.store
    if store is None:
        raise NotFound("the ledger is off (ledger.backend: off): there are no calls to show")
    return store


def money(amount: Decimal) -> str:
    return format(amount, "f")


def percentiles(histogram: Histogram) -> dict[str, float | None]:
    return {name: _rounded(histogram.percentile(q)) for name, q in QUANTILES}


async def overview(gateway: Gateway, params: Params, now: datetime) -> dict[str, Any]:
    store = ledger_of(gateway)
    range_name = one(params, "range", "24h", list(RANGES))
    spend_by = one(params, "spend_by", "model", list(SPEND_BY))
    span, width = RANGES[range_name]
    buckets = _buckets(now - span, now, width)
    since = buckets[0]
    health = await store.health(since=since, until=now, bucket_width=width)
    spend = await store.aggregate(
        since=since, until=now, bucket_width=width, group_by=[SPEND_BY[spend_by]]
    )
    routes = await store.aggregate(since=since, until=now, group_by=["route"])
    return {
        "range": range_name,
        "bucket_width": width,
        "since": since.isoformat(),
        "until": now.isoformat(),
        "buckets": [int(start.timestamp()) for start in buckets],
        "totals": _totals(health, spend),
        "series": _health_series(buckets, health),
        "spend": {"by": spend_by, **_spend_series(buckets, spend, SPEND_BY[spend_by])},
        "prompt_cache": _prompt_cache(routes),
    }


def _buckets(since: datetime, until: datetime, width: BucketWidth) -> list[datetime]:
    start = snap(since.astimezone(UTC), width)
    step = WIDTHS[width]
    found = []
    while start < until:
        found.append(start)
        start += step
    return found


def _totals(health: list[HealthRow], spend: list[UsageRow]) -> dict[str, Any]:
    calls = sum(row.calls for row in health)
    errors = sum(row.error_calls for row in health)
    truncated = sum(row.truncated_calls for row in health)
    hits = sum(row.cache_hit_calls for row in health)
    latency, ttft = Histogram(), Histogram()
    for row in health:
        latency, ttft = latency.merged(row.latency_ms), ttft.merged(row.ttft_ms)
    return {
        "calls": calls,
        "error_calls": errors,
        "error_rate": errors / calls if calls else None,
        "truncated_calls": truncated,
        "truncation_rate": truncated / calls if calls else None,
        "response_cache_hits": hits,
        "response_cache_hit_rate": hits / calls if calls else None,
        "cost_usd": money(sum((row.cost_usd for row in spend), Decimal(0))),
        "unpriced_calls": sum(row.unpriced_calls for row in spend),
        "commitment_cost_usd": money(sum((row.commitment_cost_usd for row in spend), Decimal(0))),
        "latency_ms": percentiles(latency),
        "ttft_ms": percentiles(ttft),
    }


def _health_series(buckets: list[datetime], health: list[HealthRow]) -> dict[str, Any]:
    by_bucket = {row.bucket: row for row in health}
    series: dict[str, list[Any]] = {
        name: []
        for name in (
            "calls",
            "error_calls",
            "truncated_calls",
            *(f"latency_{q}" for q, _ in QUANTILES),
            *(f"ttft_{q}" for q, _ in QUANTILES),
        )
    }
    for start in buckets:
        row = by_bucket.get(start)
        series["calls"].append(row.calls if row else 0)
        series["error_calls"].append(row.error_calls if row else 0)
        series["truncated_calls"].append(row.truncated_calls if row else 0)
        for name, q in QUANTILES:
            series[f"latency_{name}"].append(
                _rounded(row.latency_ms.percentile(q)) if row else None
            )
            series[f"ttft_{name}"].append(_rounded(row.ttft_ms.percentile(q)) if row else None)
    return series


def _spend_series(buckets: list[datetime], rows: list[UsageRow], column: str) -> dict[str, Any]:
    totals: dict[str | None, Decimal] = {}
    for row in rows:
        name = row.group[column]
        totals[name] = totals.get(name, Decimal(0)) + row.cost_usd
    ranked = sorted(totals, key=lambda name: (-totals[name], name is None, name or ""))
    shown = ranked[:TOP_GROUPS]
    others = ranked[TOP_GROUPS:]
    index = {start: position for position, start in enumerate(buckets)}
    values: dict[str | None, list[Decimal]] = {name: [Decimal(0)] * len(buckets) for name in shown}
    other = [Decimal(0)] * len(buckets)
    for row in rows:
        position = index.get(row.bucket) if row.bucket is not None else None
        if position is None:
            continue
        name = row.group[column]
        target = values.get(name, other)
        target[position] += row.cost_usd
    groups: list[dict[str, Any]] = [
        {"name": name, "cost_usd": money(totals[name]), "values": [float(v) for v in values[name]]}
        for name in shown
    ]
    if others:
        rest = sum((totals[name] for name in others), Decimal(0))
        groups.append(
            {
                "name": f"{len(others)} others",
                "other": True,
                "cost_usd": money(rest),
                "values": [float(v) for v in other],
            }
        )
    return {"groups": groups}


def _prompt_cache(rows: list[UsageRow]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for row in rows:
        prompt = (
            row.input_tokens
            + row.cache_read_tokens
            + row.cache_write_5m_tokens
            + row.cache_write_1h_tokens
        )
        found.append(
            {
                "route": row.group["route"],
                "calls": row.calls,
                "prompt_tokens": prompt,
                "cache_read_tokens": row.cache_read_tokens,
                "cache_write_tokens": row.cache_write_5m_tokens + row.cache_write_1h_tokens,
                "hit_ratio": row.cache_read_tokens / prompt if prompt else None,
            }
        )
    found.sort(key=lambda item: -item["prompt_tokens"])
    return found[:TOP_ROUTES]


async def budgets(gateway: Gateway, now: datetime) -> dict[str, Any]:
    """Every configured cap with the spend it is measured against. Spend here is what
    budgets count: priced calls, commitment-billed ones included, per UTC day and month."""
    store = ledger_of(gateway)
    config = gateway.config
    month_start = snap(now, "1d").replace(day=1)
    day_start = snap(now, "1d")
    spend: dict[str, dict[str | None, tuple[Decimal, Decimal]]] = {}
    for column in ("key_id", "team", "project", "end_user"):
        rows = await store.aggregate(
            since=month_start, until=now, bucket_width="1d", group_by=[column]
        )
        per: dict[str | None, tuple[Decimal, Decimal]] = {}
        for row in rows:
            day, month = per.get(row.group[column], (Decimal(0), Decimal(0)))
            amount = row.cost_usd + row.commitment_cost_usd
            per[row.group[column]] = (
                day + (amount if row.bucket == day_start else 0),
                month + amount,
            )
        spend[column] = per
    caps: list[dict[str, Any]] = []
    keys = await gateway.keys.list()
    for record in keys[:MAX_KEYS_SHOWN]:
        budget = record.budget
        if budget.daily_usd is not None or budget.monthly_usd is not None:
            caps.append(_cap("key", record.key_id, record.name, budget, spend["key_id"]))
    for team, budget in config.spend.team_budgets.items():
        caps.append(_cap("team", team, team, budget, spend["team"]))
    for project, budget in config.spend.project_budgets.items():
        caps.append(_cap("project", project, project, budget, spend["project"]))
    user_budget = config.spend.end_user_budget
    if user_budget.daily_usd is not None or user_budget.monthly_usd is not None:
        users = sorted(
            (name for name in spend["end_user"] if name is not None),
            key=lambda name: -spend["end_user"][name][1],
        )
        for user in users[:TOP_ROUTES]:
            caps.append(_cap("end user", user, user, user_budget, spend["end_user"]))
    return {
        "day": day_start.date().isoformat(),
        "month": month_start.date().isoformat()[:7],
        "thresholds": list(config.alerts.budget.thresholds),
        "caps": caps,
    }


def _cap(
    scope: str,
    scope_id: str,
    name: str,
    budget: Budget,
    spend: dict[str | None, tuple[Decimal, Decimal]],
) -> dict[str, Any]:
    day, month = spend.get(scope_id, (Decimal(0), Decimal(0)))
    doc: dict[str, Any] = {"scope": scope, "id": scope_id, "name": name, "mode": budget.mode}
    for period, cap, spent in (
        ("daily", budget.daily_usd, day),
        ("monthly", budget.monthly_usd, month),
    ):
        doc[period] = (
            None
            if cap is None
            else {
                "cap_usd": money(cap),
                "spend_usd": money(spent),
                "fraction": float(spent / cap) if cap else None,
            }
        )
    return doc


async def lifecycle(gateway: Gateway, params: Params, now: datetime) -> dict[str, Any]:
    range_name = one(params, "range", "30d", list(RANGES))
    span, _ = RANGES[range_name]
    entries = await lifecycle_audit(
        gateway.config, gateway.catalog, gateway.ledger.store, since=now - span, today=now.date()
    )
    return {
        "range": range_name,
        "today": now.date().isoformat(),
        "models": [entry.document() for entry in entries if entry.in_use],
    }


async def evals(gateway: Gateway, params: Params) -> dict[str, Any]:
    limit_text = one(params, "limit", "50")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_EVALS:
        raise BadRequest(f"limit: expected 1..{MAX_EVALS}, got {limit_text!r}", param="limit")
    store = store_for(gateway.config)
    try:
        results = await store.recent(int(limit_text))
    except EvalStoreUnavailable as error:
        return {"results": [], "note": f"the eval results store is unavailable: {error}"}
    finally:
        await store.aclose()
    return {
        "results": [
            {
                "run_id": result.run_id,
                "created_at": result.created_at.isoformat(timespec="seconds"),
                "suite": result.suite_name,
                "target": result.target,
                "model": result.model,
                "variant": result.variant,
                "config_version": result.config_version,
                "passed": result.passed,
                "pass_rate": result.pass_rate,
                "runs": result.runs,
                "cost_per_case_usd": (
                    None if result.cost_per_case_usd is None else money(result.cost_per_case_usd)
                ),
                "latency_p50_ms": result.latency_p50_ms,
                "latency_p95_ms": result.latency_p95_ms,
            }
            for result in results
        ]
    }


def _rounded(value: float | None) -> float | None:
    """A bin's upper edge to 0.1 ms, rounded up: it stays a bound the percentile is under."""
    return None if value is None else math.ceil(value * 10) / 10
