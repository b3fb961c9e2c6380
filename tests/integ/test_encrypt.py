#!/usr/bin/env python3
"""Encryption between real agents: a keyring cluster talks; an agent with the wrong key, or
none, cannot join and the others say so in their logs and /metrics; `rumor keys` rotates the
key on every agent without losing a member and keeps the keyring files (mode 0600) in step, so
a restart from the file alone rejoins; key files with loose permissions are refused; and a
capture of the gossip ports (tcpdump on loopback) holds no node name or tag value of the
encrypted agents, while the one plaintext agent's name is right there. One of the three runs
XChaCha20-Poly1305 only (--encrypt-cipher xchacha): the others still talk to it, and use
AES-256-GCM between each other where the CPU has AES-NI (seen in the capture)."""
import json
import atexit
import os
import shutil
import signal
import stat
import subprocess
import time

from rumor_integ import BIN, PORT_BASE, SLOW, Agent, all_see, check, log, run, wait_for

MARK_NAME = "secretnode"
MARK_TAG = "tag-value-no-one-may-read"


def keygen():
    r = subprocess.run([BIN, "keygen"], capture_output=True, text=True, timeout=10)
    check(r.returncode == 0 and len(r.stdout.strip()) == 44, f"rumor keygen: {r}")
    return r.stdout.strip()


def write_keyring(path, keys, mode=0o600):
    with open(path, "w") as f:
        json.dump(keys, f)
    os.chmod(path, mode)


def read_keyring(path):
    st = os.stat(path)
    check(stat.S_IMODE(st.st_mode) == 0o600, f"{path} has mode {oct(stat.S_IMODE(st.st_mode))}")
    with open(path) as f:
        return json.load(f)


class Capture:
    """tcpdump on loopback for the gossip ports, or None when this run cannot capture."""

    def __init__(self, wd, ports):
        self.path = os.path.join(wd, "gossip.pcap")
        self.proc = None
        self.why = None
        tcpdump = shutil.which("tcpdump")
        if not tcpdump:
            self.why = "tcpdump is not installed (scripts/deps.sh installs it)"
            return
        flt = " or ".join(f"port {p}" for p in ports)
        self.err = open(os.path.join(wd, "tcpdump.err"), "w+")
        self.proc = subprocess.Popen([tcpdump, "-i", "lo", "-n", "-U", "-s", "0", "-w",
                                      self.path, f"(udp or tcp) and ({flt})"],
                                     stdout=subprocess.DEVNULL, stderr=self.err)
        atexit.register(self.stop)  # a failing check must not leave tcpdump running
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            self.err.seek(0)
            text = self.err.read()
            if "listening on" in text:
                return
            if self.proc.poll() is not None:
                self.why = f"tcpdump cannot capture here ({text.strip()[:200]})"
                self.proc = None
                return
            time.sleep(0.1)
        self.stop()
        self.why = "tcpdump did not start listening within 5 s"

    def stop(self):
        if self.proc:
            time.sleep(0.5)  # let the last packets reach the file
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=10)
            self.proc = None

    def packets(self):
        """The captured payloads as one bytes object, and the number of records."""
        with open(self.path, "rb") as f:
            data = f.read()
        count, off = 0, 24  # pcap global header
        while off + 16 <= len(data):
            incl = int.from_bytes(data[off + 8:off + 12], "little")
            off += 16 + incl
            count += 1
        return data, count


def refused_in_log(a, reason):
    with open(a.log_path, errors="replace") as f:
        return any("refused packets" in line and reason in line for line in f)


