#!/usr/bin/env python3
"""Breaks each operation of drive.py down by what its threads waited on in the kernel.

    analyze.py EVENTS.txt OPS.tsv DAEMON_PID [--stacks]

For each operation (medians over its repetitions): the wall time incl. the CLI, the daemon's
busy window (first to last daemon syscall of the op), and the daemon's off-CPU time by cause
(the kernel wait at the top of the stack it slept in) and context (the kernel operation that
waited), its syscall time by syscall, and workqueue items (cleanup_net) that ran during the op
or in the 50 ms after it. --stacks also prints the heaviest stacks of each op.
"""
import collections, statistics, sys

events, opsfile, dpid = sys.argv[1], sys.argv[2], int(sys.argv[3])
show_stacks = "--stacks" in sys.argv
timeline = sys.argv[sys.argv.index("--timeline") + 1] if "--timeline" in sys.argv else None

SYSCALLS = {0: "read", 1: "write", 3: "close", 7: "poll", 9: "mmap", 10: "mprotect", 11: "munmap",
            12: "brk", 13: "rt_sigaction", 14: "rt_sigprocmask", 15: "rt_sigreturn", 16: "ioctl",
            17: "pread64", 18: "pwrite64", 20: "writev", 24: "sched_yield", 28: "madvise",
            39: "getpid", 41: "socket", 42: "connect", 44: "sendto", 45: "recvfrom",
            46: "sendmsg", 47: "recvmsg", 49: "bind", 51: "getsockname", 54: "setsockopt",
            55: "getsockopt", 56: "clone", 57: "fork", 59: "execve", 61: "wait4", 62: "kill",
            72: "fcntl", 74: "fsync", 75: "fdatasync", 76: "truncate", 77: "ftruncate",
            82: "rename", 83: "mkdir", 87: "unlink", 89: "readlink", 90: "chmod", 257: "openat",
            262: "newfstatat", 165: "mount", 166: "umount2", 272: "unshare", 308: "setns",
            321: "bpf", 435: "clone3", 434: "pidfd_open", 424: "pidfd_send_signal",
            137: "statfs", 138: "fstatfs", 4: "stat", 5: "fstat", 8: "lseek", 217: "getdents64",
            230: "clock_nanosleep", 231: "exit_group", 60: "exit", 288: "accept4", 293: "pipe2",
            285: "fallocate", 332: "statx", 318: "getrandom", 334: "rseq", 273: "set_robust_list",
            302: "prlimit64", 218: "set_tid_address", 158: "arch_prctl", 204: "sched_getaffinity",
            291: "epoll_create1", 233: "epoll_ctl", 284: "eventfd2", 290: "eventfd2", 19: "readv",
            79: "getcwd", 99: "sysinfo", 157: "prctl", 53: "socketpair", 439: "faccessat2",
            21: "access", 89: "readlink", 95: "umask", 112: "setsid", 109: "setpgid", 33: "dup2",
            292: "dup3", 48: "shutdown", 63: "uname", 52: "getpeername", 2: "open", 436: "close_range",
            258: "mkdirat", 263: "unlinkat", 425: "io_uring_setup", 160: "setrlimit", 97: "getrlimit"}

