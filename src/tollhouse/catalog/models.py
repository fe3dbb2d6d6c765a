"""The model catalog, read from the `models.yaml` data file shipped in the package.

Prices are data so that a price change is a one-line edit with its source beside it, and so
that a config can override them (a negotiated rate, a self-hosted model at zero) without
code. Every rate is USD per million tokens as a `Decimal`; `None` means the provider does not
publish that rate, which makes the cost of any call that used it unknown rather than zero.

The file is validated once at load: unknown fields, negative prices, lifecycle dates out of
order and names claimed by two entries all refuse to load, with the offending field named.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec
import yaml

from tollhouse.types import WireFormat

LifecycleState = Literal["active", "legacy", "deprecated", "retired"]
# Whose page a card was read from: the provider's own, or anyone else's (a reseller, a
# tracker), which the catalog says so a reader knows how far to trust it.
SourceKind = Literal["provider", "secondary"]
PROVIDER_HOSTS = ("platform.claude.com", "docs.anthropic.com", "developers.openai.com")

_CACHE_RATES = ("cache_write_5m", "cache_write_1h", "cache_read")
_TOKEN_RATES = ("input", "output", *_CACHE_RATES, "audio_input", "audio_output")


class CatalogError(ValueError):
    """The catalog or an override of it is invalid; the message names the field."""


def _check_rates(owner: object, names: Iterable[str]) -> None:
    for name in names:
        value = getattr(owner, name)
        if value is not None and (not value.is_finite() or value < 0):
            raise ValueError(f"`{name}` must be a price >= 0 (USD per million tokens), got {value}")


class LongContextPricing(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Rates for a whole request whose prompt exceeds `threshold_tokens` (see `cost_of`)."""

    threshold_tokens: int
    input: Decimal
    output: Decimal
    cache_write_5m: Decimal | None = None
    cache_write_1h: Decimal | None = None
    cache_read: Decimal | None = None

    def __post_init__(self) -> None:
        if self.threshold_tokens <= 0:
            raise ValueError(f"`threshold_tokens` must be > 0, got {self.threshold_tokens}")
        _check_rates(self, ("input", "output", *_CACHE_RATES))


class ToolRate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The price of one unit of a server tool (one search, one fetch, one session) in USD,
    with the page it was read from and the date that page gives (or the day it was read).
    `note` says when the source is secondary or the rate is a reading of the page."""

    usd_per_unit: Decimal
    unit: str
    source: str
    as_of: date
    note: str | None = None

    def __post_init__(self) -> None:
        if not self.usd_per_unit.is_finite() or self.usd_per_unit < 0:
            raise ValueError(f"`usd_per_unit` must be a price >= 0, got {self.usd_per_unit}")


class PromptCacheFloor(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The shortest prompt prefix, in tokens, the provider caches for a model: a cache
    breakpoint ending a shorter prefix is neither written nor read. With the page it was
    read from, as `ToolRate`."""

    min_tokens: Annotated[int, msgspec.Meta(ge=1)]
    source: str
    as_of: date
    note: str | None = None


