# Sourced by the scripts/*.sh entry points: creates .venv (Python 3.11) and installs tfreg[test] into it
# when setup.cfg changed since the last install, then activates it.
PY=${TFREG_PYTHON:-$(command -v python3.11 || command -v python3)}
VENV=${TFREG_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  echo "[tfreg] creating $VENV with $PY" >&2
  "$PY" -m venv "$VENV"
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"
STAMP="$VENV/.tfreg-installed"
WANT=$(cat setup.cfg pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "[tfreg] installing tfreg[test] into $VENV" >&2
  python -m pip install -q --upgrade pip >&2
  python -m pip install -q -e ".[test]" >&2
  echo "$WANT" > "$STAMP"
fi
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
export TFREG_TEST_DATA=${TFREG_TEST_DATA:-$(cd .. && pwd)/shared/data}
