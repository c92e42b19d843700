#!/bin/sh
# Traces netd's control plane end to end (docs/control-plane-latency.md): a throwaway test host
# (host.sh), bpftrace on the daemon and the CLI (trace.bt), REPS repetitions of run/connect/
# disconnect/rm (drive.py), then the breakdown (analyze.py). Root; tracefs is mounted for the
# run and unmounted after if it was not mounted before.
#   bench/trace/run.sh NETD_BINARY [REPS] [drive.py flags: --cmd --back-to-back]
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$(realpath "$1"); REPS=${2:-25}; shift; [ $# -gt 0 ] && shift
OUT=${TRC_OUT:-/tmp/trc-out}; mkdir -p "$OUT"
MOUNTED=
if ! mountpoint -q /sys/kernel/tracing; then mount -t tracefs nodev /sys/kernel/tracing; MOUNTED=1; fi
cleanup() {
    [ -n "${BT:-}" ] && kill -INT "$BT" 2>/dev/null && wait "$BT" 2>/dev/null || true
    "$HERE/host.sh" down "$BIN" || true
    [ -n "$MOUNTED" ] && umount /sys/kernel/tracing || true
}
trap cleanup EXIT
"$HERE/host.sh" up "$BIN"
DPID=$(cat /tmp/${TRC_TAG:-trc}/daemon.pid)
bpftrace "$HERE/trace.bt" "$DPID" >"$OUT/events.txt" 2>"$OUT/bpftrace.err" &
BT=$!
for _ in $(seq 100); do grep -q Attaching "$OUT/events.txt" 2>/dev/null && break; sleep 0.2; done
python3 "$HERE/drive.py" "$BIN" /tmp/${TRC_TAG:-trc}/run/netd.sock "$REPS" "$OUT/ops.tsv" "$@"
kill -INT "$BT"; wait "$BT" || true; BT=
python3 "$HERE/analyze.py" "$OUT/events.txt" "$OUT/ops.tsv" "$DPID" | tee "$OUT/breakdown.txt"
for op in run_net connect disconnect rm_net; do
    python3 "$HERE/analyze.py" "$OUT/events.txt" "$OUT/ops.tsv" "$DPID" --timeline $op
done | tee "$OUT/timelines.txt"
