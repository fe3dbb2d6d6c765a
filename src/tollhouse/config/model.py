"""The shape of a configuration snapshot.

Frozen msgspec structs: validated once at load (msgspec's errors name the offending key as a
path like `$.providers.main.type`), immutable afterwards, so a snapshot can be shared by every
request and swapped atomically on reload.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

ProviderType = Literal["anthropic", "openai", "openai-compatible", "simulator"]


class ServerConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: int = 8080


class LimitsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Bounds on what a client may send; checked before anything reaches a provider."""

    max_body_bytes: int = 32 * 1024 * 1024


class TimeoutsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Seconds. `first_byte` bounds the wait for the upstream's status line and headers."""

    connect: float = 10.0
    first_byte: float = 600.0
    read_idle: float = 600.0


class ProviderConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An upstream. `api_key` is a reference (`env:NAME` or `file:PATH`), never the key."""

    type: ProviderType
    base_url: str | None = None
    api_key: str | None = None
    headers: dict[str, str] = {}
    max_connections: int = 512
    simulator: dict[str, Any] = {}


class Deployment(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One place a model is served: a provider and the model id it knows it by."""

    provider: str
    model: str


class ModelRoute(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The model name (or alias) clients send, mapped to its ordered deployments."""

    deployments: tuple[Deployment, ...]


class LoggingConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = False


class GatewayConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    server: ServerConfig = ServerConfig()
    limits: LimitsConfig = LimitsConfig()
    timeouts: TimeoutsConfig = TimeoutsConfig()
    providers: dict[str, ProviderConfig] = {}
    models: dict[str, ModelRoute] = {}
    logging: LoggingConfig = LoggingConfig()
