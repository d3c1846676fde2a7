#!/usr/bin/env bash
# Holds the server to its OpenAPI document: schemathesis (PyPI), driven by /openapi.json, runs
# against a fresh `latchkey serve --dev`, once as the admin and once as an agent, with the
# checks not_a_server_error, status_code_conformance, content_type_conformance and
# response_schema_conformance. Any failure fails the script; the daemon is always stopped.
#
#   scripts/schemathesis.sh [PATH/TO/latchkey]        # default: target/debug/latchkey
#
# Environment: ST_VENV (where schemathesis is installed; default /tmp/latchkey-schemathesis),
# ST_MAX_EXAMPLES (test cases per operation and phase; default 20), ST_TIME_LIMIT (seconds
# for each of the two runs; default 300), ST_SEED (default 1, so that a failure reproduces).
set -euo pipefail

SCHEMATHESIS_VERSION=4.32.5
BIN=${1:-target/debug/latchkey}
[[ -x $BIN ]] || { echo "schemathesis: no latchkey binary at $BIN (cargo build first)" >&2; exit 1; }
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
VENV=${ST_VENV:-/tmp/latchkey-schemathesis}
MAX_EXAMPLES=${ST_MAX_EXAMPLES:-20}
TIME_LIMIT=${ST_TIME_LIMIT:-300}
SEED=${ST_SEED:-1}
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance

# schemathesis, pinned, in its own virtualenv.
if ! "$VENV/bin/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  echo "== installing schemathesis $SCHEMATHESIS_VERSION in $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

for v in $(compgen -v LATCHKEY_ || true); do unset "$v"; done
export NO_COLOR=1
WORK=$(mktemp -d)
DAEMON_PID=""
cleanup() {
  local rc=$?
  if [[ -n $DAEMON_PID ]] && kill -TERM "$DAEMON_PID" 2>/dev/null; then
    for _ in $(seq 100); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$DAEMON_PID" 2>/dev/null || true
  fi
  if [[ $rc -ne 0 && -f $WORK/daemon.err ]]; then
    echo "--- daemon log (last lines)" >&2
    tail -n 20 "$WORK/daemon.err" >&2
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# A fresh daemon on a free port. Long polls are capped below the request timeout, so a short
# timeout keeps `GET /v1/leases/{id}?wait=N` short.
(
  cd "$WORK"
  LATCHKEY_HTTP_REQUEST_TIMEOUT_SECONDS=8 \
    "$BIN" serve --dev --listen 127.0.0.1:0 >daemon.out 2>daemon.err </dev/null &
  echo $! >daemon.pid
)
DAEMON_PID=$(cat "$WORK/daemon.pid")
for _ in $(seq 200); do
  grep -q '^# try:' "$WORK/daemon.out" 2>/dev/null && break
  kill -0 "$DAEMON_PID" 2>/dev/null || { echo "schemathesis: the daemon exited at start" >&2; exit 1; }
  sleep 0.1
done
eval "$(grep '^export LATCHKEY_' "$WORK/daemon.out")"
ADMIN_TOKEN=$LATCHKEY_TOKEN

# Something to find: a secret, an agent that may read under production/, a secret of its own.
latchkey() { "$BIN" "$@"; }
printf 'sk-fuzz-1' | latchkey secret put production/openai/api-key >/dev/null
AGENT_KEY=$(latchkey agent create fuzz-agent --tier 3 --quiet)
latchkey grant create --namespace entities --pattern 'production/**' --action read --action proxy >/dev/null
printf 'pg-fuzz' | LATCHKEY_TOKEN=$AGENT_KEY latchkey secret put staging/db/password >/dev/null

# One run of schemathesis as $1 with token $2; its output also goes to $WORK/st-$1.log.
run_as() {
  local who=$1 token=$2 phases=${3:-examples,coverage,fuzzing,stateful}
  (cd "$WORK" && timeout --signal=INT --kill-after=30 "$TIME_LIMIT" \
    "$VENV/bin/st" run "$LATCHKEY_ADDR/openapi.json" \
    --phases "$phases" \
    --header "Authorization: Bearer $token" \
    --checks "$CHECKS" \
    --max-examples "$MAX_EXAMPLES" \
    --seed "$SEED" \
    --workers 2 \
    --request-timeout 15 \
    --output-truncate true \
    --warnings off) 2>&1 | tee "$WORK/st-$who.log"
  return "${PIPESTATUS[0]}"
}

failed=0
for who in admin agent; do
  if [[ $who == admin ]]; then token=$ADMIN_TOKEN; else token=$AGENT_KEY; fi
  echo "== schemathesis as $who (at most $MAX_EXAMPLES examples per operation, ${TIME_LIMIT}s)"
  # Run from the temporary directory: schemathesis keeps a cache (.schemathesis/) where it runs.
  if ! run_as "$who" "$token"; then
    # A check failure fails at once. Schemathesis 4.32 sometimes crashes in its own coverage
    # phase (a KeyError inside schemathesis, reported under ERRORS with no FAILURES): that is
    # not a finding about Latchkey. The run is made again; the third time without the coverage
    # phase (where the crash lives), and it must then pass.
    passed=0
    for phases in examples,coverage,fuzzing,stateful examples,fuzzing,stateful; do
      if grep -q "= FAILURES =" "$WORK/st-$who.log" || ! grep -q "= ERRORS =" "$WORK/st-$who.log"; then
        break
      fi
      echo "schemathesis: errors but no failures (an internal crash); again with phases $phases"
      if run_as "$who" "$token" "$phases"; then
        passed=1
        break
      fi
    done
    if [[ $passed -eq 0 ]]; then
      echo "schemathesis: FAILED as $who" >&2
      failed=1
    fi
  fi
done
[[ $failed -eq 0 ]] || exit 1
echo "schemathesis: 0 failures, as admin and as agent"
