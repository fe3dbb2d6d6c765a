"""Configuration: one file, validated once at start into an immutable snapshot."""

from tollhouse.config.loader import (
    ConfigError,
    default_config,
    load_config,
    load_document,
    parse_config,
)
from tollhouse.config.model import (
    Deployment,
    GatewayConfig,
    LedgerConfig,
    LimitsConfig,
    ModelRoute,
    ProviderConfig,
    ServerConfig,
)

__all__ = [
    "ConfigError",
    "Deployment",
    "GatewayConfig",
    "LedgerConfig",
    "LimitsConfig",
    "ModelRoute",
    "ProviderConfig",
    "ServerConfig",
    "default_config",
    "load_config",
    "load_document",
    "parse_config",
]
