"""The upstream connection pools' state as Prometheus families, read at scrape time.

`tollhouse_upstream_pool_waits` counts the calls that waited for a free connection (a
provider's `max_connections` reached) and `..._wait_seconds` their waiting; the gauges show
the connections open and idle and the calls waiting now. One series per HTTP provider of
the configuration (a simulator in the process has no pool), so the label set is bounded.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from tollhouse.providers.base import Provider
from tollhouse.providers.connection_pool import ConnectionPool
from tollhouse.providers.http_provider import HttpProvider


def provider_pools(providers: Mapping[str, Provider]) -> dict[str, ConnectionPool]:
    return {
        name: provider.transport.pool
        for name, provider in providers.items()
        if isinstance(provider, HttpProvider)
    }


def pool_metrics(pools: Mapping[str, ConnectionPool]) -> Iterator[Metric]:
    waits = CounterMetricFamily(
        "tollhouse_upstream_pool_waits",
        "Calls that waited for a free upstream connection (max_connections reached)",
        labels=["provider"],
    )
    waited = CounterMetricFamily(
        "tollhouse_upstream_pool_wait_seconds",
        "Time calls spent waiting for a free upstream connection",
        labels=["provider"],
    )
    waiting = GaugeMetricFamily(
        "tollhouse_upstream_pool_waiting",
        "Calls waiting for a free upstream connection now",
        labels=["provider"],
    )
    connections = GaugeMetricFamily(
        "tollhouse_upstream_connections",
        "Open upstream connections, by state",
        labels=["provider", "state"],
    )
    for name, pool in pools.items():
        waits.add_metric([name], pool.waits)
        waited.add_metric([name], pool.wait_seconds)
        waiting.add_metric([name], pool.waiting)
        idle = pool.idle_connections
        connections.add_metric([name, "busy"], pool.open_connections - idle)
        connections.add_metric([name, "idle"], idle)
    yield from (waits, waited, waiting, connections)
