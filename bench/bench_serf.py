#!/usr/bin/env python3
"""Side-by-side benchmark: N rumor agents and N Debian `serf` agents on 127.0.0.1, same LAN
timing, same run, same measurements.

For each system and N it reports
  - join convergence of N-1 concurrent joiners (plus the seed): per node, the time from starting
    the joiners until that node sees all N members alive; median and max over nodes,
  - failure detection: time from `kill -9` of a node until each other node reports it failed;
    min / median / max over the observers of --kills successive crashes, pooled, and the median
    duration of a poll sweep over the nodes (the sampling period is that plus a 50 ms pause),
  - idle CPU per agent (% of one core) over the idle window,
  - memory per agent (mean, MB): RSS, PSS (shared library pages split among the processes
    that map them) and USS (pages only this process holds),
  - idle bytes per second per agent: UDP and TCP payload bytes the agents send on loopback,
    captured with an AF_PACKET socket on `lo` (needs root; "n/a" otherwise),
  - with --load RATE: CPU per agent and bytes per second while the cluster takes RATE tag
    updates per second (each a membership update gossiped to everyone), spread over the nodes.

Systems: rumor, serf, and rumor+enc / serf+enc, the same with gossip encryption (one fresh
32-byte key: rumor agent --encrypt, serf agent -encrypt).

Both systems are polled the same way: one request and one response per poll on a TCP
connection kept open per agent, rumor over HTTP (GET /v1/members), Serf over its RPC protocol
(msgpack, as `serf members` itself speaks it; --serf-poll cli runs `serf members` instead, which
samples Serf less often and so favours rumor).

Stdlib plus Debian's python3-msgpack (for Serf's RPC). Usage:
  bench_serf.py [--nodes 16 64] [--idle 20] [--kills 3] [--load 10]
                [--systems rumor serf rumor+enc serf+enc] [--serf-poll rpc|cli] [--json F]
"""
import base64
import argparse
import concurrent.futures as cf
import json
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import http.client

POLL_THREADS = 8
SERF_POLL = "rpc"  # --serf-poll: "rpc" (persistent msgpack RPC connection) or "cli" (process)
TRACE_DIR = None  # --trace DIR: agents log at debug level and their logs are kept there


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


KEY = base64.b64encode(os.urandom(32)).decode()


class SerfRPC:
    """A client of the Serf agent's RPC protocol (what `serf members` itself speaks): msgpack
    objects on one TCP connection. Each request is a header {"Command", "Seq"} followed by a
    body if the command takes one; each response a header {"Seq", "Error"} followed by a body if
    the command returns one. The connection opens with a handshake {"Version": 1}. Uses Debian's
    python3-msgpack, imported here so that rumor-only runs do not need it."""

    ERRORS = ()

    def __init__(self, port):
        if msgpack is None:
            load_msgpack()
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.unpacker = msgpack.Unpacker(raw=False, unicode_errors="surrogateescape")
            self.seq = 0
            self.call("handshake", {"Version": 1}, has_body=False)
        except BaseException:
            self.sock.close()
            raise

    def read(self):
        while True:
            try:
                return next(self.unpacker)
            except StopIteration:
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionError("serf agent closed the RPC connection")
                self.unpacker.feed(data)

    def call(self, command, body=None, has_body=True):
        seq = self.seq
        self.seq += 1
        out = msgpack.packb({"Command": command, "Seq": seq})
        if body is not None:
            out += msgpack.packb(body)
        self.sock.sendall(out)
        header = self.read()
        if not isinstance(header, dict) or header.get("Seq") != seq:
            raise ValueError(f"serf rpc: unexpected response header {header!r}")
        if header.get("Error"):
            raise ValueError(f"serf rpc {command}: {header['Error']}")
        return self.read() if has_body else None

    def members(self):
        doc = self.call("members")
        return {m["Name"]: m["Status"] for m in doc.get("Members") or []}

    def close(self):
        self.sock.close()


def load_msgpack():
    """Imports Debian's python3-msgpack for SerfRPC; exits with a clear message without it."""
    global msgpack
    try:
        import msgpack  # noqa: F401
    except ImportError:
        sys.exit("bench: polling serf over RPC needs python3-msgpack (RUMOR_WITH_SERF=1 "
                 "scripts/deps.sh) and Debian's /usr/bin/python3, or --serf-poll cli")
    SerfRPC.ERRORS = (msgpack.UnpackException, msgpack.ExtraData)


