#!/usr/bin/env bash
# benchsuite's two commands; each sets itself up from a clean clone (Python 3.11 + pip only).
#
#   ./run.sh latency [pytest args]   the main job: `pytest -m latency` over the default grid, on
#                                    Fashion-MNIST (installed with apt-get when run as root)
#   ./run.sh test    [pytest args]   the suite's own tests (what CI runs); also builds the
#                                    worker envs the tests use (tox envs prune and bench, the
#                                    legacy OpenVINO 2021.4 env when Python 3.6 exists)
#   ./run.sh setup                   only create/refresh the virtual environment
#
# The venv (.venv, or $BENCHSUITE_VENV) is refreshed when requirements.txt or pyproject.toml
# change.
set -euo pipefail
cd "$(dirname "$0")"

VENV=${BENCHSUITE_VENV:-.venv}
PY=${PYTHON:-$(command -v python3.11 || command -v python3)}

setup() {
    if [ -x "$VENV/bin/python" ] && cat requirements.txt pyproject.toml \
        | cmp -s - "$VENV/.setup-stamp"; then
        return
    fi
    echo "[run.sh] setting up $VENV (pinned dependencies from requirements.txt)" >&2
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -r requirements.txt
    "$VENV/bin/python" -m pip install -q --no-deps -e .
    cat requirements.txt pyproject.toml > "$VENV/.setup-stamp"
}

dataset() {
    # the main job's data: Fashion-MNIST, Debian's package dataset-fashion-mnist (30.9 MB)
    [ -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ] && return
    [ -n "${BENCHSUITE_FASHION_MNIST_DIR:-}" ] && return
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "[run.sh] installing Debian's dataset-fashion-mnist (the main job's data)" >&2
        apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null
    else
        echo "[run.sh] Fashion-MNIST is missing: run 'sudo apt-get install -y" \
            "dataset-fashion-mnist', or set BENCHSUITE_FASHION_MNIST_DIR to a folder holding" \
            "its four .gz files, or pass --dataset digits (a smoke test)" >&2
    fi
}

worker_envs() {
    # the prune env (torch, no openvino) and the bench env (openvino + nncf, no torch); tox
    # brings them up to date when tox.ini (their pinned deps) changed since the last build
    if [ ! -x .tox/prune/bin/python ] || [ ! -x .tox/bench/bin/python ] \
        || ! cmp -s tox.ini .tox/.setup-stamp; then
        echo "[run.sh] building the tox envs prune and bench" >&2
        "$VENV/bin/tox" -q -e prune,bench --notest
        cp tox.ini .tox/.setup-stamp
    fi
    # the legacy MYRIAD bench env (OpenVINO 2021.4.2 on Python 3.6), where Python 3.6 exists
    if [ ! -x .venvs/bench-myriad/bin/benchmark_app ]; then
        echo "[run.sh] building the legacy env .venvs/bench-myriad" >&2
        scripts/legacy_env.sh || echo "[run.sh] legacy env not built (see above); its tests" \
            "will skip and say why" >&2
    fi
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
    setup) setup ;;
    latency) setup; dataset; exec "$VENV/bin/python" -m pytest -m latency -v "$@" ;;
    test) setup; worker_envs; exec "$VENV/bin/python" -m pytest "$@" ;;
    *) sed -n '2,9p' "$0"; exit 2 ;;
esac
