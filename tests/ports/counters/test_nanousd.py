from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from tollhouse.ports.counters.nanousd import from_nanousd, to_nanousd


def test_dollars_convert_to_nanousd_exactly() -> None:
    assert to_nanousd(Decimal("1.00")) == 1_000_000_000
    assert to_nanousd(Decimal("0.000000003")) == 3


def test_fractions_of_a_nanodollar_round_up_by_default() -> None:
    assert to_nanousd(Decimal("0.0000000031")) == 4


def test_rounding_mode_can_be_chosen() -> None:
    assert to_nanousd(Decimal("0.0000000025"), rounding=ROUND_HALF_EVEN) == 2


def test_nanousd_convert_back_to_exact_dollars() -> None:
    assert from_nanousd(1_234_567_891) == Decimal("1.234567891")
