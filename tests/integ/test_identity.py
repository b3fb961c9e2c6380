#!/usr/bin/env python3
"""Per-node identities with real agents (docs/protocol.md section 12): `rumor ca init`, `rumor
identity --data-dir`, `rumor ca sign`; agents with certificates form a cluster and list each
other's key fingerprints; an agent without a certificate, and one certified by another
authority, are refused and the others say so in their logs and metrics; key files with loose
permissions and certificates that are not the node's are refused at start with a clear error;
agents with both a keyring (--encrypt) and identities form a cluster and replicate signed
writes over sealed traffic."""
import base64
import json
import os
import sqlite3
import subprocess
import sys

from rumor_integ import BIN, PORT_BASE, Agent, all_see, check, log, run, wait_for


def rumor(*args, rc=0):
    r = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=30)
    check(r.returncode == rc, f"rumor {' '.join(args)}: exit {r.returncode} (want {rc})\n"
          f"stdout: {r.stdout}\nstderr: {r.stderr}")
    return r


def agent_fails(args, want_text):
    r = subprocess.run([BIN, "agent", "--http", "off", "--bind", f"127.0.0.1:{PORT_BASE + 90}",
                        *args], capture_output=True, text=True, timeout=20)
    check(r.returncode != 0 and want_text in r.stderr,
          f"rumor agent {' '.join(args)}: exit {r.returncode}, stderr {r.stderr!r} "
          f"(want {want_text!r})")


def public_key(data_dir):
    r = rumor("identity", "--data-dir", data_dir, "--format", "json")
    return json.loads(r.stdout)