def metric_drop(a, reason):
    text = a.get("/metrics") or ""
    for line in text.splitlines():
        if line.startswith(f'rumor_packets_dropped_total{{reason="{reason}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return None


def main(wd):
    k1, k2, k3 = keygen(), keygen(), keygen()
    check(len({k1, k2, k3}) == 3, "keygen repeats itself")
    ring0 = os.path.join(wd, "ring0.json")
    ring1 = os.path.join(wd, "ring1.json")
    write_keyring(ring0, [k1])
    a = Agent(wd, 0, name=f"{MARK_NAME}-a", extra=["--keyring", ring0, "--tag",
                                                   f"role={MARK_TAG}"])
    b = Agent(wd, 1, name=f"{MARK_NAME}-b", extra=["--encrypt", k1, "--keyring", ring1])
    # c runs XChaCha20-Poly1305 only (as on a CPU without AES-NI); a and b use AES-256-GCM
    # between each other where this CPU has it.
    c = Agent(wd, 2, name=f"{MARK_NAME}-c", extra=["--encrypt", k1, "--encrypt-cipher", "xchacha"])
    wrong = Agent(wd, 3, name="wrong-key", extra=["--encrypt", k2])
    plain = Agent(wd, 4, name="plain-node-visible")
    ports = [x.port for x in (a, b, c, wrong, plain)]
    cap = Capture(wd, ports)
    if cap.why:
        log(f"SKIP capture check: {cap.why}")

    a.start()
    b.start(["--join", a.addr])
    c.start(["--join", a.addr])
    names = [a.name, b.name, c.name]
    all_see([a, b, c], names, "alive", 20)
    check(read_keyring(ring1) == [k1], "the --keyring file was not created from --encrypt")
    info = a.get("/v1/info")
    check(info["config"]["encrypt"] is True, f"info says encrypt off: {info['config']}")
    log("three agents with one key formed a cluster; ring1.json was created with mode 0600")

    # Intruders: a wrong key, and no key at all.
    wrong.start(["--join", a.addr])
    plain.start(["--join", a.addr])
    wait_for("the seed to count the unknown key", lambda: (metric_drop(a, "unknown_key") or 0) > 0,
             15)
    wait_for("the seed to count plaintext", lambda: (metric_drop(a, "plaintext") or 0) > 0, 15)
    time.sleep(3 * SLOW)
    for x in (wrong, plain):
        check(set(x.members()) == {x.name}, f"{x.name} got in: {sorted(x.members())}")
    for x in (a, b, c):
        check(not ({wrong.name, plain.name} & set(x.members())),
              f"{x.name} lists an intruder: {sorted(x.members())}")
    wait_for("the seed to log the unknown key", lambda: refused_in_log(a, "unknown_key"), 15)
    wait_for("the seed to log plaintext", lambda: refused_in_log(a, "plaintext"), 15)
    check((a.metric("rumor_auth_refused_total") or 0) > 0, "rumor_auth_refused_total is 0")
    check(a.metric("rumor_keyring_keys") == 1, "rumor_keyring_keys is not 1")
    log("a wrong-key and a plaintext agent were kept out, logged and counted")

    # Rotation through the CLI, one agent at a time for each step (--local: this agent only;
    # test_keyrot.py covers the cluster-wide default).
    for step, key in (("install", k3), ("use", k3), ("remove", k1)):
        for x in (a, b, c):
            x.cli("keys", step, key, "--local", check_rc=0)
            time.sleep(0.3 * SLOW)
        all_see([a, b, c], names, "alive", 10)
    for x in (a, b, c):
        r = x.cli("keys", "list", "--local", "--format", "json", check_rc=0)
        doc = json.loads(r.stdout)
        check(doc["scope"] == "local" and doc["primary"] == k3 and list(doc["keys"]) == [k3],
              f"{x.name} keyring after rotation: {doc}")
    check(read_keyring(ring0) == [k3] and read_keyring(ring1) == [k3],
          "keyring files were not kept up to date")
    r = a.cli("keys", "remove", k3, "--local")
    check(r.returncode == 1 and "primary" in r.stderr, f"removing the primary: {r}")
    r = a.cli("keys", "use", k2, "--local")
    check(r.returncode == 1 and "not installed" in r.stderr, f"using a missing key: {r}")
    r = a.cli("keys", "install", "not-a-key")
    check(r.returncode == 2, f"a bad key on the command line: {r}")
    status, text = a.request("POST", "/v1/keys", {"key": 5})
    check(status == 400 and "error" in json.loads(text), f"POST /v1/keys bad body: {status}")
    r = plain.cli("keys", "list")
    check(r.returncode == 0 and "not enabled" in r.stdout, f"keys list without encryption: {r}")
    r = plain.cli("keys", "install", k3)
    check(r.returncode == 1 and "not enabled" in r.stderr, f"install without encryption: {r}")
    log("install/use/remove on every agent: nobody lost contact; files hold the new key")

    # A restart from the keyring file alone (no --encrypt) speaks the rotated key.
    check(b.stop() == 0, "b did not stop cleanly")
    b.extra = ["--keyring", ring1]
    b.start(["--join", a.addr])
    all_see([a, b, c], names, "alive", 20)
    log("restarted from its keyring file, b is back")

    # Tags change while we capture: the value must not show either.
    check(a.cli("tags", "set", f"extra={MARK_TAG}-2").returncode == 0, "tags set failed")
    all_see([a, b, c], names, "alive", 5)
    time.sleep(2 * SLOW)

    # Loose permissions are refused, with the fix in the message.
    os.chmod(ring1, 0o644)
    check(b.stop() == 0, "b did not stop cleanly")
    r = subprocess.run(b.args() + ["--http", "off"], capture_output=True, text=True, timeout=20)
    check(r.returncode != 0 and "chmod 600" in r.stderr and "ring1.json" in r.stderr,
          f"a 0644 keyring was accepted: {r.returncode} {r.stderr!r}")
    cfg = os.path.join(wd, "enc.json")
    with open(cfg, "w") as f:
        json.dump({"encrypt": k3}, f)
    os.chmod(cfg, 0o640)
    r = subprocess.run([BIN, "agent", "--config", cfg, "--http", "off", "--bind",
                        f"127.0.0.1:{PORT_BASE + 90}"], capture_output=True, text=True, timeout=20)
    check(r.returncode != 0 and "chmod 600" in r.stderr, f"a 0640 config with a key: {r}")
    r = subprocess.run([BIN, "agent", "--encrypt", "short", "--http", "off"], capture_output=True,
                       text=True, timeout=20)
    check(r.returncode == 2 and "rumor keygen" in r.stderr, f"a bad --encrypt: {r}")
    r = subprocess.run([BIN, "agent", "--encrypt", k3, "--encrypt-cipher", "rot13", "--http", "off"],
                       capture_output=True, text=True, timeout=20)
    check(r.returncode == 2 and "xchacha" in r.stderr, f"a bad --encrypt-cipher: {r}")
    log("loose permissions and malformed keys are refused with a clear error")

    if cap.why:
        return
    cap.stop()
    data, count = cap.packets()
    check(count > 50, f"the capture holds only {count} packets")
    check(b"plain-node-visible" in data,
          "the plaintext agent's name is not in the capture: the capture sees nothing")
    for mark in (MARK_NAME.encode(), MARK_TAG.encode()):
        check(mark not in data, f"{mark!r} appears in the captured gossip traffic")
    # Packet headers: magic, version 1, flags (SEALED, AESGCM), empty label.
    check(b"RM\x01\x01\x00" in data, "no XChaCha20-Poly1305 packet in the capture")
    with open("/proc/cpuinfo") as f:
        flags = f.read().split()
    if "aes" in flags and "pclmulqdq" in flags:
        check(b"RM\x01\x03\x00" in data, "a and b did not use AES-256-GCM on an AES-NI CPU")
    log(f"{count} captured packets: no name or tag of the encrypted agents in them")


if __name__ == "__main__":
    raise SystemExit(run(main))
