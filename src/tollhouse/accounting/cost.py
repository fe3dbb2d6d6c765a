"""The exact cost of a call from its usage and its model's catalog price card.

Money is `Decimal` end to end and nothing is rounded here: a part is tokens x rate / 10^6,
exact for every published rate, so the ledger can add up millions of calls without drift.
Rounding happens once, when a report renders cents; that is the display's job.

An unknown price is never a silent $0. A model missing from the catalog, a model without a
price card, or a token type the card does not price (a cache write on an OpenAI model that
bills none, a batch call on a model without batch prices) makes that part and the total
`None`, so budgets and reports can flag the call instead of undercounting it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tollhouse.accounting.usage import Usage
from tollhouse.catalog.models import CatalogModel, LongContextPricing, Pricing

_PER_MILLION = Decimal(1_000_000)
_ZERO = Decimal(0)
_UNSCALED = (Decimal(1), Decimal(1))


@dataclass(frozen=True, slots=True)
class CallCost:
    """USD cost of one call, by token type, unrounded.

    `total` is None when any part is unknown. `cache_write` covers both retentions.
    `priced_by` is the id of the catalog entry whose card was used (None when there was
    none); `long_context` and `batch` say which rates of that card applied.
    """

    total: Decimal | None
    input: Decimal | None
    output: Decimal | None
    cache_write: Decimal | None
    cache_read: Decimal | None
    priced_by: str | None
    long_context: bool = False
    batch: bool = False


_UNPRICED = CallCost(None, None, None, None, None, None)

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
    card = entry.pricing
    tier = card.long_context
    long_context = tier is not None and usage.prompt_tokens > tier.threshold_tokens
    rates: Pricing | LongContextPricing = tier if tier is not None and long_context else card
    in_scale = out_scale = _UNSCALED
    if batch:
        if card.batch_input is None or card.batch_output is None:
            return CallCost(None, None, None, None, None, entry.id, long_context, batch)
        in_scale = _ratio(card.batch_input, card.input)
        out_scale = _ratio(card.batch_output, card.output)

    input_cost = _part(usage.input_tokens, rates.input, in_scale)
    output_cost = _part(usage.output_tokens, rates.output, out_scale)
    write_5m = _part(usage.cache_write_5m_tokens, rates.cache_write_5m, in_scale)
    write_1h = _part(usage.cache_write_1h_tokens, rates.cache_write_1h, in_scale)
    cache_write = None if write_5m is None or write_1h is None else write_5m + write_1h
    cache_read = _part(usage.cache_read_tokens, rates.cache_read, in_scale)

    total = None
    if not (input_cost is None or output_cost is None or cache_write is None or cache_read is None):
        total = input_cost + output_cost + cache_write + cache_read
    return CallCost(
        total=total,
        input=input_cost,
        output=output_cost,
        cache_write=cache_write,
        cache_read=cache_read,
        priced_by=entry.id,
        long_context=long_context,
        batch=batch,
    )


def _ratio(batch_rate: Decimal, standard_rate: Decimal) -> tuple[Decimal, Decimal]:
    """The batch discount as a fraction, divided once per part so a 50% batch stays exact.
    A free standard rate has a free batch rate (the catalog forbids batch above standard)."""
    return (batch_rate, standard_rate) if standard_rate else _UNSCALED


def _part(tokens: int, rate: Decimal | None, scale: tuple[Decimal, Decimal]) -> Decimal | None:
    if tokens == 0:
        return _ZERO
    if rate is None:
        return None
    numerator, denominator = scale
    return tokens * rate * numerator / (denominator * _PER_MILLION)