msgpack = None


class Node:
    def __init__(self, system, i, port, ctl_port, work, rumor_bin):
        self.system, self.i, self.port, self.ctl = system, i, port, ctl_port
        self.name = f"{system[0]}{i:03d}"
        self.work, self.rumor_bin = work, rumor_bin
        self.encrypt = system.endswith("+enc")
        self.proc = None
        self.pending = []
        self.lock = threading.Lock()
        self.http = None  # rumor: persistent HTTP/1.1 connection to the agent's API
        self.rpc = None  # serf: persistent RPC connection to the agent's -rpc-addr
        self.connects = 0  # connections opened by members(): 1 per agent when they persist

    def start(self, seed=None):
        logf = open(os.path.join(self.work, f"{self.name}.log"), "w")
        if self.system.startswith("rumor"):
            args = [self.rumor_bin, "agent", "--node", self.name, "--bind",
                    f"127.0.0.1:{self.port}", "--http", f"127.0.0.1:{self.ctl}", "--profile",
                    "lan", "--log-level", "debug" if TRACE_DIR else "warn"]
            if seed:
                args += ["--join", f"127.0.0.1:{seed.port}"]
            if self.encrypt:
                args += ["--encrypt", KEY]
        else:
            args = ["serf", "agent", f"-node={self.name}", f"-bind=127.0.0.1:{self.port}",
                    f"-rpc-addr=127.0.0.1:{self.ctl}",
                    f"-log-level={'debug' if TRACE_DIR else 'warn'}", "-profile=lan"]
            if seed:
                args += [f"-join=127.0.0.1:{seed.port}"]
            if self.encrypt:
                args += [f"-encrypt={KEY}"]
        self.proc = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT)

    def set_tag(self, value):
        """One tag update: a membership update the cluster gossips to every member."""
        try:
            if self.system.startswith("rumor"):
                body = json.dumps({"set": {"seq": value}}).encode()
                req = urllib.request.Request(f"http://127.0.0.1:{self.ctl}/v1/tags", data=body,
                                             method="PUT")
                urllib.request.urlopen(req, timeout=5).read()
            else:
                # `serf tags` takes ~0.4 s to start: run them side by side so that serf gets
                # the same update rate (their own CPU is not counted, only the agents').
                self.pending.append(subprocess.Popen(
                    ["serf", "tags", f"-rpc-addr=127.0.0.1:{self.ctl}", "-set", f"seq={value}"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                self.pending = [p for p in self.pending if p.poll() is None]
        except (OSError, subprocess.TimeoutExpired):
            pass

    def members(self):
        """{name: status} as this node sees it, or None when it does not answer. One request and
        one response on a connection kept open between polls, for both systems: rumor over HTTP
        (GET /v1/members), Serf over its own RPC protocol (msgpack on -rpc-addr), so that a poll
        of either costs about the same and both are sampled equally often. With --serf-poll cli,
        Serf is polled by starting `serf members` as before (slower: a process per poll)."""
        with self.lock:
            try:
                if self.system.startswith("rumor"):
                    if self.http is None:
                        self.http = http.client.HTTPConnection("127.0.0.1", self.ctl, timeout=5)
                    fresh = self.http.sock is None  # request() connects first
                    self.http.request("GET", "/v1/members")
                    r = self.http.getresponse()
                    body = r.read()
                    self.connects += fresh
                    if r.will_close:
                        self.close_conns()
                    if r.status != 200:
                        return None
                    doc = json.loads(body)
                    return {m["name"]: m["status"] for m in doc.get("members", [])}
                if SERF_POLL == "cli":
                    out = subprocess.run(["serf", "members", f"-rpc-addr=127.0.0.1:{self.ctl}",
                                          "-format=json"], capture_output=True, timeout=5)
                    if out.returncode != 0:
                        return None
                    doc = json.loads(out.stdout)
                    return {m["name"]: m["status"] for m in doc.get("members", [])}
                if self.rpc is None:
                    self.rpc = SerfRPC(self.ctl)
                    self.connects += 1
                return self.rpc.members()
            except (OSError, ValueError, http.client.HTTPException,
                    subprocess.TimeoutExpired) + SerfRPC.ERRORS:
                self.close_conns()
                return None

    def close_conns(self):
        if self.http is not None:
            self.http.close()
            self.http = None
        if self.rpc is not None:
            self.rpc.close()
            self.rpc = None

    def kill(self):
        with self.lock:
            self.close_conns()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


def wait_all(nodes, pred, timeout, t0, sweeps=None):
    """Polls every node until pred(view) holds; returns {node: seconds since t0 or None}. A
    sweep polls the nodes not yet done (8 at a time), then pauses 50 ms; each node's time is the
    end of the sweep whose answer satisfied pred. With `sweeps` (a list), appends the duration
    in seconds of every sweep (without the pause): the sampling period is that plus 50 ms."""
    done = {}
    deadline = t0 + timeout
    pool = cf.ThreadPoolExecutor(POLL_THREADS)
    try:
        while len(done) < len(nodes) and time.monotonic() < deadline:
            todo = [n for n in nodes if n not in done]
            start = time.monotonic()
            views = list(pool.map(lambda n: (n, n.members()), todo))
            now = time.monotonic()
            if sweeps is not None:
                sweeps.append(now - start)
            for n, v in views:
                if v is not None and pred(v):
                    done[n] = now - t0
            time.sleep(0.05)
    finally:
        pool.shutdown()
    return {n: done.get(n) for n in nodes}


def cpu_ns(pid):
    """CPU time of all threads in ns (schedstat: finer than the 10 ms ticks of /proc/PID/stat,
    which an idle rumor agent does not reach in 20 s)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def mem_kb(pid):
    """RSS, PSS (shared pages split among the processes mapping them) and USS (private)."""
    v = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                v[parts[0][:-1]] = int(parts[1])
    return v.get("Rss", 0), v.get("Pss", 0), v.get("Private_Clean", 0) + v.get("Private_Dirty", 0)


class Sniffer(threading.Thread):
    """Counts payload bytes of packets from or to ports [lo, hi) on the loopback interface.
    Only the outgoing copy of each packet is counted, so every byte an agent sends is counted
    once, including TCP full syncs that it opens from an ephemeral port."""

    def __init__(self, lo, hi):
        super().__init__(daemon=True)
        self.lo, self.hi, self.bytes, self.ok = lo, hi, 0, True
        self.stop_ev = threading.Event()
        try:
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
            self.sock.bind(("lo", 0))
            self.sock.settimeout(0.3)
        except (OSError, AttributeError):
            self.ok = False

    def run(self):
        while self.ok and not self.stop_ev.is_set():
            try:
                pkt, addr = self.sock.recvfrom(70000)
            except socket.timeout:
                continue
            if addr[2] != socket.PACKET_OUTGOING or len(pkt) < 14 + 20:
                continue
            ip = pkt[14:]
            if ip[0] >> 4 != 4:
                continue
            ihl, proto, total = (ip[0] & 15) * 4, ip[9], struct.unpack(">H", ip[2:4])[0]
            if proto not in (6, 17):
                continue
            sport, dport = struct.unpack(">HH", ip[ihl:ihl + 4])
            if not (self.lo <= sport < self.hi or self.lo <= dport < self.hi):
                continue
            l4 = 8 if proto == 17 else (ip[ihl + 12] >> 4) * 4
            self.bytes += max(0, total - ihl - l4)

    def stop(self):
        self.stop_ev.set()
        self.join()
        if self.ok:
            self.sock.close()


def pct(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]


def measure(nodes, base, n, seconds, load_rate=0):
    """CPU % of one core per agent and bytes/s per agent over `seconds`, with `load_rate` tag
    updates per second round-robin over the nodes (0: idle)."""
    sniff = Sniffer(base, base + n)
    sniff.start()
    cpu0 = {x: cpu_ns(x.proc.pid) for x in nodes}
    t0 = time.monotonic()
    k = 0
    while time.monotonic() - t0 < seconds:
        if load_rate:
            nodes[k % len(nodes)].set_tag(str(k))
            k += 1
            time.sleep(max(0.0, t0 + k / load_rate - time.monotonic()))
        else:
            time.sleep(seconds)
    elapsed = time.monotonic() - t0
    used = [cpu_ns(x.proc.pid) - cpu0[x] for x in nodes]
    for x in nodes:
        for p in x.pending:
            p.wait()
        x.pending = []
    sniff.stop()
    cpu = 100.0 * statistics.mean(used) / 1e9 / elapsed
    return cpu, (sniff.bytes / elapsed / n if sniff.ok else None), k


def run_system(system, n, idle_s, kills, rumor_bin, base, load_rate=0):
    work = tempfile.mkdtemp(prefix=f"bench-{system}-{n}-")
    nodes = [Node(system, i, base + i, base + 1000 + i, work, rumor_bin) for i in range(n)]
    res = {"system": system, "n": n}
    try:
        seed = nodes[0]
        seed.start()
        if not wait_all([seed], lambda v: seed.name in v, 20, time.monotonic())[seed]:
            raise RuntimeError(f"{system} seed did not start; see {work}")
        t0 = time.monotonic()
        for node in nodes[1:]:
            node.start(seed)
        names = {x.name for x in nodes}
        join_sweeps = []
        conv = wait_all(nodes, lambda v: sum(1 for k in names if v.get(k) == "alive") == n,
                        120, t0, join_sweeps)
        got = [t for t in conv.values() if t is not None]
        res["join_median_s"] = statistics.median(got) if got else None
        res["join_max_s"] = max(got) if len(got) == n else None
        res["join_converged"] = len(got)
        res["join_sweep_median_ms"] = 1e3 * statistics.median(join_sweeps)
        log(f"{system} N={n}: join median {res['join_median_s']} max {res['join_max_s']} "
            f"({len(got)}/{n} converged); poll sweep median {res['join_sweep_median_ms']:.1f} ms")

        time.sleep(5)  # let joins' full syncs and broadcasts finish before measuring idle
        res["idle_cpu_pct"], res["idle_bytes_per_s"], _ = measure(nodes, base, n, idle_s)
        if load_rate:
            res["load_cpu_pct"], res["load_bytes_per_s"], updates = measure(
                nodes, base, n, idle_s, load_rate)
            res["load_rate"] = updates / idle_s
            log(f"{system} N={n}: {updates} tag updates in {idle_s} s: cpu "
                f"{res['load_cpu_pct']:.3f}% bytes/s {res['load_bytes_per_s']}")
            time.sleep(3)
        mem = [mem_kb(x.proc.pid) for x in nodes]
        res["rss_mb"] = statistics.mean(m[0] for m in mem) / 1024
        res["pss_mb"] = statistics.mean(m[1] for m in mem) / 1024
        res["uss_mb"] = statistics.mean(m[2] for m in mem) / 1024
        log(f"{system} N={n}: idle cpu {res['idle_cpu_pct']:.3f}% rss {res['rss_mb']:.1f} MB "
            f"pss {res['pss_mb']:.1f} MB uss {res['uss_mb']:.1f} MB "
            f"bytes/s {res['idle_bytes_per_s']}")

        times, complete, sweeps, crash_max = [], True, [], []
        connects0 = sum(x.connects for x in nodes)
        dead = set()
        for k in range(kills):  # several crashes, one after the other, pooled
            victim = nodes[n // 2 + k]
            victim.kill()
            dead.add(victim)
            t0 = time.monotonic()
            if TRACE_DIR:
                with open(os.path.join(work, "kills.txt"), "a") as f:
                    f.write(f"{time.time():.3f} {victim.name}\n")
            others = [x for x in nodes if x not in dead]
            det = wait_all(others, lambda v, name=victim.name: v.get(name) == "failed", 120, t0,
                           sweeps)
            got = [t for t in det.values() if t is not None]
            complete = complete and len(got) == len(others)
            times += got
            if got and len(got) == len(others):
                crash_max.append(max(got))
            log(f"{system} N={n}: kill -9 {victim.name}: failed everywhere after "
                f"{fmt(max(got) if got else None, ' s', 1)} ({len(got)}/{len(others)}); "
                f"observers {' '.join(fmt(t, '', 1) for t in sorted(got))}")
        res["detect_min_s"] = min(times) if times else None
        res["detect_median_s"] = statistics.median(times) if times else None
        res["detect_max_s"] = max(times) if complete and times else None
        res["detect_kills"] = kills
        res["detect_times_s"] = times  # every observer of every crash, to pool over runs
        res["detect_all_s"] = crash_max  # per crash, until the last survivor knew
        res["detect_sweeps"] = len(sweeps)
        res["detect_sweep_median_ms"] = 1e3 * statistics.median(sweeps) if sweeps else None
        res["detect_sweep_max_ms"] = 1e3 * max(sweeps) if sweeps else None
        res["poll"] = "http" if system.startswith("rumor") else SERF_POLL
        res["detect_connects"] = sum(x.connects for x in nodes) - connects0
        log(f"{system} N={n}: detection min {res['detect_min_s']} median "
            f"{res['detect_median_s']} max {res['detect_max_s']}; {len(sweeps)} poll sweeps, "
            f"median {fmt(res['detect_sweep_median_ms'], ' ms', 1)} max "
            f"{fmt(res['detect_sweep_max_ms'], ' ms', 1)} (+50 ms pause each); "
            f"{res['detect_connects']} connections (re)opened while detecting")
    finally:
        for x in nodes:
            x.kill()
        if TRACE_DIR:
            shutil.copytree(work, os.path.join(TRACE_DIR, os.path.basename(work)))
        shutil.rmtree(work, ignore_errors=True)
    return res


def fmt(v, unit="", digits=2):
    return "n/a" if v is None else f"{v:.{digits}f}{unit}"


def table(results):
    out = ["| system | N | join median / max | kill -9 → all failed (min / median / max) | "
           "poll sweep median | idle CPU per agent | RSS / PSS / USS per agent | "
           "idle bytes/s per agent |",
           "|---|---|---|---|---|---|---|---|"]
    for r in results:
        out.append(f"| {r['system']} | {r['n']} | {fmt(r.get('join_median_s'), ' s')} / "
                   f"{fmt(r.get('join_max_s'), ' s')} | {fmt(r.get('detect_min_s'), ' s', 1)} / "
                   f"{fmt(r.get('detect_median_s'), ' s', 1)} / "
                   f"{fmt(r.get('detect_max_s'), ' s', 1)} | "
                   f"{fmt(r.get('detect_sweep_median_ms'), ' ms', 1)} ({r.get('poll')}) | "
                   f"{fmt(r.get('idle_cpu_pct'), ' %', 3)} | {fmt(r.get('rss_mb'), '', 1)} / "
                   f"{fmt(r.get('pss_mb'), '', 1)} / {fmt(r.get('uss_mb'), ' MB', 1)} | "
                   f"{fmt(r.get('idle_bytes_per_s'), '', 0)} |")
    if any("load_cpu_pct" in r for r in results):
        out += ["", "| system | N | tag updates/s | CPU per agent under load | bytes/s per agent "
                    "under load |", "|---|---|---|---|---|"]
        for r in results:
            if "load_cpu_pct" in r:
                out.append(f"| {r['system']} | {r['n']} | {fmt(r.get('load_rate'), '', 1)} | "
                           f"{fmt(r.get('load_cpu_pct'), ' %', 3)} | "
                           f"{fmt(r.get('load_bytes_per_s'), '', 0)} |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--idle", type=int, default=20)
    ap.add_argument("--kills", type=int, default=3, help="crashes per run, pooled (at most N/2)")
    ap.add_argument("--systems", nargs="+", default=["rumor", "serf"],
                    choices=["rumor", "serf", "rumor+enc", "serf+enc"])
    ap.add_argument("--load", type=float, default=0, help="tag updates per second (0: none)")
    ap.add_argument("--rumor", default=os.environ.get("RUMOR_BIN", "rumor"))
    ap.add_argument("--port-base", type=int, default=10000)
    ap.add_argument("--serf-poll", choices=["rpc", "cli"], default="rpc",
                    help="poll serf over a persistent RPC connection (default, as rumor over a "
                         "persistent HTTP one) or by running `serf members` (slower sampling)")
    ap.add_argument("--json")
    ap.add_argument("--trace", metavar="DIR",
                    help="agents log at debug level; keep their logs and kill times in DIR")
    a = ap.parse_args()
    global TRACE_DIR, SERF_POLL
    TRACE_DIR = a.trace
    SERF_POLL = a.serf_poll
    if a.kills < 0 or any(a.kills > n // 2 for n in a.nodes):
        ap.error("--kills must be between 0 and half the smallest --nodes (the crashed stay down)")
    if any(s.startswith("serf") for s in a.systems) and not shutil.which("serf"):
        sys.exit("bench: serf is not installed (RUMOR_WITH_SERF=1 scripts/deps.sh)")
    if any(s.startswith("serf") for s in a.systems) and SERF_POLL == "rpc":
        load_msgpack()
    results = []
    for n in a.nodes:
        for k, system in enumerate(a.systems):
            base = a.port_base + 2000 * k
            log(f"--- {system}, N={n}")
            results.append(run_system(system, n, a.idle, a.kills, a.rumor, base, a.load))
    print(table(results))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
