#!/usr/bin/env bash
# Runs the Python SDK's tests against a real latchkey binary.
#
#   bash sdk/python/run-tests.sh [PATH/TO/latchkey]
#
# The binary: the first argument, else $LATCHKEY_BIN, else ../../target/debug/latchkey
# (relative to this directory). The venv: $PY_VENV, default sdk/python/.venv (reused when
# present). Extra pytest arguments: $PYTEST_ARGS. Needs python3 (3.10+) and PyPI.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="${1:-${LATCHKEY_BIN:-$here/../../target/debug/latchkey}}"
if [[ ! -x "$bin" ]]; then
  echo "run-tests.sh: no latchkey binary at $bin (pass its path as the first argument)" >&2
  exit 2
fi
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
venv="${PY_VENV:-$here/.venv}"
python="${PYTHON:-python3}"

if [[ ! -x "$venv/bin/python" ]]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$here[test]"

cd "$here"
echo "== mypy --strict src tests"
"$venv/bin/python" -m mypy --strict src tests
echo "== pytest (LATCHKEY_BIN=$bin)"
# shellcheck disable=SC2086
LATCHKEY_BIN="$bin" "$venv/bin/python" -m pytest -p no:cacheprovider ${PYTEST_ARGS:-}
