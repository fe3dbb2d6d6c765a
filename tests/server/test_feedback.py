"""`POST /v1/feedback`: the app's quality score for one of its calls, counted for the
variant that served it, found in this process's recent calls or in the ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.stages.test_keys_limits_budgets import claude, create_key, keyed_gateway
from tests.support import GATEWAY_KEY, IN_PROCESS_CONFIG, serve_gateway

from tollhouse.server.runner import BackgroundServer

HI = [{"role": "user", "content": "hi"}]
SUPPORT = {
    "deployments": [{"provider": "sim-anthropic", "model": "claude-haiku-4-5"}],
    "variants": {"control": {"weight": 50}, "canary": {"weight": 50}},
}


def gateway(tmp_path: Path) -> BackgroundServer:
    return serve_gateway(
        {
            **IN_PROCESS_CONFIG,
            "models": {**IN_PROCESS_CONFIG["models"], "support": SUPPORT},
            "ledger": {"sqlite_path": str(tmp_path / "ledger.db"), "spill_path": None},
        }
    )


def served(url: str, secret: str = GATEWAY_KEY, model: str = "support") -> tuple[str, str | None]:
    raw = claude(url, secret).messages.with_raw_response.create(
        model=model, max_tokens=5, messages=HI, metadata={"user_id": "ann"}
    )
    return raw.headers["x-tollhouse-request-id"], raw.headers.get("x-tollhouse-variant")


def post(url: str, doc: Any, key: str = GATEWAY_KEY) -> httpx.Response:
    return httpx.post(f"{url}/v1/feedback", json=doc, headers={"x-api-key": key})


def test_a_score_counts_for_the_variant_that_served_the_call(tmp_path: Path) -> None:
    server = gateway(tmp_path)
    try:
        request_id, variant = served(server.url)
        answer = post(server.url, {"request_id": request_id, "score": 0.75})
    finally:
        server.stop()
    assert answer.status_code == 200
    assert answer.json() == {
        "request_id": request_id,
        "route": "support",
        "variant": variant,
        "score": 0.75,
        "counted": True,
    }


def test_a_call_of_another_process_is_found_in_the_ledger(tmp_path: Path) -> None:
    first = gateway(tmp_path)
    try:
        request_id, variant = served(first.url)
    finally:
        first.stop()  # its ledger is drained: the record is written
    second = gateway(tmp_path)
    try:
        answer = post(second.url, {"request_id": request_id, "score": 1})
    finally:
        second.stop()
    assert answer.status_code == 200
    assert (answer.json()["variant"], answer.json()["counted"]) == (variant, True)


def test_a_call_of_a_route_without_variants_is_answered_but_not_counted(tmp_path: Path) -> None:
    first = gateway(tmp_path)
    try:
        request_id, _ = served(first.url, model="claude-haiku-4-5")
    finally:
        first.stop()
    second = gateway(tmp_path)
    try:
        answer = post(second.url, {"request_id": request_id, "score": 0.5})
    finally:
        second.stop()
    assert answer.status_code == 200
    assert (answer.json()["variant"], answer.json()["counted"]) == (None, False)


@pytest.mark.parametrize(
    ("doc", "param"),
    [
        ({"request_id": "th_x", "score": 1.5}, "score"),
        ({"request_id": "th_x", "score": True}, "score"),
        ({"request_id": "th_x"}, "score"),
        ({"score": 0.5}, "request_id"),
        ([1, 2], None),
    ],
)
def test_a_bad_feedback_body_is_a_400_naming_the_field(
    tmp_path: Path, doc: Any, param: str | None
) -> None:
    server = gateway(tmp_path)
    try:
        answer = post(server.url, doc)
    finally:
        server.stop()
    assert answer.status_code == 400
    message = answer.json()["error"]["message"]
    assert param is None or message.startswith(f"{param}:")


def test_an_unknown_request_is_a_404(tmp_path: Path) -> None:
    server = gateway(tmp_path)
    try:
        answer = post(server.url, {"request_id": "th_000000000000ffffffffffff", "score": 0.5})
    finally:
        server.stop()
    assert answer.status_code == 404
    assert "no call 'th_000000000000ffffffffffff' is known" in answer.json()["error"]["message"]


def test_another_keys_call_is_answered_as_unknown(tmp_path: Path) -> None:
    _, mine = create_key(tmp_path / "keys.db")
    _, theirs = create_key(tmp_path / "keys.db")
    server = keyed_gateway(tmp_path, models={**IN_PROCESS_CONFIG["models"], "support": SUPPORT})
    try:
        request_id, _ = served(server.url, mine)
        stranger = post(server.url, {"request_id": request_id, "score": 0.5}, theirs)
        owner = post(server.url, {"request_id": request_id, "score": 0.5}, mine)
        nobody = post(server.url, {"request_id": request_id, "score": 0.5}, "th-wrong")
    finally:
        server.stop()
    assert stranger.status_code == 404
    assert owner.status_code == 200
    assert nobody.status_code == 401
