#!/usr/bin/env python3
"""Micro-experiments for docs/control-plane-latency.md: what each kernel step of an endpoint
costs, and the alternatives, timed in-process (raw netlink and bpf(2), no process start).

    experiments.py [REPS] [create reuse disconnect batch parallel]
        (root; creates netns trc-x and trc-x-cN, removes them)

Everything runs in the throwaway netns trc-x (the "host") and container netns trc-x-cN;
the machine's own networking is never touched. Operations are spaced 100 ms apart, as a
user's commands are: a kernel that batched back-to-back grace periods would otherwise look
faster than it is for one command. Prints medians (ms).
"""
import ctypes, ctypes.util, errno, os, socket, statistics, struct, subprocess, sys, threading, time

REPS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
SPACING = 0.1
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
CLONE_NEWNET = 0x40000000
HOST = "trc-x"

# ---- netlink ------------------------------------------------------------------------------
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE, NLM_F_REPLACE = 1, 4, 0x200, 0x400, 0x100
RTM_NEWLINK, RTM_DELLINK, RTM_SETLINK = 16, 17, 19
RTM_NEWROUTE, RTM_DELROUTE = 24, 25
RTM_NEWQDISC, RTM_NEWTFILTER = 36, 44
IFLA_IFNAME, IFLA_LINKINFO, IFLA_NET_NS_FD, IFLA_GROUP = 3, 18, 28, 27
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
RTA_DST, RTA_OIF = 1, 4
TCA_KIND, TCA_OPTIONS = 1, 2
TCA_BPF_FD, TCA_BPF_NAME, TCA_BPF_FLAGS = 6, 7, 8


def attr(t, data):
    if isinstance(data, str):
        data = data.encode() + b"\0"
    ln = 4 + len(data)
    return struct.pack("HH", ln, t) + data + b"\0" * ((4 - ln % 4) % 4)


def ifinfo(index=0, flags=0, change=0):
    return struct.pack("BxHiII", socket.AF_UNSPEC, 0, index, flags, change)


class Netlink:
    def __init__(self):
        self.s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
        self.s.bind((0, 0))
        self.seq = 0

    def call(self, typ, flags, payload):
        self.seq += 1
        msg = struct.pack("IHHII", 16 + len(payload), typ, flags | NLM_F_REQUEST | NLM_F_ACK, self.seq, 0) + payload
        self.s.send(msg)
        while True:
            data = self.s.recv(65536)
            ln, t, _, seq, _ = struct.unpack("IHHII", data[:16])
            if t == 2 and seq == self.seq:  # NLMSG_ERROR (0 = ack)
                err = struct.unpack("i", data[16:20])[0]
                if err:
                    raise OSError(-err, os.strerror(-err))
                return

    def veth(self, host, peer, peer_netns_fd=None):
        peer_attrs = attr(IFLA_IFNAME, peer)
        if peer_netns_fd is not None:
            peer_attrs += attr(IFLA_NET_NS_FD, struct.pack("I", peer_netns_fd))
        info = attr(IFLA_INFO_KIND, "veth") + attr(IFLA_INFO_DATA, attr(VETH_INFO_PEER, ifinfo() + peer_attrs))
        self.call(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, ifinfo() + attr(IFLA_IFNAME, host) + attr(IFLA_LINKINFO, info))

    def move(self, index, netns_fd, name):
        self.call(RTM_SETLINK, 0, ifinfo(index) + attr(IFLA_NET_NS_FD, struct.pack("I", netns_fd)) + attr(IFLA_IFNAME, name))

    def up(self, index):
        self.call(RTM_NEWLINK, 0, ifinfo(index, 1, 1))

    def delete(self, index):
        self.call(RTM_DELLINK, 0, ifinfo(index))

    def route32(self, dst, oif, replace=False):
        rtm = struct.pack("BBBBBBBBI", socket.AF_INET, 32, 0, 0, 254, 3, 253, 1, 0)  # main, boot, link, unicast
        flags = NLM_F_CREATE | (NLM_F_REPLACE if replace else NLM_F_EXCL)
        self.call(RTM_NEWROUTE, flags, rtm + attr(RTA_DST, socket.inet_aton(dst)) + attr(RTA_OIF, struct.pack("I", oif)))

    def clsact(self, index):
        tcm = struct.pack("BxxxiIII", socket.AF_UNSPEC, index, 0xFFFF0000, 0xFFFFFFF1, 0)
        self.call(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL, tcm + attr(TCA_KIND, "clsact"))

    def cls_bpf(self, index, prog_fd, replace=False):
        info = (1 << 16) | socket.htons(0x0003)  # prio 1, ETH_P_ALL
        tcm = struct.pack("BxxxiIII", socket.AF_UNSPEC, index, 1, 0xFFFFFFF2, info)
        opts = attr(TCA_BPF_FD, struct.pack("I", prog_fd)) + attr(TCA_BPF_NAME, "trc") + attr(TCA_BPF_FLAGS, struct.pack("I", 1))
        flags = NLM_F_CREATE | (NLM_F_REPLACE if replace else NLM_F_EXCL)
        self.call(RTM_NEWTFILTER, flags, tcm + attr(TCA_KIND, "bpf") + attr(TCA_OPTIONS, opts))