def main(wd):
    ca = os.path.join(wd, "ca")
    other_ca = os.path.join(wd, "other-ca")
    r = rumor("ca", "init", "--dir", ca)
    check("ed25519:" in r.stdout, r.stdout)
    check(os.stat(os.path.join(ca, "ca.key")).st_mode & 0o777 == 0o600, "ca.key is not 0600")
    rumor("ca", "init", "--dir", ca, rc=1)  # never replaces an authority
    rumor("ca", "init", "--dir", other_ca)
    ca_pub = os.path.join(ca, "ca.pub")

    names = ["node00", "node01", "node02"]
    agents = [Agent(wd, i, name=n) for i, n in enumerate(names)]
    outsider = Agent(wd, 3, name="node03")   # an identity, no certificate
    foreign = Agent(wd, 4, name="node04")    # certified by another authority
    keys = {}
    for a in agents + [outsider, foreign]:
        k = public_key(a.data_dir)
        check(k["public_key"].startswith("ed25519:") and "created now" in k["source"], k)
        check(os.stat(os.path.join(a.data_dir, "identity.key")).st_mode & 0o777 == 0o600,
              "identity.key is not 0600")
        keys[a.name] = k
        # The same key on a second look: the pair is kept, not made again.
        check(public_key(a.data_dir)["public_key"] == k["public_key"], "key changed")
    certs = {}
    for a in agents:
        certs[a.name] = os.path.join(wd, f"{a.name}.cert")
        rumor("ca", "sign", keys[a.name]["public_key"], "--name", a.name, "--dir", ca,
              "--valid-for", "1d", "--out", certs[a.name])
    foreign_cert = os.path.join(wd, "foreign.cert")
    rumor("ca", "sign", os.path.join(foreign.data_dir, "identity.pub"), "--name", foreign.name,
          "--dir", other_ca, "--out", foreign_cert)
    log("authority, node keys and certificates made with the CLI")

    # Refused at start, with the reason.
    agent_fails(["--node", "node00", "--data-dir", agents[0].data_dir, "--ca-key", ca_pub,
                 "--ca-cert", certs["node01"]], "is for node \"node01\"")
    agent_fails(["--node", "node03", "--data-dir", outsider.data_dir, "--ca-key", ca_pub,
                 "--ca-cert", foreign_cert], "is for node \"node04\"")
    agent_fails(["--node", "node04", "--data-dir", foreign.data_dir, "--ca-key", ca_pub,
                 "--ca-cert", foreign_cert], "not signed by the authority")
    agent_fails(["--node", "node00", "--identity"], "--identity needs --data-dir")
    agent_fails(["--node", "node00", "--data-dir", agents[0].data_dir, "--ca-key",
                 os.path.join(ca, "ca.key")], "secret key")
    loose = os.path.join(wd, "loose")
    public_key(loose)
    os.chmod(os.path.join(loose, "identity.key"), 0o644)
    agent_fails(["--node", "loose", "--data-dir", loose], "chmod 600")
    log("wrong certificates, a secret key as --ca-key and a readable key file are refused")

    seed = agents[0].addr
    for i, a in enumerate(agents):
        extra = ["--ca-key", ca_pub, "--ca-cert", certs[a.name]]
        if i:
            extra += ["--join", seed]
        a.extra = extra
        a.start()
    all_see(agents, names, "alive", 20)
    for a in agents:
        m = a.members()
        for n in names:
            check(m[n]["public_key"] == keys[n]["public_key"] and
                  m[n]["fingerprint"] == keys[n]["fingerprint"],
                  f"{a.name} shows {n} with key {m[n].get('public_key')}")
    r = agents[1].cli("members", check_rc=0)
    check("KEY" in r.stdout and keys["node02"]["fingerprint"] in r.stdout, r.stdout)
    r = agents[2].cli("identity", "--format", "json", check_rc=0)
    check(json.loads(r.stdout)["public_key"] == keys["node02"]["public_key"], r.stdout)
    info = agents[0].get("/v1/info")
    ident = info["config"]["identity"]
    check(ident["enabled"] and ident["certified"] and ident["binding"] == "authority", ident)
    log("certified agents formed a cluster and show each other's keys")

    def saved_keys():
        db = sqlite3.connect(os.path.join(agents[0].data_dir, "rumor.db"), timeout=5)
        try:
            return dict(db.execute("SELECT name, public_key FROM member_keys").fetchall())
        finally:
            db.close()
    wait_for("node00 to remember its members' keys in its data dir",
             lambda: saved_keys() == {n: keys[n]["public_key"] for n in names[1:]}, 10)

    outsider.extra = ["--ca-key", ca_pub, "--retry-join", seed]
    outsider.start()
    # node04's own check refuses a certificate of another authority, so it runs trusting it.
    foreign.extra = ["--ca-key", os.path.join(other_ca, "ca.pub"), "--ca-cert", foreign_cert,
                     "--retry-join", seed]
    foreign.start()

    def refused(reason):
        return agents[0].metric(f'rumor_identity_refused_total{{reason="{reason}"}}') or 0
    wait_for("node00 to count node03's missing certificate", lambda: refused("no_cert") > 0, 20)
    wait_for("node00 to count node04's foreign certificate", lambda: refused("bad_cert") > 0, 20)

    def logged():
        with open(agents[0].log_path) as f:
            text = f.read()
        return ("(no_cert)" in text and "latest about node03" in text and "(bad_cert)" in text
                and "latest about node04" in text)
    wait_for("node00 to log the refusals of node03 and node04", logged, 20)
    for a in agents:
        m = a.members()
        check("node03" not in m and "node04" not in m, f"{a.name} admitted an outsider: {m}")
    for o in (outsider, foreign):
        m = o.members()
        check(set(m) == {o.name}, f"{o.name} learned the members: {sorted(m)}")
    check((agents[0].metric('rumor_packets_dropped_total{reason="identity"}') or 0) > 0,
          "identity drops not in the drop metric")
    log("agents without a valid certificate are refused, logged and counted; they learn nothing")

    # A restart keeps the key: the cluster takes the node back.
    agents[2].stop()
    agents[2].start()
    all_see(agents, names, "alive", 20)
    check(agents[0].members()["node02"]["public_key"] == keys["node02"]["public_key"],
          "node02's key changed over a restart")
    log("a restarted agent keeps its key and is admitted again")

    # Encryption and identities together: the keyring seals every packet, identities sign every
    # claim. The agents form a cluster, show each other's keys, and a write signed by its writer
    # reaches the others over sealed traffic; nothing of the cluster's own is refused.
    key = rumor("keygen").stdout.strip()
    sealed = [Agent(wd, 5 + i, name=f"sealed{i}") for i in range(3)]
    snames = [a.name for a in sealed]
    skeys = {a.name: public_key(a.data_dir)["public_key"] for a in sealed}
    for i, a in enumerate(sealed):
        a.extra = ["--encrypt", key, "--identity"] + (["--join", sealed[0].addr] if i else [])
        a.start()
    all_see(sealed, snames, "alive", 20)
    for a in sealed:
        m = a.members()
        check(set(m) == set(snames), f"{a.name} sees {sorted(m)}")
        for n in snames:
            check(m[n]["public_key"] == skeys[n], f"{a.name} shows {n} with {m[n]}")
    cfg = sealed[1].get("/v1/info")["config"]
    check(cfg["encrypt"] and cfg["identity"]["enabled"] and
          cfg["identity"]["binding"] == "trust on first use", cfg)
    status, text = sealed[2].request("PUT", "/v1/kv/sealed-and-signed", raw=b"both")
    check(status == 200, f"PUT at sealed2: {status} {text}")

    def replicated(a):
        status, text = a.request("GET", "/v1/kv/sealed-and-signed")
        return status == 200 and base64.b64decode(json.loads(text)["value"]) == b"both"
    wait_for("the signed write to reach every sealed agent",
             lambda: all(replicated(a) for a in sealed), 15)
    for a in sealed:
        for reason in ("identity", "auth_failed", "unknown_key", "plaintext"):
            got = a.metric(f'rumor_packets_dropped_total{{reason="{reason}"}}') or 0
            check(got == 0, f"{a.name} dropped {got} packets of its own cluster ({reason})")
    log("sealed and signed agents form a cluster and replicate a signed write")


if __name__ == "__main__":
    sys.exit(run(main))
