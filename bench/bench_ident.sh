#!/bin/sh
# Per-node identities (docs/protocol.md section 12), on against off, side by side in one run of
# a release build:
#   1. engine throughput (bench_engine, 1,000 members) for three gossip mixes: 6 of 12 messages
#      news (the default, worst case: every news is signed and verified), 1 of 12 (closer to
#      steady gossip, where each change reaches a node many times), and none (duplicates only);
#      with the cost of one Ed25519 sign and verify;
#   2. whole simulated clusters (rumor-sim, LAN profile, 300 virtual s, one crash) of 100 and
#      1,000 nodes: CPU and wall time, memory, traffic, signatures made and verified;
#   3. a formed cluster's own traffic (100 nodes, between 300 and 600 virtual s);
#   and user events per CPU second, unsigned and signed (bench_engine --events).
# Runs alternate off/on so that machine load hits both alike. Prints JSON lines.
#
#   bench/bench_ident.sh                  # everything
#   SECONDS_PER=3 SIZES="100" bench/bench_ident.sh
set -eu
cd "$(dirname "$0")/.."

SECONDS_PER=${SECONDS_PER:-3}
SIZES=${SIZES:-"100 1000"}
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    cmake --preset release >/dev/null
    cmake --build --preset release -j "${JOBS:-2}" --target bench_engine rumor-sim >/dev/null
fi

for news in 6 1 0; do
    for id in "" --identity; do
        build/release/bench/bench_engine 1000 "$SECONDS_PER" --news "$news" $id
    done
done
# User events, each new and (with --identity) signed by its origin: events per CPU second.
for id in "" --identity; do
    build/release/bench/bench_engine 1000 "$SECONDS_PER" --events $id
done
for n in $SIZES; do
    for id in "" --identity; do
        # CPU seconds of the simulator process (wall time depends on the machine's load).
        python3 - "$n" $id <<'PY'
import json, resource, subprocess, sys
args = ["build/release/src/sim/rumor-sim", "--nodes", sys.argv[1], "--seed", "1",
        "--duration", "300", "--crash", "1"] + sys.argv[2:]
out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
d = json.loads(out)
keep = ("nodes", "wall_s", "peak_rss_kb", "convergence", "detection", "false_positives",
        "bytes_per_node_s", "datagrams", "datagram_bytes", "stream_bytes", "identity")
print(json.dumps({k: d[k] for k in keep} | {"identity_on": d["options"]["identity"],
                                            "cpu_s": round(ru.ru_utime + ru.ru_stime, 2)}))
PY
    done
done
# 3. A formed cluster's own cost: traffic between 300 and 600 virtual seconds (the same seed runs
#    the same first 300 s), N = 100, no faults.
for id in "" --identity; do
    python3 - $id <<'PY'
import json, subprocess, sys
def run(d):
    out = subprocess.run(["build/release/src/sim/rumor-sim", "--nodes", "100", "--seed", "1",
                          "--duration", str(d)] + sys.argv[1:], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out)
a, b = run(300), run(600)
span = 300 * 100
print(json.dumps({"steady_window": "300-600 s", "nodes": 100, "identity_on": b["options"]["identity"],
                  "datagrams_per_node_s": (b["datagrams"] - a["datagrams"]) / span,
                  "bytes_per_node_s": (b["datagram_bytes"] + b["stream_bytes"] - a["datagram_bytes"]
                                       - a["stream_bytes"]) / span,
                  "verified": b["identity"]["verified"] - a["identity"]["verified"]}))
PY
done
