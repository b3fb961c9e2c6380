#!/usr/bin/env bash
# User event delivery, rumor against Debian's serf on loopback, side by side (not a timed test).
# Builds a release binary if needed, then runs bench/bench_events.py. Figures go to
# docs/benchmarks.md.
#   bench/bench_events.sh                        # N = 64, 10 repetitions
#   bench/bench_events.sh --nodes 16 --reps 5 --json /tmp/events.json
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/bench_prelude.sh"
exec "$PYTHON" "$ROOT/bench/bench_events.py" --rumor "$RUMOR_BIN" "$@"
