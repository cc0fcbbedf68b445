#!/usr/bin/env bash
# Scaling: what forwarding through vswitchd costs as its work grows, on the
# topology of benches/e2e.sh (benches/lib.sh), one curve per kind of work:
#
#   flows     N flows installed and hit (vswitch-p2p): one exact flow per
#             generator flow, `priority=10,udp,in_port=1,nw_src=IP,tp_src=P
#             actions=output:2`, installed with one atomic replace-flows;
#             pktgen --flows N (source port from 1024, beyond 64512 flows the
#             source address too). N > 8192 no longer fits the exact-match cache.
#   conns     N concurrent UDP connections through a Service (vswitch-service,
#             ct_max 2M): a warm-up pass opens them (one conntrack entry each,
#             checked with dump-conntrack), then the measured runs keep them all
#             alive (pktgen --flows N round-robin).
#   services  N Services configured ([[services]] in the config: one table-1
#             flow and one group each), traffic (FLOWS flows) to the last one.
#
# usage: benches/scale.sh [flows|conns|services ...]     (default: all three)
# env:   FLOW_POINTS="10 100 1000 10000 100000" CONN_POINTS="1000 10000 100000 1000000"
#        SVC_POINTS="10 100 1000 10000" SIZE=60 FLOWS=64 (services curve)
#        RUNS=3 DURATION=5 GEN_CPU=0 SINK_CPU=0 DUT_CPU=1 RT_PRIO=20
#        TX_MODE=live|port OUT=bench-results PLOT_DIR=docs SKIP_BUILD= KEEP=
# Output: one CSV row per run in $OUT/scale.csv (column `inv` = this
# invocation), a Markdown report on stdout and in $OUT/scale-<inv>.md, and
# one SVG per curve, $PLOT_DIR/scale-{flows,conns,services}.svg (benches/plot.py).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CURVES=("$@"); [ ${#CURVES[@]} -gt 0 ] || CURVES=(flows conns services)
FLOW_POINTS=${FLOW_POINTS:-"10 100 1000 10000 100000"}
CONN_POINTS=${CONN_POINTS:-"1000 10000 100000 1000000"}
SVC_POINTS=${SVC_POINTS:-"10 100 1000 10000"}
SIZE=${SIZE:-60}; FLOWS=${FLOWS:-64}
PLOT_DIR=${PLOT_DIR:-$ROOT/docs}
CMDLINE="RUNS=${RUNS:-3} DURATION=${DURATION:-5} $0 $*"
# shellcheck source=benches/lib.sh
. benches/lib.sh
for c in "${CURVES[@]}"; do case $c in flows|conns|services) ;; *) echo "unknown curve $c (flows, conns, services)" >&2; exit 2 ;; esac; done
CSV=$OUT/scale.csv
HDR="inv,curve,n,run,size,flows,sent_pps,delivered_pps,lost,p50_us,p99_us,p999_us,gen_cpu_busy,dut_cpu_busy,check"
if [ -f "$CSV" ] && [ "$(head -1 "$CSV")" != "$HDR" ]; then mv "$CSV" "$CSV.old-$(date +%s)"; fi
[ -f "$CSV" ] || echo "$HDR" > "$CSV"
bench_init
REPORT=$OUT/scale-$INV.md

point() { # curve n flows check_cmd...: RUNS measured runs, then the check
    local curve=$1 n=$2 fl=$3 run r chk; shift 3
    for run in $(seq "$RUNS"); do
        r=$(measure "$SIZE" max "$fl")
        chk=$("$@" 2>&1 | tr ',\n' '; ' | sed 's/ *$//')
        echo "$INV,$curve,$n,$run,$SIZE,$fl,$r,$chk" >> "$CSV"
        log "$curve n=$n run=$run: sent,delivered,lost,p50,p99,p999,gen%,dut% = $r [$chk]"
    done
}

# Checks, recorded with each run: what the switch says it holds and dropped.
drops() { echo "drops: $(OFCTL dump-ports | sed -n '/^datapath drops:/,$p' | sed 's/^datapath drops: *//; s/^ *//' | tr '\n' ' ')"; }
flows_check() { echo "flows=$(OFCTL dump-flows | grep -c 'priority=10,')"; drops; }
ct_entries() { OFCTL dump-conntrack --zone 65535 | sed -n 's/.*entries=\([0-9]*\).*/\1/p'; }   # an unused zone: counters only
ct_check() { OFCTL dump-conntrack --zone 65535 | sed -n 's/^conntrack: //p'; drops; }
svc_check() { echo "services=$(OFCTL dump-services | grep -c 10.96.)"; ct_check; }

