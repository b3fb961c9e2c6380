#!/bin/sh
# Engine throughput on real traffic: records what one node of a simulated 1,000-node cluster
# receives (rumor-sim --record, format in src/sim/sim_trace.h) in three scenarios, each in four
# modes (plain, sealed, signed, sealed + signed), then replays every trace with
# bench/bench_trace: determinism check first, then CPU time of the replays. Prints one JSON line
# per trace and a Markdown table per scenario (ratios against the plain trace of the same
# scenario). Figures go to docs/benchmarks.md.
#
# Scenarios (LAN profile, seed 1, recorded node 7):
#   steady  a formed cluster (--warm), no faults, no writes: failure detection only
#   churn   a formed cluster over 180 virtual s: 3 crashes (at 30 s, back 30 s later), 3 leaves
#           (at 60 s, rejoining 30 s later), 5 key-value writes and 1 user event per second
#           cluster-wide
#   cold    1,000 nodes joining at once (2 ms apart), 60 virtual s: the news-heavy extreme
#
#   bench/bench_trace.sh                      # everything (6-10 minutes on 2 vCPUs; PAR=2 less)
#   SCENARIOS="steady churn" NODES=200 bench/bench_trace.sh
#   LOCK=/path/bench.lock bench/bench_trace.sh   # replays under flock (recording is not timed)
# Environment: NODES (1000), SCENARIOS, MODES, NODE (7), OUT (trace directory, default a fresh
# one under /tmp, removed at the end unless KEEP=1), REPS (5), MIN_CPU (0.5), PAR (simulators
# recording at once, 1), SKIP_BUILD=1.
set -eu
cd "$(dirname "$0")/.."

NODES=${NODES:-1000}
SCENARIOS=${SCENARIOS:-"steady churn cold"}
MODES=${MODES:-"plain sealed signed sealed_signed"}
NODE=${NODE:-7}
REPS=${REPS:-5}
MIN_CPU=${MIN_CPU:-0.5}
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    cmake --preset release >/dev/null
    cmake --build --preset release -j "${JOBS:-2}" --target bench_trace rumor-sim >/dev/null
fi
SIM=build/release/src/sim/rumor-sim
BENCH=build/release/bench/bench_trace
if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT"
else
    OUT=$(mktemp -d /tmp/rumor-traces.XXXXXX)
fi
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$OUT"' EXIT

scenario_args() {
    case "$1" in
    steady) echo "--warm --duration 120" ;;
    churn)
        echo "--warm --duration 180 --crash 3 --crash-at 30 --restart-after 30 --leave 3" \
            "--leave-at 60 --rejoin-after 30 --kv-writes-per-s 5 --kv-start 5 --kv-drain 10" \
            "--events-per-s 1"
        ;;
    cold) echo "--duration 60" ;;
    *)
        echo "bench_trace.sh: unknown scenario $1" >&2
        exit 2
        ;;
    esac
}

mode_args() {
    case "$1" in
    plain) echo "" ;;
    sealed) echo "--encrypt" ;;
    signed) echo "--identity" ;;
    sealed_signed) echo "--encrypt --identity" ;;
    esac
}

record() {
    start=$(date +%s)
    # shellcheck disable=SC2046
    "$SIM" --nodes "$NODES" --seed 1 $(scenario_args "$1") $(mode_args "$2") \
        --record "$OUT/$1-$2.trc" --record-node "$NODE" >"$OUT/$1-$2.json"
    echo "bench_trace.sh: recorded $1/$2 in $(($(date +%s) - start)) s" \
        "($(wc -c <"$OUT/$1-$2.trc") bytes)" >&2
}

# Recording is not timed: PAR=2 runs two simulators at once (about halves the wall time).
pids=""
for sc in $SCENARIOS; do
    for m in $MODES; do
        record "$sc" "$m" &
        pids="$pids $!"
        if [ "$(echo "$pids" | wc -w)" -ge "${PAR:-1}" ]; then
            for p in $pids; do wait "$p"; done
            pids=""
        fi
    done
done
for p in $pids; do wait "$p"; done

echo "bench_trace.sh: $(uptime)" >&2
# The cipher's own cost at small and large sizes, for reading the sealed rows.
if [ -n "${LOCK:-}" ]; then flock "$LOCK" "$BENCH" --cipher; else "$BENCH" --cipher; fi
for sc in $SCENARIOS; do
    files=""
    for m in $MODES; do files="$files $OUT/$sc-$m.trc"; done
    # shellcheck disable=SC2086
    if [ -n "${LOCK:-}" ]; then
        flock "$LOCK" "$BENCH" --reps "$REPS" --min-cpu "$MIN_CPU" $files
    else
        "$BENCH" --reps "$REPS" --min-cpu "$MIN_CPU" $files
    fi | tee "$OUT/$sc.jsonl"
done
echo "bench_trace.sh: $(uptime)" >&2

python3 - "$OUT" $SCENARIOS <<'PY'
import json, sys
out = sys.argv[1]
for sc in sys.argv[2:]:
    rows = [json.loads(l) for l in open(f"{out}/{sc}.jsonl")]
    print(f"\n{sc}: node {rows[0]['node']}, {rows[0]['virtual_s']:.0f} virtual s\n")
    print("| mode | packets | messages | msgs / packet | verified | verified / message | "
          "packets / CPU s | messages / CPU s | ÷ plain (packets) | ÷ plain (messages) | "
          "replay identical |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        mpp = r["messages_in"] / r["packets"] if r["packets"] else 0
        print(f"| {r['mode']} | {r['packets']:,} | {r['messages_in']:,} | {mpp:.2f} | "
              f"{r['verified']:,} | {100 * r['verify_fraction']:.2f} % | "
              f"{r['packets_per_cpu_s'] / 1e3:,.0f} k | {r['messages_per_cpu_s'] / 1e3:,.0f} k | "
              f"{r['ratio_packets']:.2f} | {r['ratio_messages']:.2f} | "
              f"{'yes' if r['deterministic'] else 'NO'} |")
PY
