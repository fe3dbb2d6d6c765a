"""The model catalog, read from the `models.yaml` data file shipped in the package."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Literal

import msgspec
import yaml


class CatalogModel(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: str
    provider: Literal["anthropic", "openai"]
    display_name: str
    context_window: int
    max_output_tokens: int
    released: str
    aliases: tuple[str, ...] = ()


class ModelCatalog(msgspec.Struct, frozen=True):
    models: tuple[CatalogModel, ...]

    def get(self, model_id: str) -> CatalogModel | None:
        for entry in self.models:
            if entry.id == model_id or model_id in entry.aliases:
                return entry
        return None


@cache
def load_catalog() -> ModelCatalog:
    text = resources.files("tollhouse.catalog").joinpath("models.yaml").read_text()
    return msgspec.convert(yaml.safe_load(text), ModelCatalog)
