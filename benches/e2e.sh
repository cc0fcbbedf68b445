#!/usr/bin/env bash
# The project's end-to-end forwarding benchmark: pktgen as generator and
# sink, one DUT at a time on the same veth topology (benches/lib.sh), every
# DUT measured in the same invocation so ratios compare like with like.
#
#   gen ns (g0) --veth--> DUT --veth--> sink ns (s0)            single-node DUTs
#   gen ns (g0) --> node A --underlay veth--> node B --> sink    two-node DUTs
#
# usage: benches/e2e.sh [DUT...]        (no DUT: all of them, then `latency`, then `scale`)
# DUTs:  bridge            Linux bridge (baseline: ratios are against it)
#        vswitch-normal    vswitchd, MAC learning (`actions=normal`)
#        vswitch-p2p       vswitchd, explicit in_port/output flows
#        vswitch-vxlan     two vswitchd nodes, pod -> pod through the VXLAN overlay
#                          (both nodes, and all their veths' kernel work, on the DUT core)
#        vswitch-vxlan-encap  one node's half of it: pod -> route -> VXLAN encap -> uplink
#                          (the sink stands for the remote VTEP and reads the inner probes)
#        vswitch-vxlan-decap  the other half: VXLAN from a remote VTEP (the generator)
#                          on the uplink -> strict decap -> route -> pod
#        vswitch-service   vswitchd, pod -> ClusterIP 10.96.0.10:9/udp -> conntrack
#                          DNAT -> backend pod (64 flows = 64 connections)
#        kernel-vxlan      two Linux nodes: bridge + kernel vxlan device each side
#        ovs-afxdp-p2p     OVS userspace datapath (Debian's openvswitch-switch,
#                          datapath_type=netdev), AF_XDP ports, port-to-port flows
#        testpmd-afxdp     DPDK testpmd (Debian's dpdk) io forwarding on net_af_xdp
#        xdp-redirect      kernel XDP devmap redirect d0 <-> d1: the fast-path limit
#        latency           pseudo-DUT: p50/p99/p999 through vswitch-normal and the
#                          bridge at LAT_LOAD (50 %) of vswitch-normal's max rate,
#                          taken from this invocation (else measured first), or LAT_RATE;
#                          the generator paces with AF_XDP (--tx-mode port: evenly
#                          spaced small batches, where live frames come in 10 ms bursts);
#                          the sink runs SCHED_FIFO LAT_SINK_FIFO (10; empty: not) so
#                          it is not queued behind the generator on their shared core
#        ndr               pseudo-DUT: zero-loss rate (loss <= NDR_LOSS, 0.1 %) of NDR_DUTS
#                          (bridge vswitch-normal vswitch-p2p) by bisection of the paced
#                          AF_XDP sender's rate between NDR_LO and NDR_HI pps, NDR_STEPS steps
#        scale             pseudo-DUT: runs benches/scale.sh (flows, connections,
#                          Services curves) after everything else, same RUNS/DURATION/OUT
# OVS and DPDK are installed with apt when missing; a DUT whose software
# cannot be had is skipped (and said so).
# env:   SIZES="60 1514" RUNS=3 DURATION=5 FLOWS=64 GEN_CPU=0 SINK_CPU=0 DUT_CPU=1
#        RT_PRIO=20 (two-node DUTs run both daemons SCHED_OTHER on the DUT core:
#        two SCHED_FIFO pollers of equal priority on one core starve each other)
#        SPIN_US= IDLE= (vswitchd's datapath spin_us / idle, default: its own defaults)
#        DUT_NAPI_FIFO= (SCHED_FIFO priority for the DUT veths' NAPI threads; default SCHED_OTHER)
#        TX_MODE=live|port (pktgen's transmit path; default live where pktgen has it)
#        RATE=max (or pps) LAT_LOAD=0.5 LAT_RATE= LAT_SINK_FIFO=10 OUT=bench-results
#        SKIP_BUILD= (use the binaries as built) KEEP= (keep the work dir, print the switch's counters)
# Output: one CSV row per run in $OUT/e2e.csv (column `inv` = this
# invocation), and the Markdown report (machine, cores, command, tables of
# medians with min-max and ratios) on stdout and in $OUT/e2e-<inv>.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ALL_DUTS=(bridge vswitch-normal vswitch-p2p vswitch-vxlan vswitch-vxlan-encap vswitch-vxlan-decap vswitch-service kernel-vxlan ovs-afxdp-p2p testpmd-afxdp xdp-redirect)
DUTS=("$@"); [ ${#DUTS[@]} -gt 0 ] || DUTS=("${ALL_DUTS[@]}" latency scale)
SIZES=${SIZES:-"60 1514"}; FLOWS=${FLOWS:-64}; RATE=${RATE:-max}
LAT_LOAD=${LAT_LOAD:-0.5}; LAT_RATE=${LAT_RATE:-}; LAT_SINK_FIFO=${LAT_SINK_FIFO-10}
NDR_DUTS=${NDR_DUTS:-"bridge vswitch-normal vswitch-p2p"}; NDR_LO=${NDR_LO:-50000}; NDR_HI=${NDR_HI:-1600000}
NDR_STEPS=${NDR_STEPS:-7}; NDR_LOSS=${NDR_LOSS:-0.001}
CMDLINE="SIZES=\"$SIZES\" RUNS=${RUNS:-3} DURATION=${DURATION:-5} $0 $*"
# shellcheck source=benches/lib.sh
. benches/lib.sh
CSV=$OUT/e2e.csv
HDR="inv,phase,dut,size,run,rate,flows,sent_pps,delivered_pps,lost,p50_us,p99_us,p999_us,gen_cpu_busy,dut_cpu_busy"
if [ -f "$CSV" ] && [ "$(head -1 "$CSV")" != "$HDR" ]; then mv "$CSV" "$CSV.old-$(date +%s)"; fi
[ -f "$CSV" ] || echo "$HDR" > "$CSV"
for d in "${DUTS[@]}"; do
    case " ${ALL_DUTS[*]} latency ndr scale " in *" $d "*) ;; *) echo "unknown DUT $d (known: ${ALL_DUTS[*]} latency ndr scale)" >&2; exit 2 ;; esac
