#!/usr/bin/env python3
"""Replicated key-value state on 16 real agents: `rumor kv put` on one is readable on all, also a
value far larger than a datagram (it travels over streams), deletes propagate, per-node state, a
watch stream, refused requests that change nothing, kill -9 right after an acknowledged write
followed by a restart from the data dir, and a restart from an older copy of the data dir that
adopts the cluster's newer versions."""
import base64
import http.client
import json
import os
import queue
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time

from rumor_integ import BIN, Agent, check, log, run, wait_for

N = 16
# Every agent takes values up to 64 KiB (--kv-value-max): larger than any datagram.
VALUE_MAX = 65536


def kv_of(a, key, space="/v1/kv"):
    """(value bytes, version) of a key at agent a, or None when absent."""
    status, text = a.request("GET", f"{space}/{key}")
    if status == 404:
        return None
    check(status == 200, f"GET {space}/{key} at {a.name}: {status} {text}")
    o = json.loads(text)
    return base64.b64decode(o["value"]), o["version"]


def everywhere(agents, what, fn, timeout=15):
    t0 = time.monotonic()
    wait_for(what, lambda: all(fn(a) for a in agents), timeout, 0.1)
    return time.monotonic() - t0


def cli_ok(a, *args):
    return a.cli(*args, check_rc=0).stdout


class Watch:
    """GET /v1/kv/watch on a background thread; events land in a queue."""

    def __init__(self, agent, prefix):
        host, port = agent.http.split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)
        self.conn.request("GET", f"/v1/kv/watch?prefix={prefix}")
        self.resp = self.conn.getresponse()
        check(self.resp.status == 200, f"watch answered {self.resp.status}")
        check(self.resp.readline().startswith(b": rumor kv watch"), "no stream preamble")
        self.events = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            for line in self.resp:
                if line.startswith(b"data: "):
                    self.events.put(json.loads(line[6:]))
        except Exception:  # the stream was closed under us: done
            pass

    def next(self, timeout):
        return self.events.get(timeout=timeout)

    def close(self):
        self.conn.sock.shutdown(socket.SHUT_RDWR)
        self.conn.close()


def refused(a, method, path, body=None, want=None):
    status, text = a.request(method, path, raw=body)
    check(400 <= status < 500, f"{method} {path}: status {status}, expected 4xx ({text[:200]})")
    if want is not None:
        check(status == want, f"{method} {path}: status {status}, expected {want} ({text})")
    o = json.loads(text)
    check(isinstance(o.get("error"), str) and o["error"], f"{method} {path}: no error text {o}")
    return status


def snapshot(a):
    return (a.request("GET", "/v1/kv")[1], a.request("GET", "/v1/state")[1],
            a.metric("rumor_kv_writes_total"), a.metric("rumor_kv_own_version"))


