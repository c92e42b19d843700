#!/usr/bin/env python3
"""K `run -d --network NET` CLIs one after another vs all at once, then the same for `rm -f`
(one CLI per container): how much do parallel clients overlap in today's daemon?

    parallel.py NETD_BINARY SOCKET [K]
"""
import subprocess, sys, time

netd, sock, k = sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 16


def cli(*a):
    return [netd, "--socket", sock, *a]


def batch(argvs, parallel):
    t0 = time.monotonic()
    if parallel:
        procs = [subprocess.Popen(a, stdout=subprocess.DEVNULL) for a in argvs]
        rcs = [p.wait(timeout=120) for p in procs]
    else:
        rcs = [subprocess.run(a, stdout=subprocess.DEVNULL, timeout=120).returncode for a in argvs]
    assert all(rc == 0 for rc in rcs), rcs
    return (time.monotonic() - t0) * 1000


subprocess.run(cli("network", "create", "tnet"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
for mode in ("one after another", "all at once"):
    names = [f"p{mode[0]}{i}" for i in range(k)]
    run = batch([cli("run", "-d", "--name", n, "--network", "tnet") for n in names], mode == "all at once")
    time.sleep(0.2)
    rm = batch([cli("rm", "-f", n) for n in names], mode == "all at once")
    print(f"  {k} x run -d --network: {mode:18} {run:7.1f} ms;  {k} x rm -f: {rm:7.1f} ms")
    time.sleep(0.2)
