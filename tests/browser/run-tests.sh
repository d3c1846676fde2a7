#!/usr/bin/env bash
# Runs the console's browser tests (pytest + Playwright for Python) in a real headless
# Chromium against a real latchkey binary.
#
#   bash tests/browser/run-tests.sh [PATH/TO/latchkey]
#
# The binary: the first argument, else $LATCHKEY_BIN, else target/debug/latchkey. Chromium:
# $CHROMIUM, default /usr/bin/chromium (Debian's package `chromium`; Playwright's own browser
# download is never used). The venv: $BROWSER_VENV, default target/browser-venv. Screenshots
# go to $ARTIFACTS, default target/browser-artifacts. Needs python3 and PyPI.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${1:-${LATCHKEY_BIN:-$root/target/debug/latchkey}}"
if [[ ! -x "$bin" ]]; then
  echo "run-tests.sh: no latchkey binary at $bin (pass its path as the first argument)" >&2
  exit 2
fi
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
chromium="${CHROMIUM:-/usr/bin/chromium}"
if [[ ! -x "$chromium" ]]; then
  echo "run-tests.sh: no Chromium at $chromium (apt-get install chromium)" >&2
  exit 2
fi
venv="${BROWSER_VENV:-$root/target/browser-venv}"
if [[ ! -x "$venv/bin/python" ]]; then
  "${PYTHON:-python3}" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"

export LATCHKEY_BIN="$bin" CHROMIUM="$chromium"
export ARTIFACTS="${ARTIFACTS:-$root/target/browser-artifacts}"
mkdir -p "$ARTIFACTS"
cd "$here"
# shellcheck disable=SC2086
"$venv/bin/python" -m pytest -p no:cacheprovider -q ${PYTEST_ARGS:-}