def bad_requests(agents):
    a = agents[2]
    before = snapshot(a)
    big = b"x" * (VALUE_MAX + 1)
    refused(a, "PUT", "/v1/kv/big", big, 413)  # over kv_value_bytes_max
    refused(a, "PUT", "/v1/state/big", big, 413)
    refused(a, "PUT", "/v1/kv/huge", b"y" * (200 * 1024), 413)  # over the body cap too
    refused(a, "PUT", "/v1/kv/", b"v", 400)  # empty key
    refused(a, "PUT", "/v1/kv/" + "k" * 257, b"v", 400)  # key too long
    refused(a, "PUT", "/v1/kv/a%00b", b"v", 400)  # a NUL must not cut the key short
    refused(a, "PUT", "/v1/kv/a%01b", b"v", 400)  # control character
    refused(a, "PUT", "/v1/kv/a%ffb", b"v", 400)  # not UTF-8
    refused(a, "PUT", "/v1/state/%0a", b"v", 400)
    refused(a, "POST", "/v1/kv/k", b"v", 405)
    refused(a, "PUT", "/v1/kv", b"v", 405)
    refused(a, "DELETE", "/v1/kv/watch", None, 405)
    refused(a, "PUT", f"/v1/nodes/{agents[0].name}/state/k", b"v", 405)
    refused(a, "GET", "/v1/kv?prefix=%ff", None, 400)
    refused(a, "GET", "/v1/kv/watch?prefix=%01", None, 400)
    refused(a, "GET", "/v1/kv/k?raw=maybe", None, 400)
    refused(a, "GET", "/v1/kv/absent", None, 404)
    refused(a, "DELETE", "/v1/kv/absent", None, 404)
    refused(a, "DELETE", "/v1/state/absent", None, 404)
    refused(a, "GET", "/v1/nodes/nobody/state", None, 404)
    refused(a, "GET", "/v1/nodes//state", None, 404)
    refused(a, "PUT", "/v1/tags", b"{not json", 400)  # the agent's JSON endpoints too
    r = a.cli("kv", "put", "big", "x" * (VALUE_MAX + 1))
    check(r.returncode == 1 and "kv_value_bytes_max" in r.stderr, f"CLI oversize: {r}")
    r = a.cli("kv", "get")
    check(r.returncode == 2 and "expected KEY" in r.stderr, f"CLI usage: {r}")
    r = a.cli("state", "put", "k", "v", "--node", "x")
    check(r.returncode == 2, f"CLI --node with put: {r}")
    r = a.cli("kv", "list", "--format", "yaml")
    check(r.returncode == 2 and "--format" in r.stderr, f"CLI bad format: {r}")
    r = a.cli("kv", "watch", "--prefix", "\x01")
    check(r.returncode == 1 and "control character" in r.stderr, f"CLI bad watch prefix: {r}")
    r = subprocess.run([BIN, "kv", "get", "k", "--http", "127.0.0.1:1"], capture_output=True,
                       text=True, timeout=30)
    check(r.returncode == 3, f"CLI with no agent: {r}")
    time.sleep(0.5)
    check(snapshot(a) == before, f"a refused request changed something: {before} -> {snapshot(a)}")
    for b in agents:
        check(kv_of(b, "big") is None and kv_of(b, "a") is None, f"{b.name} holds a refused key")


def saved_rows(a):
    db = sqlite3.connect(f"file:{a.data_dir}/rumor.db?mode=ro", uri=True, timeout=5)
    try:
        rows = db.execute("SELECT key, deleted, version FROM kv_own WHERE shared = 0").fetchall()
        gc = db.execute("SELECT value FROM meta WHERE key = 'kv_gc_version'").fetchone()
    finally:
        db.close()
    return {k.decode() if isinstance(k, bytes) else k: (d, v) for k, d, v in rows}, \
        int(gc[0]) if gc else 0


def tombstones(a):
    """A delete stays in the data dir until the engine collects it (ttl 1 s here), then goes."""
    cli_ok(a, "state", "put", "temp", "x")
    cli_ok(a, "state", "del", "temp")
    rows, _ = saved_rows(a)
    check(rows.get("temp", (0,))[0] == 1, f"the delete of temp is not saved: {rows}")
    ver = rows["temp"][1]
    wait_for("the collected delete to leave the data dir",
             lambda: "temp" not in saved_rows(a)[0] and saved_rows(a)[1] >= ver, 10)
    check(kv_of(a, "temp", "/v1/state") is None, "temp came back after collection")


def backup_db(a, path):
    src = sqlite3.connect(f"file:{a.data_dir}/rumor.db?mode=ro", uri=True, timeout=5)
    dst = sqlite3.connect(path)
    src.backup(dst)
    dst.close()
    src.close()


def restore_db(a, path):
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(f"{a.data_dir}/rumor.db{suffix}"):
            os.remove(f"{a.data_dir}/rumor.db{suffix}")
    shutil.copy(path, f"{a.data_dir}/rumor.db")


