#!/bin/sh
# Restart benchmark for sealed clusters (docs/protocol.md section 3.1.4): in a cluster of NODES
# (100) with encryption, 5 nodes crash at 40 s and restart 20 s later; over SEEDS (100) seeds,
# how long until every node sees every node alive again ("rejoin", from the restart), crash
# detection, false failures and suspicions, steady traffic. Release build.
#
#   bench/bench_rejoin.sh                       # this tree
#   BASE_REF=a0d3f08 bench/bench_rejoin.sh      # and a git ref built beside it, same seeds
#
# Rejoin is read from the event log (--log --log-events), not from the JSON, so that builds
# older than the simulator's "rejoin" metric are measured the same way: the last member-join
# of a restarted node seen by anyone, or seen by a restarted node, after the restart.
set -eu
cd "$(dirname "$0")/.."

NODES=${NODES:-100}
SEEDS=${SEEDS:-100}
ARGS="--nodes $NODES --duration 120 --encrypt --crash 5 --crash-at 40 --restart-after 20 --replay 0.02"

cmake --preset release >/dev/null
cmake --build --preset release -j "${JOBS:-2}" --target rumor-sim >/dev/null
BINS="build/release/src/sim/rumor-sim"
if [ -n "${BASE_REF:-}" ]; then
    base=$(mktemp -d /tmp/bench-rejoin-XXXXXX)
    trap 'rm -rf "$base"' EXIT
    git archive "$BASE_REF" | tar -x -C "$base"
    (cd "$base" && cmake --preset release >/dev/null &&
        cmake --build --preset release -j "${JOBS:-2}" --target rumor-sim >/dev/null)
    BINS="$base/build/release/src/sim/rumor-sim $BINS"
fi

echo "rumor-sim $ARGS, seeds 1..$SEEDS"
echo "host: $(nproc) cores, $(uname -sr), $(date -u +%Y-%m-%dT%H:%MZ), load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| build | rejoin median ms | p90 | p99 | max | detection median s | false failures | false suspicions | steady msgs/node/s | steady bytes/node/s | stale_epoch drops/run |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for bin in $BINS; do
    label=$( [ "$bin" = build/release/src/sim/rumor-sim ] && echo "this tree" || echo "${BASE_REF}" )
    seed=1
    while [ "$seed" -le "$SEEDS" ]; do
        # shellcheck disable=SC2086
        "$bin" --seed "$seed" $ARGS --log --log-events 2>/tmp/bench-rejoin.log >/tmp/bench-rejoin.json
        python3 - <<'PY'
import json, re
restart = {}
last = None
for line in open("/tmp/bench-rejoin.log", errors="replace"):
    m = re.match(r"\[\s*(\d+) ms\] (node-\d+) starts, life 2", line)
    if m:
        restart[m.group(2)] = int(m.group(1))
        continue
    m = re.match(r"\[\s*(\d+) ms\] (node-\d+): member-join (node-\d+)", line)
    if m and restart:
        t, who, whom = int(m.group(1)), m.group(2), m.group(3)
        since = restart.get(whom, restart.get(who))
        if since is not None and t >= since:
            last = max(last or 0, t - min(restart.values()))
d = json.load(open("/tmp/bench-rejoin.json"))
print(json.dumps({"rejoin": last, "det": d["detection"].get("median_ms"),
                  "fp": d["false_positives"], "fs": d["false_suspicions"],
                  "msgs": d["steady_messages_per_node_s"], "bytes": d["steady_bytes_per_node_s"],
                  "se": d["seal"].get("stale_epoch", 0)}))
PY
        seed=$((seed + 1))
    done | python3 -c '
import json, statistics as st, sys
rows = [json.loads(l) for l in sys.stdin]
def q(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p * len(v)))]
rj = [r["rejoin"] if r["rejoin"] is not None else 10**9 for r in rows]
det = [r["det"] for r in rows if r["det"] is not None]
print("| %s | %d | %d | %d | %d | %.2f | %d | %d | %.2f | %.0f | %.1f |" % (sys.argv[1],
      q(rj, .5), q(rj, .9), q(rj, .99), max(rj), st.median(det) / 1000,
      sum(r["fp"] for r in rows), sum(r["fs"] for r in rows),
      st.mean(r["msgs"] for r in rows), st.mean(r["bytes"] for r in rows),
      st.mean(r["se"] for r in rows)))' "$label"
done
rm -f /tmp/bench-rejoin.log /tmp/bench-rejoin.json