# ---- bpf(2) -------------------------------------------------------------------------------
SYS_bpf = 321
BPF_PROG_LOAD, BPF_OBJ_PIN, BPF_LINK_CREATE = 5, 6, 28
BPF_PROG_TYPE_SCHED_CLS, BPF_TCX_INGRESS = 3, 46


def bpf(cmd, attr_bytes):
    buf = ctypes.create_string_buffer(attr_bytes, 128)
    r = libc.syscall(SYS_bpf, cmd, buf, 128)
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


def load_prog():
    insns = struct.pack("<BBhi", 0xB7, 0, 0, 0) + struct.pack("<BBhi", 0x95, 0, 0, 0)  # r0 = 0; exit
    insn_buf = ctypes.create_string_buffer(insns)
    lic = ctypes.create_string_buffer(b"GPL")
    a = struct.pack("IIQQIIQ", BPF_PROG_TYPE_SCHED_CLS, 2, ctypes.addressof(insn_buf), ctypes.addressof(lic), 0, 0, 0)
    return bpf(BPF_PROG_LOAD, a)


def tcx_link(prog_fd, ifindex):
    return bpf(BPF_LINK_CREATE, struct.pack("IIII", prog_fd, ifindex, BPF_TCX_INGRESS, 0))


def pin(fd, path):
    p = ctypes.create_string_buffer(path.encode())
    bpf(BPF_OBJ_PIN, struct.pack("QII", ctypes.addressof(p), fd, 0))


# ---- helpers ------------------------------------------------------------------------------
def sh(*args):
    subprocess.run(args, check=True)


def ns_fd(name):
    return os.open(f"/run/netns/{name}", os.O_RDONLY)


def enter(name):
    fd = ns_fd(name)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns")
    os.close(fd)


def index_of(name):
    try:
        return socket.if_nametoindex(name)
    except OSError:
        return 0


def route_exists(dst_hex):
    with open("/proc/self/net/route") as f:
        return any(line.split()[1] == dst_hex for line in f.readlines()[1:])


def ms(ns):
    return ns / 1e6


def timed(f):
    t0 = time.monotonic_ns()
    r = f()
    return time.monotonic_ns() - t0, r


results = {}


def record(key, ns):
    results.setdefault(key, []).append(ns)


def report():
    for key, xs in results.items():
        xs = sorted(xs)
        print(f"  {ms(statistics.median(xs)):8.2f} ms median  (p10 {ms(xs[len(xs)//10]):6.2f}, p90 {ms(xs[len(xs)*9//10]):6.2f}, n={len(xs)})  {key}")
    results.clear()


def make_container_ns(i):
    name = f"{HOST}-c{i}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    return name


def wait_gone(name, dst_hex, deadline_s=5.0):
    """ns until the host veth `name` and the /32 route (hex, as /proc/net/route) are gone."""
    t0 = time.monotonic_ns()
    dev_gone = route_gone = None
    while time.monotonic_ns() - t0 < deadline_s * 1e9:
        now = time.monotonic_ns() - t0
        if dev_gone is None and not index_of(name):
            dev_gone = now
        if route_gone is None and not route_exists(dst_hex):
            route_gone = now
        if dev_gone is not None and route_gone is not None:
            return dev_gone, route_gone
        time.sleep(0.0002)
    raise TimeoutError(name)


