#!/usr/bin/env bash
# Side-by-side benchmark of rumor and Debian's serf on loopback (not a timed test). Builds a
# release binary if needed, then runs bench/bench_serf.py. Figures go to docs/benchmarks.md.
#   bench/bench_serf.sh                 # N = 16 and 64, 20 s idle window
#   bench/bench_serf.sh --nodes 16 --idle 10 --json /tmp/bench.json
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/bench_prelude.sh"
exec "$PYTHON" "$ROOT/bench/bench_serf.py" --rumor "$RUMOR_BIN" "$@"
