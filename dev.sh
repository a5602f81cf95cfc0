#!/usr/bin/env bash
# Developer commands for d2lmod.
#
#   ./dev.sh lab [ARGS...]      set up .venv (".[lab]") and open the lessons in JupyterLab
#   ./dev.sh test [ARGS...]     set up .venv (".[dev]" + torch==2.13.0) and run pytest (unit tests,
#                               nbval on notebooks/, the lessons in JupyterLab in headless Chromium);
#                               ARGS go to pytest
#   ./dev.sh execute [NB...]    rebuild the notebooks from notebooks/src/*.py and execute them
#                               in place, so their stored outputs stay true (NB: 01_layers_and_modules...)
#   ./dev.sh lite [--force]     set up .venv-lite (lite/requirements.txt) and build every lesson as a static
#                               in-browser site (JupyterLite) in build/lite/; serve it with any static server
#   ./dev.sh bench [W1 W2...]   set up .venv like test and time d2lmod against PyTorch and hand-written
#                               NumPy (bench/bench_core.py, about 1 minute), then the visualiser
#                               against model size (bench/bench_widgets.py --sizes)
#
# Installs are skipped when .venv/.installed-<hash of pyproject.toml>-<extra> exists.
# Set PYTHON to choose the interpreter that creates .venv (default: python3, >= 3.10).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

PYTHON="${PYTHON:-python3}"
VENV=.venv
VPY="$VENV/bin/python"
TORCH_PIN="torch==2.13.0"   # a local CPU wheel; anything looser downloads GBs of CUDA packages

note() { echo "dev.sh: $*" >&2; }

usage() {
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# --- system packages: python3-venv (for `python3 -m venv`), graphviz (`dot`) and, for the browser
# tests, chromium (Debian's package, driven by Playwright: never `playwright install`) ---
# system_packages [chromium]
system_packages() {
    local missing=()
    "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=("python3-venv")
    command -v dot >/dev/null 2>&1 || missing+=("graphviz")
    if [ "${1:-}" = chromium ] && [ ! -x /usr/bin/chromium ]; then
        missing+=("chromium")
    fi
    # and node's npm, for configurable-http-proxy (the classroom test; ensure_proxy installs it into .npm/)
    if [ "${1:-}" = chromium ] && ! command -v npm >/dev/null 2>&1; then
        missing+=("npm")
    fi
    [ ${#missing[@]} -eq 0 ] && return 0

    local sudo=""
    if [ ! -r /etc/debian_version ] || ! command -v apt-get >/dev/null 2>&1; then
        note "missing ${missing[*]}; not Debian/Ubuntu, install them yourself (skipping)"
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
            sudo="sudo -n"
        else
            note "missing ${missing[*]}; not root and no passwordless sudo: run 'sudo apt-get install ${missing[*]}' (skipping)"
            return 0
        fi
    fi
    note "installing ${missing[*]} with apt-get"
    if ! { $sudo apt-get update -qq >/dev/null &&
           DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null; }; then
        note "apt-get install ${missing[*]} failed (continuing)"
    fi
}

# --- .venv with the project installed in editable mode ---
# ensure_env EXTRA [torch]
ensure_env() {
    local extra="$1" with_torch="${2:-}"

    if [ ! -x "$VPY" ]; then
        "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {
            note "$PYTHON is $("$PYTHON" -V 2>&1); d2lmod needs Python >= 3.10 (set PYTHON=...)"
            exit 1
        }
        note "creating $VENV with $("$PYTHON" -V 2>&1)"
        "$PYTHON" -m venv --clear "$VENV"
    fi

    local hash stamp
    hash="$("$PYTHON" -c 'import hashlib; print(hashlib.sha256(open("pyproject.toml", "rb").read()).hexdigest()[:16])')"
    stamp="$VENV/.installed-$hash-$extra${with_torch:+-torch}"
    # A bigger install that already happened covers a smaller one (dev includes lab).
    local covers=("$stamp") s
    case "$extra${with_torch:+-torch}" in
        lab) covers+=("$VENV/.installed-$hash-dev" "$VENV/.installed-$hash-dev-torch") ;;
        dev) covers+=("$VENV/.installed-$hash-dev-torch") ;;
    esac
    for s in "${covers[@]}"; do
        [ -e "$s" ] && return 0
    done

    local extras="$extra"
    # with torch come jax + flax (the frameworks extra) for the visualiser's Flax tests; they leave torch alone
    [ -n "$with_torch" ] && extras="$extra,frameworks"
    local pkgs=(-e ".[$extras]")
    [ -n "$with_torch" ] && pkgs+=("$TORCH_PIN")
    note "installing ${pkgs[*]} into $VENV (quiet; a few minutes the first time)"
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$VPY" -m pip install -q "${pkgs[@]}"
    # Stamps of an older pyproject.toml no longer hold.
    find "$VENV" -maxdepth 1 -name '.installed-*' ! -name ".installed-$hash-*" -delete
    touch "$stamp"
}

