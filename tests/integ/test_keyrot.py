#!/usr/bin/env python3
"""Cluster-wide key rotation between five real agents, as Serf's `serf keys`: `rumor keys
install|use|remove` asked of one agent reaches every member through the reserved key query, each
member applies it, rewrites its keyring file (mode 0600) and confirms; the report counts members
and confirmations and names who refused (with the error) or did not answer. A SIGSTOPped agent
is named as not confirming and the command exits 1; after SIGCONT the same install converges. A
user query or event with a reserved name (_rumor...) is refused with a 4xx JSON error."""
import json
import os
import signal
import stat
import subprocess
import time

from rumor_integ import BIN, SLOW, Agent, all_see, check, log, run, wait_for

N = 5


def keygen():
    r = subprocess.run([BIN, "keygen"], capture_output=True, text=True, timeout=10)
    check(r.returncode == 0 and len(r.stdout.strip()) == 44, f"rumor keygen: {r}")
    return r.stdout.strip()


def read_keyring(path):
    st = os.stat(path)
    check(stat.S_IMODE(st.st_mode) == 0o600, f"{path} has mode {oct(stat.S_IMODE(st.st_mode))}")
    with open(path) as f:
        return json.load(f)


def keys_cli(agent, *args, rc=0):
    # A cluster step waits for every member's answer: under a sanitizer on a loaded machine the
    # default (the query timeout, 3.2 s for 5 members) can pass before the slowest one answers.
    if "--timeout" not in args and "--local" not in args:
        args = (*args, "--timeout", f"{int(4 * SLOW)}s")
    r = agent.cli("keys", *args, "--format", "json", check_rc=rc)
    return json.loads(r.stdout), r


def confirmed_by_all(doc, what):
    check(doc["scope"] == "cluster" and doc["complete"] is True and doc["members"] == N and
          doc["confirmed"] == N and doc["errors"] == {} and doc["no_response"] == [],
          f"{what}: not confirmed by all {N} members: {doc}")


def main(wd):
    k1, k2, k3 = keygen(), keygen(), keygen()
    rings = [os.path.join(wd, f"ring{i}.json") for i in range(N)]
    agents = [Agent(wd, i, extra=["--encrypt", k1, "--keyring", rings[i]]) for i in range(N)]
    agents[0].start()
    for x in agents[1:]:
        x.start(["--join", agents[0].addr])
    names = [x.name for x in agents]
    all_see(agents, names, "alive", 20)
    a, b, c, d = agents[0], agents[1], agents[2], agents[3]
    log(f"{N} agents sealed with one key")

    # The whole rotation, each step asked of a different agent.
    doc, _ = keys_cli(a, "install", k2)
    confirmed_by_all(doc, "install")
    check(all(read_keyring(p) == [k1, k2] for p in rings),
          f"keyring files after install: {[read_keyring(p) for p in rings]}")
    doc, _ = keys_cli(b, "list")
    confirmed_by_all(doc, "list after install")
    check(doc["keys"] == {k1: N, k2: N} and doc["primary"] == k1 and doc["primaries"] == {k1: N},
          f"list after install: {doc}")
    doc, _ = keys_cli(b, "use", k2)
    confirmed_by_all(doc, "use")
    check(all(read_keyring(p)[0] == k2 for p in rings), "keyring files: k2 is not first")
    all_see(agents, names, "alive", 10)
    doc, _ = keys_cli(c, "remove", k1)
    confirmed_by_all(doc, "remove")
    check(all(read_keyring(p) == [k2] for p in rings),
          f"keyring files after remove: {[read_keyring(p) for p in rings]}")
    doc, _ = keys_cli(d, "list")
    confirmed_by_all(doc, "list after rotation")
    check(doc["keys"] == {k2: N} and doc["primary"] == k2, f"list after rotation: {doc}")
    r = a.cli("keys", "list", check_rc=0)
    check(f"{N}/{N} members  [primary]" in r.stdout, f"text list: {r.stdout}")
    all_see(agents, names, "alive", 10)
    check(all((x.metric("rumor_keys_ops_applied_total") or 0) >= 5 for x in agents),
          "rumor_keys_ops_applied_total does not count the operations")
    log("install, use, remove: every member confirmed each step and rewrote its keyring file")

    # Refusals are reported per member with their reason, and the exit status says so.
    doc, r = keys_cli(a, "remove", k2, rc=1)
    check(doc["complete"] is False and doc["confirmed"] == 0 and len(doc["errors"]) == N and
          all(e == "removing the primary key" for e in doc["errors"].values()),
          f"removing the primary everywhere: {doc}")
    check(all(n in r.stderr for n in names), f"refusing members not named: {r.stderr}")
    doc, r = keys_cli(a, "use", k3, rc=1)
    check(set(doc["errors"].values()) == {"key not installed"}, f"using a missing key: {doc}")
    log("refusals come back by member with their reason; exit status 1")

    # A stopped member does not confirm and is named; after SIGCONT the same step converges.
    d.signal(signal.SIGSTOP)
    doc, r = keys_cli(a, "install", k3, "--timeout", "2s", rc=1)
    check(doc["no_response"] == [d.name] and doc["confirmed"] == N - 1 and
          doc["complete"] is False, f"install with {d.name} stopped: {doc}")
    check(d.name in r.stderr and "did not answer" in r.stderr, f"stderr: {r.stderr}")
    check(read_keyring(rings[3]) == [k2], "the stopped agent's file changed")
    d.signal(signal.SIGCONT)
    all_see(agents, names, "alive", 20)
    doc, _ = keys_cli(a, "install", k3)
    confirmed_by_all(doc, "install again after SIGCONT")
    check(all(read_keyring(p) == [k2, k3] for p in rings),
          f"keyring files after the second install: {[read_keyring(p) for p in rings]}")
    log(f"{d.name}, stopped, was reported as not confirming; after SIGCONT the install converged")

    # The local scope stays available.
    doc, _ = keys_cli(b, "remove", k3, "--local")
    check(doc["scope"] == "local" and list(doc["keys"]) == [k2], f"local remove: {doc}")
    check(read_keyring(rings[1]) == [k2], "local remove did not rewrite the file")
    doc, _ = keys_cli(a, "list", rc=0)
    check(doc["keys"] == {k2: N, k3: N - 1}, f"list after a local remove: {doc}")

    # Reserved names are the agent's own.
    for path in ("/v1/query/_rumor-keys", "/v1/query/_rumor-anything", "/v1/event/_rumor-keys"):
        status, text = a.request("POST", path, raw=b"\x01\x01" + b"A" * 32)
        check(400 <= status < 500 and "reserved" in json.loads(text).get("error", ""),
              f"POST {path}: {status} {text}")
    r = a.cli("query", "_rumor-keys")
    check(r.returncode == 1 and "reserved" in r.stderr, f"rumor query _rumor-keys: {r}")
    check(all((x.metric("rumor_queries_served_total") or 0) == 0 for x in agents),
          "a key operation reached a query handler")
    log("user queries and events with reserved names are refused with a 4xx JSON error")

    time.sleep(0.5 * SLOW)
    all_see(agents, names, "alive", 10)


if __name__ == "__main__":
    raise SystemExit(run(main))