def ip_hex(ip):
    return "%08X" % struct.unpack("<I", socket.inet_aton(ip))[0]


# ---- experiments --------------------------------------------------------------------------
def endpoint(nl, i, how, prog_fd, attach):
    """One endpoint as netd makes it (host veth ndI, peer eth0 in netns trc-x-cI, /32 route),
    with `how` = "move" (create here, then move: netd today) or "direct" (peer created in the
    netns); `attach` = "tcx" (pinned link), "clsact" (qdisc + cls_bpf) or None."""
    cname = make_container_ns(i)
    cfd = ns_fd(cname)
    host = f"trcx{i}"
    t = {}
    if how == "move":
        t["veth create (peer here)"], _ = timed(lambda: nl.veth(host, f"{host}p"))
        t["veth move peer into netns (+rename)"], _ = timed(lambda: nl.move(index_of(f"{host}p"), cfd, "eth0"))
    else:
        t["veth create, peer directly in netns"], _ = timed(lambda: nl.veth(host, "eth0", cfd))
    idx = index_of(host)
    t["link up"], _ = timed(lambda: nl.up(idx))
    ip = f"10.99.{i // 250}.{i % 250 + 2}"
    t["/32 route add"], _ = timed(lambda: nl.route32(ip, idx))
    link_fd = None
    if attach == "tcx":
        t["tcx link create"], link_fd = timed(lambda: tcx_link(prog_fd, idx))
        t["tcx link pin"], _ = timed(lambda: pin(link_fd, f"/sys/fs/bpf/{HOST}/l{i}"))
        os.close(link_fd)
    elif attach == "clsact":
        t["clsact qdisc add"], _ = timed(lambda: nl.clsact(idx))
        t["cls_bpf filter add (da)"], _ = timed(lambda: nl.cls_bpf(idx, prog_fd))
        t["cls_bpf filter replace (re-adoption)"], _ = timed(lambda: nl.cls_bpf(idx, prog_fd, replace=True))
    os.close(cfd)
    return cname, host, idx, ip, t


def exp_create_remove(nl, prog_fd):
    print("\n(a)(b) endpoint creation, then removal, by method")
    combos = [("move", "tcx", "dellink, unpin after"), ("move", "tcx", "unpin, then dellink (netd today)"),
              ("direct", "tcx", "dellink, unpin after"), ("direct", "clsact", "dellink"),
              ("direct", "tcx", "netns umount"), ("direct", "clsact", "netns umount"), ("direct", None, "dellink")]
    n = 0
    for how, attach, removal in combos:
        for r in range(REPS):
            n += 1
            cname, host, idx, ip, t = endpoint(nl, n, how, prog_fd, attach)
            label = f"{how}/{attach}"
            for k, v in t.items():
                record(f"create [{label}] {k}", v)
            record(f"create [{label}] TOTAL of the steps above", sum(t.values()))
            time.sleep(SPACING)
            pin_path = f"/sys/fs/bpf/{HOST}/l{n}"
            if removal == "unpin, then dellink (netd today)":
                a, _ = timed(lambda: os.unlink(pin_path))
                b, _ = timed(lambda: nl.delete(idx))
                record(f"remove [{label}] unpin", a)
                record(f"remove [{label}] dellink after unpin", b)
                record(f"remove [{label}] TOTAL unpin+dellink", a + b)
                subprocess.run(["ip", "netns", "del", cname], check=True)
            elif removal.startswith("dellink"):
                a, _ = timed(lambda: nl.delete(idx))
                record(f"remove [{label}] dellink", a)
                if attach == "tcx":
                    b, _ = timed(lambda: os.unlink(pin_path))
                    record(f"remove [{label}] unpin after dellink (defunct link)", b)
                    record(f"remove [{label}] TOTAL dellink+unpin", a + b)
                record(f"remove [{label}] veth+route gone after return (ms, 0 = at once)", max(wait_gone(host, ip_hex(ip))))
                subprocess.run(["ip", "netns", "del", cname], check=True)
            else:  # netns umount: what `ip netns del` does, timed in-process
                path = f"/run/netns/{cname}".encode()
                a, _ = timed(lambda: (libc.umount2(path, 2), os.unlink(path)))
                record(f"remove [{label}] netns umount2(MNT_DETACH)+unlink", a)
                dev, route = wait_gone(host, ip_hex(ip))
                record(f"remove [{label}] host veth gone after (async cleanup_net)", dev)
                record(f"remove [{label}] /32 route gone after", route)
                if attach == "tcx":
                    b, _ = timed(lambda: os.unlink(pin_path))
                    record(f"remove [{label}] unpin (defunct link)", b)
            time.sleep(SPACING)
        report()


