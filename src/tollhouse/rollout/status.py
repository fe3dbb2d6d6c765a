"""`tollhouse rollout status`: each route with variants, their
weights, the guardrails' figures of each canary against the control, and the last change
of the route's weights.

The figures are judged (rollout/guardrails.py) over the ledger's calls of the guardrails'
window, so they cover every gateway process writing to it; the quality score, which the
ledger does not hold, comes from the answering gateway's own monitor when there is one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from tollhouse.config import GatewayConfig, parse_config
from tollhouse.config_versions.changes import ConfigChanges
from tollhouse.ports.config.base import ConfigVersion
from tollhouse.ports.ledger.base import LedgerStore
from tollhouse.ports.ledger.record import CallRecord
from tollhouse.rollout.guardrails import Verdict, judge
from tollhouse.rollout.monitor import GuardrailMonitor
from tollhouse.rollout.window import ArmWindow, Sample

# At most this many of a route's calls are read from the ledger for one status.
MAX_CALLS_READ = 100_000


def sample_of(record: CallRecord) -> Sample:
    status = record.status
    return Sample(
        at=record.ts.timestamp(),
        error=status >= 500 or (status == 429 and record.attempts > 0),
        truncated=record.truncated,
        latency=record.latency_ms / 1000,
        ttft=None if record.ttft_ms is None else record.ttft_ms / 1000,
        cost=None if record.cost_usd is None else float(record.cost_usd),
    )


async def ledger_windows(
    ledger: LedgerStore, config: GatewayConfig, route: str, now: datetime
) -> dict[str, ArmWindow]:
    """Each variant of `route`'s calls in the ledger over its guardrails' window."""
    entry = config.models[route]
    seconds = entry.guardrails.window_seconds
    windows = {name: ArmWindow(seconds) for name in entry.variants}
    records = await ledger.query(
        since=now - timedelta(seconds=seconds),
        filters={"route": route},
        limit=MAX_CALLS_READ,
    )
    for record in records:
        window = windows.get(record.variant or "")
        if window is not None:
            window.add(sample_of(record))
    return windows


async def canary_verdict(
    ledger: LedgerStore, config: GatewayConfig, route: str, variant: str, now: datetime
) -> Verdict:
    entry = config.models[route]
    windows = await ledger_windows(ledger, config, route, now)
    return judge(windows[variant], windows[entry.control], entry.guardrails)


async def newest_status(
    changes: ConfigChanges,
    ledger: LedgerStore | None,
    now: datetime,
    monitor: GuardrailMonitor | None = None,
) -> dict[str, Any]:
    """`rollout_status` of the newest version (`NotFound` before any)."""
    version = await changes.newest()
    history = await changes.store.history(limit=50, before=version.id)
    return await rollout_status(version, history, ledger, now, monitor)


async def rollout_status(
    version: ConfigVersion,
    history: Sequence[ConfigVersion],
    ledger: LedgerStore | None,
    now: datetime,
    monitor: GuardrailMonitor | None = None,
) -> dict[str, Any]:
    """The status of every route with variants at `version` (the newest; `history`: the
    versions before it, newest first, to find each route's last change)."""
    config = parse_config(version.document, source=f"config version {version.id}")
    routes = []
    for name, entry in config.models.items():
        if not entry.variants:
            continue
        windows = await ledger_windows(ledger, config, name, now) if ledger else None
        variants = []
        for variant, settings in entry.variants.items():
            doc: dict[str, Any] = {
                "variant": variant,
                "weight": settings.weight,
                "control": variant == entry.control,
            }
            if windows is not None:
                doc["calls"] = len(windows[variant].samples)
                if variant != entry.control:
                    _add_score(windows, monitor, name, variant, entry.control)
                    verdict = judge(windows[variant], windows[entry.control], entry.guardrails)
                    doc["enough_calls"] = verdict.enough
                    doc["guardrails"] = [figure.as_json() for figure in verdict.figures]
            variants.append(doc)
        routes.append(
            {
                "route": name,
                "window_seconds": entry.guardrails.window_seconds,
                "guardrails": entry.guardrails.enabled,
                "variants": variants,
                "last_change": _last_change(name, version, history),
                "rollbacks": _rollbacks(monitor, name),
            }
        )
    return {"config_version": version.id, "routes": routes}


def _add_score(
    windows: dict[str, ArmWindow],
    monitor: GuardrailMonitor | None,
    route: str,
    variant: str,
    control: str,
) -> None:
    if monitor is None:
        return
    for arm in (variant, control):
        live = monitor.windows.get((route, arm))
        if live is not None:
            windows[arm].scores.extend(live.scores)


def _weights(version: ConfigVersion, route: str) -> dict[str, Any] | None:
    entry = (version.document.get("models") or {}).get(route)
    variants = entry.get("variants") if isinstance(entry, dict) else None
    if not isinstance(variants, dict):
        return None
    return {name: (v or {}).get("weight") for name, v in variants.items()}


def _last_change(
    route: str, version: ConfigVersion, history: Sequence[ConfigVersion]
) -> dict[str, Any] | None:
    """The newest version that changed `route`'s weights (or first gave it variants)."""
    later = version
    for earlier in history:
        if _weights(earlier, route) != _weights(later, route):
            return _change(later)
        later = earlier
    return _change(later)


def _change(version: ConfigVersion) -> dict[str, Any]:
    return {
        "version": version.id,
        "at": version.created_at.isoformat(timespec="seconds"),
        "source": version.source,
        "note": version.note,
    }


def _rollbacks(monitor: GuardrailMonitor | None, route: str) -> list[dict[str, Any]]:
    if monitor is None:
        return []
    return [
        {
            "variant": r.variant,
            "weight": r.weight,
            "config_version": r.version,
            "reason": r.reason,
        }
        for r in monitor.rollbacks
        if r.route == route
    ]
