#!/bin/sh
# Key-value benchmarks in the simulator (release build), printed as Markdown for
# docs/benchmarks.md:
#
#   probes: virtual time and anti-entropy rounds (1 s each, LAN profile) for ONE write to reach
#           every node, in push, pull and push-pull, without and with the rumor-mongering fast
#           path, next to the epidemic theory (shared/REFERENCES.md);
#   load:   bytes and messages per node per second under a steady cluster-wide load of 100
#           writes per second (random node, one of 16 keys, 32-byte values).
#
#   bench/bench_kv.sh                     # both, at the default sizes
#   bench/bench_kv.sh probes 1000 10000   # one part, chosen sizes
#   bench/bench_kv.sh load 100 1000
#   PROBES=9 SEED=3 bench/bench_kv.sh probes 1000
#
# Every node keeps a full member table, so 10,000 nodes take about 13 GB: runs above 2,000
# nodes hold /work/notes/bigmem.lock (flock) so that big simulations on this machine run one
# at a time.
set -eu
cd "$(dirname "$0")/.."

SEED=${SEED:-1}
BIN=${BIN:-build/release/src/sim/rumor-sim}
LOCK=${LOCK:-/work/notes/bigmem.lock}

if [ "${SKIP_BUILD:-0}" != 1 ] && [ "$BIN" = build/release/src/sim/rumor-sim ]; then
    cmake --preset release >/dev/null
    cmake --build --preset release -j "${JOBS:-2}" --target rumor-sim >/dev/null
fi
[ -x "$BIN" ] || { echo "bench_kv: $BIN missing" >&2; exit 1; }

part=${1:-all}
[ $# -gt 0 ] && shift

# Runs rumor-sim, under the big-memory lock above 2,000 nodes.
sim() {
    n=$1
    shift
    if [ "$n" -gt 2000 ]; then
        flock "$LOCK" "$BIN" --nodes "$n" --seed "$SEED" --warm "$@"
    else
        "$BIN" --nodes "$n" --seed "$SEED" --warm "$@"
    fi
}

probes() {
    echo "One write reaching all N nodes: rumor-sim --warm --kv-probe-writes P (P writes, one at a"
    echo "time, each from a random node, timed until every node holds it), LAN profile (one"
    echo "anti-entropy round per second), no loss, seed ${SEED}; $(date -u +%Y-%m-%dT%H:%MZ)."
    echo
    echo "| N | mode | fast path | writes | median s | mean s | max s | mean rounds | theory rounds | mean / theory | wall s | peak RSS MB |"
    echo "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for n in "$@"; do
        p=${PROBES:-$([ "$n" -gt 2000 ] && echo 5 || echo 9)}
        for mode in push-pull push pull; do
            for rt in 0 4; do
                out=$(sim "$n" --duration 600 --kv-mode "$mode" --kv-rumor-transmits "$rt" \
                    --kv-probe-writes "$p") || { echo "| $n | $mode | rumor-sim failed |"; continue; }
                printf '%s\n' "$out" | python3 -c '
import json, math, sys
d = json.load(sys.stdin)
k = d["kv"]
n = d["nodes"]
mode = k["mode"]
# Karp et al. 2000 / Frieze-Grimmett / Pittel; REFERENCES.md. Pull: doubling while few know,
# then the uninformed fraction squares each round (p -> p^2).
theory = {"push-pull": math.log(n, 3) + math.log2(math.log(n)),
          "push": math.log2(n) + math.log(n),
          "pull": math.log2(n) + math.log2(math.log(n))}[mode]
fast = "rumor (k=%d)" % k["rumor_transmits"] if k["rumor_transmits"] else "none"
if not k["probes_ms"]:
    print("| %d | %s | %s | 0 | - | - | - | - | %.1f | - | %.1f | %.0f |" % (
        n, mode, fast, theory, d["wall_s"], d["peak_rss_kb"] / 1024.0))
else:
    r = k["probe_mean_rounds"]
    print("| %d | %s | %s | %d | %.2f | %.2f | %.2f | %.2f | %.1f | %.2f | %.1f | %.0f |" % (
        n, mode, fast, len(k["probes_ms"]), k["probe_median_ms"] / 1000.0,
        k["probe_mean_ms"] / 1000.0, k["probe_max_ms"] / 1000.0, r, theory, r / theory,
        d["wall_s"], d["peak_rss_kb"] / 1024.0))
if d.get("violation"):
    print("violation: " + d["violation"], file=sys.stderr)
'
            done
        done
    done
}

load() {
    echo "Steady load: rumor-sim --warm --kv-writes-per-s 100 (random node, one of 16 keys, 32-byte"
    echo "values), default settings (push-pull, rumor k=4), measured over 60 s after a 10 s"
    echo "warm-up, then 30 s without writes; seed ${SEED}; $(date -u +%Y-%m-%dT%H:%MZ)."
    echo
    echo "| N | writes | bytes/node/s | msgs/node/s | of which stream bytes/node/s | identical after the load | wall s |"
    echo "|---:|---:|---:|---:|---:|---|---:|"
    for n in "$@"; do
        out=$(sim "$n" --duration 100 --kv-writes-per-s 100 --kv-start 10 --kv-drain 30) || {
            echo "| $n | rumor-sim failed |"
            continue
        }
        printf '%s\n' "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
l = d["kv"]["load"]
ident = "yes, %.0f s after" % (l["identical_after_ms"] / 1000.0) if l["identical"] and l["identical_after_ms"] is not None else "no"
print("| %d | %d | %.0f | %.1f | %.0f | %s | %.1f |" % (d["nodes"], l["writes"], l["bytes_per_node_s"],
      l["msgs_per_node_s"], l["stream_bytes_per_node_s"], ident, d["wall_s"]))
'
    done
}

case $part in
probes) [ $# -gt 0 ] || set -- 1000 10000; probes "$@" ;;
load) [ $# -gt 0 ] || set -- 100 1000; load "$@" ;;
all)
    load 100 1000
    echo
    probes 1000 10000
    ;;
*) echo "usage: $0 [probes|load|all] [N...]" >&2; exit 2 ;;
esac
