# Sourced by bench/bench_serf.sh and bench/bench_events.sh (not run by itself): sets ROOT and
# RUMOR_BIN (the caller's RUMOR_BIN, else an existing release or dev build, else a fresh release
# build) and PYTHON (Debian's python3), makes sure Debian's serf and python3-msgpack are
# installed, then names the binaries on stderr.
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
# Debian's python3 (the one deps.sh installs), which sees Debian's python3-msgpack even where
# another python3 comes first in PATH.
PYTHON=python3
[ -x /usr/bin/python3 ] && PYTHON=/usr/bin/python3
{ command -v serf >/dev/null && "$PYTHON" -c 'import msgpack' 2>/dev/null; } ||
  RUMOR_WITH_SERF=1 "$ROOT/scripts/deps.sh"
echo "bench: rumor binary $RUMOR_BIN; $(serf version | head -1)" >&2
