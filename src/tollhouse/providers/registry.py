"""Build the provider adapters a configuration names, resolving their secrets once."""

from __future__ import annotations

from tollhouse.config import GatewayConfig, ProviderConfig
from tollhouse.config.loader import ConfigError, default_base_url
from tollhouse.config.secrets import SecretError, resolve_secret
from tollhouse.providers.base import Provider
from tollhouse.providers.http_provider import HttpProvider, credential_headers
from tollhouse.providers.http_transport import HttpTransport
from tollhouse.providers.simulator import SimulatorProvider
from tollhouse.simulator.config import SimulatorConfig
from tollhouse.simulator.engine import Simulator
from tollhouse.types import WireFormat


def build_providers(config: GatewayConfig) -> dict[str, Provider]:
    return {name: build_provider(name, pc, config) for name, pc in config.providers.items()}


def build_provider(name: str, pc: ProviderConfig, config: GatewayConfig) -> Provider:
    if pc.type == "simulator":
        options = dict(pc.simulator)
        fmt = options.pop("format", "anthropic")
        try:
            sim_config = SimulatorConfig.from_mapping(options)
        except ValueError as exc:
            raise ConfigError(f"$.providers.{name}.simulator: {exc}") from None
        return SimulatorProvider(name, fmt, Simulator(sim_config))
    api_key = None
    if pc.api_key is not None:
        try:
            api_key = resolve_secret(pc.api_key, key_path=f"$.providers.{name}.api_key")
        except SecretError as exc:
            raise ConfigError(str(exc)) from None
    proxy = pc.proxy
    if proxy is not None and proxy.startswith(("env:", "file:")):
        try:
            proxy = resolve_secret(proxy, key_path=f"$.providers.{name}.proxy")
        except SecretError as exc:
            raise ConfigError(str(exc)) from None
    wire_format: WireFormat = "anthropic" if pc.type == "anthropic" else "openai"
    try:
        transport = HttpTransport(
            default_base_url(pc),
            {**pc.headers, **credential_headers(wire_format, api_key)},
            max_connections=pc.max_connections,
            connect_timeout=config.timeouts.connect,
            read_idle_timeout=config.timeouts.read_idle,
            ca_bundle=pc.ca_bundle,
            proxy=proxy,
            name=name,
        )
    except ValueError as exc:
        # The reason never quotes a proxy URL: it may hold a password.
        raise ConfigError(f"$.providers.{name}: {exc}") from None
    # OpenAI's own API speaks Responses too; an OpenAI-compatible server may not.
    spoken: tuple[WireFormat, ...] = (
        ("openai", "responses") if pc.type == "openai" else (wire_format,)
    )
    return HttpProvider(
        name,
        wire_format,
        transport,
        api_key=api_key,
        simulator_headers=pc.simulator_headers,
        wire_formats=spoken,
    )
