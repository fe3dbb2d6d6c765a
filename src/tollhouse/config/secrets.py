"""Secrets are referenced, never written into a config: `env:NAME` or `file:PATH`.

The resolved value lives only in the provider adapter that sends it upstream; it is never
logged, stored, or returned by any endpoint.
"""

from __future__ import annotations

import os
from pathlib import Path


class SecretError(ValueError):
    pass


def resolve_secret(reference: str, *, key_path: str) -> str:
    """The secret a reference points to; errors name the config key, never the value."""
    scheme, sep, target = reference.partition(":")
    if not sep or scheme not in ("env", "file") or not target:
        raise SecretError(
            f"{key_path}: expected a secret reference `env:NAME` or `file:PATH`; "
            "secrets are never written inline in the config"
        )
    if scheme == "env":
        value = os.environ.get(target)
        if not value:
            raise SecretError(f"{key_path}: environment variable {target} is not set or empty")
        return value.strip()
    path = Path(target).expanduser()
    try:
        value = path.read_text().strip()
    except OSError as exc:
        raise SecretError(f"{key_path}: cannot read secret file {path}: {exc.strerror}") from None
    if not value:
        raise SecretError(f"{key_path}: secret file {path} is empty")
    return value