class PriceModifier(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How one value of a usage dimension (`inference_geo: us`, `speed: fast`,
    `service_tier: priority`) changes the card, with its source (see `ToolRate`).

    Exactly one way: `multiplier` (every token rate times it), `rates` (the tier's own
    input/output/cache rates, USD per million tokens; no long-context rates published),
    `batch_rates` (the card's Batch API rates, as OpenAI's Flex tier), or `commitment`
    (billed against a commitment, not per token, as Anthropic's Priority Tier: priced at
    the standard rates for budgets and kept out of the cost report).
    `max_prompt_tokens`: prompts over it have no published price on this modifier."""

    source: str
    as_of: date
    multiplier: Decimal | None = None
    rates: dict[str, Decimal] | None = None
    batch_rates: bool = False
    commitment: bool = False
    max_prompt_tokens: int | None = None
    note: str | None = None

    def __post_init__(self) -> None:
        ways = [self.multiplier is not None, self.rates is not None, self.batch_rates]
        if sum(ways) + self.commitment != 1:
            raise ValueError(
                "give exactly one of `multiplier`, `rates`, `batch_rates`, `commitment`"
            )
        if self.multiplier is not None and (
            not self.multiplier.is_finite() or self.multiplier <= 0
        ):
            raise ValueError(f"`multiplier` must be > 0, got {self.multiplier}")
        for name, value in (self.rates or {}).items():
            if name not in _TOKEN_RATES:
                raise ValueError(f"`rates.{name}`: unknown rate; one of {', '.join(_TOKEN_RATES)}")
            if not value.is_finite() or value < 0:
                raise ValueError(f"`rates.{name}` must be a price >= 0, got {value}")
        if self.rates is not None and not {"input", "output"} <= set(self.rates):
            raise ValueError("`rates` must give at least `input` and `output`")


class Pricing(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One model's price card in USD per million tokens.

    `cache_write_5m` is the provider's default-retention cache write (Anthropic 5 minutes,
    OpenAI 30 minutes) and `cache_write_1h` its extended one (Anthropic 1 hour, OpenAI 12
    hours); OpenAI's cached input is `cache_read`. Batch prices for cache tokens are not
    listed separately: both providers discount every token type of a batch by the same ratio,
    so `cost_of` applies `batch_input / input` to them.
    """

    input: Decimal
    output: Decimal
    cache_write_5m: Decimal | None = None
    cache_write_1h: Decimal | None = None
    cache_read: Decimal | None = None
    batch_input: Decimal | None = None
    batch_output: Decimal | None = None
    long_context: LongContextPricing | None = None
    audio_input: Decimal | None = None
    audio_output: Decimal | None = None

    def __post_init__(self) -> None:
        _check_rates(self, (*_TOKEN_RATES, "batch_input", "batch_output"))
        if (self.batch_input is None) != (self.batch_output is None):
            raise ValueError("`batch_input` and `batch_output` must be given together")
        for batch, standard in (("batch_input", "input"), ("batch_output", "output")):
            if getattr(self, batch) is not None and getattr(self, batch) > getattr(self, standard):
                raise ValueError(f"`{batch}` is a discount and may not exceed `{standard}`")
        if self.long_context is not None:
            for name in _CACHE_RATES:
                if getattr(self, name) is not None and getattr(self.long_context, name) is None:
                    raise ValueError(
                        f"`long_context.{name}` is required: the base card prices {name}, and a "
                        "long prompt must not leave those tokens unpriced"
                    )


class Lifecycle(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The provider's lifecycle state; deprecated and retired models carry their end date,
    and `replacement` names the successor the provider recommends (an id or alias in the
    catalog), where it names one."""

    state: LifecycleState = "active"
    deprecated_on: date | None = None
    retires_on: date | None = None
    replacement: str | None = None

    def effective_state(self, today: date) -> LifecycleState:
        """The state on `today`: the listed state, or a later one its dates have reached (a
        model is retired from its `retires_on` and deprecated from its `deprecated_on`)."""
        if self.retires_on is not None and today >= self.retires_on:
            return "retired"
        if (
            self.deprecated_on is not None
            and today >= self.deprecated_on
            and self.state in ("active", "legacy")
        ):
            return "deprecated"
        return self.state

    def __post_init__(self) -> None:
        if self.state in ("deprecated", "retired") and self.retires_on is None:
            raise ValueError(f"`retires_on` is required for a {self.state} model")
        if (
            self.deprecated_on is not None
            and self.retires_on is not None
            and self.deprecated_on > self.retires_on
        ):
            raise ValueError(
                f"`deprecated_on` ({self.deprecated_on}) is after `retires_on` ({self.retires_on})"
            )


class ParameterRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A request parameter the model refuses unless it is absent or at `default` (None: any
    value is refused). `name` is the field as the client's request names it."""

    name: str
    default: float | None = None

    def __post_init__(self) -> None:
        if not self.name or self.name in ("model", "messages"):
            raise ValueError(f"`name` must name an optional request parameter, got {self.name!r}")


class CatalogModel(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One model: how clients name it, which wire format serves it, its limits and price.

    `released` stays the `YYYY-MM-DD` string the model listing prints; `pricing` is None only
    for an override that adds a model nobody priced, whose calls then cost "unknown".
    `source` says whether `price_source` is the provider's own page or a secondary one.
    """

    id: str
    provider: WireFormat
    display_name: str
    context_window: int
    max_output_tokens: int
    released: str
    aliases: tuple[str, ...] = ()
    pricing: Pricing | None = None
    lifecycle: Lifecycle = Lifecycle()
    price_source: str | None = None
    price_as_of: date | None = None
    source: SourceKind | None = None
    parameter_rules: tuple[ParameterRule, ...] = ()
    prompt_cache: PromptCacheFloor | None = None  # None: the provider publishes no floor
    # Billable lines beside the token card, each rate with its own source. Filled from the
    # catalog's `provider_defaults` for the model's provider where the entry gives none.
    server_tools: dict[str, ToolRate] = {}
    inference_geo: dict[str, PriceModifier] = {}
    speed: dict[str, PriceModifier] = {}
    service_tier: dict[str, PriceModifier] = {}

    def __post_init__(self) -> None:
        if self.source == "provider" and urlsplit(self.price_source or "").hostname not in (
            PROVIDER_HOSTS
        ):
            raise ValueError(
                f"`source` is provider, but `price_source` ({self.price_source}) is not a page "
                f"of the providers' own sites ({', '.join(PROVIDER_HOSTS)})"
            )
        names = [rule.name for rule in self.parameter_rules]
        if len(set(names)) != len(names):
            raise ValueError(f"`parameter_rules` names a parameter twice: {names}")
        try:
            released = date.fromisoformat(self.released)
        except ValueError:
            message = f"`released` must be a YYYY-MM-DD date, got {self.released!r}"
            raise ValueError(message) from None
        first_end = self.lifecycle.deprecated_on or self.lifecycle.retires_on
        if first_end is not None and first_end < released:
            raise ValueError(f"`lifecycle` ends ({first_end}) before `released` ({released})")


class ModelCatalog:
    """The catalog's entries and a lookup by id or alias.

    Construction refuses a name (id or alias) that two entries claim: a call must be priced
    by exactly one card.
    """

    __slots__ = ("_by_name", "models")

    def __init__(self, models: Sequence[CatalogModel]) -> None:
        self.models: tuple[CatalogModel, ...] = tuple(models)
        self._by_name: dict[str, CatalogModel] = {}
        for index, entry in enumerate(self.models):
            for name in (entry.id, *entry.aliases):
                other = self._by_name.setdefault(name, entry)
                if other is not entry:
                    raise CatalogError(
                        f"models[{index}] ({entry.id}): the name {name!r} is already "
                        f"used by {other.id}"
                    )
        for index, entry in enumerate(self.models):
            replacement = entry.lifecycle.replacement
            if replacement is None:
                continue
            successor = self._by_name.get(replacement)
            if successor is None or successor is entry:
                why = "is the model itself" if successor is entry else "names no catalog model"
                raise CatalogError(
                    f"models[{index}] ({entry.id}).lifecycle.replacement: {replacement!r} {why}"
                )

    def get(self, model_id: str) -> CatalogModel | None:
        return self._by_name.get(model_id)


_DEFAULTED = ("server_tools", "inference_geo", "speed", "service_tier", "prompt_cache")


class _CatalogFile(msgspec.Struct, forbid_unknown_fields=True):
    models: tuple[CatalogModel, ...]


def parse_catalog(document: Any, *, origin: str = "catalog") -> ModelCatalog:
    """A catalog from its parsed YAML/JSON form; errors name `origin` and the field.

    `provider_defaults` maps a provider to the `server_tools`, `inference_geo`, `speed`,
    `service_tier` and `prompt_cache` entries its models share; an entry's own mapping for
    one of those is merged over the provider's, key by key."""
    if isinstance(document, Mapping) and "provider_defaults" in document:
        document = _with_provider_defaults(document, origin)
    try:
        parsed = msgspec.convert(document, _CatalogFile)
    except msgspec.ValidationError as exc:
        raise CatalogError(f"{origin}: {exc}") from None
    try:
        return ModelCatalog(parsed.models)
    except CatalogError as exc:
        raise CatalogError(f"{origin}: {exc}") from None


def _with_provider_defaults(document: Mapping[str, Any], origin: str) -> dict[str, Any]:
    defaults = document["provider_defaults"]
    if not isinstance(defaults, Mapping):
        raise CatalogError(f"{origin}: provider_defaults: expected a mapping of providers")
    for provider, shared in defaults.items():
        if provider not in ("anthropic", "openai") or not isinstance(shared, Mapping):
            raise CatalogError(f"{origin}: provider_defaults.{provider}: unknown provider")
        unknown = set(shared) - set(_DEFAULTED)
        if unknown:
            raise CatalogError(
                f"{origin}: provider_defaults.{provider}.{sorted(unknown)[0]}: unknown field; "
                f"expected {', '.join(_DEFAULTED)}"
            )
    models = []
    for model in document.get("models") or ():
        if isinstance(model, Mapping):
            shared = defaults.get(model.get("provider")) or {}
            model = dict(model)
            for name in _DEFAULTED:
                if name in shared:
                    model[name] = {**shared[name], **(model.get(name) or {})}
        models.append(model)
    return {**{k: v for k, v in document.items() if k != "provider_defaults"}, "models": models}


@cache
def load_catalog() -> ModelCatalog:
    text = resources.files("tollhouse.catalog").joinpath("models.yaml").read_text()
    return parse_catalog(yaml.safe_load(text), origin="models.yaml")


def merge_catalog(base: ModelCatalog, overrides: Sequence[Mapping[str, Any]]) -> ModelCatalog:
    """`base` with each override applied in order.

    An override names the model by `id` (an alias of an entry also finds it). For a known
    model its top-level fields replace the entry's; `pricing` and `lifecycle` are replaced
    whole, because half a negotiated price card next to the list price's batch and cache
    rates would be wrong in a way nobody sees. A new `pricing` without its own `price_source`,
    `price_as_of` and `source` drops the entry's, which described the list price. An unknown
    id adds a model, which must then be complete.
    """
    models = list(base.models)
    for index, override in enumerate(overrides):
        where = f"overrides[{index}]"
        if not isinstance(override, Mapping):
            raise CatalogError(f"{where}: expected a mapping of model fields")
        key = override.get("id")
        if not isinstance(key, str) or not key:
            raise CatalogError(f"{where}.id: required, the id or alias of the model to change")
        position = _position(models, key)
        document: dict[str, Any]
        if position is None:
            document = dict(override)
        else:
            document = msgspec.to_builtins(models[position])
            if "pricing" in override:
                document["price_source"] = None
                document["price_as_of"] = None
                document["source"] = None
            document.update(override)
            document["id"] = models[position].id
        try:
            entry = msgspec.convert(document, CatalogModel)
        except msgspec.ValidationError as exc:
            raise CatalogError(f"{where} ({key}): {exc}") from None
        for field, name in (("id", entry.id), *(("aliases", alias) for alias in entry.aliases)):
            claimed = _position(models, name)
            if claimed is not None and claimed != position:
                raise CatalogError(f"{where}.{field}: {name!r} already names {models[claimed].id}")
        if position is None:
            models.append(entry)
        else:
            models[position] = entry
    return ModelCatalog(models)


def _position(models: list[CatalogModel], name: str) -> int | None:
    for index, entry in enumerate(models):
        if entry.id == name or name in entry.aliases:
            return index
    return None


def read_catalog_file(path: str | os.PathLike[str]) -> ModelCatalog:
    """The whole catalog in the YAML (or JSON) file at `path`, validated as the shipped one
    is; `CatalogError` naming the file and the field when it is not a usable catalog."""
    return parse_catalog(read_catalog_document(path), origin=os.fspath(path))


def read_catalog_document(path: str | os.PathLike[str]) -> Any:
    """The parsed YAML (or JSON) of the catalog file at `path`, not yet validated;
    `CatalogError` naming the file when it cannot be read or parsed."""
    origin = os.fspath(path)
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise CatalogError(f"{origin}: cannot read the catalog: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogError(f"{origin}: not valid YAML: {exc}") from None


class CatalogOverrides(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The config's catalog section: the catalog to start from and entries merged over it
    at load (`models`). The start is `base`, a whole catalog inline (the shipped file's
    shape; what `tollhouse catalog update` stores in a new config version, so every gateway
    on the store serves it and a rollback restores the one before), else `path`, a whole
    catalog file read when the config is built, else the shipped catalog."""

    models: tuple[dict[str, Any], ...] = ()
    path: str | None = None
    base: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.path is not None and self.base is not None:
            raise ValueError("set `path` or `base` (a catalog inline), not both")

    def apply(self, base: ModelCatalog) -> ModelCatalog:
        return merge_catalog(base, self.models)

    def build(self, *, read_path: bool = True) -> ModelCatalog:
        """The catalog this section describes; `CatalogError` when a part is invalid.
        `read_path=False` starts from the shipped catalog in place of `path`'s file (for
        checks that read no file)."""
        if self.base is not None:
            start = parse_catalog(self.base, origin="catalog.base")
        elif self.path is not None and read_path:
            start = read_catalog_file(self.path)
        else:
            start = load_catalog()
        return self.apply(start)