# --- .venv-lite: the JupyterLite build's own venv (its pins are older than .venv's) ---
LITE_VENV=.venv-lite
ensure_lite_env() {
    if [ ! -x "$LITE_VENV/bin/python" ]; then
        note "creating $LITE_VENV with $("$PYTHON" -V 2>&1)"
        "$PYTHON" -m venv --clear "$LITE_VENV"
    fi
    local stamp
    stamp="$LITE_VENV/.installed-$("$PYTHON" -c 'import hashlib; print(hashlib.sha256(open("lite/requirements.txt", "rb").read()).hexdigest()[:16])')"
    [ -e "$stamp" ] && return 0
    note "installing lite/requirements.txt into $LITE_VENV (quiet; about a minute the first time)"
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$LITE_VENV/bin/python" -m pip install -q -r lite/requirements.txt
    find "$LITE_VENV" -maxdepth 1 -name '.installed-*' -delete
    touch "$stamp"
}

# --- configurable-http-proxy (npm) for the classroom test, in .npm/ of this checkout (never global) ---
ensure_proxy() {
    [ -x .npm/node_modules/.bin/configurable-http-proxy ] && return 0
    if ! command -v npm >/dev/null 2>&1; then
        note "no npm: the classroom test needs configurable-http-proxy (apt-get install npm), skipping its install"
        return 0
    fi
    note "installing configurable-http-proxy@5 into .npm/ (npm)"
    npm install --silent --no-audit --no-fund --prefix .npm configurable-http-proxy@5 >/dev/null ||
        note "npm install configurable-http-proxy failed (continuing; the classroom test will say so)"
}

cmd="${1:-}"
[ $# -gt 0 ] && shift

case "$cmd" in
    lab)
        system_packages
        ensure_env lab
        root_args=()
        [ "$(id -u)" -eq 0 ] && root_args=(--allow-root)
        exec "$VENV/bin/jupyter" lab ${root_args[@]+"${root_args[@]}"} notebooks/01_layers_and_modules.ipynb "$@"
        ;;
    test)
        system_packages chromium
        ensure_env dev torch
        ensure_proxy
        # Same hash seed for every run, and for the notebook kernels nbval starts.
        export PYTHONHASHSEED=0
        exec "$VPY" -m pytest "$@"
        ;;
    execute)
        system_packages
        ensure_env dev
        export PYTHONHASHSEED=0
        exec "$VPY" notebooks/src/build.py --execute "$@"
        ;;
    lite)
        ensure_lite_env
        exec "$LITE_VENV/bin/python" lite/build.py "$@"
        ;;
    bench)
        system_packages
        ensure_env dev torch
        "$VPY" bench/bench_core.py "$@"
        echo
        exec "$VPY" bench/bench_widgets.py --sizes
        ;;
    *)
        usage
        ;;
esac
