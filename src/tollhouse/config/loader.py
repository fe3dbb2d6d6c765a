"""Load, validate and default a configuration.

Errors name the key and say what is expected (`$.models.fast.deployments[0].provider: unknown
provider 'x'; defined providers: a, b`), and the process refuses to start on any of them.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import msgspec

from tollhouse.catalog.models import CatalogError, load_catalog
from tollhouse.config.candidate_rules import check_candidates
from tollhouse.config.document import Document, DocumentError, read_document
from tollhouse.config.flags import FlagError, resolve_flags
from tollhouse.config.guardrail_checks import check_input_guardrails
from tollhouse.config.input_guardrails import InputGuardrailConfig
from tollhouse.config.model import (
    Deployment,
    GatewayConfig,
    LoggingConfig,
    ModelRoute,
    ProviderConfig,
    ServerConfig,
    Variant,
)
from tollhouse.config.variant_checks import check_variants
from tollhouse.providers.proxy_selection import parse_proxy_url
from tollhouse.providers.tls_context import check_ca_bundle

# What `tollhouse serve` with no config file feels like when it answers from the simulator:
# a realistic pace, so streaming is visible, yet quick enough to try by hand.
DEFAULT_SIMULATOR_PACE = {"ttft_ms": 150.0, "tokens_per_second": 200.0}

_DEFAULT_BASE_URLS = {
    "anthropic": "https://api.anthropic.com",
    "openai": "https://api.openai.com/v1",
}


_T = TypeVar("_T")


class ConfigError(ValueError):
    pass


def load_config(path: str | Path) -> GatewayConfig:
    return parse_config(load_document(path), source=str(path))


def load_document(path: str | Path) -> Document:
    """The config file at `path` as a document (config/document.py), unvalidated;
    `ConfigError` when it can't be read or parsed."""
    try:
        return read_document(path)
    except DocumentError as exc:
        raise ConfigError(str(exc)) from None


def parse_config(data: Any, *, source: str = "config") -> GatewayConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    try:
        data = resolve_flags(data, source)
    except FlagError as exc:
        raise ConfigError(str(exc)) from None
    data = _read_off_as_word(data)
    # Entries of the name-keyed sections are checked one by one first, so that an error names
    # the entry (`$.providers.main.type`) where msgspec alone would say `$.providers[...]`.
    sections: tuple[tuple[str, Any], ...] = (
        ("providers", ProviderConfig),
        ("models", ModelRoute),
        ("input_guardrails", InputGuardrailConfig),
    )
    for section, entry_type in sections:
        entries = data.get(section)
        if isinstance(entries, dict):
            for name, entry in entries.items():
                variants = entry.get("variants") if isinstance(entry, dict) else None
                if isinstance(variants, dict):
                    for variant_name, variant in variants.items():
                        where = f"$.{section}.{name}.variants.{variant_name}"
                        _convert(variant, Variant, where, source)
                _convert(entry, entry_type, f"$.{section}.{name}", source)
    config = _convert(data, GatewayConfig, "$", source)
    _check(config, source)
    return config


# Settings whose value may be the word `off`, which YAML 1.1 (PyYAML) reads as false (and
# every provider's `proxy`).
_OFF_WORD_SETTINGS = (
    ("ledger", "backend"),
    ("ledger", "text"),
    ("logging", "call_log"),
    ("conversations", "backend"),
)


def _read_off_as_word(data: dict[str, Any]) -> dict[str, Any]:
    """`backend: off` as the user meant it, not as the boolean YAML makes of it."""
    for section, key in _OFF_WORD_SETTINGS:
        values = data.get(section)
        if isinstance(values, dict) and values.get(key) is False:
            data = {**data, section: {**values, key: "off"}}
    providers = data.get("providers")
    if isinstance(providers, dict):
        data = {
            **data,
            "providers": {
                name: {**entry, "proxy": "off"}
                if isinstance(entry, dict) and entry.get("proxy") is False
                else entry
                for name, entry in providers.items()
            },
        }
    return data


def _convert(value: Any, target: type[_T], path: str, source: str) -> _T:
    try:
        return msgspec.convert(value, target, strict=False)
    except msgspec.ValidationError as exc:
        message = str(exc)
        if "- at `$" in message:
            message = message.replace("- at `$", f"- at `{path}", 1)
        else:
            message = f"{message} - at `{path}`"
        raise ConfigError(f"{source}: {message}") from None


