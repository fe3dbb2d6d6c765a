"""The upstream client over TLS: certificates and host names verified by default, against
the provider's `ca_bundle`, `SSL_CERT_FILE`, or the system store; a refused certificate is a
clear upstream error for the SDK and one log line for the operator."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest
import trustme
from tests.providers.loopback_network import (
    REQUEST,
    answer_ok,
    assert_sdk_answers,
    call_once,
    provider_config,
    server_context,
    serving_on_thread,
    tls_front,
)
from tests.support import GATEWAY_KEY, serve_gateway

from tollhouse.config import parse_config
from tollhouse.config.loader import ConfigError
from tollhouse.providers.base import UpstreamConnectionError
from tollhouse.providers.http_transport import HttpTransport

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def tls_upstream(ca: trustme.CA) -> Iterator[int]:
    """A TLS upstream whose certificate (from `ca`) names localhost."""
    with serving_on_thread(answer_ok, server_context(ca, "localhost")) as port:
        yield port


def test_certificate_from_the_configured_ca_bundle_is_trusted(
    tls_upstream: int, ca_file: str
) -> None:
    assert call_once(f"https://localhost:{tls_upstream}", ca_bundle=ca_file) == b"{}"


def test_certificate_for_another_host_name_is_refused(ca: trustme.CA, ca_file: str) -> None:
    with (
        serving_on_thread(answer_ok, server_context(ca, "other.example")) as port,
        pytest.raises(UpstreamConnectionError, match="Hostname mismatch"),
    ):
        call_once(f"https://localhost:{port}", ca_bundle=ca_file)


def test_certificate_from_an_unknown_ca_is_refused_and_logged_once(
    tls_upstream: int, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> list[str]:
        client = HttpTransport(f"https://localhost:{tls_upstream}", {}, connect_timeout=5)
        errors = []
        for _ in range(3):
            with pytest.raises(UpstreamConnectionError) as caught:
                await client.send(REQUEST)
            errors.append(str(caught.value))
        await client.aclose()
        return errors

    with caplog.at_level(logging.ERROR, logger="tollhouse.upstream"):
        errors = asyncio.run(main())
    assert f"TLS certificate of localhost:{tls_upstream} refused" in errors[0]
    assert "unable to get local issuer certificate" in errors[0]
    assert "ca_bundle" in errors[0]
    refused = [r for r in caplog.records if "TLS certificate refused" in r.getMessage()]
    assert len(refused) == 1  # not once per call: every call fails the same way


def test_ssl_cert_file_from_the_environment_is_trusted(
    tls_upstream: int, ca_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", ca_file)
    assert call_once(f"https://localhost:{tls_upstream}") == b"{}"


def test_ssl_cert_file_naming_a_missing_file_is_refused_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    with pytest.raises(ValueError, match="SSL_CERT_FILE: no such file"):
        HttpTransport("https://localhost:1", {})


def test_ca_bundle_is_checked_at_load(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\$\.providers\.tls\.ca_bundle: no such file"):
        parse_config(provider_config("https://x", ca_bundle=str(tmp_path / "nope.pem")))
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match=r"ca_bundle: .*holds no PEM certificate"):
        parse_config(provider_config("https://x", ca_bundle=str(empty)))


@pytest.fixture
def simulator_over_tls(ca: trustme.CA, simulator_url: str) -> Iterator[int]:
    """The simulator behind a TLS front whose certificate names localhost."""
    simulator_port = int(simulator_url.rsplit(":", 1)[1])
    with tls_front(simulator_port, server_context(ca, "localhost")) as port:
        yield port


def test_sdk_calls_reach_a_tls_upstream_verified_with_ca_bundle(
    simulator_over_tls: int, ca_file: str
) -> None:
    server = serve_gateway(
        provider_config(f"https://localhost:{simulator_over_tls}", ca_bundle=ca_file)
    )
    try:
        assert_sdk_answers(server.url)
    finally:
        server.stop()


def test_refused_certificate_reaches_each_sdk_as_an_upstream_error(
    simulator_over_tls: int, caplog: pytest.LogCaptureFixture
) -> None:
    config = provider_config(f"https://localhost:{simulator_over_tls}")
    config["models"]["gpt-4o-mini"] = {"deployments": [{"provider": "tls", "model": "c"}]}
    server = serve_gateway(config)
    try:
        with caplog.at_level(logging.ERROR, logger="tollhouse.upstream"):
            claude = anthropic.Anthropic(base_url=server.url, api_key=GATEWAY_KEY, max_retries=0)
            with pytest.raises(anthropic.APIStatusError) as from_anthropic:
                claude.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=HI)  # type: ignore[arg-type]
            gpt = openai.OpenAI(base_url=server.url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
            with pytest.raises(openai.APIStatusError) as from_openai:
                gpt.chat.completions.create(model="gpt-4o-mini", messages=HI)  # type: ignore[arg-type]
    finally:
        server.stop()
    for caught in (from_anthropic.value, from_openai.value):
        assert caught.status_code >= 500
        assert "TLS certificate of localhost" in caught.message
        assert "unable to get local issuer certificate" in caught.message
    assert any("TLS certificate refused" in r.getMessage() for r in caplog.records)
