#!/usr/bin/env bash
# Transmit rate of four generators on the same fresh veth pair, same sitting:
#   trafgen (netsniff-ng, PF_PACKET TX_RING), pktgen --tx-mode port (AF_XDP),
#   pktgen --tx-mode live (BPF_PROG_RUN live frames), and the peer kit's
#   `xdptool gen` (BPF_PROG_RUN live frames, /work/shared/bench).
#
# usage: benches/txrate.sh            (root; prints one table, medians of RUNS)
#
# Topology: namespace txgA<pid> (generator, veth txa<pid>) -- txgB<pid> (sink,
# veth txb<pid> with the kit's XDP_DROP attached). The rate is the sink
# veth's rx_packets delta over DURATION seconds, after WARMUP seconds, so
# every tool is judged by what arrived, not by what it claims to have sent.
# Addresses are 198.18.0.0/15 inside those namespaces only; both are deleted
# on exit, with the processes this script started.
#
# Knobs (environment): RUNS=3 DURATION=5 WARMUP=1 SIZE=60 (frame bytes
# without FCS; 60 = 64 B on the wire) GEN_CPU=0 SINK_CPU= (empty, the
# default: the sink veth's receive work, i.e. the XDP_DROP, runs unthreaded
# on the generator's core, as in docs/benchmarks.md's second row; a CPU
# number: threaded NAPI pinned there, where trafgen 0.6.8 on kernel 6.18
# stops at once with "Flushing TX_RING failed: Resource temporarily
# unavailable") TOOLS="trafgen afxdp live kit" TRAFGEN_OPTS=-q (trafgen
# through the qdisc layer: about twice its rate without, which hits EAGAIN)
# PKTGEN=target/release/pktgen (built if missing) KIT_SRC=/work/shared/bench/src
# KIT_BUILD=/tmp/kitbuild (built if missing; `make -C $KIT_SRC B=$KIT_BUILD`).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
RUNS=${RUNS:-3}; DURATION=${DURATION:-5}; WARMUP=${WARMUP:-1}; SIZE=${SIZE:-60}
GEN_CPU=${GEN_CPU:-0}; SINK_CPU=${SINK_CPU:-}; TRAFGEN_OPTS=${TRAFGEN_OPTS--q}
TOOLS=${TOOLS:-"trafgen afxdp live kit"}
PKTGEN=${PKTGEN:-$ROOT/target/release/pktgen}
KIT_SRC=${KIT_SRC:-/work/shared/bench/src}; KIT_BUILD=${KIT_BUILD:-/tmp/kitbuild}
export XDPTOOL_OBJDIR=$KIT_BUILD

[ "$(id -u)" = 0 ] || { echo "txrate.sh: needs root" >&2; exit 2; }
[ -x "$PKTGEN" ] || (cd "$ROOT" && cargo build --release -p vswitch-benches --bin pktgen)
[ -x "$KIT_BUILD/xdptool" ] || make -s -C "$KIT_SRC" B="$KIT_BUILD"
case " $TOOLS " in *" trafgen "*) command -v trafgen >/dev/null ||
  { echo "txrate.sh: trafgen missing (apt-get install -y netsniff-ng)" >&2; exit 2; } ;; esac

