#!/usr/bin/env bash
# Install Tollhouse into a venv with its admission path compiled by mypyc (see pyproject.toml):
# what a production install should run, and what the benchmarks measure.
#
#   bash scripts/install-compiled.sh VENV [--dev]     # --dev: with the test dependencies
#
# Needs a C compiler and the Python headers. The build runs on a copy of the working tree
# (tracked files as they are now, edits included): mypyc writes its extensions next to the
# sources it compiles, and one left in src/ would shadow the .py of an editable install.
set -euo pipefail
venv=${1:?usage: install-compiled.sh VENV [--dev]}
extras=""
if [ "${2:-}" = "--dev" ]; then extras="[dev]"; fi
repo=$(cd "$(dirname "$0")/.." && pwd)

copy=$(mktemp -d)
trap 'rm -rf "$copy"' EXIT
(cd "$repo" && git ls-files -z -- src pyproject.toml README.md | xargs -0 cp --parents -t "$copy")

python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
HATCH_BUILD_HOOK_ENABLE_MYPYC=true "$venv/bin/pip" install --quiet "$copy$extras"

# Fail loudly rather than benchmark or ship a pure-Python install by mistake.
"$venv/bin/python" - <<'PY'
import importlib
for name in ("tollhouse.stages.admit", "tollhouse.ports.counters.in_process"):
    module = importlib.import_module(name)
    assert module.__file__ and module.__file__.endswith(".so"), f"{name} is not compiled"
print("install-compiled: admission path compiled with mypyc")
PY
