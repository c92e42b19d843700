#!/usr/bin/env python3
"""Runs netd CLI operations one after another and records each one's window
(CLOCK_MONOTONIC ns, the clock of bpftrace's nsecs) for analyze.py.

    drive.py NETD_BINARY SOCKET REPS OUT.tsv [--cmd] [--back-to-back]

Per repetition i: run -d --network none, run -d --network NET, network connect NET2,
network disconnect NET2, rm -f (none), rm -f (NET); with --cmd the two runs also start a
command (sleep), so that the supervisor's spawn and kill are on the path.
"""
import subprocess, sys, time

netd, sock, reps, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
cmd = ["--", "sleep", "3600"] if "--cmd" in sys.argv else []
tag = "c" if cmd else "n"
# --back-to-back: no pause between commands (as a script creating many containers runs them)
SPACING = 0.0 if "--back-to-back" in sys.argv else 0.05

def cli(*args):
    return [netd, "--socket", sock, *args]

def timed(rows, op, i, argv):
    t0 = time.monotonic_ns()
    r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    t1 = time.monotonic_ns()
    if r.returncode != 0:
        sys.exit(f"{op} #{i} failed: {r.stderr.decode().strip()}")
    rows.append((op, i, t0, t1))
    time.sleep(SPACING)  # let asynchronous kernel work (cleanup_net) finish between ops

for n in ("tnet", "tnet2"):
    subprocess.run(cli("network", "create", n), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
rows = []
for i in range(reps):
    a, b = f"{tag}n{i}", f"{tag}t{i}"
    timed(rows, "run_none", i, cli("run", "-d", "--name", a, "--network", "none", *cmd))
    timed(rows, "run_net", i, cli("run", "-d", "--name", b, "--network", "tnet", *cmd))
    timed(rows, "connect", i, cli("network", "connect", "tnet2", b))
    timed(rows, "disconnect", i, cli("network", "disconnect", "tnet2", b))
    timed(rows, "rm_none", i, cli("rm", "-f", a))
    timed(rows, "rm_net", i, cli("rm", "-f", b))
# The CLI alone: a request that changes nothing.
for i in range(reps):
    timed(rows, "cli_noop", i, cli("network", "inspect", "tnet"))
with open(out, "w") as f:
    for r in rows:
        f.write("\t".join(map(str, r)) + "\n")
