"""Helpers for the multi-process tests: real `rumor agent` processes on 127.0.0.1.

Every test takes ports from its own range (RUMOR_INTEG_PORT_BASE, set by CMake) so tests can run
in parallel, and every agent it starts is killed on exit, whatever happens.
"""
import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

BIN = os.environ.get("RUMOR_BIN", "rumor")
PORT_BASE = int(os.environ.get("RUMOR_INTEG_PORT_BASE", "24000"))
# ASan makes everything slower; waits scale with this.
SLOW = float(os.environ.get("RUMOR_INTEG_SLOW", "1"))

_agents = []


def _cleanup():
    for a in list(_agents):
        a.kill()


atexit.register(_cleanup)


def _on_signal(signum, frame):
    _cleanup()
    sys.exit(128 + signum)


signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def wait_for(what, fn, timeout, interval=0.2):
    """Polls fn() until it returns a true value; raises Fail naming `what` on timeout."""
    deadline = time.monotonic() + timeout * SLOW
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except (OSError, ValueError, urllib.error.URLError) as e:
            last = e
        time.sleep(interval)
    raise Fail(f"timed out after {timeout * SLOW:.0f}s waiting for {what} (last: {last!r})")


class Agent:
    def __init__(self, workdir, index, name=None, extra=None, data_dir=True, profile="local"):
        self.index = index
        self.name = name or f"node{index:02d}"
        self.port = PORT_BASE + index
        self.http_port = PORT_BASE + 250 + index
        self.addr = f"127.0.0.1:{self.port}"
        self.http = f"127.0.0.1:{self.http_port}"
        self.data_dir = os.path.join(workdir, self.name) if data_dir else None
        self.log_path = os.path.join(workdir, f"{self.name}.log")
        self.extra = list(extra or [])
        self.profile = profile
        self.proc = None

    def args(self):
        a = [BIN, "agent", "--node", self.name, "--bind", self.addr, "--http", self.http,
             "--profile", self.profile, "--log-level", "debug"]
        if self.data_dir:
            a += ["--data-dir", self.data_dir]
        return a + self.extra

    def start(self, extra=None, wait=True):
        args = self.args() + list(extra or [])
        self.logf = open(self.log_path, "a")
        self.logf.write(f"--- start: {' '.join(args)}\n")
        self.logf.flush()
        self.proc = subprocess.Popen(args, stdout=self.logf, stderr=subprocess.STDOUT)
        _agents.append(self)
        if wait:
            wait_for(f"{self.name} to answer /v1/health", lambda: self.get("/v1/health"), 15)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def kill(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                try:
                    self.proc.send_signal(signal.SIGCONT)
                    self.proc.kill()
                except ProcessLookupError:
                    pass
            self.proc.wait()
        if self in _agents:
            _agents.remove(self)

    def stop(self, timeout=20):
        """SIGTERM: graceful leave then exit. Returns the exit code."""
        self.signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.kill()
            raise Fail(f"{self.name} did not exit within {timeout}s of SIGTERM")
        if self in _agents:
            _agents.remove(self)
        return rc

    def request(self, method, path, body=None, raw=None, headers=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(f"http://{self.http}{path}", data=data, method=method,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def get(self, path):
        status, text = self.request("GET", path)
        if status != 200:
            return None
        return json.loads(text) if path.startswith("/v1") else text

    def members(self):
        m = self.get("/v1/members")
        return {x["name"]: x for x in m["members"]} if m else {}

    def status_of(self, name):
        m = self.members().get(name)
        return m["status"] if m else None

    def metric(self, name):
        text = self.get("/metrics") or ""
        total = 0
        found = False
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                total += float(line.rsplit(" ", 1)[1])
                found = True
        return total if found else None

    def cli(self, *args, check_rc=None):
        r = subprocess.run([BIN, *args, "--http", self.http], capture_output=True, text=True,
                           timeout=60)
        if check_rc is not None and r.returncode != check_rc:
            raise Fail(f"rumor {' '.join(args)}: exit {r.returncode}, expected {check_rc}\n"
                       f"stdout: {r.stdout}\nstderr: {r.stderr}")
        return r


def all_see(agents, names, status, timeout):
    """Waits until every agent in `agents` reports every name in `names` with `status`."""
    def ok():
        for a in agents:
            m = a.members()
            for n in names:
                if n not in m or m[n]["status"] != status:
                    return False
        return True
    wait_for(f"{len(agents)} agents to see {sorted(names)} as {status}", ok, timeout, 0.3)


def workdir(name):
    d = tempfile.mkdtemp(prefix=f"rumor-integ-{name}-")
    atexit.register(lambda: shutil.rmtree(d, ignore_errors=True) if os.environ.get(
        "RUMOR_INTEG_KEEP") is None else None)
    return d


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def scan_logs(wd):
    """Fails when any agent's log holds a sanitizer report."""
    for f in sorted(os.listdir(wd)):
        if not f.endswith(".log"):
            continue
        with open(os.path.join(wd, f), errors="replace") as fh:
            text = fh.read()
        for mark in SANITIZER_MARKS:
            check(mark not in text, f"{f} holds a sanitizer report ({mark})")


def run(main):
    """Runs a test body; prints agent logs of a failed run; exit code for ctest."""
    wd = workdir(os.path.basename(sys.argv[0]).replace(".py", ""))
    try:
        main(wd)
        _cleanup()
        scan_logs(wd)
    except Fail as e:
        log(f"FAIL: {e}")
        for f in sorted(os.listdir(wd)):
            if f.endswith(".log"):
                with open(os.path.join(wd, f), errors="replace") as fh:
                    tail = fh.readlines()[-25:]
                print(f"----- {f} (last lines)\n{''.join(tail)}", flush=True)
        _cleanup()
        return 1
    _cleanup()
    log("PASS")
    return 0