def older_copy(wd, agents):
    """Restarted from an older copy of its data dir, a node adopts the cluster's newer versions
    of its own keyspace, saves them, and goes on from there."""
    a = agents[11]
    others = [b for b in agents if b is not a]
    cli_ok(a, "state", "put", "x", "1")
    backup_db(a, f"{wd}/old.db")
    cli_ok(a, "state", "put", "y", "2")
    cli_ok(a, "state", "del", "x")
    _, yver = kv_of(a, "y", "/v1/state")
    everywhere(others, "the newer writes everywhere",
               lambda b: kv_of(b, f"{a.name}/state/y", "/v1/nodes") == (b"2", yver) and
               kv_of(b, f"{a.name}/state/x", "/v1/nodes") is None)
    a.kill()
    restore_db(a, f"{wd}/old.db")
    a.start()
    wait_for(f"{a.name} to adopt its newer versions",
             lambda: kv_of(a, "y", "/v1/state") == (b"2", yver) and
             kv_of(a, "x", "/v1/state") is None, 15)
    wait_for("the adopted versions in its data dir",
             lambda: saved_rows(a)[0].get("y", (0, 0))[1] == yver and
             saved_rows(a)[0].get("x", (0,))[0] == 1, 10)
    a.kill()
    a.start(extra=["--no-rejoin", "--bind", f"127.0.0.1:{a.port + 100}"])
    check(len(a.members()) == 1, f"{a.name} heard from peers: {a.members()}")
    check(kv_of(a, "y", "/v1/state") == (b"2", yver) and kv_of(a, "x", "/v1/state") is None,
          "the adopted versions did not survive a restart")
    cli_ok(a, "join", agents[0].addr)
    cli_ok(a, "state", "put", "z", "3")
    _, zver = kv_of(a, "z", "/v1/state")
    check(zver == yver + 2, f"after adopting v{yver + 1}, the next write took v{zver}")
    everywhere(others, "the next write everywhere",
               lambda b: kv_of(b, f"{a.name}/state/z", "/v1/nodes") == (b"3", zver))
    log(f"{a.name} restarted from an older copy adopted versions up to {yver + 1}, saved them, "
        f"and went on at {zver}")


def durability(agents, others):
    victim = agents[9]
    cli_ok(victim, "kv", "put", "gone", "soon")
    everywhere(others, "gone on every agent", lambda a: kv_of(a, "gone") is not None)
    # Acknowledged writes, then kill -9 at once: no graceful anything.
    cli_ok(victim, "kv", "put", "durable", "v1")
    cli_ok(victim, "state", "put", "counter", "7")
    out = cli_ok(victim, "kv", "del", "gone")
    check("deleted gone" in out, out)
    value, dver = kv_of(victim, "durable")
    _, cver = kv_of(victim, "counter", "/v1/state")
    victim.kill()
    log(f"kill -9 {victim.name} right after acknowledged writes (durable v{dver}, "
        f"counter v{cver}, delete of gone)")
    # Alone first, on another port and without rejoining, so no peer can reach it: what it
    # holds now comes from its data dir alone.
    victim.start(extra=["--no-rejoin", "--bind", f"127.0.0.1:{victim.port + 100}"])
    check(len(victim.members()) == 1, f"{victim.name} heard from peers: {victim.members()}")
    got = kv_of(victim, "durable")
    check(got == (b"v1", dver), f"after restart {victim.name} holds durable={got}, want v{dver}")
    check(kv_of(victim, "counter", "/v1/state") == (b"7", cver), "counter lost or reverted")
    check(kv_of(victim, "gone") is None, "a delete made before kill -9 came back")
    cli_ok(victim, "join", agents[0].addr)
    everywhere(others, "peers to hold the pre-kill writes",
               lambda a: kv_of(a, "durable") == (b"v1", dver) and kv_of(a, "gone") is None and
               kv_of(a, f"{victim.name}/state/counter", "/v1/nodes") == (b"7", cver), 20)
    # The next write continues the version sequence, and every peer takes it.
    cli_ok(victim, "state", "put", "counter", "8")
    _, nver = kv_of(victim, "counter", "/v1/state")
    check(nver > cver, f"version went from {cver} to {nver} across the restart")
    everywhere(others, "peers to take the post-restart write",
               lambda a: kv_of(a, f"{victim.name}/state/counter", "/v1/nodes") == (b"8", nver))
    time.sleep(1.0)
    for a in agents:
        check(kv_of(a, "durable") == (b"v1", dver), f"{a.name} reverted durable")
        check(kv_of(a, "gone") is None, f"{a.name} resurrected gone")
    log(f"{victim.name} restarted with every acknowledged write; versions continue at {nver}")


