#!/usr/bin/env bash
# Side-by-side benchmark of rumor and Debian's serf on loopback (not a timed test). Builds a
# release binary if needed, then runs bench/bench_serf.py. Figures go to docs/benchmarks.md.
#   bench/bench_serf.sh                 # N = 16 and 64, 20 s idle window
#   bench/bench_serf.sh --nodes 16 --idle 10 --json /tmp/bench.json
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
exec python3 "$ROOT/bench/bench_serf.py" --rumor "$RUMOR_BIN" "$@"
