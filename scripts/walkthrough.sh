#!/usr/bin/env bash
# The README's "Five-minute walkthrough", run as written: the CLI form and the curl form, each
# against a fresh `latchkey serve --dev` in a temporary directory, then the outcomes checked
# (the value revealed after the approval is the one stored, `audit verify` passes).
#
#   scripts/walkthrough.sh [PATH/TO/latchkey]     # default: target/debug/latchkey
#
# The lines between `# readme: BEGIN cli` (or `curl`) and `# readme: END` are the README's code
# blocks word for word, less the lines ending in `#check` (this script's own checks and waits);
# the README's CLI block also starts with the lines that start the daemon and set the
# variables, which this script does itself. tests/it/walkthrough.rs holds the README and this
# script together and runs it, so the README cannot drift. Needs bash, curl and jq; no fixed
# port, every wait bounded; exits non-zero on any failure and always stops its daemons.
set -euo pipefail

BIN=${1:-target/debug/latchkey}
[[ -x $BIN ]] || { echo "walkthrough: no latchkey binary at $BIN (cargo build first)" >&2; exit 1; }
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
for tool in curl jq; do
  command -v "$tool" >/dev/null || { echo "walkthrough: $tool is needed" >&2; exit 1; }
done
# A fresh daemon and a CLI that read nothing from the caller's environment.
for v in $(compgen -v LATCHKEY_ || true); do unset "$v"; done
export NO_COLOR=1

