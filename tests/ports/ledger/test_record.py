"""A call record: built on the request path, so cheap; read for money, so exact."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import msgspec
import pytest

from tollhouse.ports.ledger.record import CallRecord

MakeRecord = Callable[..., CallRecord]


def test_a_record_without_a_time_zone_is_refused(make_record: MakeRecord) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        make_record(ts=datetime(2026, 11, 25, 12, 0))


def test_a_record_in_another_zone_is_the_same_instant(make_record: MakeRecord) -> None:
    in_utc = make_record(ts=datetime(2026, 11, 25, 12, 0, tzinfo=UTC))
    in_new_york = make_record(ts=datetime(2026, 11, 25, 7, 0, tzinfo=timezone(timedelta(hours=-5))))
    assert in_utc == in_new_york


def test_json_keeps_cost_and_time_exact(make_record: MakeRecord) -> None:
    record = make_record(
        ts=datetime(2026, 11, 25, 12, 0, 0, 654321, tzinfo=UTC),
        cost_usd=Decimal("0.000000003750001"),
        metadata={"nested": {"list": [1, "two", None]}},
    )
    assert msgspec.json.decode(msgspec.json.encode(record), type=CallRecord) == record