def exp_route_reuse(nl):
    """(a) correctness: an IP reused right after a netns-umount removal."""
    print("\n(a) IP reuse right after removing by netns umount: /32 route add to a new veth")
    ok_excl = ok_replace = 0
    for r in range(5):
        c1 = make_container_ns(900 + r)
        fd = ns_fd(c1)
        nl.veth(f"trco{r}", "eth0", fd)
        os.close(fd)
        old = index_of(f"trco{r}")
        nl.up(old)
        nl.route32("10.98.0.2", old)
        path = f"/run/netns/{c1}".encode()
        libc.umount2(path, 2), os.unlink(path)
        c2 = make_container_ns(950 + r)
        fd = ns_fd(c2)
        nl.veth(f"trcn{r}", "eth0", fd)
        os.close(fd)
        new = index_of(f"trcn{r}")
        nl.up(new)
        try:
            nl.route32("10.98.0.2", new)
            ok_excl += 1
        except OSError as e:
            print(f"    route add (EXCL) right after: {e}  (old veth still there: {bool(index_of(f'trco{r}'))})")
        nl.route32("10.98.0.2", new, replace=True)
        wait_gone(f"trco{r}", "nothing")
        ok_replace += route_exists(ip_hex("10.98.0.2"))
        nl.delete(new)
        subprocess.run(["ip", "netns", "del", c2], check=True)
        time.sleep(SPACING)
    print(f"    EXCL add succeeded {ok_excl}/5; with NLM_F_REPLACE the route survives the old veth's teardown {ok_replace}/5")


def exp_parallel(prog_fd):
    """(d) K endpoints (direct veth + tcx + route, then dellink + unpin) one after another vs
    K threads at once: do the kernel waits overlap?"""
    print("\n(d) parallel clients: K endpoints created and removed, sequential vs K threads")
    base = 2000

    def one(i):
        nl = Netlink()
        cname, host, idx, ip, _ = endpoint(nl, i, WHAT[0], prog_fd, WHAT[1])
        nl.delete(idx)
        if WHAT[1] == "tcx":
            os.unlink(f"/sys/fs/bpf/{HOST}/l{i}")
        return cname

    global WHAT
    for WHAT in (("direct", "tcx"), ("move", "tcx"), ("direct", "clsact"), ("direct", None)):
        for k in (8,):
            t_seq, names = timed(lambda: [one(base + j) for j in range(k)])
            for nm in names:
                subprocess.run(["ip", "netns", "del", nm], check=True)
            base += k
            time.sleep(SPACING)
            threads, out = [], []
            t0 = time.monotonic_ns()
            for j in range(k):
                th = threading.Thread(target=lambda j=j: out.append(one(base + j)))
                th.start()
                threads.append(th)
            for th in threads:
                th.join()
            t_par = time.monotonic_ns() - t0
            for nm in out:
                subprocess.run(["ip", "netns", "del", nm], check=True)
            base += k
            print(f"    {WHAT[0]}/{WHAT[1]}: {k} one after another {ms(t_seq):7.1f} ms, {k} threads at once {ms(t_par):7.1f} ms  (x{t_seq / t_par:.2f})")
            time.sleep(SPACING)