def main(wd):
    agents = [Agent(wd, i) for i in range(N)]
    for a in agents:  # kept across restarts: every replica must take the large values
        a.extra += ["--kv-value-max", str(VALUE_MAX)]
    agents[0].start()
    for a in agents[1:]:
        extra = ["--join", agents[0].addr]
        if a.index == 14:
            extra += ["--kv-sync-mode", "pull"]
        if a.index == 15:
            extra += ["--kv-keys-max", "4"]
        if a.index == 13:
            extra += ["--kv-tombstone-ttl", "1000"]
        a.start(extra=extra, wait=False)
    for a in agents:
        wait_for(f"{a.name} to serve", lambda a=a: a.get("/v1/health"), 15)
    wait_for(f"all {N} agents to see {N} alive",
             lambda: all(len([m for m in a.members().values() if m["status"] == "alive"]) == N
                         for a in agents), 30, 0.3)
    check(agents[14].get("/v1/info")["config"]["kv"]["sync_mode"] == "pull", "--kv-sync-mode")

    # A shared key written on one agent is readable on all.
    watch = Watch(agents[7], "app/")
    cli_ok(agents[3], "kv", "put", "greeting", "hello world")
    t = everywhere(agents, "greeting on all 16", lambda a: kv_of(a, "greeting") is not None)
    log(f"kv put on {agents[3].name} readable on all {N} agents after {t:.2f}s")
    for a in agents:
        check(kv_of(a, "greeting")[0] == b"hello world", f"{a.name}: {kv_of(a, 'greeting')}")
    r = agents[12].cli("kv", "get", "greeting", check_rc=0)
    check(r.stdout == "hello world\n", f"kv get printed {r.stdout!r}")
    listing = json.loads(cli_ok(agents[5], "kv", "list", "--prefix", "gree", "--format", "json"))
    check([k["key"] for k in listing["keys"]] == ["greeting"] and
          listing["keys"][0]["writer"] == agents[3].name, f"kv list: {listing}")

    # A value larger than a datagram (20 KB here; the packet is 1400 bytes) crosses streams.
    large = bytes((i * 31 + 7) % 251 for i in range(20 * 1024))
    status, text = agents[6].request("PUT", "/v1/kv/large", raw=large)
    check(status == 200, f"PUT of a 20 KB value: {status} {text}")
    t = everywhere(agents, "the 20 KB value on all 16",
                   lambda a: (kv_of(a, "large") or (None,))[0] == large, 20)
    log(f"a {len(large)}-byte value put on {agents[6].name} readable on all {N} agents after "
        f"{t:.2f}s")
    check(agents[0].get("/v1/info")["config"]["kv"]["value_bytes_max"] == VALUE_MAX,
          "--kv-value-max")

    # The watch sees a matching change, with the value, and skips the others.
    cli_ok(agents[1], "kv", "put", "other/y", "skip me")
    cli_ok(agents[1], "kv", "put", "app/x", "42")
    ev = watch.next(10)
    check(ev["key"] == "app/x" and ev["origin"] == agents[1].name and ev["shared"] and
          not ev["deleted"] and base64.b64decode(ev["value"]) == b"42" and ev["version"] >= 1,
          f"watch event: {ev}")
    watch.close()
    wait_for("the watch stream to be released",
             lambda: agents[7].metric("rumor_kv_watchers") == 0, 3)

    # Per-node state: written by its node, readable on every agent as that node's.
    cli_ok(agents[5], "state", "put", "role", "web")
    everywhere(agents, "node05's role everywhere",
               lambda a: kv_of(a, f"{agents[5].name}/state/role", "/v1/nodes") is not None)
    r = agents[12].cli("state", "get", "--node", agents[5].name, "role", check_rc=0)
    check(r.stdout == "web\n", f"state get printed {r.stdout!r}")
    r = agents[5].cli("state", "get", "role", check_rc=0)
    check(r.stdout == "web\n", f"own state get printed {r.stdout!r}")
    r = agents[12].cli("state", "get", "--node", agents[5].name, "absent")
    check(r.returncode == 1, f"absent state key: exit {r.returncode}")
    node = agents[0].get(f"/v1/nodes/{agents[5].name}/state")
    check(node["count"] == 1 and node["keys"][0]["key"] == "role", f"node state: {node}")

    # A delete by another node propagates, and get then exits 1.
    cli_ok(agents[8], "kv", "del", "greeting")
    t = everywhere(agents, "the delete on all 16", lambda a: kv_of(a, "greeting") is None)
    log(f"kv del on {agents[8].name} reached all {N} agents after {t:.2f}s")
    r = agents[4].cli("kv", "get", "greeting")
    check(r.returncode == 1 and r.stdout == "", f"kv get of a deleted key: {r}")

    # A node at its key limit refuses more, changing nothing.
    lim = agents[15]
    for i in range(4):
        cli_ok(lim, "state", "put", f"k{i}", str(i))
    status = refused(lim, "PUT", "/v1/state/k4", b"4")
    check(status == 409, f"over kv_keys_max: {status}")
    check(lim.get("/v1/state")["count"] == 4, "a refused write changed the keyspace")
    check(lim.metric("rumor_kv_writes_refused_total") == 1, "refusal not counted")

    tombstones(agents[13])
    bad_requests(agents)
    others = [a for a in agents if a is not agents[9]]
    durability(agents, others)
    older_copy(wd, agents)

    # The value limit is checked against one stream frame with the delta around the value and,
    # with --identity, its signatures (1,049,097 - 521 - 129 = 1,048,447 bytes).
    frame = ["--engine", "stream_frame_bytes_max=1049097", "--kv-value-max", "1048576"]
    r = subprocess.run([BIN, "agent", "--data-dir", f"{wd}/limits", *frame, "--identity"],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 2 and "at most 1048447" in r.stderr and "identities" in r.stderr,
          f"--kv-value-max over a frame with signatures: exit {r.returncode}, {r.stderr[-300:]}")
    r = subprocess.run([BIN, "agent", "--kv-value-max", str(1024 * 1024 + 1)], capture_output=True,
                       text=True, timeout=30)
    check(r.returncode != 0 and "1048576" in r.stderr, f"--kv-value-max over 1 MiB: {r}")

    # A data dir whose saved entries cannot be read is refused, not silently started empty.
    bad = agents[10]
    bad.kill()
    db = sqlite3.connect(f"{bad.data_dir}/rumor.db")
    db.executescript("DROP TABLE kv_own; CREATE TABLE kv_own(x);")
    db.close()
    r = subprocess.run(bad.args(), capture_output=True, text=True, timeout=30)
    check(r.returncode == 1 and "cannot read the saved key-value entries" in r.stderr,
          f"an unreadable kv_own table: exit {r.returncode}, {r.stderr[-300:]}")

    m = agents[3]
    for name in ("rumor_kv_keys", "rumor_kv_bytes", "rumor_kv_writes_total",
                 "rumor_kv_saves_total", "rumor_kv_changes_total", "rumor_kv_shared_keys"):
        check((m.metric(name) or 0) > 0, f"metric {name} is {m.metric(name)}")


if __name__ == "__main__":
    sys.exit(run(main))
