#!/usr/bin/env bash
# One command: create the virtual environment (if needed), install tfreg with its test extras, run the tests.
# Works on a fresh machine that has only Python 3.11. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
exec python -m pytest -q "$@"
