#!/usr/bin/env bash
# Installs the Debian packages rumor needs to build, test and run the demo. Idempotent: does
# nothing when everything is present. Called by `make`, `make check` and `make demo`.
set -euo pipefail

# tcpdump: tests/integ/test_encrypt.py captures the gossip ports to check nothing leaks in
# plaintext (skipped with a message where capturing needs privileges the run does not have).
pkgs=(build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev clang-format
      libcmocka-dev libsodium-dev libuv1-dev libjansson-dev libmicrohttpd-dev libsqlite3-dev
      libcurl4-openssl-dev sqlite3 curl python3 iproute2 procps tcpdump)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
# Debian's serf is the reference peer for the side-by-side benchmarks; not needed to build.
# python3-msgpack: bench/bench_serf.py polls the serf agents over their msgpack RPC protocol.
if [ "${RUMOR_WITH_SERF:-0}" = 1 ]; then
  command -v serf >/dev/null || missing+=(serf)
  dpkg-query -W -f='${Status}' python3-msgpack 2>/dev/null | grep -q 'install ok installed' ||
    missing+=(python3-msgpack)
fi

[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
