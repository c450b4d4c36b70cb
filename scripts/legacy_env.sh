#!/usr/bin/env bash
# Build the legacy MYRIAD bench env (OpenVINO 2021.4.2 benchmark_app on Python 3.6) outside tox,
# at .venvs/bench-myriad (benchsuite.bench.legacy_benchmark_app() finds it there).
# Same steps as [testenv:bench-myriad] in tox.ini; see docs/measurements.md for why each is needed.
#   scripts/legacy_env.sh [PYTHON3.6] [ENV_DIR]
# The MYRIAD plugin also needs Debian's libusb-1.0-0 (as root: apt-get update &&
# apt-get install -y libusb-1.0-0); without a stick it then fails with NC_ERROR (tests skip).
set -euo pipefail
cd "$(dirname "$0")/.."
PY36="${1:-}"
if [ -z "$PY36" ]; then
    # a pyenv shim named python3.6 may exist without 3.6 being selected: check that it runs
    PYENV_PY36=""
    if command -v pyenv >/dev/null 2>&1; then
        PYENV_PY36="$(pyenv root)/versions/3.6.15/bin/python3.6"
    fi
    for cand in "${BENCH_PY36:-}" "$PYENV_PY36" "$(command -v python3.6 || true)"; do
        if [ -n "$cand" ] && "$cand" -c 'import sys; assert sys.version_info[:2] == (3, 6)' \
            2>/dev/null; then PY36="$cand"; break; fi
    done
fi
ENV_DIR="${2:-.venvs/bench-myriad}"
if [ -z "$PY36" ]; then
    echo "no Python 3.6 interpreter (tried \$BENCH_PY36, pyenv 3.6.15 and python3.6 on PATH)" >&2
    exit 2
fi
"$PY36" -m venv "$ENV_DIR"
# Python 3.6's bundled pip 18 finds no wheels for these packages; 21.3.1 does.
"$ENV_DIR/bin/python" -m pip install -q --disable-pip-version-check pip==21.3.1
"$ENV_DIR/bin/python" -m pip install -q openvino==2021.4.2 'opencv-python-headless<4.7' progress
# openvino-dev's own dependencies fail to build on 3.6 (tokenizers); benchmark_app needs none.
"$ENV_DIR/bin/python" -m pip install -q --no-deps openvino-dev==2021.4.2
"$ENV_DIR/bin/python" -c "from openvino.inference_engine import IECore, get_version; \
print('OpenVINO', get_version(), 'devices', IECore().available_devices)"
echo "benchmark_app: $ENV_DIR/bin/benchmark_app"
