#!/usr/bin/env bash
# Set up, then run the whole test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export RAYFARM_RAYVISION_VENV="$PWD/.venv-rayvision"
.venv/bin/python -m pytest -q "$@"