flow_file() { # n: one exact flow per pktgen flow, plus the reverse direction
    python3 - "$1" "$GEN_IP" <<'PY'
import ipaddress, sys
n, src = int(sys.argv[1]), int(ipaddress.IPv4Address(sys.argv[2]))
out = []
for f in range(n):
    out.append(f"priority=10,udp,in_port=1,nw_src={ipaddress.IPv4Address(src + f // 64512)},tp_src={1024 + f % 64512} actions=output:2")
out.append("priority=1,in_port=2 actions=output:1")
print("\n".join(out))
PY
}

curve_flows() {
    log "curve flows: $FLOW_POINTS"
    dut_up vswitch-p2p || { log "vswitch-p2p failed to start"; down; return; }
    local n t
    for n in $FLOW_POINTS; do
        flow_file "$n" > "$WORK/flows.txt"
        t=$SECONDS; OFCTL replace-flows "$WORK/flows.txt" >/dev/null
        log "flows: $n installed in $((SECONDS - t)) s"
        point flows "$n" "$n" flows_check
    done
    down
}

curve_conns() {
    log "curve conns: $CONN_POINTS"
    DP_EXTRA="ct_max = 2097152" dut_up vswitch-service || { log "vswitch-service failed to start"; down; return; }
    local n e
    for n in $CONN_POINTS; do
        OFCTL flush-conntrack --zone 1 >/dev/null
        # Warm-up: open the N connections (each flow's first packet commits one).
        for _ in 1 2 3; do
            ip netns exec vbgen "$BIN/pktgen" send --iface g0 --dst-mac "$DST_MAC" --src-ip $GEN_IP --dst-ip "$DST_IP" --dst-port $SVC_PORT \
                --size "$SIZE" --count $((n * 2)) --rate max --flows "$n" --cpu "$GEN_CPU" >/dev/null 2>&1 || true
            e=$(ct_entries); log "conns: $n flows sent, conntrack holds ${e:-?} entries"
            [ $(( ${e:-0} * 1000 )) -lt $(( n * 999 )) ] || break   # 99.9 %: a few flows lose every packet
        done
        point conns "$n" "$n" ct_check
    done
    down
}

curve_services() {
    log "curve services: $SVC_POINTS"
    local n t
    for n in $SVC_POINTS; do
        services_toml "$n" > "$WORK/services.toml"
        t=$SECONDS
        SVC_TOML_FILE=$WORK/services.toml SVC_VIP=$(nth_vip $((n - 1))) dut_up vswitch-service \
            || { log "vswitch-service with $n Services failed to start"; down; continue; }
        log "services: vswitchd up with $n Services in $((SECONDS - t)) s; traffic to $DST_IP:$SVC_PORT"
        point services "$n" "$FLOWS" svc_check
        down
    done
}

T0=$SECONDS
for c in "${CURVES[@]}"; do "curve_$c"; done

{
echo "### Scaling run $INV"
echo
machine_info
echo "- $SIZE-byte frames at the maximum rate, $DURATION s per run, $RUNS runs per point; ran $(( (SECONDS - T0) / 60 )) min"
echo "- command: \`$CMDLINE\`"
echo
python3 - "$CSV" "$INV" <<'PY'
import csv, statistics, sys
path, inv = sys.argv[1:]
rows = [r for r in csv.DictReader(open(path)) if r["inv"] == inv]
what = {
    "flows": ("flows installed and hit (vswitch p2p, one exact flow per generator flow)", "flows"),
    "conns": ("concurrent connections through one Service (conntrack entries)", "connections"),
    "services": ("Services configured, traffic (64 flows) to one of them", "Services"),
}
for curve, (title, unit) in what.items():
    rs = [r for r in rows if r["curve"] == curve]
    if not rs:
        continue
    by = {}
    for r in rs:
        by.setdefault(int(r["n"]), []).append(r)
    first = None
    print(f"**{title}** — delivered Mpps, median (min–max):")
    print()
    print(f"| {unit} | runs | Mpps median (min–max) | vs first point | offered Mpps | DUT core busy | switch's own count (last run) |")
    print("|---|---|---|---|---|---|---|")
    for n in sorted(by):
        v = [int(r["delivered_pps"]) for r in by[n]]
        m = statistics.median(v)
        first = first or m
        sn = statistics.median(int(r["sent_pps"]) for r in by[n])
        bz = [int(r["dut_cpu_busy"]) for r in by[n] if r["dut_cpu_busy"]]
        bzs = f"{statistics.median(bz):.0f} %" if bz else "–"
        rel = f"{m/first:.2f}" if first else "–"
        print(f"| {n:,} | {len(v)} | {m/1e6:.3f} ({min(v)/1e6:.3f}–{max(v)/1e6:.3f}) | {rel} | {sn/1e6:.3f} | {bzs} | {by[n][-1]['check']} |")
    print()
PY
} | tee "$REPORT"
mkdir -p "$PLOT_DIR"
python3 benches/plot.py "$CSV" --inv "$INV" --out "$PLOT_DIR" --note "$DURATION s per run" || log "plot failed"
log "report: $REPORT, rows: $CSV, plots: $PLOT_DIR/scale-*.svg"