def exp_disconnect(prog_fd):
    """(a) disconnect without the dellink on the path: link down + /32 route delete (what the
    reply would wait for), and the deferred deletion one by one vs as one link group."""
    print("\n(a) disconnect: what must be synchronous, and deferred deletion by link group")
    nl = Netlink()
    base, n, group = 7000, 20, 4242
    made = [endpoint(nl, base + j, "direct", prog_fd, "clsact") for j in range(n)]
    for cname, host, idx, ip, _ in made:
        time.sleep(SPACING)
        # The route first: a link going down flushes its IPv4 routes by itself (ESRCH after).
        rtm = struct.pack("BBBBBBBBI", socket.AF_INET, 32, 0, 0, 254, 3, 253, 1, 0)
        t_route, _ = timed(lambda: nl.call(RTM_DELROUTE, 0, rtm + attr(RTA_DST, socket.inet_aton(ip))))
        t_down, _ = timed(lambda: nl.call(RTM_NEWLINK, 0, ifinfo(idx, 0, 1)))
        t_group, _ = timed(lambda: nl.call(RTM_NEWLINK, 0, ifinfo(idx) + attr(IFLA_GROUP, struct.pack("I", group))))
        record("link down", t_down)
        record("/32 route delete", t_route)
        record("link to the graveyard group (IFLA_GROUP)", t_group)
    report()
    t_all, _ = timed(lambda: nl.call(RTM_DELLINK, 0, ifinfo(0) + attr(IFLA_GROUP, struct.pack("I", group))))
    print(f"    one RTM_DELLINK of the group ({n} veths): {ms(t_all):.1f} ms  (one by one: ≈19 ms each)")
    for cname, *_ in made:
        subprocess.run(["ip", "netns", "del", cname], check=True)


def exp_batch(prog_fd):
    """(a) removing N endpoints: dellink one by one vs unmounting every netns (the kernel's
    cleanup_net tears them down in batches), with tcx or clsact programs attached."""
    print("\n(a) removing N endpoints at once")
    base = 5000
    for attach in ("tcx", "clsact"):
        for method in ("dellink each", "umount each netns"):
            n = 200
            nl = Netlink()
            made = []
            for j in range(n):
                made.append(endpoint(nl, base + j, "direct", prog_fd, attach))
            time.sleep(SPACING)
            t0 = time.monotonic_ns()
            for cname, host, idx, ip, _ in made:
                if method == "dellink each":
                    nl.delete(idx)
                else:
                    path = f"/run/netns/{cname}".encode()
                    libc.umount2(path, 2)
                    os.unlink(path)
            t_call = time.monotonic_ns() - t0
            while any(index_of(m[1]) for m in made) and time.monotonic_ns() - t0 < 60e9:
                time.sleep(0.001)
            t_gone = time.monotonic_ns() - t0
            # A new endpoint right after: does it wait for the teardown (rtnl)?
            nl2 = Netlink()
            t_next, r = timed(lambda: endpoint(nl2, base + n, "direct", prog_fd, attach))
            print(f"    {attach:6} {method:18}: {n} calls {ms(t_call):7.1f} ms, all host veths gone after {ms(t_gone):7.1f} ms; next endpoint made in {ms(t_next):5.1f} ms")
            for cname, host, idx, ip, _ in made + [r]:
                if method == "dellink each" or cname == r[0]:
                    subprocess.run(["ip", "netns", "del", cname], check=True)
                if attach == "tcx":
                    pth = f"/sys/fs/bpf/{HOST}/l{cname.rsplit('c', 1)[1]}"
                    if os.path.exists(pth):
                        os.unlink(pth)
            idx_new = index_of(r[1])
            if idx_new:
                nl.delete(idx_new)
            base += n + 1
            time.sleep(0.5)


def main():
    subprocess.run(["ip", "netns", "add", HOST], check=True)
    os.makedirs(f"/sys/fs/bpf/{HOST}", exist_ok=True)
    try:
        enter(HOST)
        sh("ip", "link", "set", "lo", "up")
        prog_fd = load_prog()
        nl = Netlink()
        which = sys.argv[2:] or ["create", "reuse", "parallel"]
        if "create" in which:
            exp_create_remove(nl, prog_fd)
        if "reuse" in which:
            exp_route_reuse(nl)
        if "disconnect" in which:
            exp_disconnect(prog_fd)
        if "batch" in which:
            exp_batch(prog_fd)
        if "parallel" in which:
            exp_parallel(prog_fd)
    finally:
        out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            name = line.split()[0]
            if name.startswith(f"{HOST}-c"):
                subprocess.run(["ip", "netns", "del", name])
        subprocess.run(["ip", "netns", "del", HOST])
        subprocess.run(["rm", "-rf", f"/sys/fs/bpf/{HOST}"])


main()
