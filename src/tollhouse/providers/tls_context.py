"""The TLS settings every upstream connection is made with: certificates and host names are
always verified, against one trust store chosen once per provider.

The trust store is, first found: the provider's `ca_bundle` (a PEM file, or a directory of
hashed certificates as `c_rehash` makes), else `SSL_CERT_FILE` / `SSL_CERT_DIR` from the
environment, else the system's store, else certifi's bundle (a system without one, such as a
slim container image). A configured or named bundle replaces the others, as curl's
`--cacert` does: a corporate TLS-inspecting proxy's root is usually the only one needed.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping

import certifi


def verifying_context(
    ca_bundle: str | None = None, environ: Mapping[str, str] | None = None
) -> ssl.SSLContext:
    """A client context that verifies certificate chains and host names. Raises ValueError,
    naming the setting (never a secret), when the chosen bundle cannot be loaded."""
    env = os.environ if environ is None else environ
    if ca_bundle:
        context = _from_locations(ca_bundle, "ca_bundle")
    elif env.get("SSL_CERT_FILE") or env.get("SSL_CERT_DIR"):
        context = _from_environment(env)
    else:
        context = ssl.create_default_context()
        if not _has_trust_anchors(context):
            context.load_verify_locations(cafile=certifi.where())
    # Only HTTP/1.1 is spoken; saying so keeps an HTTP/2-first server from choosing h2.
    context.set_alpn_protocols(["http/1.1"])
    return context


def check_ca_bundle(path: str) -> str | None:
    """Why `path` cannot serve as a CA bundle, or None when it can (for config checks)."""
    try:
        _from_locations(path, "ca_bundle")
    except ValueError as exc:
        return str(exc).removeprefix("ca_bundle: ")
    return None


def _from_environment(env: Mapping[str, str]) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.load_default_certs()
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        path = env.get(name)
        if path:
            _load(context, path, name)
    return context


def _from_locations(path: str, setting: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies chains and host names
    _load(context, path, setting)
    return context


def _load(context: ssl.SSLContext, path: str, setting: str) -> None:
    expanded = os.path.expanduser(path)
    if os.path.isdir(expanded):
        context.load_verify_locations(capath=expanded)
        return
    try:
        context.load_verify_locations(cafile=expanded)
    except FileNotFoundError:
        raise ValueError(f"{setting}: no such file or directory: {path}") from None
    except PermissionError:
        raise ValueError(f"{setting}: cannot read {path}: permission denied") from None
    except ssl.SSLError:
        raise ValueError(f"{setting}: {path} holds no PEM certificate") from None
    if context.cert_store_stats()["x509"] == 0:
        raise ValueError(f"{setting}: {path} holds no PEM certificate")


def _has_trust_anchors(context: ssl.SSLContext) -> bool:
    """Whether the system's default store gave `context` anything to trust. Certificates in
    a capath directory are loaded lazily and not counted, so a non-empty one counts."""
    if context.cert_store_stats()["x509_ca"] > 0:
        return True
    capath = ssl.get_default_verify_paths().capath
    return capath is not None and os.path.isdir(capath) and any(os.scandir(capath))
