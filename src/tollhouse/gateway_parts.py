"""The parts of a gateway that a config names, built unopened: providers, key store,
counter store, alerts, model catalog, ledger store, config store, conversation store and
response store (and a check that tracing, when on, can run). No socket is opened and no
file written until the gateway starts.

Building them is how a config is checked beyond its shape (which `config/loader.py` checks
as it loads): every secret reference resolves, simulator options and faults parse, webhook,
Redis and proxy URLs are usable, CA bundles are readable, the
catalog file and overrides validate. `tollhouse serve` builds them to
run and `tollhouse check-config` builds them to throw away, so the two check the same
things and can't drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from tollhouse.catalog.models import CatalogError, ModelCatalog
from tollhouse.config import ConfigError, GatewayConfig
from tollhouse.observability.alerts import Alerts
from tollhouse.observability.tracing_config import check_tracing
from tollhouse.ports.cache.base import ResponseStore
from tollhouse.ports.cache.from_config import response_store_from_config
from tollhouse.ports.config.base import ConfigStore
from tollhouse.ports.config.from_config import config_store_from_config
from tollhouse.ports.conversations.base import ConversationStore
from tollhouse.ports.conversations.from_config import conversation_store_from_config
from tollhouse.ports.counters.base import CounterStore
from tollhouse.ports.counters.from_config import counter_store_from_config
from tollhouse.ports.keys.base import KeyStore
from tollhouse.ports.keys.from_config import key_store_from_config
from tollhouse.ports.ledger.base import LedgerStore
from tollhouse.ports.ledger.from_config import store_from_config
from tollhouse.providers.base import Provider
from tollhouse.providers.registry import build_providers


@dataclass(frozen=True, slots=True)
class GatewayParts:
    providers: dict[str, Provider]
    keys: KeyStore
    counters: CounterStore
    alerts: Alerts
    catalog: ModelCatalog  # the shipped one or `catalog.path`, with the config's overrides
    ledger_store: LedgerStore | None  # None when the ledger is off
    config_store: ConfigStore
    conversations: ConversationStore | None  # None when conversations are off
    response_store: ResponseStore


def build_parts(config: GatewayConfig) -> GatewayParts:
    """The parts `config` names, unopened; `ConfigError` naming the key when one can't be
    built (never quoting a secret)."""
    providers = build_providers(config)
    try:
        check_tracing(config.tracing)
        return GatewayParts(
            providers=providers,
            keys=key_store_from_config(config.keys),
            counters=counter_store_from_config(config.counters),
            alerts=Alerts(config.alerts),
            catalog=config.catalog.build(),
            ledger_store=store_from_config(config.ledger),
            config_store=config_store_from_config(config),
            conversations=conversation_store_from_config(config.conversations),
            response_store=response_store_from_config(config.response_cache),
        )
    except CatalogError as exc:  # names the file or override and the field
        raise ConfigError(f"$.catalog: {exc}") from None
    except ValueError as exc:  # an unresolvable secret reference or unusable URL, by its key
        raise ConfigError(str(exc)) from None
