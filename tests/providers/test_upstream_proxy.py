"""The upstream client through an HTTP proxy: HTTPS_PROXY / HTTP_PROXY / NO_PROXY and the
provider's `proxy` setting, tunnelled with CONNECT through a real proxy on loopback; the
proxy's password is sent to it and nowhere else."""

from __future__ import annotations

import asyncio
import base64
import gc
import logging
import warnings
from pathlib import Path

import pytest
import trustme
from tests.providers.loopback_network import (
    OK,
    answer_ok,
    assert_sdk_answers,
    call_once,
    connect_proxy,
    provider_config,
    server_context,
    serving_on_thread,
    tls_front,
)
from tests.support import serve_gateway

from tollhouse.config import load_config, parse_config
from tollhouse.config.loader import ConfigError
from tollhouse.providers.base import UpstreamConnectionError
from tollhouse.providers.proxy_selection import Proxy, bypasses_proxy, select_proxy

PASSWORD = "s3cret/p@ss"
PROXY_ENV = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
PROXY_ENV += ("NO_PROXY", "no_proxy")


@pytest.fixture(autouse=True)
def no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("host", "port", "no_proxy", "bypass"),
    [
        ("api.anthropic.com", 443, "*", True),
        ("api.anthropic.com", 443, "anthropic.com", True),
        ("api.anthropic.com", 443, ".anthropic.com", True),
        ("api.anthropic.com", 443, "*.anthropic.com", True),
        ("anthropic.com", 443, ".anthropic.com", True),
        ("API.Anthropic.COM.", 443, "anthropic.com", True),
        ("notanthropic.com", 443, "anthropic.com", False),
        ("api.anthropic.com", 443, "openai.com, anthropic.com", True),
        ("api.anthropic.com", 443, "anthropic.com:443", True),
        ("api.anthropic.com", 8443, "anthropic.com:443", False),
        ("10.1.2.3", 80, "10.0.0.0/8", True),
        ("11.1.2.3", 80, "10.0.0.0/8", False),
        ("10.1.2.3", 80, "10.1.2.3", True),
        ("[fd00::1]", 443, "fd00::/8", True),
        ("[fd00::1]", 443, "[fd00::1]:443", True),
        ("api.anthropic.com", 443, "", False),
        ("api.anthropic.com", 443, " , ", False),
    ],
)
def test_no_proxy_rules(host: str, port: int, no_proxy: str, bypass: bool) -> None:
    assert bypasses_proxy(host, port, no_proxy) is bypass


def test_environment_proxy_is_chosen_by_the_upstream_scheme() -> None:
    env = {"https_proxy": "http://secure:3128", "HTTP_PROXY": "http://plain:8080"}
    assert select_proxy("https", "api.openai.com", 443, None, env) == Proxy("secure", 3128)
    assert select_proxy("http", "vllm.internal", 80, None, env) == Proxy("plain", 8080)
    fallback = {"ALL_PROXY": "http://every:1080"}
    assert select_proxy("https", "api.openai.com", 443, None, fallback) == Proxy("every", 1080)
    both = {"https_proxy": "http://lower:1", "HTTPS_PROXY": "http://upper:2"}
    assert select_proxy("https", "api.openai.com", 443, None, both) == Proxy("lower", 1)


def test_no_proxy_and_loopback_bypass_the_environment_proxy_but_not_a_provider_setting() -> None:
    env = {"HTTPS_PROXY": "http://corp:3128", "NO_PROXY": ".internal"}
    assert select_proxy("https", "llm.internal", 443, None, env) is None
    assert select_proxy("https", "127.0.0.1", 443, None, env) is None
    assert select_proxy("https", "localhost", 443, None, env) is None
    chosen = Proxy("other", 3128)
    assert select_proxy("https", "llm.internal", 443, "http://other:3128", env) == chosen
    assert select_proxy("https", "api.openai.com", 443, "off", env) is None


def test_proxy_credentials_are_decoded_and_never_shown() -> None:
    proxy = select_proxy("https", "api.openai.com", 443, "http://me:s3cret%2Fp%40ss@corp:3128", {})
    assert proxy is not None
    assert proxy.authorization == "Basic " + base64.b64encode(b"me:" + PASSWORD.encode()).decode()
    assert "s3cret" not in repr(proxy)
    assert proxy.address == "corp:3128"


def test_a_bad_environment_proxy_names_the_variable_not_its_value() -> None:
    env = {"HTTPS_PROXY": "socks5://me:hunter2@corp:1080"}
    with pytest.raises(ValueError, match="HTTPS_PROXY: proxy scheme 'socks5'") as caught:
        select_proxy("https", "api.openai.com", 443, None, env)
    assert "hunter2" not in str(caught.value)


