"""Money on the counters is whole nano-dollars, so Redis INCRBY and Python ints are exact.

Prices are Decimals elsewhere in Tollhouse; these convert at the edge of the port. The
rounding is up: a budget may refuse a call a nano-dollar early, never let one through a
nano-dollar late.
"""

from __future__ import annotations

import math
from decimal import Decimal

NANO_PER_USD = 1_000_000_000


def to_nanousd(usd: Decimal) -> int:
    """`usd` in whole nano-dollars, rounded up (exact: `Decimal.__ceil__`)."""
    return math.ceil(usd * NANO_PER_USD)


def from_nanousd(nanousd: int) -> Decimal:
    """Whole nano-dollars as a Decimal number of dollars, exactly."""
    return Decimal(nanousd).scaleb(-9)
