"""Which HTTP proxy, if any, a connection to an upstream goes through.

Chosen once per upstream origin, when the provider is built:

- a provider's `proxy` setting wins: `off` connects directly, a URL (or a secret reference to
  one) always uses that proxy;
- otherwise the environment: `https_proxy` / `HTTPS_PROXY` for an `https` upstream,
  `http_proxy` / `HTTP_PROXY` for an `http` one, `all_proxy` / `ALL_PROXY` for either (the
  lower-case name first, as curl and Python's urllib read them), unless `no_proxy` /
  `NO_PROXY` names the host. A loopback upstream is never sent to an environment proxy: a
  proxy cannot reach this machine's loopback.

`NO_PROXY` is a comma-separated list: `*` matches every host; `example.com`, `.example.com` and
`*.example.com` match that domain and every name under it; an entry may end in `:port` to match
that port only; an IP address matches itself and a CIDR block (`10.0.0.0/8`, `fd00::/8`) the
addresses in it. Names are compared without case and without a trailing dot, never resolved.

Proxies are spoken to over plain TCP with `CONNECT` (connect_tunnel.py), for `http` and `https`
upstreams alike. The proxy's credentials come from the URL's user info and are sent as
`Proxy-Authorization: Basic`; `Proxy.address` is the only form of it that may be logged.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True, slots=True)
class Proxy:
    host: str
    port: int
    authorization: str | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        """`host:port`, safe to log: the credentials are never part of it."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_proxy_url(url: str) -> Proxy:
    """The proxy an `http://[user:password@]host[:port]` URL names. Raises ValueError with a
    reason that never quotes the URL (it may hold a password)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ValueError("expected a proxy URL http://[user:password@]host[:port]") from None
    if parts.scheme != "http":
        raise ValueError(
            f"proxy scheme {parts.scheme or '(none)'!r} is not supported; "
            "expected http://[user:password@]host[:port] (the proxy is reached over plain TCP)"
        )
    if not parts.hostname:
        raise ValueError("expected a proxy URL http://[user:password@]host[:port]: no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("a proxy URL has no path or query: http://[user:password@]host[:port]")
    authorization = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    return Proxy(parts.hostname, port or 80, authorization)


def select_proxy(
    scheme: str, host: str, port: int, setting: str | None, environ: Mapping[str, str]
) -> Proxy | None:
    """The proxy for `scheme://host:port` given a provider's resolved `proxy` setting (None:
    ask the environment). Raises ValueError naming the variable when one holds a bad URL."""
    if setting is not None:
        return None if setting == "off" else parse_proxy_url(setting)
    if _is_loopback(host):
        return None
    for name in (f"{scheme}_proxy", "all_proxy"):
        for variable in (name, name.upper()):
            url = environ.get(variable, "").strip()
            if not url:
                continue
            if bypasses_proxy(host, port, _env(environ, "no_proxy")):
                return None
            try:
                return parse_proxy_url(url)
            except ValueError as exc:
                raise ValueError(f"environment variable {variable}: {exc}") from None
    return None


def bypasses_proxy(host: str, port: int, no_proxy: str) -> bool:
    """Whether a `NO_PROXY` list (rules in the module docstring) names `host:port`."""
    name = host.strip("[]").rstrip(".").lower()
    address = _ip(name)
    for raw in no_proxy.replace(" ", ",").split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        pattern, entry_port = _split_port(entry)
        if entry_port is not None and entry_port != port:
            continue
        if address is not None:
            if _ip_matches(address, pattern):
                return True
            continue
        pattern = pattern.removeprefix("*").lstrip(".").rstrip(".")
        if pattern and (name == pattern or name.endswith("." + pattern)):
            return True
    return False


def _env(environ: Mapping[str, str], name: str) -> str:
    return environ.get(name) or environ.get(name.upper()) or ""


def _split_port(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):  # [v6]:port or [v6]
        inside, _, rest = entry[1:].partition("]")
        return inside, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    if entry.count(":") == 1:
        name, _, port = entry.partition(":")
        if port.isdigit():
            return name, int(port)
    return entry, None


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _ip_matches(address: ipaddress.IPv4Address | ipaddress.IPv6Address, pattern: str) -> bool:
    try:
        return address in ipaddress.ip_network(pattern, strict=False)
    except ValueError:
        return False


def _is_loopback(host: str) -> bool:
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    address = _ip(name)
    return address is not None and address.is_loopback
