"""The lifecycle audit (`tollhouse audit`): every model the configured routes name and every
model the ledger shows in use over a period, with its lifecycle state on a given day, its
retirement date, the days left, its replacement, and the calls and spend on it by key and
team.

A model is found by its catalog entry (an alias, such as a dated snapshot an upstream
answered with, counts for its entry). A ledger row counts for the model that served it;
a call no upstream served (refused, say because its model retired) counts for the model
of the route it asked for, when a route of that name is configured. Anything else a client
asked for is not a model in use. A model neither the catalog nor the provider knows has
state `unknown`.

`due(entries, within)` is what makes the audit fail: the models in use (named by a route,
or called in the period) that retire within `within` days, or have retired already.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from tollhouse.catalog.models import CatalogModel, ModelCatalog
from tollhouse.config import GatewayConfig
from tollhouse.ports.ledger.base import LedgerStore, UsageRow


@dataclass(slots=True)
class Spend:
    """Calls and spend on one model by one key and team (either may be None)."""

    key_id: str | None
    team: str | None
    calls: int = 0
    cost_usd: Decimal = Decimal(0)
    unpriced_calls: int = 0


@dataclass(slots=True)
class AuditEntry:
    model: str  # the catalog id, else the name as routes or the ledger give it
    state: str  # active | legacy | deprecated | retired | unknown
    retires_on: date | None
    days_left: int | None
    replacement: str | None
    routes: list[str] = field(default_factory=list)  # configured routes naming the model
    spend: list[Spend] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return sum(row.calls for row in self.spend)

    @property
    def cost_usd(self) -> Decimal:
        return sum((row.cost_usd for row in self.spend), Decimal(0))

    @property
    def unpriced_calls(self) -> int:
        return sum(row.unpriced_calls for row in self.spend)

    @property
    def in_use(self) -> bool:
        return bool(self.routes) or self.calls > 0

    def document(self) -> dict[str, Any]:
        """The entry as JSON: dates as ISO strings, money as exact decimal strings."""
        return {
            "model": self.model,
            "state": self.state,
            "retires_on": self.retires_on.isoformat() if self.retires_on else None,
            "days_left": self.days_left,
            "replacement": self.replacement,
            "routes": self.routes,
            "calls": self.calls,
            "cost_usd": format(self.cost_usd, "f"),
            "unpriced_calls": self.unpriced_calls,
            "by_key_team": [
                {
                    "key_id": row.key_id,
                    "team": row.team,
                    "calls": row.calls,
                    "cost_usd": format(row.cost_usd, "f"),
                    "unpriced_calls": row.unpriced_calls,
                }
                for row in self.spend
            ],
        }


async def lifecycle_audit(
    config: GatewayConfig,
    catalog: ModelCatalog,
    store: LedgerStore | None,
    *,
    since: datetime,
    today: date,
) -> list[AuditEntry]:
    """The audit of `config`'s routes and, when `store` is given, of the calls it holds
    from `since` on; entries ordered by days left (soonest first, none last), then name."""
    entries: dict[str, AuditEntry] = {}

    def entry_of(name: str) -> AuditEntry:
        known = catalog.get(name)
        model = known.id if known else name
        found = entries.get(model)
        if found is None:
            found = entries[model] = _entry(model, known, today)
        return found

    for route, settings in config.models.items():
        for deployment in settings.deployments:
            audited = entry_of(deployment.model)
            if route not in audited.routes:
                audited.routes.append(route)
    if store is not None:
        rows = await store.aggregate(
            since=since, group_by=("model_served", "model_requested", "key_id", "team")
        )
        for row in rows:
            served = row.group["model_served"]
            requested = row.group["model_requested"]
            if served is None and requested in config.models:
                served = config.models[requested].deployments[0].model
            if served is None:
                continue
            _add(entry_of(served).spend, row.group["key_id"], row.group["team"], row)
    return sorted(entries.values(), key=_order)


def due(entries: Sequence[AuditEntry], within: int) -> list[AuditEntry]:
    """The entries in use that retire within `within` days (or have retired)."""
    return [
        entry
        for entry in entries
        if entry.in_use and entry.days_left is not None and entry.days_left <= within
    ]


def _entry(model: str, known: CatalogModel | None, today: date) -> AuditEntry:
    if known is None:
        return AuditEntry(model, "unknown", None, None, None)
    lifecycle = known.lifecycle
    retires_on = lifecycle.retires_on
    return AuditEntry(
        model=model,
        state=lifecycle.effective_state(today),
        retires_on=retires_on,
        days_left=None if retires_on is None else (retires_on - today).days,
        replacement=lifecycle.replacement,
    )


def _add(spend: list[Spend], key_id: str | None, team: str | None, row: UsageRow) -> None:
    for existing in spend:
        if existing.key_id == key_id and existing.team == team:
            break
    else:
        existing = Spend(key_id, team)
        spend.append(existing)
    existing.calls += row.calls
    existing.cost_usd += row.cost_usd
    existing.unpriced_calls += row.unpriced_calls


def _order(entry: AuditEntry) -> tuple[bool, int, str]:
    return (entry.days_left is None, entry.days_left or 0, entry.model)