CAUSES = [  # first match in the stack (top first) names the wait
    ("synchronize_rcu_expedited", "expedited RCU GP"),
    ("synchronize_rcu", "RCU grace period (synchronize_rcu)"),
    ("rcu_barrier", "rcu_barrier"),
    ("jbd2_log_wait_commit", "fsync (jbd2 commit)"),
    ("file_write_and_wait_range", "fsync (page writeback)"),
    ("folio_wait", "page writeback"),
    ("__mutex_lock", "mutex"),
    ("do_epoll_wait", "epoll (idle / waiting for a reply)"),
    ("futex", "futex (thread hand-off)"),
    ("do_wait", "wait for child"),
    ("unix_stream_read", "unix socket read"),
    ("netlink_recvmsg", "netlink read"),
    ("__skb_wait_for_more_packets", "socket read"),
    ("do_exit", "exit"),
    ("do_nanosleep", "sleep"),
    ("anon_pipe_read", "pipe read"),
]
CONTEXTS = ["tcx_link_attach", "tcx_link_release", "bpf_link_release", "bpf_link_free",
            "unregister_netdevice_many_notify", "netdev_run_todo", "__dev_change_net_namespace",
            "veth_newlink", "register_netdevice", "rtnl_newlink", "rtnl_dellink", "rtnl_setlink",
            "namespace_unlock", "path_umount", "copy_net_ns", "setup_net", "ksys_unshare",
            "do_new_mount", "path_mount", "ext4_sync_file", "do_fsync", "inet_rtm_newaddr",
            "inet_rtm_newroute", "inet_rtm_delroute", "bpf_obj_get_user", "bpf_obj_pin_user",
            "do_unlinkat", "map_update_elem", "map_delete_elem", "__sys_setns", "__do_sys_setns",
            "kernel_clone", "do_execveat_common", "proc_sys_call_handler", "do_exit", "__x64_sys_mount",
            "__x64_sys_umount", "__x64_sys_sendmsg", "__x64_sys_sendto", "__x64_sys_bpf",
            "do_epoll_wait", "futex_wait", "__x64_sys_openat", "__x64_sys_close", "__x64_sys_exit_group"]


def parse(path):
    off, sys_, wq = [], [], []
    cur = None
    with open(path) as f:
        for line in f:
            if line.startswith("OFF "):
                p = line.split()
                cur = (int(p[1]), int(p[2]), int(p[3]), int(p[4]), int(p[5]), [])
                off.append(cur)
            elif line.startswith("SYS "):
                p = line.split()
                sys_.append((int(p[1]), int(p[2]), int(p[3]), int(p[4]), int(p[5]), int(p[6]), p[7] if len(p) > 7 else ""))
                cur = None
            elif line.startswith("WQ "):
                p = line.split()
                wq.append((int(p[1]), int(p[2]), int(p[3]), p[4]))
                cur = None
            elif cur is not None and line.strip():
                cur[5].append(line.strip().split("+")[0])
    return off, sys_, wq


def classify(frames, state):
    if state == 0:
        return "preempted (runnable, waiting for a CPU)", ""
    cause = next((name for key, name in CAUSES if any(key in fr for fr in frames)), None)
    if cause is None:
        cause = next((fr for fr in frames if fr not in ("__schedule", "schedule", "schedule_timeout")), "?")
    ctx = [c for c in CONTEXTS if c in frames]
    return cause, "/".join(ctx[:3])


def ms(ns):
    return ns / 1e6


def med(xs):
    return statistics.median(xs) if xs else 0.0


