"""The exact cost of a call from its usage and its model's catalog entry.

Money is `Decimal` end to end and nothing is rounded here: a part is tokens x rate / 10^6
(or units x a tool's unit price), exact for every published rate, so the ledger can add up
millions of calls without drift. Rounding happens once, when a report renders cents; that
is the display's job.

An unknown price is never a silent $0. A model missing from the catalog, a model without a
price card, a token type the card does not price (a cache write on an OpenAI model that
bills none, a batch call on a model without batch prices, audio on a text model), a
server tool without a rate, or a tier, geography or speed without a modifier makes that
part and the total `None`, and `unpriced` names what was missing, so budgets and reports
can flag the call instead of undercounting it.

The lines of a call, in the order a provider's bill has them:
- tokens, each type at its rate: the long-context tier's when the prompt is over its
  threshold, times the batch ratio for a batch (or a tier billed at batch rates), times
  every modifier that applies (`inference_geo`, `speed`, `service_tier`; they stack, as
  Anthropic's pricing page says fast mode and US-only inference do), or the tier's own
  rates where the catalog gives them;
- compaction: when the usage has `iterations`, the tokens are priced iteration by
  iteration (each is a request of its own for the long-context threshold) and summed;
- server tools: each count at its unit price, untouched by token modifiers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from tollhouse.accounting.usage import Usage
from tollhouse.catalog.models import CatalogModel, LongContextPricing, PriceModifier, Pricing

_PER_MILLION = Decimal(1_000_000)
_ZERO = Decimal(0)
_ONE = Decimal(1)
_UNSCALED = (_ONE, _ONE)
_TOKEN_LINES = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read", "audio")
# Values that mean "no modifier": the default of each dimension, as each provider names it.
_PLAIN_TIERS = frozenset({"standard", "default"})
_PLAIN_GEOS = frozenset({"global"})
_PLAIN_SPEEDS = frozenset({"standard"})


@dataclass(frozen=True, slots=True)
class CallCost:
    """USD cost of one call, by line, unrounded.

    `total` is None when any part is unknown, and `unpriced` says which (`model`,
    `tokens.cache_write_5m`, `server_tool_use.<name>`, `service_tier:<tier>`...).
    `cache_write` covers both retentions (`cache_write_5m` and `cache_write_1h` split it);
    `audio` is OpenAI's audio input and output; `server_tools` sums `tool_lines`, one
    (usage name, cost) per server tool used. `priced_by` is the id of the catalog entry
    whose card was used (None when there was none); `long_context` and `batch` say which
    rates of that card applied; `commitment` that the call is billed against a commitment
    (Anthropic's Priority Tier), so reports that mirror the provider's bill leave it out.
    `context_window` is the call's band for the usage report (`context_window_of`).
    """

    total: Decimal | None
    input: Decimal | None
    output: Decimal | None
    cache_write: Decimal | None
    cache_read: Decimal | None
    priced_by: str | None
    long_context: bool = False
    batch: bool = False
    cache_write_5m: Decimal | None = _ZERO
    cache_write_1h: Decimal | None = _ZERO
    audio: Decimal | None = _ZERO
    server_tools: Decimal | None = _ZERO
    tool_lines: tuple[tuple[str, Decimal | None], ...] = ()
    commitment: bool = False
    unpriced: tuple[str, ...] = field(default=())
    context_window: str | None = None  # see `context_window_of`


_UNPRICED = CallCost(None, None, None, None, None, None, unpriced=("model",))

# What a call no upstream was asked to answer cost (refused, or answered from the response
# cache): nothing, known exactly, unlike an unknown price.
NO_COST = CallCost(_ZERO, _ZERO, _ZERO, _ZERO, _ZERO, None)


def cost_of(entry: CatalogModel | None, usage: Usage, *, batch: bool = False) -> CallCost:
    """What `usage` cost on `entry`'s price card, through the Batch API if `batch`.

    Long-context rates apply to every token of the request when its prompt (uncached input +
    cache reads + cache writes) is strictly over the tier's threshold; a prompt exactly at
    the threshold pays the standard rates. That is the providers' documented rule:
    Anthropic bills Sonnet 4/4.5 requests "that exceed 200K input tokens" at long-context
    rates, the threshold counting cache reads and writes
    (https://platform.claude.com/docs/en/about-claude/pricing#long-context-pricing), and
    Haiku 5.5 prompts "over 100,000 tokens" likewise; OpenAI prices "prompts with more than
    272K input tokens" (cached included) at the long-context rates "for the full request"
    (https://developers.openai.com/api/docs/models/gpt-6.2-sol).

    A batch multiplies every rate of the applicable tier by the card's batch ratio
    (`batch_input / input` for input and cache tokens, `batch_output / output` for output):
    both providers publish batch as one discount on all token types, cache and long-context
    rates included.
    """
    if entry is None or entry.pricing is None:
        return _UNPRICED
    if usage.iterations:
        parts = [_token_parts(entry, step.usage(), usage, batch) for step in usage.iterations]
        lines: dict[str, Decimal | None] = {}
        for name in _TOKEN_LINES:
            values = [part.lines[name] for part in parts]
            lines[name] = None if None in values else sum((v for v in values if v), _ZERO)
        unpriced = list(dict.fromkeys(reason for part in parts for reason in part.unpriced))
    else:  # nearly every call: one request, its lines as they are
        parts = [_token_parts(entry, usage, usage, batch)]
        lines = parts[0].lines
        unpriced = list(parts[0].unpriced)
    tool_lines = []
    server_tools: Decimal | None = _ZERO
    for name, count in usage.server_tool_use:
        rate = entry.server_tools.get(name)
        if rate is None:
            unpriced.append(f"server_tool_use.{name}")
        line = None if rate is None else count * rate.usd_per_unit
        tool_lines.append((name, line))
        server_tools = None if server_tools is None or line is None else server_tools + line
    write_5m, write_1h = lines["cache_write_5m"], lines["cache_write_1h"]
    cache_write = None if write_5m is None or write_1h is None else write_5m + write_1h
    total: Decimal | None = server_tools
    for value in lines.values():
        total = None if total is None or value is None else total + value
    return CallCost(
        total=total,
        input=lines["input"],
        output=lines["output"],
        cache_write=cache_write,
        cache_read=lines["cache_read"],
        priced_by=entry.id,
        long_context=any([part.long_context for part in parts]),
        batch=any([part.batch for part in parts]),
        cache_write_5m=write_5m,
        cache_write_1h=write_1h,
        audio=lines["audio"],
        server_tools=server_tools,
        tool_lines=tuple(tool_lines),
        commitment=any([part.commitment for part in parts]),
        unpriced=tuple(unpriced),
        context_window=context_window_of(entry, usage),
    )


def context_window_of(entry: CatalogModel | None, usage: Usage) -> str | None:
    """The context-window band of the call, as Anthropic's usage report names it
    ("0-200k", "200k-1M"): split at the card's long-context threshold (200K without one)
    up to the model's window, so the labels are as few as the catalog's models."""
    if entry is None:
        return None
    tier = entry.pricing.long_context if entry.pricing is not None else None
    threshold = tier.threshold_tokens if tier is not None else 200_000
    if entry.context_window <= threshold:
        return f"0-{_tokens_label(entry.context_window)}"
    if usage.prompt_tokens > threshold:
        return f"{_tokens_label(threshold)}-{_tokens_label(entry.context_window)}"
    return f"0-{_tokens_label(threshold)}"


def _tokens_label(tokens: int) -> str:
    if tokens >= 1_000_000 and tokens % 1_000_000 == 0:
        return f"{tokens // 1_000_000}M"
    if tokens >= 1_000_000:
        return f"{tokens / 1_000_000:g}M"
    return f"{tokens // 1000}k"


@dataclass(slots=True)
class _Parts:
    lines: dict[str, Decimal | None]
    long_context: bool
    batch: bool
    commitment: bool = False
    unpriced: list[str] = field(default_factory=list)


def _token_parts(entry: CatalogModel, step: Usage, call: Usage, batch: bool) -> _Parts:
    """The token lines of one request (`step`: the call, or one of its iterations), with
    the call's tier, geography and speed (`call`)."""
    card = entry.pricing
    assert card is not None
    tier = card.long_context
    long_context = tier is not None and step.prompt_tokens > tier.threshold_tokens
    base: Pricing | LongContextPricing = tier if tier is not None and long_context else card
    rates: dict[str, Decimal | None] = {
        "input": base.input,
        "output": base.output,
        "cache_write_5m": base.cache_write_5m,
        "cache_write_1h": base.cache_write_1h,
        "cache_read": base.cache_read,
        "audio_input": card.audio_input,
        "audio_output": card.audio_output,
    }
    parts = _Parts({}, long_context, batch)
    factor = _ONE
    for dimension, value, plain, table in (
        ("service_tier", call.service_tier, _PLAIN_TIERS, entry.service_tier),
        ("inference_geo", call.inference_geo, _PLAIN_GEOS, entry.inference_geo),
        ("speed", call.speed, _PLAIN_SPEEDS, entry.speed),
    ):
        if value is None or value in plain:
            continue
        modifier = table.get(value)
        if modifier is None or not _applies(modifier, step, long_context):
            parts.unpriced.append(f"{dimension}:{value}")
            continue
        if modifier.multiplier is not None:
            factor *= modifier.multiplier
        elif modifier.rates is not None:
            rates = {name: modifier.rates.get(name) for name in rates}
        elif modifier.batch_rates:
            parts.batch = True
        else:
            parts.commitment = True
    in_scale = out_scale = _UNSCALED
    if parts.batch:
        if card.batch_input is None or card.batch_output is None:
            parts.unpriced.append("batch")
        else:
            in_scale = _ratio(card.batch_input, card.input)
            out_scale = _ratio(card.batch_output, card.output)
    if parts.unpriced:
        parts.lines = dict.fromkeys(_TOKEN_LINES)
        return parts
    for name, tokens, scale in (
        ("input", step.input_tokens, in_scale),
        ("output", step.output_tokens, out_scale),
        ("cache_write_5m", step.cache_write_5m_tokens, in_scale),
        ("cache_write_1h", step.cache_write_1h_tokens, in_scale),
        ("cache_read", step.cache_read_tokens, in_scale),
    ):
        parts.lines[name] = _line(parts, name, tokens, rates[name], scale, factor)
    audio_in = _line(
        parts, "audio_input", step.audio_input_tokens, rates["audio_input"], in_scale, factor
    )
    audio_out = _line(
        parts, "audio_output", step.audio_output_tokens, rates["audio_output"], out_scale, factor
    )
    parts.lines["audio"] = None if audio_in is None or audio_out is None else audio_in + audio_out
    return parts


def _applies(modifier: PriceModifier, step: Usage, long_context: bool) -> bool:
    """Whether `modifier` publishes a price for this request: not past its prompt limit,
    and (for a tier's own rates, published without long-context ones) not long-context."""
    limit = modifier.max_prompt_tokens
    if limit is not None and step.prompt_tokens > limit:
        return False
    return not (modifier.rates is not None and long_context)


def _line(
    parts: _Parts,
    name: str,
    tokens: int,
    rate: Decimal | None,
    scale: tuple[Decimal, Decimal],
    factor: Decimal,
) -> Decimal | None:
    if tokens == 0:
        return _ZERO
    if rate is None:
        parts.unpriced.append(f"tokens.{name}")
        return None
    numerator, denominator = scale
    return tokens * rate * numerator * factor / (denominator * _PER_MILLION)


def _ratio(batch_rate: Decimal, standard_rate: Decimal) -> tuple[Decimal, Decimal]:
    """The batch discount as a fraction, divided once per part so a 50% batch stays exact.
    A free standard rate has a free batch rate (the catalog forbids batch above standard)."""
    return (batch_rate, standard_rate) if standard_rate else _UNSCALED