WORK=$(mktemp -d)
DAEMON_PID=""
fail() { echo "walkthrough: FAILED: $*" >&2; exit 1; }
stop_daemon() {
  [[ -n $DAEMON_PID ]] || return 0
  local pid=$DAEMON_PID
  DAEMON_PID=""
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do # 10 s
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  echo "walkthrough: the daemon did not stop within 10 s of SIGTERM" >&2
  return 1
}
cleanup() {
  local rc=$?
  # A lease request still waiting in the background (the walkthrough failed before `wait`).
  jobs -p | xargs -r kill 2>/dev/null || true
  stop_daemon || rc=1
  if [[ $rc -ne 0 && -d $WORK ]]; then
    for f in "$WORK"/*/out "$WORK"/*/daemon.err; do
      [[ -f $f ]] && { echo "--- $f (last lines)" >&2; tail -n 30 "$f" >&2; }
    done
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# Starts `serve --dev` on a free port in $WORK/$1 and takes its two `export` lines, as the
# README asks a newcomer to. The daemon is not a job of this shell, so the walkthrough's
# `wait` waits for the lease request alone.
start_daemon() {
  local dir=$WORK/$1
  mkdir -p "$dir"
  (
    cd "$dir"
    "$BIN" serve --dev --listen 127.0.0.1:0 >daemon.out 2>daemon.err </dev/null &
    echo $! >daemon.pid
  )
  DAEMON_PID=$(cat "$dir/daemon.pid")
  for _ in $(seq 200); do # 20 s
    grep -q '^# try:' "$dir/daemon.out" 2>/dev/null && break
    kill -0 "$DAEMON_PID" 2>/dev/null || fail "the daemon exited at start"
    sleep 0.1
  done
  grep -q '^# try:' "$dir/daemon.out" || fail "the daemon printed no export lines within 20 s"
  eval "$(grep '^export LATCHKEY_' "$dir/daemon.out")"
  [[ $LATCHKEY_ADDR == http://127.0.0.1:* && $LATCHKEY_TOKEN == lk_admin_* ]] ||
    fail "unexpected export lines"
}

# The README's `alias latchkey="cargo run -q --"`, for the binary under test.
latchkey() { "$BIN" "$@"; }
# Fail on an HTTP error (the README's curl lines show the error body instead).
curl() { command curl --fail-with-body --max-time 30 "$@"; }
# Waits (at most 20 s) until the lease requested in the background waits for an approval.
await_pending_approval() {
  for _ in $(seq 200); do
    [[ $(latchkey approvals ls --json | jq length) -ge 1 ]] && return 0
    sleep 0.1
  done
  fail "no pending approval within 20 s"
}

cli_walkthrough() {
# readme: BEGIN cli
ADMIN_TOKEN=$LATCHKEY_TOKEN                   # keep the admin token: we act as the agent below

# store a secret (the value comes from stdin or --file, never from the command line)
printf 'sk-test-123' | latchkey secret put production/openai/api-key --sensitivity sensitive
latchkey secret get production/openai/api-key          # metadata only, never the value
latchkey secret history production/openai/api-key

# register an agent: it gets the namespace entities/<id>/ and an API key (shown once;
# --quiet prints the key alone)
AGENT_KEY=$(latchkey agent create research-bot --tier 2 --quiet)
# let every agent read (through leases) what lies under production/
latchkey grant create --namespace entities --pattern 'production/**' --action read

# as the agent: store a secret in its own namespace and mint a narrow token for a sub-agent
export LATCHKEY_TOKEN=$AGENT_KEY
printf 'pg-pass' | latchkey secret put staging/db/password     # entities/<id>/staging/db/password
SUB_TOKEN=$(latchkey token mint --scope 'secrets:list:staging/**' --ttl 300 --session run-42)
LATCHKEY_TOKEN=$SUB_TOKEN latchkey secret get staging/db/password   # the sub-agent sees it

# ask for a lease on the sensitive secret outside its namespace (an absolute path; tier 2 ×
# sensitive needs an approval) and wait for it in the background: it prints the value once approved
latchkey lease request /production/openai/api-key --reason "nightly eval" --wait --reveal &

# back as admin (in --dev the admin token is also an approver): approve it from the CLI
export LATCHKEY_TOKEN=$ADMIN_TOKEN
await_pending_approval  #check
latchkey approvals ls                                  # the pending approval: path, agent, reason
APPROVAL_ID=$(latchkey approvals ls --json | jq -r '.[0].id')
latchkey approve "$APPROVAL_ID"
wait                                                   # the request prints sk-test-123 and ends

# what happened?
latchkey audit tail -n 20
latchkey audit verify
# readme: END
}

curl_walkthrough() {
# readme: BEGIN curl
ADMIN_TOKEN=$LATCHKEY_TOKEN                   # keep the admin token: we act as the agent below
H="content-type: application/json"

# store a secret
curl -s -X PUT -H "Authorization: Bearer $ADMIN_TOKEN" -H "$H" \
  -d '{"value":"sk-test-123","type":"api_key","sensitivity":"sensitive"}' \
  "$LATCHKEY_ADDR/v1/secrets/production/openai/api-key" | jq -c '{path, current_version}'
# register an agent and keep its API key (answered once)
AGENT_KEY=$(curl -s -X POST -H "Authorization: Bearer $ADMIN_TOKEN" -H "$H" \
  -d '{"name":"research-bot","trust_tier":2}' "$LATCHKEY_ADDR/v1/agents" | jq -r .api_key)
# let every agent read (through leases) what lies under production/
curl -s -X POST -H "Authorization: Bearer $ADMIN_TOKEN" -H "$H" \
  -d '{"subject":{"kind":"namespace","value":"entities"},"pattern":"production/**","actions":["read"]}' \
  "$LATCHKEY_ADDR/v1/grants" | jq -c '{id, pattern, actions}'

# as the agent: mint a token for a sub-agent that reads outside the agent's namespace
# (an absolute scope, with a leading /)
SUB_TOKEN=$(curl -s -X POST -H "Authorization: Bearer $AGENT_KEY" -H "$H" \
  -d '{"scopes":["secrets:read:/production/openai/*"],"ttl_seconds":300}' \
  "$LATCHKEY_ADDR/v1/tokens" | jq -r .token)
# the sub-agent reads in one call (an absolute path, hence the //): tier 2 × sensitive needs
# an approval, so the answer is 202 with the lease, pending
LEASE=$(curl -s -X POST -H "Authorization: Bearer $SUB_TOKEN" \
  "$LATCHKEY_ADDR/v1/secrets//production/openai/api-key/read")
echo "$LEASE" | jq -c '{id, state, approval_id}'

# as admin (in --dev also an approver): approve
curl -s -X POST -H "Authorization: Bearer $ADMIN_TOKEN" -H "$H" -d '{"decision":"approve"}' \
  "$LATCHKEY_ADDR/v1/approvals/$(echo "$LEASE" | jq -r .approval_id)/votes" | jq -c '{result}'
# the sub-agent uses its lease: the value, sk-test-123
curl -s -X POST -H "Authorization: Bearer $SUB_TOKEN" \
  "$LATCHKEY_ADDR/v1/leases/$(echo "$LEASE" | jq -r .id)/secret" | jq -r .value

# what happened?
curl -s -H "Authorization: Bearer $ADMIN_TOKEN" "$LATCHKEY_ADDR/v1/audit?event=secret.*&limit=10" |
  jq -c '.events[] | {seq, event, actor_type, resource_path}'
curl -s -H "Authorization: Bearer $ADMIN_TOKEN" "$LATCHKEY_ADDR/v1/audit/verify" | jq .ok   # true
# readme: END
}

echo "== walkthrough: the CLI form"
start_daemon cli
cli_walkthrough >"$WORK/cli/out" 2>&1
cat "$WORK/cli/out"
grep -qx 'sk-test-123' "$WORK/cli/out" || fail "the CLI form did not reveal the stored value"
grep -q 'decided: lease is now active' "$WORK/cli/out" || fail "the approval did not decide the lease"
stop_daemon || fail "the daemon did not stop"

echo "== walkthrough: the curl form"
start_daemon curl
curl_walkthrough >"$WORK/curl/out" 2>&1
cat "$WORK/curl/out"
grep -qx 'sk-test-123' "$WORK/curl/out" || fail "the curl form did not reveal the stored value"
grep -q '{"result":"decided"}' "$WORK/curl/out" || fail "the approval did not decide the lease"
grep -qx 'true' "$WORK/curl/out" || fail "audit verify did not pass"
stop_daemon || fail "the daemon did not stop"

echo "walkthrough: both forms ran as written"
