"""Liveness and readiness for orchestrators and load balancers."""

from __future__ import annotations

import httpx


def test_healthz_answers_ok(gateway_url: str) -> None:
    response = httpx.get(gateway_url + "/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["x-tollhouse-request-id"].startswith("th_")


def test_readyz_says_ready_and_which_providers_are_simulated(gateway_url: str) -> None:
    response = httpx.get(gateway_url + "/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert set(body["simulated_providers"]) == {"sim-anthropic", "sim-openai"}
