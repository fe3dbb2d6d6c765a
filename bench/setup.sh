#!/usr/bin/env bash
# One-time (idempotent) setup of the benchmark's tools. Installs nothing global except Debian
# packages: nginx + its njs module (the canned upstream) and wrk (the load generator).
# LiteLLM goes into its own venv, bench/.venv-litellm, and Tollhouse (compiled, as production
# runs it) into bench/.venv-tollhouse (both git-ignored). Run it again after changing the code.
#
#   bash bench/setup.sh          # then: python3 bench/run.py
set -euo pipefail
cd "$(dirname "$0")"

# The newest LiteLLM whose proxy installs from the package index this project can reach
# (1.108.8+ pins litellm-enterprise / litellm-proxy-extras releases missing from it, and 1.110
# moved the proxy into a separate `litellm-proxy` package that is missing too).
LITELLM_VERSION=1.108.7
# litellm-requirements.txt locks the whole venv: litellm[proxy,proxy-runtime] (the proxy plus the
# runtime extras of its production image) with prisma, so that imports LiteLLM attempts on every
# request (opentelemetry sdk, prisma.errors) succeed once and are cached instead of failing per
# request, and httptools, so uvicorn uses the same fast HTTP parser as Tollhouse's.
LOCK=litellm-requirements.txt

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
[ -e /usr/lib/nginx/modules/ngx_http_js_module.so ] || missing+=(libnginx-mod-http-js)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
else
    echo "setup: nginx, libnginx-mod-http-js and wrk already installed"
fi

venv=.venv-litellm
locked() {  # the venv holds exactly the packages of the lock file
    [ -x "$venv/bin/litellm" ] && diff -q <(grep -v '^#' "$LOCK" | sort -f) \
        <("$venv/bin/pip" freeze --disable-pip-version-check 2>/dev/null | sort -f) >/dev/null
}
if locked; then
    echo "setup: $venv already matches $LOCK (litellm $LITELLM_VERSION)"
else
    echo "setup: creating $venv with litellm $LITELLM_VERSION from $LOCK (a minute or two)"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
    "$venv/bin/pip" install --quiet -r "$LOCK"
    locked || echo "setup: WARNING: $venv differs from $LOCK" >&2
fi

# Tollhouse as the benchmarks run it: a compiled install of the working tree (about 20 s).
echo "setup: building bench/.venv-tollhouse (scripts/install-compiled.sh)"
rm -rf .venv-tollhouse
bash ../scripts/install-compiled.sh .venv-tollhouse

echo "setup: done"
echo "  nginx: $(/usr/sbin/nginx -v 2>&1)"
echo "  wrk:   $(wrk -v 2>&1 | head -1)"
echo "  litellm: $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("litellm"))')"