def _check(config: GatewayConfig, source: str) -> None:
    for name, provider in config.providers.items():
        key = f"$.providers.{name}"
        if provider.type == "openai-compatible" and not provider.base_url:
            raise ConfigError(f"{source}: {key}.base_url: required for type openai-compatible")
        if provider.api_key is not None:
            _require_reference(
                provider.api_key,
                f"{source}: {key}.api_key",
                "; secrets are never written inline in the config",
            )
        _check_transport(provider, f"{source}: {key}")
        if provider.type == "simulator":
            fmt = provider.simulator.get("format", "anthropic")
            if fmt not in ("anthropic", "openai"):
                raise ConfigError(f"{source}: {key}.simulator.format: expected anthropic or openai")
    try:
        catalog = (
            config.catalog.build(read_path=False)
            if any(route.variants for route in config.models.values())
            else None
        )
    except CatalogError as exc:
        raise ConfigError(f"{source}: $.catalog: {exc}") from None
    for model, route in config.models.items():
        if catalog is not None:
            problem = check_variants(config, model, route, catalog)
            if problem is not None:
                raise ConfigError(f"{source}: {problem}")
        if not route.deployments:
            raise ConfigError(f"{source}: $.models.{model}.deployments: at least one is required")
        for i, deployment in enumerate(route.deployments):
            if deployment.provider not in config.providers:
                known = ", ".join(sorted(config.providers)) or "(none)"
                raise ConfigError(
                    f"{source}: $.models.{model}.deployments[{i}].provider: unknown provider "
                    f"{deployment.provider!r}; defined providers: {known}"
                )
        chains = [(f"$.models.{model}.deployments", route.deployments)] + [
            (f"$.models.{model}.variants.{name}.deployments", variant.deployments)
            for name, variant in route.variants.items()
            if variant.deployments is not None
        ]
        for where, chain in chains:
            problem = check_candidates(chain)
            if problem is not None:
                raise ConfigError(f"{source}: {where}{problem}")
        _check_truncation(config, model, route, source)
        _check_history(config, model, route, source)
    _check_schemas(config, source)
    problem = check_input_guardrails(config)
    if problem is not None:
        raise ConfigError(f"{source}: {problem}")
    if not 0 < config.server.port < 65536:
        raise ConfigError(f"{source}: $.server.port: expected 1..65535")
    ledger = config.ledger
    stores = (("ledger", ledger), ("keys", config.keys), ("conversations", config.conversations))
    for section, store in stores:
        if store.backend != "postgres":
            continue
        if store.postgres is None:
            raise ConfigError(f"{source}: $.{section}.postgres: required when backend is postgres")
        _require_reference(
            store.postgres,
            f"{source}: $.{section}.postgres",
            " to the connection string (it usually holds a password)",
        )
    _check_config_store(config, source)
    if ledger.durability == "synced" and ledger.backend != "off" and not ledger.spill_path:
        raise ConfigError(
            f"{source}: $.ledger.durability: synced keeps records in the spill file; "
            "set ledger.spill_path"
        )


def _check_schemas(config: GatewayConfig, source: str) -> None:
    """Every schema of `schemas` compiles, and every route's `structured_output.schema`
    names one of them."""
    from tollhouse.stages.check.json_schemas import SchemaError, compile_schema

    for name, schema in config.schemas.items():
        try:
            compile_schema(schema)
        except SchemaError as exc:
            raise ConfigError(f"{source}: $.schemas.{name}: {exc}") from None
    for model, route in config.models.items():
        wanted = route.structured_output.schema if route.structured_output else None
        if wanted is not None and wanted not in config.schemas:
            known = ", ".join(sorted(config.schemas)) or "(none)"
            raise ConfigError(
                f"{source}: $.models.{model}.structured_output.schema: unknown schema "
                f"{wanted!r}; defined schemas: {known}"
            )


def _check_history(config: GatewayConfig, model: str, route: ModelRoute, source: str) -> None:
    summary = route.history.summary if route.history is not None else None
    if summary is None:
        return
    key = f"{source}: $.models.{model}.history.summary.model"
    if summary.model not in config.models:
        known = ", ".join(sorted(config.models))
        raise ConfigError(f"{key}: {summary.model!r} is no route of this config; routes: {known}")
    summarizer = config.models[summary.model]
    if summary.model == model or summarizer.history is not None:
        raise ConfigError(f"{key}: the summarising route may not bound its own history")


