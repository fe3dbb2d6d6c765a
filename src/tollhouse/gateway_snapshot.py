"""What one config version serves with, built whole before it serves a call.

A `Snapshot` holds the parts of a gateway that a config version decides: the config,
the model catalog with its overrides, the router (routes, deployments, per-route
policies) and the lifecycle check. It is immutable once built; a reload builds the next
one beside it and the gateway swaps one reference (`Gateway.swap`), so a call reads the
snapshot once when it starts and keeps it to its end: a stream started on version 3
finishes on version 3's deployments whatever is applied meanwhile.

What must outlive a reload is carried over, never rebuilt: a provider whose entry (and
`timeouts.connect` / `read_idle`, which its transport holds) is unchanged keeps its
adapter and its connection pool, and a deployment on such a provider whose breaker policy
is unchanged keeps its circuit breaker's state. Counters, the ledger writer, the key ring,
metrics and alerts belong to the gateway, not to a snapshot (gateway.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tollhouse.catalog.models import CatalogError, ModelCatalog
from tollhouse.config import ConfigError, GatewayConfig
from tollhouse.providers.base import Provider
from tollhouse.providers.registry import build_provider
from tollhouse.reliability.circuit_breaker import CircuitBreaker
from tollhouse.stages.lifecycle import LifecycleCheck
from tollhouse.stages.route import Router


@dataclass(frozen=True, slots=True)
class Snapshot:
    config: GatewayConfig
    version: int | None  # the config version served; None when none is recorded
    providers: Mapping[str, Provider]
    catalog: ModelCatalog
    router: Router
    lifecycle: LifecycleCheck


@dataclass(frozen=True, slots=True)
class NextSnapshot:
    """A snapshot built to follow another, and the providers of the one before that it
    no longer uses (to be closed once the calls still using them are done)."""

    snapshot: Snapshot
    retired: list[Provider]


def first_snapshot(
    config: GatewayConfig,
    providers: Mapping[str, Provider],
    catalog: ModelCatalog,
    version: int | None = None,
) -> Snapshot:
    """The snapshot a gateway starts on, with the `providers` and `catalog` built from
    `config` (gateway_parts.py)."""
    router = Router(config, providers, catalog)
    return Snapshot(config, version, providers, catalog, router, LifecycleCheck(router, catalog))


def next_snapshot(previous: Snapshot, config: GatewayConfig, version: int | None) -> NextSnapshot:
    """The snapshot of `config` to follow `previous`, carrying over what is unchanged.
    Raises `ConfigError` (naming the key) when a provider can't be built; `previous` is
    untouched then, and keeps serving."""
    kept: dict[str, Provider] = {}
    built: dict[str, Provider] = {}
    transport_same = (
        previous.config.timeouts.connect == config.timeouts.connect
        and previous.config.timeouts.read_idle == config.timeouts.read_idle
    )
    for name, entry in config.providers.items():
        if transport_same and previous.config.providers.get(name) == entry:
            kept[name] = previous.providers[name]
        else:
            built[name] = build_provider(name, entry, config)
    providers = {name: kept.get(name) or built[name] for name in config.providers}
    try:
        catalog = config.catalog.build()
    except CatalogError as exc:  # as gateway_parts.py says it
        raise ConfigError(f"$.catalog: {exc}") from None
    breakers: dict[str, CircuitBreaker] = {}
    if previous.config.reliability.breaker == config.reliability.breaker:
        breakers = {
            label: breaker
            for label, breaker in previous.router.breakers.items()
            if label.split("/", 1)[0] in kept
        }
    router = Router(config, providers, catalog, breakers=breakers)
    lifecycle = LifecycleCheck(router, catalog, calls=previous.lifecycle.calls)
    snapshot = Snapshot(config, version, providers, catalog, router, lifecycle)
    in_use = {id(provider) for provider in providers.values()}
    retired = [p for p in previous.providers.values() if id(p) not in in_use]
    return NextSnapshot(snapshot, retired)
