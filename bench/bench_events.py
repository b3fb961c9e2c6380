#!/usr/bin/env python3
"""Side-by-side benchmark of user event delivery: N rumor agents, then N Debian `serf` agents, on
127.0.0.1 with the same LAN timing, in one run.

Every agent runs the same event handler for user events named `bench` (`--event-handler
user:bench=SCRIPT` for both), which creates the file DIR/NODE.PAYLOAD; its modification time is
when that agent's handler ran. For each repetition the payload is new, the sender changes, and
the clock starts just before the sender's CLI is run (`rumor event bench rK` or `serf event
-coalesce=false bench rK`): the time for the event to reach all N agents is the newest file's
time minus the start. Reported per system: median and max over repetitions of that time (and
the median over repetitions of each event's per-node median), then the ratio rumor / serf.

Only stdlib. Usage: bench_events.py [--nodes 64] [--reps 10] [--systems rumor serf] [--json F]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_serf import Node, fmt, log, wait_all  # noqa: E402

HANDLER = """#!/bin/sh
IFS= read -r p
: > "{dir}/${{RUMOR_SELF_NAME:-$SERF_SELF_NAME}}.$p"
"""


class EvNode(Node):
    """An agent of either system with the `bench` user event handler."""

    def __init__(self, system, i, port, ctl_port, work, rumor_bin, handler):
        super().__init__(system, i, port, ctl_port, work, rumor_bin)
        self.handler = handler

    def start(self, seed=None):
        logf = open(os.path.join(self.work, f"{self.name}.log"), "w")
        if self.system == "rumor":
            args = [self.rumor_bin, "agent", "--node", self.name, "--bind",
                    f"127.0.0.1:{self.port}", "--http", f"127.0.0.1:{self.ctl}", "--profile",
                    "lan", "--log-level", "warn", "--event-handler",
                    f"user:bench={self.handler}"]
            if seed:
                args += ["--join", f"127.0.0.1:{seed.port}"]
        else:
            args = ["serf", "agent", f"-node={self.name}", f"-bind=127.0.0.1:{self.port}",
                    f"-rpc-addr=127.0.0.1:{self.ctl}", "-log-level=warn", "-profile=lan",
                    f"-event-handler=user:bench={self.handler}"]
            if seed:
                args += [f"-join=127.0.0.1:{seed.port}"]
        self.proc = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT)

    def send(self, payload):
        if self.system == "rumor":
            args = [self.rumor_bin, "event", "bench", payload, "--http", f"127.0.0.1:{self.ctl}"]
        else:
            args = ["serf", "event", f"-rpc-addr=127.0.0.1:{self.ctl}", "-coalesce=false",
                    "bench", payload]
        return subprocess.run(args, capture_output=True, timeout=30)


def handled(out_dir, nodes, payload):
    """{node name: handler time (Unix seconds)} of the nodes whose handler ran for payload."""
    got = {}
    for x in nodes:
        try:
            got[x.name] = os.stat(os.path.join(out_dir, f"{x.name}.{payload}")).st_mtime_ns / 1e9
        except FileNotFoundError:
            pass
    return got


def run_system(system, n, reps, rumor_bin, base):
    work = tempfile.mkdtemp(prefix=f"bench-events-{system}-{n}-")
    out_dir = os.path.join(work, "out")
    os.mkdir(out_dir)
    handler = os.path.join(work, "handler.sh")
    with open(handler, "w") as f:
        f.write(HANDLER.format(dir=out_dir))
    os.chmod(handler, 0o755)
    nodes = [EvNode(system, i, base + i, base + 1000 + i, work, rumor_bin, handler)
             for i in range(n)]
    res = {"system": system, "n": n, "reps": reps}
    try:
        seed = nodes[0]
        seed.start()
        if not wait_all([seed], lambda v: seed.name in v, 20, time.monotonic())[seed]:
            raise RuntimeError(f"{system} seed did not start; see {work}")
        t0 = time.monotonic()
        for x in nodes[1:]:
            x.start(seed)
        names = {x.name for x in nodes}
        conv = wait_all(nodes, lambda v: sum(1 for k in names if v.get(k) == "alive") == n,
                        90, t0)
        res["converged"] = sum(1 for t in conv.values() if t is not None)
        log(f"{system} N={n}: {res['converged']}/{n} agents see all {n} alive after "
            f"{fmt(max((t for t in conv.values() if t is not None), default=None), ' s')}")
        time.sleep(3)  # joins' broadcasts and full syncs settle
        alls, medians, missing = [], [], 0
        for k in range(reps):
            payload = f"r{k}"
            sender = nodes[(k * 7 + 1) % n]
            start = time.time()
            r = sender.send(payload)
            if r.returncode != 0:
                raise RuntimeError(f"{system} event failed: {r.stderr.decode()[-300:]}")
            deadline = time.monotonic() + 30
            got = {}
            while time.monotonic() < deadline:
                got = handled(out_dir, nodes, payload)
                if len(got) == n:
                    break
                time.sleep(0.02)
            lat = sorted(t - start for t in got.values())
            missing += n - len(got)
            if len(got) == n:
                alls.append(lat[-1])
            medians.append(statistics.median(lat) if lat else None)
            log(f"{system} N={n} rep {k}: from {sender.name}: {len(got)}/{n} handlers, median "
                f"{fmt(medians[-1], ' s', 3)}, all {fmt(lat[-1] if len(got) == n else None, ' s', 3)}")
            time.sleep(2)  # the event's retransmissions die down before the next one
        res["all_median_s"] = statistics.median(alls) if alls else None
        res["all_max_s"] = max(alls) if len(alls) == reps else None
        good = [m for m in medians if m is not None]
        res["node_median_s"] = statistics.median(good) if good else None
        res["missing_deliveries"] = missing
    finally:
        for x in nodes:
            x.kill()
        shutil.rmtree(work, ignore_errors=True)
    return res


def table(results):
    out = ["| system | N | reps | reach all N: median / max | per-node median | "
           "deliveries missing |", "|---|---|---|---|---|---|"]
    for r in results:
        out.append(f"| {r['system']} | {r['n']} | {r['reps']} | "
                   f"{fmt(r.get('all_median_s'), ' s', 3)} / {fmt(r.get('all_max_s'), ' s', 3)} | "
                   f"{fmt(r.get('node_median_s'), ' s', 3)} | {r.get('missing_deliveries')} |")
    by = {(r["system"], r["n"]): r for r in results}
    for n in sorted({r["n"] for r in results}):
        a, b = by.get(("rumor", n)), by.get(("serf", n))
        if a and b and a.get("all_median_s") and b.get("all_median_s"):
            ratio = a["all_median_s"] / b["all_median_s"]
            out.append(f"\nN = {n}: rumor / serf, median time to reach all: {ratio:.3f} "
                       f"(1/{1 / ratio:.1f})")
            if a.get("all_max_s") and b.get("all_max_s"):
                out.append(f"N = {n}: rumor / serf, max: {a['all_max_s'] / b['all_max_s']:.3f}")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, nargs="+", default=[64])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--systems", nargs="+", default=["rumor", "serf"])
    ap.add_argument("--rumor", default=os.environ.get("RUMOR_BIN", "rumor"))
    ap.add_argument("--port-base", type=int, default=14000)
    ap.add_argument("--json")
    a = ap.parse_args()
    if "serf" in a.systems and not shutil.which("serf"):
        sys.exit("bench: serf is not installed (RUMOR_WITH_SERF=1 scripts/deps.sh)")
    results = []
    for n in a.nodes:
        for k, system in enumerate(a.systems):
            log(f"--- {system}, N={n}")
            results.append(run_system(system, n, a.reps, a.rumor, a.port_base + 2000 * k))
    print(table(results))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
