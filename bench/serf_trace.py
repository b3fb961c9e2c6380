#!/usr/bin/env python3
"""Crash timelines from a `bench_serf.py --trace DIR` run: for every kill, the accusers with the
time each was first named, and when the first and last survivor marked the victim failed, in
seconds after the kill.

rumor: the accusers are those the survivors' member-suspect events name (a survivor logs the
first accusation it hears; confirmations are not events). Its timer runs from that moment, so a
failure exactly the suspicion minimum after the first accusation means the k confirmations came
in time. Millisecond timestamps.
Serf: the accusers are the agents whose own probe failed (memberlist logs "Suspect X has
failed" for the first accuser and for every confirming probe). Serf logs to the second, so its
figures are the second the line was written minus the kill time (the event happened up to one
second later).

Usage: bench/serf_trace.py DIR   (DIR as given to --trace; every bench-* run inside it)
"""
import datetime
import glob
import os
import re
import sys

RUMOR_RE = re.compile(r"(\S+)Z \w+\s+event member-(suspect|failed): (\S+) .* by (\S+)")
SERF_RE = re.compile(r"\s*(\d+/\d+/\d+ \d+:\d+:\d+) \[\w+\] memberlist: "
                     r"(?:Suspect (\S+) has failed|Marking (\S+) as failed)")


def stamp(text, fmt):
    t = datetime.datetime.strptime(text, fmt)
    return t.replace(tzinfo=datetime.timezone.utc).timestamp()


def events(run):
    """[(time, kind, victim, accuser)] from every agent log of one run."""
    out = []
    for path in glob.glob(os.path.join(run, "*.log")):
        me = os.path.basename(path)[:-4]
        with open(path, errors="replace") as f:
            for line in f:
                m = RUMOR_RE.match(line)
                if m:
                    out.append((stamp(m.group(1), "%Y-%m-%dT%H:%M:%S.%f"), m.group(2),
                                m.group(3), m.group(4)))
                    continue
                m = SERF_RE.match(line)
                if m:
                    t = stamp(m.group(1), "%Y/%m/%d %H:%M:%S")
                    if m.group(2):  # the prober's own failed probe
                        out.append((t, "suspect", m.group(2), me))
                    else:
                        out.append((t, "failed", m.group(3), me))
    return sorted(out)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    for run in sorted(glob.glob(os.path.join(sys.argv[1], "bench-*"))):
        kills_path = os.path.join(run, "kills.txt")
        if not os.path.exists(kills_path):
            continue
        print(os.path.basename(run))
        ev = events(run)
        with open(kills_path) as f:
            kills = [(float(t), v) for t, v in (line.split() for line in f)]
        for kt, victim in kills:
            mine = [e for e in ev if e[2] == victim and e[0] >= kt - 1]
            accusers = {}
            for t, kind, _, who in mine:
                if kind == "suspect":
                    accusers.setdefault(who, t - kt)
            failed = [t - kt for t, kind, _, _ in mine if kind == "failed"]
            acc = " ".join(f"{w}@{t:.2f}" for w, t in sorted(accusers.items(),
                                                            key=lambda x: x[1]))
            span = f"{min(failed):.2f}..{max(failed):.2f}" if failed else "n/a"
            print(f"  {victim}: accusers {acc or 'none'}; failed {span}")


if __name__ == "__main__":
    main()
