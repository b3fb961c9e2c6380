#!/usr/bin/env bash
# `make demo`: five rumor agents on this machine, a key written on one and read on all, a crash,
# detection, and a restart that rejoins by itself. Everything runs on 127.0.0.1 and every process it starts is stopped at the end.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
N=5
GOSSIP_BASE="${RUMOR_DEMO_PORT:-17946}"
HTTP_BASE=$((GOSSIP_BASE + 1000))
PIDS=()
WORK=""

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
note() { printf '    %s\n' "$*"; }

cleanup() {
  local pid
  for pid in "${PIDS[@]:-}"; do
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  [ -n "$WORK" ] && rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo; echo "interrupted"; exit 130' INT TERM

find_rumor() {
  local c
  [ -n "${RUMOR_BIN:-}" ] && [ -x "$RUMOR_BIN" ] && { echo "$RUMOR_BIN"; return; }
  for c in "$ROOT/build/release/src/agent/rumor" "$ROOT/build/dev/src/agent/rumor" \
           "$ROOT/build-agent/src/agent/rumor"; do
    [ -x "$c" ] && { echo "$c"; return; }
  done
  command -v rumor 2>/dev/null || true
}

RUMOR="$(find_rumor)"
if [ -z "$RUMOR" ]; then
  say "No rumor binary yet: building it (make release)"
  make -C "$ROOT" release
  RUMOR="$(find_rumor)"
fi
[ -x "$RUMOR" ] || { echo "demo: cannot find or build the rumor binary" >&2; exit 1; }

for i in $(seq 0 $((N - 1))); do
  for p in $((GOSSIP_BASE + i)) $((HTTP_BASE + i)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "demo: port $p is already in use; set RUMOR_DEMO_PORT to another base port" >&2
      exit 1
    fi
  done
done

WORK="$(mktemp -d /tmp/rumor-demo.XXXXXX)"
name() { echo "node$(($1 + 1))"; }
http() { echo "127.0.0.1:$((HTTP_BASE + $1))"; }

start_agent() { # index [extra flags...]
  local i=$1; shift
  "$RUMOR" agent --node "$(name "$i")" --bind "127.0.0.1:$((GOSSIP_BASE + i))" \
    --http "$(http "$i")" --profile local --data-dir "$WORK/$(name "$i")" \
    --event-handler 'query:hello=echo "hello from $RUMOR_SELF_NAME, asked by $RUMOR_ORIGIN"' "$@" \
    >>"$WORK/$(name "$i").log" 2>&1 &
  PIDS[$i]=$!
}

wait_http() { # index
  local t
  for t in $(seq 1 100); do
    "$RUMOR" members --http "$(http "$1")" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "demo: agent $(name "$1") did not start; its log:" >&2
  cat "$WORK/$(name "$1").log" >&2
  exit 1
}

status_seen_by() { # observer-index member-name
  "$RUMOR" members --http "$(http "$1")" --format json 2>/dev/null |
    python3 -c 'import json,sys
m=[x["status"] for x in json.load(sys.stdin)["members"] if x["name"]==sys.argv[1]]
print(m[0] if m else "unknown")' "$2" 2>/dev/null || echo "unknown"
}

count_alive() { # observer-index
  "$RUMOR" members --http "$(http "$1")" --status alive --format json 2>/dev/null |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)["members"]))' || echo 0
}

say "Starting $N rumor agents on 127.0.0.1 (binary: $RUMOR)"
note "Each agent gossips on one UDP+TCP port and serves an HTTP API on another."
note "They use the 'local' timing profile (1 s probes), meant for one machine."
start_agent 0
wait_http 0
note "$(name 0): gossip 127.0.0.1:$GOSSIP_BASE, API $(http 0), data in $WORK/$(name 0)"
for i in $(seq 1 $((N - 1))); do
  start_agent "$i" --join "127.0.0.1:$GOSSIP_BASE"
  note "$(name "$i"): gossip 127.0.0.1:$((GOSSIP_BASE + i)), API $(http "$i"), joins through $(name 0)"
done
for i in $(seq 1 $((N - 1))); do wait_http "$i"; done

say "Waiting until every agent knows all $N members (gossip spreads the news)"
start=$(date +%s%N)
for t in $(seq 1 100); do
  ok=1
  for i in $(seq 0 $((N - 1))); do [ "$(count_alive "$i")" = "$N" ] || ok=0; done
  [ $ok = 1 ] && break
  sleep 0.2
