#!/usr/bin/env python3
"""Hostile input against real agents: random and mutated datagrams, truncated and oversize TCP
streams, a slow client, malformed HTTP and JSON. The agents must stay up, keep their members,
answer the API, and count each rejection."""
import json
import random
import socket
import struct
import subprocess
import sys
import threading
import time

from rumor_integ import BIN, Agent, all_see, check, log, run, wait_for

STREAM_TIMEOUT_MS = 1500


def capture_frame(target, port):
    """A real stream frame: let the agent open a push-pull to a fake seed and record it."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(4)
    srv.settimeout(10)
    joiner = subprocess.Popen([BIN, "join", f"127.0.0.1:{port}", "--http", target.http],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    data = b""
    try:
        conn, _ = srv.accept()
        conn.settimeout(1)
        try:
            while len(data) < 65536:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            pass
        conn.close()
    finally:
        srv.close()
        joiner.wait()
    check(len(data) > 8, f"captured only {len(data)} bytes from a push-pull")
    return data


def mutate(rng, blob):
    b = bytearray(blob)
    op = rng.randrange(5)
    if op == 0 and b:
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif op == 1:
        b = b[:rng.randrange(len(b) + 1)]
    elif op == 2:
        b += bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    elif op == 3 and b:
        i = rng.randrange(len(b))
        b[i] = rng.choice([0, 0xff, 0x7f, 0x80])
    else:
        b = b[:6] + bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))
    return bytes(b)


def udp_flood(rng, agent, packet):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = 0
    for i in range(3000):
        if i % 3 == 0:
            blob = bytes(rng.randrange(256) for _ in range(rng.randint(0, 1500)))
        elif i % 3 == 1:
            blob = mutate(rng, packet)
        else:
            blob = b"RM" + bytes([1, 0, 0]) + bytes(rng.randrange(256)
                                                    for _ in range(rng.randint(0, 300)))
        s.sendto(blob, ("127.0.0.1", agent.port))
        sent += 1
        if i % 200 == 0:
            time.sleep(0.01)  # do not just overflow the socket buffer
    s.sendto(b"\x00" * 65000, ("127.0.0.1", agent.port))
    s.close()
    return sent


def tcp_send(agent, data, linger=0.05):
    s = socket.create_connection(("127.0.0.1", agent.port), timeout=5)
    try:
        s.sendall(data)
        time.sleep(linger)
    except OSError:
        pass
    s.close()


def tcp_abuse(rng, agent, frame):
    packet = frame[4:]
    cases = [
        frame,  # a valid replayed push-pull
        frame[:len(frame) // 2],  # truncated mid-frame
        struct.pack(">I", 1000) + b"x" * 10,  # length says more than comes
        struct.pack(">I", 0x7fffffff) + b"x" * 100,  # oversize frame
        struct.pack(">I", 0) * 4,  # empty frames
        b"\xff" + b"junk" * 10,  # looks like a tunnel, is not
        b"\xffRDG\x07" + b"\x04\x7f\x00\x00\x01\x00\x01" + b"\xff\xff" + b"a" * 10,
    ]
    for _ in range(60):
        cases.append(struct.pack(">I", len(packet)) + mutate(rng, packet))
        cases.append(bytes(rng.randrange(256) for _ in range(rng.randint(1, 2000))))
    for c in cases:
        tcp_send(agent, c)


def slow_client(agent):
    """Connects and sends nothing: the agent must close it after the stream timeout."""
    s = socket.create_connection(("127.0.0.1", agent.port), timeout=10)
    t0 = time.monotonic()
    s.settimeout(STREAM_TIMEOUT_MS / 1000 * 6 + 5)
    try:
        got = s.recv(1)
    except socket.timeout:
        got = None
    except ConnectionResetError:
        got = b""
    took = time.monotonic() - t0
    s.close()
    check(got == b"", f"a silent connection was not closed (recv -> {got!r} after {took:.1f}s)")
    log(f"silent TCP client closed by the agent after {took:.1f}s")


def idle_crowd(agent, n=150):
    socks = []
    for _ in range(n):
        try:
            socks.append(socket.create_connection(("127.0.0.1", agent.port), timeout=2))
        except OSError:
            break
    time.sleep(0.5)
    for s in socks:
        s.close()
    return len(socks)


def raw_http(agent, data):
    s = socket.create_connection(("127.0.0.1", agent.http_port), timeout=5)
    try:
        s.sendall(data)
        s.settimeout(3)
        reply = s.recv(4096)
    except OSError:
        reply = b""
    s.close()
    return reply


def http_abuse(agent):
    for data in [b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
                 b"GET /v1/members HTTP/1.1\r\n" + b"X: " + b"a" * 70000 + b"\r\n\r\n",
                 b"POST /v1/join HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{",
                 b"\x00\xff" * 100, b"GET /v1/members?status=%ZZ HTTP/1.1\r\nHost: x\r\n\r\n"]:
        raw_http(agent, data)
    cases = [
        ("PUT", "/v1/tags", b"{not json", 400),
        ("PUT", "/v1/tags", b"[1,2]", 400),
        ("PUT", "/v1/tags", b'{"set": {"a": 1}}', 400),
        ("PUT", "/v1/tags", b'{"set": "x"}', 400),
        ("PUT", "/v1/tags", b'{"delete": [1]}', 400),
        ("PUT", "/v1/tags", b'{"set": {"k": "' + b"v" * 5000 + b'"}}', 400),
        ("PUT", "/v1/tags", b"", 400),
        ("POST", "/v1/join", b'{"addrs": "x"}', 400),
        ("POST", "/v1/join", b'{"addrs": [1]}', 400),
        ("POST", "/v1/join", b'{"addrs": ["[::1"]}', 400),
        ("POST", "/v1/join", b'{"addrs": ["127.0.0.1:99999"]}', 400),
        ("POST", "/v1/join", b"\xff\xfe", 400),
        ("POST", "/v1/join", b"{" * 100000, 413),
        ("GET", "/v1/members?status=zombie", None, 400),
        ("GET", "/v1/nothing", None, 404),
        ("DELETE", "/v1/members", None, 405),
        ("GET", "/v1/join", None, 405),
    ]
    for method, path, body, want in cases:
        status, text = agent.request(method, path, raw=body)
        check(status == want, f"{method} {path} {body[:40] if body else ''!r}: got {status}, "
              f"expected {want}: {text}")
        err = json.loads(text).get("error")
        check(isinstance(err, str) and err, f"{method} {path}: no JSON error body: {text}")
    return len(cases)


def dropped(agent):
    return agent.metric("rumor_packets_dropped_total") or 0


def main(wd):
    rng = random.Random(1234)
    extra = ["--engine", f"stream_timeout_ms={STREAM_TIMEOUT_MS}"]
    agents = [Agent(wd, i, extra=extra) for i in range(3)]
    agents[0].start()
    for a in agents[1:]:
        a.start(extra=["--join", agents[0].addr])
    names = {a.name for a in agents}
    all_see(agents, names, "alive", 20)
    target = agents[1]

    frame = capture_frame(target, target.port + 100)
    log(f"captured a real {len(frame)}-byte push-pull frame")
    before = dropped(target)
    sent = udp_flood(rng, target, frame[4:])
    log(f"sent {sent} random and mutated datagrams")
    tcp_abuse(rng, target, frame)
    log("sent truncated, oversize, mutated and random TCP streams")
    slow_client(target)
    n = idle_crowd(target)
    log(f"opened {n} idle connections at once")
    ncases = http_abuse(target)
    log(f"{ncases} malformed API requests answered with a JSON 4xx")

    check(all(a.alive() for a in agents), "an agent died")
    wait_for("the target to answer /v1/health", lambda: target.get("/v1/health"), 10)
    all_see(agents, names, "alive", 20)
    after = dropped(target)
    idle = target.metric('rumor_tcp_closed_total{reason="idle"}')
    idle = idle if idle is not None else 0
    bad = target.metric('rumor_http_requests_total{class="4xx"}')
    log(f"packets dropped {before:.0f} -> {after:.0f}; idle TCP closes {idle:.0f}; "
        f"4xx answers {bad}")
    # Under load the kernel may drop some datagrams before the agent reads them; most arrive.
    check(after - before >= sent // 10, f"only {after - before} of {sent} bad datagrams counted")
    check(idle >= 1, "the silent connection was not counted")


if __name__ == "__main__":
    sys.exit(run(main))
