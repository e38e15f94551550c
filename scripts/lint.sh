#!/usr/bin/env bash
# Formatting, import order, line length and pyflakes checks (ruff, configured in pyproject.toml).
# `./scripts/lint.sh --fix` rewrites the files instead of only checking them.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
if [ "${1:-}" = "--fix" ]; then
  ruff format .
  ruff check --fix .
else
  ruff format --check .
  ruff check .
fi
