#!/bin/sh
# A throwaway test host for tracing netd's control plane, as tests/src/lib.rs builds one:
# netns trc-host (the daemon's, uplink eth0 198.51.100.2/24) and trc-out (198.51.100.1),
# state, run dir and bpffs of its own. Never touches the machine's own networking.
#   bench/trace/host.sh up NETD_BINARY     # creates the netns and starts the daemon
#   bench/trace/host.sh down               # stops the daemon (by its pid) and removes all
set -eu
T=${TRC_TAG:-trc}
DIR=/tmp/$T
BPFFS=/sys/fs/bpf/$T
case "${1:-}" in
up)
    BIN=$2
    ip netns add $T-host
    ip netns add $T-out
    ip link add ${T}uh type veth peer name ${T}uo
    ip link set ${T}uh netns $T-host name eth0
    ip link set ${T}uo netns $T-out name eth0
    for ns in $T-host:198.51.100.2 $T-out:198.51.100.1; do
        n=${ns%%:*}; a=${ns#*:}
        ip -n $n link set lo up; ip -n $n link set eth0 up; ip -n $n addr add $a/24 dev eth0
    done
    ip -n $T-host route add default via 198.51.100.1
    mkdir -p $DIR
    nsenter --net=/run/netns/$T-host "$BIN" daemon --uplink eth0 --state-dir $DIR/state \
        --run-dir $DIR/run --bpffs $BPFFS --dns-upstream 198.51.100.1 >$DIR/daemon.log 2>&1 &
    echo $! >$DIR/daemon.pid
    for _ in $(seq 100); do [ -S $DIR/run/netd.sock ] && break; sleep 0.1; done
    "$BIN" --socket $DIR/run/netd.sock network ls >/dev/null
    echo "daemon pid $(cat $DIR/daemon.pid), socket $DIR/run/netd.sock"
    ;;
down)
    if [ -f $DIR/daemon.pid ]; then
        pid=$(cat $DIR/daemon.pid)
        "${2:-netd}" --socket $DIR/run/netd.sock system reset -f >/dev/null 2>&1 || true
        kill $pid 2>/dev/null || true
        for _ in $(seq 50); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
    fi
    for m in $(awk -v d=$DIR '$2 ~ "^"d {print $2}' /proc/mounts | sort -r); do umount -l $m || true; done
    ip netns del $T-host 2>/dev/null || true
    ip netns del $T-out 2>/dev/null || true
    rm -rf $BPFFS $DIR
    ;;
*) echo "usage: $0 up NETD_BINARY | down [NETD_BINARY]" >&2; exit 2 ;;
esac
