#!/usr/bin/env bash
# Builds the TypeScript SDK and runs its tests against a real daemon.
# Usage: sdk/typescript/run-tests.sh PATH/TO/latchkey
# Needs Node 18+ and npm (the npm registry for `npm ci`). Each test file starts its own
# `latchkey serve --dev` on 127.0.0.1:0 in a temp directory and stops it at the end.
set -euo pipefail
cd "$(dirname "$0")"

if [ $# -ne 1 ]; then
  echo "usage: $0 PATH/TO/latchkey" >&2
  exit 2
fi
bin="$1"
case "$bin" in /*) ;; *) bin="$OLDPWD/$bin" ;; esac
if [ ! -x "$bin" ]; then
  echo "run-tests.sh: $bin is not an executable latchkey binary" >&2
  exit 2
fi

npm ci --no-audit --no-fund --loglevel=error
npm run --silent build
# The published declarations type-check in a strict consumer without @types/node.
npx --no-install tsc -p test/types/tsconfig.json
LATCHKEY_BIN="$bin" node --test test/*.test.mjs
