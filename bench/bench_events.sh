#!/usr/bin/env bash
# User event delivery, rumor against Debian's serf on loopback, side by side (not a timed test).
# Builds a release binary if needed, then runs bench/bench_events.py. Figures go to
# docs/benchmarks.md.
#   bench/bench_events.sh                        # N = 64, 10 repetitions
#   bench/bench_events.sh --nodes 16 --reps 5 --json /tmp/events.json
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUMOR_BIN="${RUMOR_BIN:-}"
if [ -z "$RUMOR_BIN" ]; then
  for c in "$ROOT/build/release/src/agent/rumor" "$ROOT/build/dev/src/agent/rumor"; do
    [ -x "$c" ] && { RUMOR_BIN="$c"; break; }
  done
fi
if [ -z "$RUMOR_BIN" ]; then
  make -C "$ROOT" release
  RUMOR_BIN="$ROOT/build/release/src/agent/rumor"
fi
command -v serf >/dev/null || RUMOR_WITH_SERF=1 "$ROOT/scripts/deps.sh"
echo "bench: rumor binary $RUMOR_BIN; $(serf version | head -1)" >&2
exec python3 "$ROOT/bench/bench_events.py" --rumor "$RUMOR_BIN" "$@"
