from __future__ import annotations

from decimal import Decimal

from tollhouse.ports.counters.nanousd import from_nanousd, to_nanousd


def test_dollars_convert_to_nanousd_exactly() -> None:
    assert to_nanousd(Decimal("1.00")) == 1_000_000_000
    assert to_nanousd(Decimal("0.000000003")) == 3


def test_fractions_of_a_nanodollar_round_up() -> None:
    assert to_nanousd(Decimal("0.0000000031")) == 4
    assert to_nanousd(Decimal("0.0000000030000001")) == 4
    assert to_nanousd(Decimal("-0.0000000031")) == -3  # up, towards +infinity


def test_large_amounts_stay_exact() -> None:
    assert to_nanousd(Decimal("123456789.123456789")) == 123_456_789_123_456_789
    assert to_nanousd(Decimal("1000000")) == 10**15


def test_nanousd_convert_back_to_exact_dollars() -> None:
    assert from_nanousd(1_234_567_891) == Decimal("1.234567891")
