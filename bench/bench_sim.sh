#!/bin/sh
# Simulator benchmark: one crash in clusters of 100, 1,000 and 10,000 nodes (LAN profile, 5
# virtual minutes each), in a release build. Prints a Markdown table for docs/benchmarks.md.
#
#   bench/bench_sim.sh                 # all three sizes
#   bench/bench_sim.sh 100 1000        # chosen sizes
#   SIM_ARGS="--loss 0.01" bench/bench_sim.sh
#   DURATION=120 SEED=7 bench/bench_sim.sh 100
#   SIM_ARGS=--warm bench/bench_sim.sh 10000   # start formed (no join storm)
#
# Every node keeps a full member table, so a run holds N^2 member records: about 15 GB at
# 10,000 nodes. The steady columns count traffic from convergence on (the formed cluster).
set -eu
cd "$(dirname "$0")/.."

SEED=${SEED:-1}
DURATION=${DURATION:-300}
SIM_ARGS=${SIM_ARGS:-}
BIN=${BIN:-build/release/src/sim/rumor-sim}

if [ "${SKIP_BUILD:-0}" != 1 ] && [ "$BIN" = build/release/src/sim/rumor-sim ]; then
    cmake --preset release >/dev/null
    cmake --build --preset release -j "${JOBS:-2}" --target rumor-sim >/dev/null
fi
[ -x "$BIN" ] || { echo "bench_sim: $BIN missing" >&2; exit 1; }

if [ $# -eq 0 ]; then
    set -- 100 1000 10000
fi

echo "rumor-sim: one crash after convergence, --profile lan, ${DURATION} virtual s, seed ${SEED} ${SIM_ARGS}"
echo "host: $(nproc) cores, $(uname -sr), $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "| nodes | wall s | peak RSS MB | convergence s | detection min / median / p99 / max s | missed | false pos. | msgs/node/s | bytes/node/s | steady msgs/node/s | steady bytes/node/s |"
echo "|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"
for n in "$@"; do
    # shellcheck disable=SC2086
    out=$("$BIN" --nodes "$n" --seed "$SEED" --duration "$DURATION" --profile lan --crash 1 $SIM_ARGS) || {
        echo "| $n | rumor-sim failed (exit $?) | | | | | | | | | |"
        continue
    }
    printf '%s\n' "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
det = d["detection"]
def s(v):
    return "-" if v is None else "%.1f" % (v / 1000.0)
conv = d["convergence"]
print("| %d | %.2f | %.0f | %s | %s / %s / %s / %s | %d | %d | %.2f | %.0f | %.2f | %.0f |" % (
    d["nodes"], d["wall_s"], d["peak_rss_kb"] / 1024.0, s(conv),
    s(det["min_ms"]), s(det["median_ms"]), s(det["p99_ms"]), s(det["max_ms"]), det["missed"],
    d["false_positives"], d["messages_per_node_s"], d["bytes_per_node_s"],
    d["steady_messages_per_node_s"], d["steady_bytes_per_node_s"]))
if d.get("violation"):
    print("violation: " + d["violation"], file=sys.stderr)
'
done
