"""The checks a route's variants get at load, beyond their shape: each error names the key
and says what is expected (`$.models.support.variants: weights sum to 95 (control 90,
concise 5); they must sum to 100`)."""

from __future__ import annotations

import re

from tollhouse.catalog.models import ModelCatalog
from tollhouse.config.model import GatewayConfig, ModelRoute

# Variant names travel in a response header, a ledger column and metric labels.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# The request fields a variant's `parameters` may not set: each has a field of its own
# (`system`, `tools`, `model`) or is the client's alone (the conversation, streaming).
_NOT_PARAMETERS = frozenset({"model", "messages", "system", "tools", "stream"})


def check_variants(
    config: GatewayConfig, name: str, route: ModelRoute, catalog: ModelCatalog
) -> str | None:
    """What is wrong with `route`'s variants (the message, without the source), or None."""
    if not route.variants:
        return None
    key = f"$.models.{name}.variants"
    if route.control not in route.variants:
        known = ", ".join(route.variants)
        return (
            f"$.models.{name}.control: the control variant {route.control!r} is not among "
            f"the variants ({known}); name one of them, or add a variant {route.control!r}"
        )
    for variant_name, variant in route.variants.items():
        where = f"{key}.{variant_name}"
        if not _NAME.match(variant_name):
            return (
                f"{where}: a variant name is 1-64 letters, digits, '_', '.' or '-', "
                "starting with a letter or digit"
            )
        if round(variant.weight * 100) != variant.weight * 100:
            return f"{where}.weight: at most two decimals (a share of 10,000 buckets)"
        if variant.model is not None and variant.deployments is not None:
            return f"{where}: set model or deployments, not both"
        if variant.model is not None and variant.model not in config.models:
            if catalog.get(variant.model) is None:
                return (
                    f"{where}.model: unknown model {variant.model!r}: neither a route of "
                    "this config nor a catalog model; set deployments to serve a model the "
                    "catalog does not list"
                )
            if variant.model == name:
                return f"{where}.model: a variant can't name its own route"
        other = None if variant.model is None else config.models.get(variant.model)
        if other is not None and other.variants:
            return (
                f"{where}.model: route {variant.model!r} has variants of its own; name a "
                "route without variants or set deployments"
            )
        if variant.deployments is not None and not variant.deployments:
            return f"{where}.deployments: at least one is required"
        for i, deployment in enumerate(variant.deployments or ()):
            if deployment.provider not in config.providers:
                known = ", ".join(sorted(config.providers)) or "(none)"
                return (
                    f"{where}.deployments[{i}].provider: unknown provider "
                    f"{deployment.provider!r}; defined providers: {known}"
                )
        for i, tool in enumerate(variant.tools or ()):
            if not isinstance(tool.get("name"), str) or not tool["name"]:
                return f"{where}.tools[{i}].name: required (Anthropic's tool shape)"
        refused = sorted(_NOT_PARAMETERS & set(variant.parameters))
        if refused:
            return (
                f"{where}.parameters.{refused[0]}: not a parameter a variant sets; use "
                "model, system or tools"
            )
    basis_points = {n: round(v.weight * 100) for n, v in route.variants.items()}
    if sum(basis_points.values()) != 10_000:
        listed = ", ".join(f"{n} {v.weight:g}" for n, v in route.variants.items())
        total = sum(basis_points.values()) / 100
        return f"{key}: weights sum to {total:g} ({listed}); they must sum to 100"
    return None