done
ms=$(( ($(date +%s%N) - start) / 1000000 ))
printf '    converged in %d.%02d s. The member table, as %s sees it:\n\n' \
  $((ms / 1000)) $((ms % 1000 / 10)) "$(name 0)"
"$RUMOR" members --http "$(http 0)" | sed 's/^/    /'

say "Replicated state: a key written on $(name 0) is read on every agent"
"$RUMOR" kv put --http "$(http 0)" greeting "hello from $(name 0)" | sed 's/^/    /'
for i in $(seq 0 $((N - 1))); do
  v=""
  for t in $(seq 1 50); do
    v="$("$RUMOR" kv get --http "$(http "$i")" greeting 2>/dev/null)" && break
    sleep 0.1
  done
  [ -n "$v" ] || { echo "demo: greeting did not reach $(name "$i")" >&2; exit 1; }
  note "$(name "$i") reads greeting = \"$v\""
done
note "$(name 0) saved the write in its data dir before answering; deletes replicate the same way."

say "A query: every agent's handler answers $(name 1), which waits 1 s for the responses"
note "(rumor event NAME PAYLOAD sends a user event to every agent's handlers the same way)"
"$RUMOR" query --http "$(http 1)" hello --timeout 1s 2>&1 | sed 's/^/    /'
[ "${PIPESTATUS[0]}" = 0 ] || note "(not every agent answered within the second: delivery is by gossip)"

VICTIM=2
say "Crashing $(name $VICTIM) with kill -9 (no goodbye: the others must notice by themselves)"
# (the braces silence bash's own "Killed" job report)
{ kill -KILL "${PIDS[$VICTIM]}" && wait "${PIDS[$VICTIM]}"; } 2>/dev/null || true
PIDS[$VICTIM]=""
note "The others probe it, get no answer, ask peers to probe it too, suspect it,"
note "and declare it failed when nobody hears from it before the suspicion timeout."
start=$(date +%s)
declare -A shown=()
for t in $(seq 1 300); do
  all_failed=1
  for i in $(seq 0 $((N - 1))); do
    [ "$i" = "$VICTIM" ] && continue
    st="$(status_seen_by "$i" "$(name $VICTIM)")"
    if [ "${shown[$i]:-}" != "$st" ]; then
      note "$(( $(date +%s) - start )) s: $(name "$i") sees $(name $VICTIM) as $st"
      shown[$i]="$st"
    fi
    [ "$st" = "failed" ] || all_failed=0
  done
  [ $all_failed = 1 ] && break
  sleep 0.2
done
[ $all_failed = 1 ] || { echo "demo: the failure was not detected everywhere" >&2; exit 1; }
note "every other agent marked $(name $VICTIM) failed after about $(( $(date +%s) - start )) s"
echo
"$RUMOR" members --http "$(http 0)" | sed 's/^/    /'

say "Restarting $(name $VICTIM) from its data directory, without --join"
note "Its SQLite data dir remembers its name, its last incarnation and the members it knew,"
note "so it rejoins by itself and overrides the stale 'failed' with a newer incarnation."
start_agent "$VICTIM"
wait_http "$VICTIM"
for t in $(seq 1 150); do
  ok=1
  for i in $(seq 0 $((N - 1))); do
    [ "$(status_seen_by "$i" "$(name $VICTIM)")" = "alive" ] || ok=0
  done
  [ $ok = 1 ] && break
  sleep 0.2
done
[ $ok = 1 ] || { echo "demo: $(name $VICTIM) did not come back everywhere" >&2; exit 1; }
note "$(name $VICTIM) is alive again in every member table:"
echo
"$RUMOR" members --http "$(http 0)" | sed 's/^/    /'

say "Stopping all agents gracefully (SIGTERM: each leaves the cluster, then exits)"
for i in $(seq 0 $((N - 1))); do
  [ -n "${PIDS[$i]}" ] && kill -TERM "${PIDS[$i]}" 2>/dev/null || true
done
for i in $(seq 0 $((N - 1))); do
  [ -n "${PIDS[$i]}" ] && { wait "${PIDS[$i]}" 2>/dev/null || true; }
  PIDS[$i]=""
done
note "all agents stopped; no process left behind."
say "Done. Next: rumor agent --help, rumor kv --help, rumor query --help, docs/benchmarks.md"
