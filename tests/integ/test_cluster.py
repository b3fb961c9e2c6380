#!/usr/bin/env python3
"""16 real agents on 127.0.0.1: join, kill -9, SIGSTOP/SIGCONT, graceful leave, restart."""
import signal
import sys
import time

from rumor_integ import Agent, all_see, check, log, run, wait_for

N = 16


def main(wd):
    agents = [Agent(wd, i) for i in range(N)]
    names = {a.name for a in agents}
    log(f"starting {N} agents, each joining through node00")
    agents[0].start()
    for a in agents[1:]:
        a.start(extra=["--join", agents[0].addr], wait=False)
    for a in agents:
        wait_for(f"{a.name} to serve", lambda a=a: a.get("/v1/health"), 15)
    t0 = time.monotonic()
    all_see(agents, names, "alive", 30)
    log(f"all {N} agents see all {N} alive ({time.monotonic() - t0:.1f}s)")

    victim = agents[5]
    victim_inc = victim.members()[victim.name]["incarnation"]
    log(f"kill -9 {victim.name}")
    victim.kill()
    t0 = time.monotonic()
    others = [a for a in agents if a is not victim]
    all_see(others, {victim.name}, "failed", 45)
    log(f"all {N - 1} others report {victim.name} failed ({time.monotonic() - t0:.1f}s)")

    paused = agents[7]
    inc_before = paused.members()[paused.name]["incarnation"]
    log(f"SIGSTOP {paused.name} for 4 s (probe timeout is 200 ms)")
    paused.signal(signal.SIGSTOP)
    wait_for(f"someone to suspect {paused.name}",
             lambda: any(a.status_of(paused.name) in ("suspect", "failed")
                         for a in others if a is not paused), 20)
    time.sleep(2)
    paused.signal(signal.SIGCONT)
    live = [a for a in others]
    all_see(live, {paused.name}, "alive", 40)
    inc_after = paused.members()[paused.name]["incarnation"]
    refutes = paused.metric("rumor_refutes_total")
    log(f"{paused.name} is alive everywhere again: incarnation {inc_before} -> {inc_after}, "
        f"refutes {refutes}")
    check(inc_after > inc_before, f"{paused.name} did not refute (incarnation {inc_after})")

    leaver = agents[9]
    log(f"SIGTERM {leaver.name}: graceful leave")
    rc = leaver.stop()
    check(rc == 0, f"{leaver.name} exited with {rc} after SIGTERM")
    rest = [a for a in live if a is not leaver]
    all_see(rest, {leaver.name}, "left", 30)
    log(f"all others report {leaver.name} left")

    log(f"restarting {victim.name} from its data dir, no --join")
    victim.start()
    all_see(rest + [victim], {victim.name}, "alive", 40)
    me = victim.get("/v1/self")
    check(me["name"] == victim.name, f"identity changed: {me}")
    check(me["incarnation"] > victim_inc,
          f"incarnation {me['incarnation']} not above the last one {victim_inc}")
    all_see([victim], names - {leaver.name}, "alive", 30)
    log(f"{victim.name} is back with incarnation {me['incarnation']} and sees the cluster")


if __name__ == "__main__":
    sys.exit(run(main))
