"""At most one line per key per interval; the lines held back are counted on the next."""

from __future__ import annotations

import logging

import pytest

from tollhouse.observability.rate_limited_log import RateLimitedLog


def test_held_back_lines_are_counted_on_the_next_one(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tollhouse.test")
    log = RateLimitedLog(logging.getLogger("tollhouse.test"), interval=10)
    written = [log.event(logging.INFO, "e", ("k",), {"n": i}, now=float(i)) for i in range(12)]
    assert written == [True] + [False] * 9 + [True, False]
    assert [r.getMessage() for r in caplog.records] == ["e n=0", "e n=10 suppressed=9"]
    assert log.event(logging.INFO, "e", ("other",), {"n": 0}, now=11.0)  # keys are apart
