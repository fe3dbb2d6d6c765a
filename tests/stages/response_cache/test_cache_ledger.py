"""A hit is recorded in the ledger as a call that cost nothing, with the cost it avoided
(its original call's) and that call's id, and `tollhouse logs` shows it."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import anthropic
import pytest
from tests.observability.test_call_ledger import read_sqlite
from tests.stages.response_cache.cached_gateway import HI, cached_config
from tests.support import GATEWAY_KEY, serve_gateway

from tollhouse.cli import main as tollhouse


def test_a_hit_is_recorded_with_the_cost_it_avoided(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = {"sqlite_path": str(tmp_path / "ledger.db"), "spill_path": None}
    server = serve_gateway({**cached_config(), "ledger": ledger})
    client = anthropic.Anthropic(base_url=server.url, api_key=GATEWAY_KEY, max_retries=0)
    try:
        with client.messages.stream(model="claude-haiku-4-5", max_tokens=300, messages=HI) as s:  # type: ignore[arg-type]
            s.until_done()
        client.messages.create(model="claude-haiku-4-5", max_tokens=300, messages=HI)  # type: ignore[arg-type]
    finally:
        server.stop()
    original, hit = read_sqlite(tmp_path / "ledger.db")
    assert original.cost_usd is not None
    assert original.cost_usd > 0
    assert (original.cache_hit, original.cost_avoided_usd) == (False, None)
    assert hit.cache_hit
    assert hit.attempts == 0
    assert hit.cost_usd == Decimal(0)
    assert hit.cost_avoided_usd == original.cost_usd
    assert hit.metadata["response_cache"] == "hit"
    assert hit.metadata["response_cache_source"] == original.request_id
    capsys.readouterr()
    assert tollhouse(["logs", "--sqlite", str(tmp_path / "ledger.db")]) == 0
    shown = capsys.readouterr().out
    assert f"cache hit, avoided {original.cost_usd}" in shown
