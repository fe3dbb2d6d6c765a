"""The compiled build (scripts/install-compiled.sh, mypyc) and the source tree must not mix.

mypyc writes its extensions next to the sources it compiles, and Python imports an
extension before the .py of the same name: one left in src/ (by building a wheel in the
checkout) would make an editable install, and these tests, run a stale compiled copy of
code being edited.
"""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

import tollhouse

SRC = Path(__file__).resolve().parent.parent / "src"
COMPILED = (
    "tollhouse.stages.admit",
    "tollhouse.stages.auth",
    "tollhouse.stages.rate_limit_headers",
    "tollhouse.stages.shape.history_bound",
    "tollhouse.stages.shape.input_guardrails",
    "tollhouse.stages.shape.input_limits",
    "tollhouse.stages.shape.parameter_rules",
    "tollhouse.stages.shape.policy",
    "tollhouse.stages.shape.request_policies",
    "tollhouse.stages.shape.untrusted_content",
    "tollhouse.stages.shape.variant_request",
    "tollhouse.ports.counters.base",
    "tollhouse.ports.counters.in_process",
    "tollhouse.ports.counters.redis",
    "tollhouse.ports.redis_connection",
    "tollhouse.ports.keys.key_ring",
    "tollhouse.ports.counters.nanousd",
    "tollhouse.tokens.estimate",
)


def test_no_compiled_module_sits_in_the_source_tree() -> None:
    leftovers = sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.so"))
    assert leftovers == [], (
        f"compiled modules in src/ shadow their sources: {leftovers}; delete them and "
        "build compiled installs with scripts/install-compiled.sh"
    )


def test_the_modules_under_test_are_either_all_compiled_or_all_source() -> None:
    """Run from the editable install, every module is its .py in src/; from an installed
    copy, the modules the build compiles are all extensions or (built without the mypyc
    hook) all sources."""
    files = [importlib.import_module(name).__file__ or "" for name in COMPILED]
    compiled = {f.endswith(".so") for f in files}
    if Path(tollhouse.__file__ or "").resolve().is_relative_to(SRC):
        assert compiled == {False}, files
    else:
        assert len(compiled) == 1, files


def test_the_build_compiles_exactly_these_modules() -> None:
    """The list above and pyproject.toml's mypyc include list are one list."""
    pyproject = tomllib.loads((SRC.parent / "pyproject.toml").read_text())
    include = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["hooks"]["mypyc"]["include"]
    listed = sorted(
        path.removeprefix("src/").removesuffix(".py").replace("/", ".") for path in include
    )
    assert listed == sorted(COMPILED)


def test_every_request_policy_is_compiled_with_its_base() -> None:
    """`RequestPolicy` is compiled and an interpreted class cannot inherit from a compiled
    one: a policy module left out of the list fails the compiled gateway at start."""
    defining = sorted(
        ".".join(path.relative_to(SRC).with_suffix("").parts)
        for path in SRC.rglob("*.py")
        if "(RequestPolicy)" in path.read_text()
    )
    missing = [name for name in defining if name not in COMPILED]
    assert missing == [], f"add {missing} to pyproject.toml's mypyc include list"
