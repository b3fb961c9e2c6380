#!/usr/bin/env python3
"""How reliably user events and queries reach every rumor agent: N agents on 127.0.0.1 at one
timing profile; E user events and Q queries, one after the other, each checked after --wait
seconds. An event counts as delivered at an agent whose handler ran for it (the handler of
bench_events.py); a query, at an agent that acknowledged it. Prints the deliveries missed.

Only stdlib. Usage: bench_delivery.py [--nodes 16] [--profile local] [--events 100]
                                      [--queries 100] [--wait 1.0] [--engine K=V ...]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_events import HANDLER, EvNode, handled  # noqa: E402
from bench_serf import log, wait_all  # noqa: E402


class ProfNode(EvNode):
    def __init__(self, *args, profile, engine):
        super().__init__(*args)
        self.profile, self.engine = profile, engine

    def start(self, seed=None):
        logf = open(os.path.join(self.work, f"{self.name}.log"), "w")
        args = [self.rumor_bin, "agent", "--node", self.name, "--bind", f"127.0.0.1:{self.port}",
                "--http", f"127.0.0.1:{self.ctl}", "--profile", self.profile, "--log-level",
                "warn", "--event-handler", f"user:bench={self.handler}"]
        for e in self.engine:
            args += ["--engine", e]
        if seed:
            args += ["--join", f"127.0.0.1:{seed.port}"]
        self.proc = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT)

    def query(self, wait_s):
        url = f"http://127.0.0.1:{self.ctl}/v1/query/bench?timeout={int(wait_s * 1000)}ms"
        req = urllib.request.Request(url, data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=wait_s + 30) as r:
            return json.load(r)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=16)
    ap.add_argument("--profile", default="local")
    ap.add_argument("--events", type=int, default=100)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--wait", type=float, default=1.0)
    ap.add_argument("--engine", nargs="*", default=[])
    ap.add_argument("--rumor", default=os.environ.get("RUMOR_BIN", "rumor"))
    ap.add_argument("--port-base", type=int, default=14000)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-delivery-")
    out_dir = os.path.join(work, "out")
    os.mkdir(out_dir)
    handler = os.path.join(work, "handler.sh")
    with open(handler, "w") as f:
        f.write(HANDLER.format(dir=out_dir))
    os.chmod(handler, 0o755)
    n = a.nodes
    nodes = [ProfNode("rumor", i, a.port_base + i, a.port_base + 1000 + i, work, a.rumor,
                      handler, profile=a.profile, engine=a.engine) for i in range(n)]
    try:
        nodes[0].start()
        time.sleep(0.5)
        for x in nodes[1:]:
            x.start(nodes[0])
        wait_all(nodes, lambda v: sum(1 for s in v.values() if s == "alive") == n, 60,
                 time.monotonic())
        time.sleep(3)
        ev_missed = q_missed = 0
        for k in range(a.events):
            payload = f"e{k}"
            nodes[(k * 7 + 1) % n].send(payload)
            time.sleep(a.wait)
            missed = n - len(handled(out_dir, nodes, payload))
            ev_missed += missed
            if missed:
                log(f"event {k}: {missed} agent(s) had not run the handler after {a.wait} s")
        for k in range(a.queries):
            o = nodes[(k * 7 + 1) % n].query(a.wait)
            q_missed += o["counts"]["no_ack"]
            if o["counts"]["no_ack"]:
                log(f"query {k}: no ack from {o['no_ack']}")
        engine = " ".join(a.engine) or "defaults"
        print(f"N={n} profile {a.profile} ({engine}), checked after {a.wait} s: events "
              f"{ev_missed} of {a.events * n} deliveries missed; queries {q_missed} of "
              f"{a.queries * n} missed")
    finally:
        for x in nodes:
            x.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
