"""Route: the model name a client sends → the ordered deployments that can serve it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tollhouse.config import GatewayConfig
from tollhouse.errors import NotFound
from tollhouse.providers.base import Provider


@dataclass(frozen=True, slots=True)
class Target:
    provider: Provider
    upstream_model: str


class Router:
    def __init__(self, config: GatewayConfig, providers: Mapping[str, Provider]) -> None:
        self._routes: dict[str, tuple[Target, ...]] = {
            model: tuple(Target(providers[d.provider], d.model) for d in route.deployments)
            for model, route in config.models.items()
        }

    def resolve(self, model: str) -> tuple[Target, ...]:
        targets = self._routes.get(model)
        if targets is None:
            raise NotFound(
                f"model: {model!r} is not served by this gateway; "
                "GET /v1/models lists the models it serves",
                param="model",
                code="model_not_found",
            )
        return targets

    @property
    def models(self) -> list[str]:
        return list(self._routes)