def print_timeline(op, reps, off, sys_, wq):
    """The repetition with the median wall time: every daemon syscall >= 0.1 ms, with the
    kernel wait it slept in, in order (ms from the CLI's start)."""
    i, t0, t1 = sorted(reps, key=lambda r: r[2] - r[1])[len(reps) // 2]
    print(f"\n--- timeline of {op} #{i} (wall {ms(t1 - t0):.2f} ms; daemon syscalls >= 0.1 ms)")
    for s in sys_:
        if s[0] != dpid or not (t0 <= s[3] <= t1) or s[4] < 100_000:
            continue
        waits = collections.Counter()
        for e in off:
            if e[1] == s[1] and s[3] <= e[2] <= s[3] + s[4]:
                cause, ctx = classify(e[5], e[4])
                waits[f"{cause} [{ctx}]"] += e[3]
        name = SYSCALLS.get(s[2], str(s[2]))
        detail = "; ".join(f"{ms(v):.2f} {k}" for k, v in waits.most_common(3) if v >= 50_000)
        print(f"  +{ms(s[3] - t0):7.2f}  {ms(s[4]):6.2f} ms  {name:<10} {detail}")
    for w in wq:
        if t0 <= w[1] <= t1 + 50_000_000:
            print(f"  +{ms(w[1] - t0):7.2f}  {ms(w[2]):6.2f} ms  [kworker] {w[3]}")


def main():
    off, sys_, wq = parse(events)
    ops = collections.defaultdict(list)
    with open(opsfile) as f:
        for line in f:
            op, i, t0, t1 = line.split("\t")
            ops[op].append((int(i), int(t0), int(t1)))
    off.sort(key=lambda e: e[2]); sys_.sort(key=lambda e: e[3])
    if timeline:
        print_timeline(timeline, ops[timeline], off, sys_, wq)
        return
    for op, reps in ops.items():
        walls, busy, cli_rest = [], [], []
        causes = collections.defaultdict(lambda: [0] * len(reps))
        counts = collections.defaultdict(lambda: [0] * len(reps))
        sysc = collections.defaultdict(lambda: [0] * len(reps))
        sysn = collections.defaultdict(lambda: [0] * len(reps))
        wqs = collections.defaultdict(list)
        stacks = collections.Counter()
        for k, (i, t0, t1) in enumerate(reps):
            walls.append(t1 - t0)
            dsys = [s for s in sys_ if t0 <= s[3] <= t1 and s[0] == dpid]
            if dsys:
                b = max(s[3] + s[4] for s in dsys) - min(s[3] for s in dsys)
                busy.append(b)
            for s in dsys:
                name = SYSCALLS.get(s[2], str(s[2]))
                sysc[name][k] += s[4]; sysn[name][k] += 1
            for e in off:
                if e[2] < t0 or e[2] > t1 or e[0] != dpid:
                    continue
                cause, ctx = classify(e[5], e[4])
                if cause.startswith("epoll") or cause.startswith("futex"):
                    continue  # idle tokio threads and hand-offs between them
                causes[(cause, ctx)][k] += e[3]; counts[(cause, ctx)][k] += 1
                if show_stacks:
                    stacks[" < ".join(e[5][2:12])] += e[3]
            for w in wq:
                if t0 <= w[1] <= t1 + 50_000_000:
                    wqs[w[3]].append(w[2])
        n = len(reps)
        print(f"\n=== {op}: n={n}  wall median {ms(med(walls)):.2f} ms  (p10 {ms(sorted(walls)[n//10]):.2f}, p90 {ms(sorted(walls)[n*9//10]):.2f})"
              f"  daemon busy window median {ms(med(busy)):.2f} ms")
        print("  daemon off-CPU by cause [context]: median ms per op (mean ms, median count)")
        for key, per in sorted(causes.items(), key=lambda kv: -sum(kv[1])):
            if sum(per) / n < 20_000:
                continue
            print(f"    {ms(med(per)):7.2f}  ({ms(sum(per)/n):6.2f}, {med(counts[key]):3.0f}x)  {key[0]} [{key[1]}]")
        print("  daemon syscalls: median ms per op (mean ms, median count)")
        for name, per in sorted(sysc.items(), key=lambda kv: -sum(kv[1]))[:12]:
            print(f"    {ms(med(per)):7.2f}  ({ms(sum(per)/n):6.2f}, {med(sysn[name]):3.0f}x)  {name}")
        if wqs:
            print("  workqueue items >= 0.2 ms during the op or 50 ms after: count per op, median ms")
            for fn, ds in sorted(wqs.items(), key=lambda kv: -sum(kv[1]))[:6]:
                print(f"    {len(ds)/n:5.2f}x  {ms(med(ds)):7.2f}  {fn}")
        if show_stacks:
            print("  heaviest daemon stacks (total ms over all reps):")
            for st, t in stacks.most_common(8):
                print(f"    {ms(t):8.1f}  {st}")


main()
