#!/usr/bin/env bash
# benchsuite's two commands; each sets itself up from a clean clone (Python 3.11 + pip only).
#
#   ./run.sh latency [pytest args]   the main job: `pytest -m latency` over the default grid
#   ./run.sh test    [pytest args]   the suite's own tests (what CI runs)
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

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
    setup) setup ;;
    latency) setup; exec "$VENV/bin/python" -m pytest -m latency -v "$@" ;;
    test) setup; exec "$VENV/bin/python" -m pytest "$@" ;;
    *) sed -n '2,9p' "$0"; exit 2 ;;
esac
