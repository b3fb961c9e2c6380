#!/usr/bin/env python3
"""The agent and CLI surface: config validation, the data-dir lock, CLI output and exit codes,
tags, event handlers, SIGHUP, --retry-join by host name, TCP-only mode, IPv6."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

from rumor_integ import BIN, PORT_BASE, Agent, all_see, check, log, run, wait_for


def agent_fails(args, want_rc, want_text):
    r = subprocess.run([BIN, "agent", *args], capture_output=True, text=True, timeout=20)
    check(r.returncode == want_rc and want_text in r.stderr,
          f"rumor agent {' '.join(args)}: exit {r.returncode} (want {want_rc}), stderr "
          f"{r.stderr!r} (want {want_text!r})")


def config_errors(wd):
    bad = os.path.join(wd, "bad.json")
    for text, want in [('{"bind": "nowhere"}', 'field "bind"'),
                       ('{"tags": {"a": 1}}', 'field "tags"'),
                       ('{"frobnicate": true}', 'field "frobnicate": unknown field'),
                       ('{"engine": {"probe_interval_ms": "fast"}}', 'field "engine"'),
                       ('{"profile": "moon"}', 'field "profile"'),
                       ('{"join": "x"}', 'field "join"'),
                       ('{"bind": ', "line 1")]:
        with open(bad, "w") as f:
            f.write(text)
        agent_fails(["--config", bad], 2, want)
    agent_fails(["--bind", "127.0.0.1:70000"], 2, "--bind")
    agent_fails(["--profile", "fast"], 2, "--profile")
    agent_fails(["--log-format", "xml"], 2, "--log-format")
    agent_fails(["--tag", "=v"], 2, "--tag")
    agent_fails(["--wat"], 2, "unknown flag")
    agent_fails(["--engine", "nope=1"], 2, "unknown engine setting")
    agent_fails(["--event-handler", "member-jion=/bin/true", "--bind",
                 f"127.0.0.1:{PORT_BASE + 99}", "--http", "off"], 1, "unknown event")
    log("bad flags and config files are refused with the field named")


def cli_surface(a, b):
    r = subprocess.run([BIN, "members", "--http", "127.0.0.1:1"], capture_output=True, text=True)
    check(r.returncode == 3 and "no agent answered" in r.stderr, f"unreachable: {r}")
    r = subprocess.run([BIN, "bogus"], capture_output=True, text=True)
    check(r.returncode == 2, f"unknown command exit {r.returncode}")
    for cmd in ["agent", "members", "join", "leave", "monitor", "info", "tags", "kv", "state"]:
        r = subprocess.run([BIN, cmd, "--help"], capture_output=True, text=True)
        check(r.returncode == 0 and "Usage" in r.stdout, f"rumor {cmd} --help: {r}")
    env = dict(os.environ, RUMOR_HTTP_ADDR=a.http)
    r = subprocess.run([BIN, "members", "--format", "json"], capture_output=True, text=True,
                       env=env)
    doc = json.loads(r.stdout)
    for m in doc["members"]:
        for k in ["name", "addr", "port", "status", "incarnation", "tags"]:
            check(k in m, f"members json lacks {k}: {m}")
    r = a.cli("members", check_rc=0)
    check("NAME" in r.stdout and b.name in r.stdout, f"members table: {r.stdout}")
    a.cli("tags", "set", "role=web", "zone=z1", check_rc=0)
    a.cli("tags", "delete", "zone", check_rc=0)
    wait_for("b to see a's tags",
             lambda: b.members()[a.name]["tags"] == {"color": "red", "role": "web"}, 10)
    r = b.cli("members", "--tag", "role=web", "--format", "json", check_rc=0)
    check([m["name"] for m in json.loads(r.stdout)["members"]] == [a.name], r.stdout)
    r = b.cli("members", "--status", "zombie")
    check(r.returncode == 1 and "unknown status" in r.stderr, f"bad status: {r}")
    r = a.cli("info", "--format", "json", check_rc=0)
    check(json.loads(r.stdout)["self"]["name"] == a.name, r.stdout)
    r = a.cli("join", "no-such-host.invalid")
    check(r.returncode == 1 and "cannot resolve" in r.stderr, f"bad join: {r}")
    log("CLI: table, json, filters, tags, info, exit codes 0/1/2/3")


def handler_and_reload(wd, a, b):
    out = os.path.join(wd, "handler.out")
    script = os.path.join(wd, "handler.sh")
    with open(script, "w") as f:
        f.write("#!/bin/sh\nprintf '%s %s %s|' \"$RUMOR_EVENT\" \"$RUMOR_MEMBER_NAME\" "
                f"\"$RUMOR_TAG_color\" >> {out}\ncat >> {out}\n")
    os.chmod(script, 0o755)
    cfg = os.path.join(wd, "c.json")
    with open(cfg, "w") as f:
        json.dump({"tags": {"color": "blue"}}, f)
    c = Agent(wd, 2, extra=["--config", cfg, "--event-handler",
                            f"member-join,member-leave={script}",
                            "--event-handler", "sleep 30", "--handler-timeout", "500"])
    c.start(extra=["--join", a.addr])
    all_see([a, b, c], {a.name, b.name, c.name}, "alive", 15)
    wait_for("the handler to see member-join of node00",
             lambda: os.path.exists(out) and "member-join node00 blue|node00\t127.0.0.1:"
             in open(out).read(), 10)
    wait_for("the hanging handler to be killed",
             lambda: (c.metric("rumor_event_handler_timeouts_total") or 0) >= 1, 10)
    # SIGHUP: new tags (and log level) from the re-read config file.
    with open(cfg, "w") as f:
        json.dump({"tags": {"color": "green"}, "log_level": "warn"}, f)
    c.signal(signal.SIGHUP)
    wait_for("the reloaded tag to reach b",
             lambda: b.members()[c.name]["tags"].get("color") == "green", 10)
    check(c.alive(), "SIGHUP killed the agent")
    log("event handler ran with env and stdin; a hanging one was killed; SIGHUP reloaded tags")
    return c


def retry_join_by_name(wd):
    x = Agent(wd, 10, name="late")
    y = Agent(wd, 11, name="early")
    y.start(extra=["--retry-join", f"localhost:{x.port}"])
    time.sleep(2)
    x.start()
    all_see([x, y], {"late", "early"}, "alive", 30)
    log("--retry-join localhost:PORT kept trying until the seed came up")
    x.kill()
    y.kill()


def data_dir_lock(wd, a):
    agent_fails(["--node", a.name, "--bind", f"127.0.0.1:{PORT_BASE + 98}", "--http", "off",
                 "--data-dir", a.data_dir], 1, "in use by another rumor agent")
    agent_fails(["--node", "someone-else", "--bind", f"127.0.0.1:{PORT_BASE + 98}", "--http",
                 "off", "--data-dir", a.data_dir], 1, "in use")
    log("a second agent on the same data dir is refused")


def tcp_only(wd):
    t = [Agent(wd, 20 + i, name=f"tcp{i}", extra=["--tcp-only"]) for i in range(3)]
    t[0].start()
    for x in t[1:]:
        x.start(extra=["--join", t[0].addr])
    all_see(t, {x.name for x in t}, "alive", 20)
    t[2].kill()
    all_see(t[:2], {"tcp2"}, "failed", 40)
    check((t[0].metric("rumor_tunnel_datagrams_sent_total") or 0) > 0, "no tunnelled datagrams")
    log("TCP-only agents gossip, probe and detect a failure without UDP")
    for x in t:
        x.kill()


def ipv6(wd):
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.bind(("::1", 0))
        s.close()
    except OSError:
        log("no IPv6 loopback here; skipping the IPv6 check")
        return
    v = [Agent(wd, 30 + i, name=f"v6n{i}") for i in range(2)]
    for x in v:
        x.addr = f"[::1]:{x.port}"
    v[0].start()
    v[1].start(extra=["--join", v[0].addr])
    all_see(v, {"v6n0", "v6n1"}, "alive", 20)
    check(v[0].members()["v6n1"]["addr"] == "::1", "IPv6 address not reported")
    log("two agents on [::1] joined")
    for x in v:
        x.kill()


def double_signal(wd):
    d = Agent(wd, 40, name="impatient")
    d.start()
    d.signal(signal.SIGTERM)
    d.signal(signal.SIGTERM)
    try:
        rc = d.proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        raise Fail("two SIGTERMs did not stop the agent")
    check(rc == 0, f"exit {rc} after two SIGTERMs")
    log("a second signal stops the agent at once")


def main(wd):
    config_errors(wd)
    a = Agent(wd, 0, extra=["--tag", "color=red"])
    b = Agent(wd, 1)
    a.start()
    b.start(extra=["--join", a.addr])
    all_see([a, b], {a.name, b.name}, "alive", 15)
    data_dir_lock(wd, a)
    cli_surface(a, b)
    c = handler_and_reload(wd, a, b)
    c.cli("leave", check_rc=0)
    all_see([a, b], {c.name}, "left", 20)
    check(c.proc.wait(timeout=20) == 0, "the agent did not exit 0 after `rumor leave`")
    retry_join_by_name(wd)
    tcp_only(wd)
    ipv6(wd)
    double_signal(wd)


if __name__ == "__main__":
    sys.exit(run(main))
