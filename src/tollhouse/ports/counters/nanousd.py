"""Money on the counters is whole nano-dollars, so Redis INCRBY and Python ints are exact.

Prices are Decimals elsewhere in Tollhouse; these convert at the edge of the port. The
default rounding is up: a budget may refuse a call a nano-dollar early, never let one
through a nano-dollar late.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

NANO_PER_USD = 1_000_000_000


def to_nanousd(usd: Decimal, *, rounding: str = ROUND_CEILING) -> int:
    """`usd` in whole nano-dollars, rounded by `rounding` (a `decimal` rounding mode)."""
    return int((usd * NANO_PER_USD).to_integral_value(rounding=rounding))


def from_nanousd(nanousd: int) -> Decimal:
    """Whole nano-dollars as a Decimal number of dollars, exactly."""
    return Decimal(nanousd).scaleb(-9)