def _check_config_store(config: GatewayConfig, source: str) -> None:
    store = config.config_store
    if store.postgres is not None:
        _require_reference(
            store.postgres,
            f"{source}: $.config_store.postgres",
            " to the connection string (it usually holds a password)",
        )
    if store.backend == "postgres" and store.postgres is None and config.keys.backend != "postgres":
        raise ConfigError(
            f"{source}: $.config_store.postgres: required when config_store.backend is "
            "postgres and the keys store is not (unset, the config store uses the keys')"
        )


def _check_truncation(config: GatewayConfig, model: str, route: ModelRoute, source: str) -> None:
    """`retry_larger` raises a cut answer's `max_tokens` to `truncation.max_tokens_cap`: a cap
    above the route's input limit would ask the upstream for more than a client may ask (and
    than admission priced), so that combination cannot work."""
    policy = route.truncation
    if policy.mode != "retry_larger":
        return
    for where, cap in (
        (
            f"$.models.{model}.input_limits.max_tokens_cap",
            route.input_limits.max_tokens_cap if route.input_limits else None,
        ),
        ("$.limits.input.max_tokens_cap", config.limits.input.max_tokens_cap),
    ):
        if cap is not None and policy.max_tokens_cap > cap:
            raise ConfigError(
                f"{source}: $.models.{model}.truncation.max_tokens_cap: {policy.max_tokens_cap} "
                f"is above {where} ({cap}); retry_larger would ask the upstream for more than "
                f"a client may: set it to at most {cap}"
            )


def _check_transport(provider: ProviderConfig, where: str) -> None:
    if provider.ca_bundle is not None:
        problem = check_ca_bundle(provider.ca_bundle)
        if problem is not None:
            raise ConfigError(f"{where}.ca_bundle: {problem}")
    proxy = provider.proxy
    if proxy is None or proxy == "off" or proxy.startswith(("env:", "file:")):
        return
    try:
        parse_proxy_url(proxy)
        inline_password = urlsplit(proxy).password is not None
    except ValueError as exc:
        raise ConfigError(f"{where}.proxy: {exc}; or `off`") from None
    if inline_password:
        raise ConfigError(
            f"{where}.proxy: the URL holds a password; put the URL in a secret reference "
            "`env:NAME` or `file:PATH` instead (secrets are never written inline in the config)"
        )


def _require_reference(value: str, where: str, why: str) -> None:
    """Secrets are named by reference only (config/secrets.py); `where` names the key."""
    if not value.startswith(("env:", "file:")):
        raise ConfigError(f"{where}: expected a secret reference `env:NAME` or `file:PATH`{why}")


def default_base_url(provider: ProviderConfig) -> str:
    if provider.base_url:
        return provider.base_url.rstrip("/")
    return _DEFAULT_BASE_URLS["anthropic" if provider.type == "anthropic" else "openai"]


def default_config(environ: dict[str, str] | None = None) -> GatewayConfig:
    """The embedded defaults: every catalog model, served by the real provider when its key is
    in the environment, else by the in-process simulator."""
    env = os.environ if environ is None else environ
    providers: dict[str, ProviderConfig] = {}
    family_provider: dict[str, str] = {}
    for family, var in (("anthropic", "ANTHROPIC_API_KEY"), ("openai", "OPENAI_API_KEY")):
        if env.get(var):
            providers[family] = ProviderConfig(type=family, api_key=f"env:{var}")  # type: ignore[arg-type]
            family_provider[family] = family
        else:
            name = f"simulator-{family}"
            providers[name] = ProviderConfig(
                type="simulator", simulator={"format": family, **DEFAULT_SIMULATOR_PACE}
            )
            family_provider[family] = name
    models: dict[str, ModelRoute] = {}
    today = datetime.now(UTC).date()
    for entry in load_catalog().models:
        if entry.lifecycle.effective_state(today) == "retired":
            continue
        deployment = Deployment(provider=family_provider[entry.provider], model=entry.id)
        for name in (entry.id, *entry.aliases):
            models[name] = ModelRoute(deployments=(deployment,))
    return GatewayConfig(
        server=ServerConfig(),
        providers=providers,
        models=models,
        logging=LoggingConfig(),
    )
