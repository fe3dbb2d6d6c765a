"""Tests never write into the working directory or the checkout.

Every test runs with its working directory set to a fresh, empty directory of its own
(session-scoped fixtures: one for the session), so a relative path such as the default
config's `tollhouse.db` can never reach a user's own ledger in the checkout; a test that
leaves anything there fails, naming what it wrote. The checkout's files are compared
before and after, so an absolute path into it is caught too.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent

# What tools (not tests) write in a checkout: virtual environments, caches, bytecode.
_TOOL_DIRECTORIES = {".git", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", "build"}


class WroteOutsideTmp(AssertionError):
    """A test left files where tests must not write."""


def checkout_files(root: Path = CHECKOUT) -> frozenset[str]:
    """The files under `root` that are not a tool's (venvs, caches, bytecode, build)."""
    found: set[str] = set()
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = [
            name
            for name in subdirectories
            if name not in _TOOL_DIRECTORIES
            and not name.startswith(".venv")
            and not name.endswith(".egg-info")
        ]
        found.update(os.path.relpath(os.path.join(directory, name), root) for name in files)
    return frozenset(found)


@contextlib.contextmanager
def confined_to(directory: Path, checkout: Path = CHECKOUT) -> Iterator[None]:
    """Run the body with `directory` (empty) as the working directory; raise
    `WroteOutsideTmp` if the body left anything in it or added files to `checkout`."""
    before = checkout_files(checkout)
    previous = os.getcwd()
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(previous)
    left = sorted(os.listdir(directory))
    added = sorted(checkout_files(checkout) - before)
    if left or added:
        raise WroteOutsideTmp(
            "tests write only under their own tmp_path; this one wrote "
            + "; ".join(
                part
                for part in (
                    f"into the working directory: {', '.join(left)}" if left else "",
                    f"into the checkout: {', '.join(added)}" if added else "",
                )
                if part
            )
        )