def test_proxy_setting_is_checked_at_load(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\$\.providers\.tls\.proxy: proxy scheme 'https'"):
        parse_config(provider_config("https://x", proxy="https://corp:3128"))
    with pytest.raises(ConfigError, match=r"\$\.providers\.tls\.proxy: the URL holds a password"):
        parse_config(provider_config("https://x", proxy="http://me:pw@corp:3128"))
    config_file = tmp_path / "tollhouse.yaml"
    config_file.write_text(
        "providers:\n  direct:\n    type: openai\n    proxy: off\n"
        "  corp:\n    type: openai\n    proxy: env:CORP_PROXY\n"
    )
    providers = load_config(config_file).providers
    assert providers["direct"].proxy == "off"
    assert providers["corp"].proxy == "env:CORP_PROXY"


def test_https_proxy_tunnels_tls_end_to_end_with_the_proxy_credentials(
    ca: trustme.CA, ca_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The gateway cannot resolve this name; only the proxy knows where it is.
    with (
        serving_on_thread(answer_ok, server_context(ca, "api.upstream.test")) as upstream,
        connect_proxy({"api.upstream.test:443": upstream}, ("me", PASSWORD)) as (proxy, port),
    ):
        monkeypatch.setenv("HTTPS_PROXY", f"http://me:s3cret%2Fp%40ss@127.0.0.1:{port}")
        assert call_once("https://api.upstream.test", ca_bundle=ca_file) == b"{}"
    assert proxy.targets == ["api.upstream.test:443"]
    assert proxy.authorizations == [proxy.expected]


def test_tunnel_still_verifies_the_upstream_certificate(
    ca: trustme.CA, ca_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (
        serving_on_thread(answer_ok, server_context(ca, "impostor.test")) as upstream,
        connect_proxy({"api.upstream.test:443": upstream}) as (_, port),
    ):
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
        with pytest.raises(UpstreamConnectionError, match="Hostname mismatch"):
            call_once("https://api.upstream.test", ca_bundle=ca_file)


def test_http_proxy_tunnels_a_plain_http_upstream(monkeypatch: pytest.MonkeyPatch) -> None:
    with (
        serving_on_thread(answer_ok) as upstream,
        connect_proxy({"vllm.upstream.test:8000": upstream}) as (proxy, port),
    ):
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("NO_PROXY", "other.test")
        assert call_once("http://vllm.upstream.test:8000") == b"{}"
    assert proxy.targets == ["vllm.upstream.test:8000"]


def test_no_proxy_sends_a_matching_upstream_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    with (
        serving_on_thread(answer_ok) as upstream,
        connect_proxy({}) as (proxy, port),
    ):
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("NO_PROXY", "example.com")
        # A provider setting pointing at the proxy wins over NO_PROXY ...
        with pytest.raises(UpstreamConnectionError, match="403"):
            call_once(f"http://127.0.0.1:{upstream}", proxy=f"http://127.0.0.1:{port}")
        # ... and a loopback upstream from the environment goes direct.
        assert call_once(f"http://127.0.0.1:{upstream}") == b"{}"
    assert proxy.targets == [f"127.0.0.1:{upstream}"]


def test_wrong_proxy_password_is_refused_and_never_shown(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        serving_on_thread(answer_ok) as upstream,
        connect_proxy({"vllm.upstream.test:80": upstream}, ("me", "right")) as (_, port),
        caplog.at_level(logging.DEBUG),
    ):
        monkeypatch.setenv("HTTP_PROXY", f"http://me:wrong-hunter2@127.0.0.1:{port}")
        with pytest.raises(UpstreamConnectionError) as caught:
            call_once("http://vllm.upstream.test")
    message = str(caught.value)
    assert f"proxy 127.0.0.1:{port} refused CONNECT to vllm.upstream.test:80" in message
    assert "407" in message
    assert "check the user and password" in message
    assert "hunter2" not in message
    assert "hunter2" not in caplog.text


def test_unreachable_proxy_is_a_connection_error_naming_it() -> None:
    with pytest.raises(UpstreamConnectionError, match=r"cannot connect to proxy 127\.0\.0\.1:9"):
        call_once("https://api.upstream.test", proxy="http://127.0.0.1:9")


def test_sdk_calls_go_through_the_provider_proxy_setting(
    ca: trustme.CA,
    ca_file: str,
    simulator_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    simulator_port = int(simulator_url.rsplit(":", 1)[1])
    with (
        tls_front(simulator_port, server_context(ca, "api.anthropic.test")) as front,
        connect_proxy({"api.anthropic.test:443": front}, ("me", PASSWORD)) as (proxy, port),
        caplog.at_level(logging.DEBUG),
    ):
        monkeypatch.setenv("CORP_PROXY", f"http://me:s3cret%2Fp%40ss@127.0.0.1:{port}")
        server = serve_gateway(
            provider_config("https://api.anthropic.test", ca_bundle=ca_file, proxy="env:CORP_PROXY")
        )
        try:
            assert_sdk_answers(server.url)
        finally:
            server.stop()
    assert set(proxy.targets) == {"api.anthropic.test:443"}
    assert "s3cret" not in caplog.text


async def answer_once_then_stop_reading(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """One answer, then nothing more is read: the client's TLS close_notify is never
    answered, so its closing handshake never completes."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    await reader.readexactly(length)
    writer.write(OK)
    writer.transport.pause_reading()
    await asyncio.sleep(3600)  # the timer keeps this task alive: nothing else refers to it


@pytest.mark.parametrize("through_proxy", [False, True], ids=["direct", "tunnel"])
def test_closing_the_client_leaves_no_tls_socket_open_when_the_upstream_never_answers_goodbye(
    through_proxy: bool, ca: trustme.CA, ca_file: str
) -> None:
    context = server_context(ca, "localhost")
    with (
        serving_on_thread(answer_once_then_stop_reading, context) as upstream,
        connect_proxy({f"localhost:{upstream}": upstream}) as (_, port),
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always", ResourceWarning)
        proxy = f"http://127.0.0.1:{port}" if through_proxy else "off"
        assert call_once(f"https://localhost:{upstream}", ca_bundle=ca_file, proxy=proxy) == b"{}"
        gc.collect()  # an open socket left behind is collected, with a warning, here
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