ID=$$; NA=txgA$ID; NB=txgB$ID; IA=txa$ID; IB=txb$ID
MA=02:00:00:74:78:01; MB=02:00:00:74:78:02; IPA=198.18.77.1; IPB=198.18.77.2
WORK=$(mktemp -d /tmp/txrate.XXXXXX)
GEN=
cleanup() {
  [ -n "$GEN" ] && stop_gen
  ip netns del "$NA" 2>/dev/null || true; ip netns del "$NB" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

log() { echo "[$(date +%T)] $*" >&2; }
rxp() { ip netns exec "$NB" cat "/sys/class/net/$IB/statistics/rx_packets"; }
median() { sort -n | awk '{a[NR]=$1} END { print (NR % 2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2) }'; }

ip netns add "$NA"; ip netns add "$NB"
ip link add "$IA" netns "$NA" type veth peer name "$IB" netns "$NB"
ip -n "$NA" link set "$IA" address $MA up; ip -n "$NB" link set "$IB" address $MB up
ip -n "$NA" addr add $IPA/24 dev "$IA"; ip -n "$NB" addr add $IPB/24 dev "$IB"
for ns in "$NA" "$NB"; do
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
ip netns exec "$NB" "$KIT_BUILD/xdptool" drop "$IB"
if [ -n "$SINK_CPU" ]; then
  ip netns exec "$NB" sh -c "echo 1 > /sys/class/net/$IB/threaded"
  for p in $(ps -eo pid=,comm= | awk -v n="napi/$IB-" 'index($2,n)==1 {print $1}'); do
    taskset -pc "$SINK_CPU" "$p" >/dev/null
  done
fi

# trafgen: the same Ethernet/IPv4/UDP frame, zero-filled payload.
PAY=$((SIZE - 42))
cat > "$WORK/trafgen.cfg" <<EOF
{ eth(da=$MB, sa=$MA), ipv4(saddr=$IPA, daddr=$IPB, ttl=64, df), udp(sp=1024, dp=9), fill(0x00, $PAY) }
EOF

SECS=$((WARMUP + DURATION + 3))
start_gen() { # tool
  local g="ip netns exec $NA taskset -c $GEN_CPU"
  local p="--iface $IA --dst-mac $MB --src-ip $IPA --dst-ip $IPB --size $SIZE --duration $SECS"
  case $1 in
    trafgen) $g trafgen --dev "$IA" --conf "$WORK/trafgen.cfg" --cpus 1 -Q -C $TRAFGEN_OPTS >/dev/null 2>"$WORK/err" & ;;
    afxdp)   $g "$PKTGEN" send $p --tx-mode port --backend afxdp >/dev/null 2>"$WORK/err" & ;;
    live)    $g "$PKTGEN" send $p --tx-mode live >/dev/null 2>"$WORK/err" & ;;
    kit)     DST_MAC=$MB SRC_MAC=$MA SRC_IP=$IPA DST_IP=$IPB \
               $g "$KIT_BUILD/xdptool" gen "$IA" "$SIZE" "$SECS" >/dev/null 2>"$WORK/err" & ;;
  esac
  GEN=$!
}

# SIGTERM to the generator and its children (trafgen forks one per CPU and
# its parent does not forward it; a script's background jobs ignore SIGINT);
# SIGKILL after 5 s.
stop_gen() {
  local p kids; kids=$(pgrep -P "$GEN" || true)
  for p in $kids "$GEN"; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 50); do kill -0 "$GEN" 2>/dev/null || break; sleep 0.1; done
  for p in $kids "$GEN"; do kill -KILL "$p" 2>/dev/null || true; done
  wait "$GEN" 2>/dev/null || true; GEN=
}

declare -A RES
for run in $(seq 1 "$RUNS"); do
  for t in $TOOLS; do
    start_gen "$t"
    sleep "$WARMUP"; a=$(rxp); sleep "$DURATION"; b=$(rxp)
    stop_gen
    pps=$(( (b - a) / DURATION ))
    [ "$pps" -gt 0 ] || log "$t: nothing arrived: $(head -c 300 "$WORK/err")"
    RES[$t]="${RES[$t]:-} $pps"
    log "run $run $t: $pps pps"
    sleep 1
  done
done

echo "# txrate: size=$SIZE duration=${DURATION}s runs=$RUNS gen_cpu=$GEN_CPU sink_napi_cpu=${SINK_CPU:-gen} kernel=$(uname -r)"
printf '%-8s %10s   %s\n' tool median_pps runs
declare -A MED
for t in $TOOLS; do
  MED[$t]=$(echo "${RES[$t]}" | tr ' ' '\n' | grep . | median)
  printf '%-8s %10s  %s\n' "$t" "${MED[$t]}" "${RES[$t]}"
done
ratio() { [ -n "${MED[$1]:-}" ] && [ -n "${MED[$2]:-}" ] && [ "${MED[$2]}" -gt 0 ] &&
  awk -v a="${MED[$1]}" -v b="${MED[$2]}" -v n="$1/$2" 'BEGIN { printf "%s = %.2f\n", n, a / b }' || true; }
ratio live trafgen; ratio afxdp trafgen; ratio live kit; ratio live afxdp