done
bench_init
REPORT=$OUT/e2e-$INV.md
SKIPPED=(); NOTES=()

row() { # phase dut size run rate
    local r; r=$(measure "$3" "$5" "$FLOWS")
    echo "$INV,$1,$2,$3,$4,$5,$FLOWS,$r" >> "$CSV"
    log "$2 size=$3 run=$4 rate=$5: sent,delivered,lost,p50,p99,p999,gen%,dut% = $r"
}

# Median delivered pps of DUT at SIZE in this invocation (empty if none).
median_of() { # dut size
    python3 - "$CSV" "$INV" "$1" "$2" <<'PY'
import csv, statistics, sys
path, inv, dut, size = sys.argv[1:]
v = [int(r["delivered_pps"]) for r in csv.DictReader(open(path))
     if r["inv"] == inv and r["phase"] == "tput" and r["dut"] == dut and r["size"] == size]
print(int(statistics.median(v)) if v and statistics.median(v) > 0 else "")
PY
}

throughput() { # dut
    local dut=$1 size run
    if ! dut_available "$dut"; then log "$dut: software not available, skipped"; SKIPPED+=("$dut"); return; fi
    log "DUT $dut"
    [ -z "${KEEP:-}" ] || log "work dir $WORK"
    if ! dut_up "$dut"; then log "$dut failed to start"; SKIPPED+=("$dut (failed to start)"); down; return; fi
    [ "$dut" != xdp-redirect ] || { log "xdp-redirect via $XDP_VIA"; NOTES+=("xdp-redirect via $XDP_VIA"); }
    for size in $SIZES; do
        if ! size_fits "$dut" "$size"; then log "$dut: $size-byte frames do not fit the 1500-byte underlay once encapsulated; skipped"; continue; fi
        for run in $(seq "$RUNS"); do row tput "$dut" "$size" "$run" "$RATE"; done
    done
    for s in "$WORK"/*.sock; do
        [ -S "$s" ] && { echo "--- $dut $(basename "$s")"; "$BIN/ofctl" --socket "$s" dump-ports | tail -8;
                         if [ "$dut" = vswitch-service ]; then "$BIN/ofctl" --socket "$s" dump-conntrack | tail -1
                             "$BIN/ofctl" --socket "$s" trace "in_port=1,udp,dl_dst=$DST_MAC,nw_src=$GEN_IP,nw_dst=$DST_IP,nw_ttl=64,tp_src=1024,tp_dst=$SVC_PORT"; fi; } >> "$WORK/dump.txt" 2>&1
    done
    down
}

# Zero-loss rate (RFC 2544's NDR, loss at most NDR_LOSS of what arrived
# or was found missing): a bisection of the paced AF_XDP sender's rate
# between NDR_LO and NDR_HI pps, NDR_STEPS steps of DURATION seconds per
# DUT of NDR_DUTS. A step passes when the sink's sequence-gap loss is within
# NDR_LOSS; the DUT's NDR is the best delivered rate of a passing step.
ndr() {
    local size dut lo hi r step out sent got lost best
    size=${SIZES%% *}
    for dut in $NDR_DUTS; do
        dut_available "$dut" || { log "ndr: $dut not available"; continue; }
        dut_up "$dut" || { log "ndr: $dut failed to start"; down; continue; }
        lo=$NDR_LO; hi=$NDR_HI; best=0
        for step in $(seq "$NDR_STEPS"); do
            r=$(( (lo + hi) / 2 ))
            out=$(TX_MODE=port SINK_FIFO=$LAT_SINK_FIFO measure "$size" "$r" "$FLOWS")
            echo "$INV,ndr,$dut,$size,$step,$r,$FLOWS,$out" >> "$CSV"
            IFS=, read -r sent got lost _ <<< "$out"
            lost=${lost:-0}
            if python3 -c 'import sys; g, l, x = map(float, sys.argv[1:]); sys.exit(0 if g > 0 and l <= x * (g + l) else 1)' "$got" "$lost" "$NDR_LOSS"; then
                lo=$r; [ "$got" -gt "$best" ] && best=$got
                log "ndr $dut: $r pps asked, sent $sent, delivered $got, lost $lost: pass"
            else
                hi=$r
                log "ndr $dut: $r pps asked, sent $sent, delivered $got, lost $lost: fail"
            fi
        done
        echo "$INV,ndr-result,$dut,$size,0,$lo,$FLOWS,0,$best,,,,,," >> "$CSV"
        down
    done
}

latency() {
    local size rate run dut
    size=${SIZES%% *}
    if [ -n "$LAT_RATE" ]; then rate=$LAT_RATE
    else
        local max; max=$(median_of vswitch-normal "$size")
        if [ -z "$max" ]; then
            log "latency: measuring vswitch-normal's max rate at $size B first"
            dut_up vswitch-normal || { log "vswitch-normal failed to start"; down; return; }
            for run in $(seq "$RUNS"); do row tput vswitch-normal "$size" "$run" max; done
            down
            max=$(median_of vswitch-normal "$size")
        fi
        [ -n "$max" ] || { log "latency: no max rate for vswitch-normal"; return; }
        rate=$(python3 -c 'import sys; print(int(float(sys.argv[1]) * float(sys.argv[2])))' "$max" "$LAT_LOAD")
    fi
    log "latency: offered $rate pps"
    for dut in vswitch-normal bridge; do
        dut_up "$dut" || { log "$dut failed to start"; down; continue; }
        for run in $(seq "$RUNS"); do TX_MODE=port SINK_FIFO=$LAT_SINK_FIFO row latency "$dut" "$size" "$run" "$rate"; done
        down
    done
}

T0=$SECONDS
SCALE=""
for dut in "${DUTS[@]}"; do
    case $dut in latency) latency ;; ndr) ndr ;; scale) SCALE=1 ;; *) throughput "$dut" ;; esac
done
[ -z "${KEEP:-}" ] || cat "$WORK/dump.txt" >&2 2>/dev/null || true

{
echo "### End-to-end run $INV"
echo
machine_info
echo "- flows: $FLOWS (UDP source ports), rate: $RATE, $DURATION s per run, $RUNS runs per point; ran $(( (SECONDS - T0) / 60 )) min"
echo "- command: \`$CMDLINE\`"
[ ${#SKIPPED[@]} -eq 0 ] || echo "- skipped: ${SKIPPED[*]}"
[ ${#NOTES[@]} -eq 0 ] || echo "- notes: ${NOTES[*]}"
echo
python3 - "$CSV" "$INV" <<'PY'
import csv, statistics, sys
path, inv = sys.argv[1:]
rows = [r for r in csv.DictReader(open(path)) if r["inv"] == inv]
names = {
    "bridge": "Linux bridge",
    "vswitch-normal": "vswitch `normal` (MAC learning)",
    "vswitch-p2p": "vswitch p2p (`in_port` → `output` flows)",
    "vswitch-vxlan": "vswitch, pod → VXLAN → pod on a second node",
    "vswitch-vxlan-encap": "vswitch, one node: pod → VXLAN encap → uplink",
    "vswitch-vxlan-decap": "vswitch, one node: uplink → VXLAN decap → pod",
    "vswitch-service": "vswitch, pod → ClusterIP (conntrack DNAT) → pod",
    "kernel-vxlan": "Linux bridge + kernel vxlan, two nodes",
    "ovs-afxdp-p2p": "OVS userspace, AF_XDP ports, p2p flows",
    "testpmd-afxdp": "DPDK testpmd io, net_af_xdp",
    "xdp-redirect": "kernel XDP redirect (devmap)",
}
def mpps(v): return f"{v/1e6:.3f}"
tp, sent, busy = {}, {}, {}
for r in rows:
    if r["phase"] == "tput":
        k = (r["dut"], int(r["size"]))
        tp.setdefault(k, []).append(int(r["delivered_pps"]))
        sent.setdefault(k, []).append(int(r["sent_pps"]))
        if r["dut_cpu_busy"]:
            busy.setdefault(k, []).append(int(r["dut_cpu_busy"]))
med = {k: statistics.median(v) for k, v in tp.items()}
def ratio(k, base):
    b = med.get((base, k[1]))
    return f"{med[k]/b:.2f}" if b else "–"
if tp:
    print("Delivered Mpps, median of runs (min–max); ratios of medians at the same frame size.")
    print("Frame sizes without FCS (60 B = 64 B on the wire).")
    print()
    print("Offered: what the generator says it sent (median). DUT core busy: share of the run the DUT's core was")
    print("not idle (median), whatever ran there: the DUT and its veths' kernel receive work.")
    print()
    print("| DUT | frame (B) | runs | Mpps median (min–max) | vs bridge | vs vswitch `normal` | vs OVS AF_XDP | offered Mpps | DUT core busy |")
    print("|---|---|---|---|---|---|---|---|---|")
    order = list(names)
    for k in sorted(tp, key=lambda k: (k[1], order.index(k[0]) if k[0] in order else 99)):
        v = tp[k]
        vn = ratio(k, "vswitch-normal") if k[0] in ("vswitch-vxlan", "vswitch-vxlan-encap", "vswitch-vxlan-decap", "vswitch-service", "vswitch-p2p") else ""
        vo = ratio(k, "ovs-afxdp-p2p") if k[0].startswith("vswitch") else ""
        bz = f"{statistics.median(busy[k]):.0f} %" if k in busy else "–"
        print(f"| {names.get(k[0], k[0])} | {k[1]} | {len(v)} | {mpps(med[k])} ({mpps(min(v))}–{mpps(max(v))}) | {ratio(k, 'bridge')} | {vn} | {vo} | {mpps(statistics.median(sent[k]))} | {bz} |")
    print()
    for size in sorted({k[1] for k in tp}):
        t = []
        n, b, o = med.get(("vswitch-normal", size)), med.get(("bridge", size)), med.get(("ovs-afxdp-p2p", size))
        if n and b: t.append(f"L2 `normal` {n/b:.2f}× bridge (≥ 1.5)")
        if n and o: t.append(f"{n/o:.2f}× OVS AF_XDP (≥ 3)")
        for d in ("vswitch-vxlan", "vswitch-vxlan-encap", "vswitch-vxlan-decap", "vswitch-service"):
            x = med.get((d, size))
            if x is not None and n: t.append(f"{d} {x/n:.2f}× `normal` (≥ 0.8)")
        if t: print(f"Targets at {size} B: " + "; ".join(t) + ".")
    print()
lat = {}
for r in rows:
    if r["phase"] == "latency":
        lat.setdefault(r["dut"], []).append(r)
if lat:
    print("Latency (one-way, µs; sender and sink share the clock), median over runs of each run's percentile:")
    print()
    print("Offered: the rate asked of the generator; sent: what it achieved (median).")
    print()
    print("| DUT | frame (B) | offered Mpps | sent Mpps | delivered Mpps | p50 | p99 | p999 | runs |")
    print("|---|---|---|---|---|---|---|---|---|")
    def m(rs, f):
        v = [float(r[f]) for r in rs if r[f] not in ("", None)]
        return f"{statistics.median(v):.1f}" if v else "–"
    p99 = {}
    for d, rs in lat.items():
        p99[d] = m(rs, "p99_us")
        dl = statistics.median(int(r["delivered_pps"]) for r in rs)
        sn = statistics.median(int(r["sent_pps"]) for r in rs)
        print(f"| {names.get(d, d)} | {rs[0]['size']} | {int(rs[0]['rate'])/1e6:.3f} | {sn/1e6:.3f} | {dl/1e6:.3f} | {m(rs, 'p50_us')} | {p99[d]} | {m(rs, 'p999_us')} | {len(rs)} |")
    if "–" not in (p99.get("vswitch-normal", "–"), p99.get("bridge", "–")):
        a, b = float(p99["vswitch-normal"]), float(p99["bridge"])
        print(f"\nTarget p99(vswitch) ≤ p99(bridge) at the same offered rate: {a:.1f} vs {b:.1f} µs — {'met' if a <= b else 'missed'}.")
ndr = {r["dut"]: r for r in rows if r["phase"] == "ndr-result"}
if ndr:
    steps = {}
    for r in rows:
        if r["phase"] == "ndr":
            steps.setdefault(r["dut"], []).append(r)
    print()
    print("Zero-loss rate (NDR: sequence-gap loss ≤ NDR_LOSS), bisection of the paced AF_XDP sender's rate:")
    print()
    print("| DUT | frame (B) | NDR delivered Mpps | highest passing asked Mpps | steps | vs bridge |")
    print("|---|---|---|---|---|---|")
    base = int(ndr["bridge"]["delivered_pps"]) if "bridge" in ndr else 0
    for d, r in ndr.items():
        v = int(r["delivered_pps"])
        ratio = f"{v / base:.2f}" if base and v else "–"
        print(f"| {names.get(d, d)} | {r['size']} | {v/1e6:.3f} | {int(r['rate'])/1e6:.3f} | {len(steps.get(d, []))} | {ratio} |")
PY
} | tee "$REPORT"
log "report: $REPORT, rows: $CSV"
if [ -n "$SCALE" ]; then
    down
    SKIP_BUILD=1 OUT=$OUT RUNS=$RUNS DURATION=$DURATION GEN_CPU=$GEN_CPU SINK_CPU=$SINK_CPU DUT_CPU=$DUT_CPU RT_PRIO=$RT_PRIO bash benches/scale.sh
fi
