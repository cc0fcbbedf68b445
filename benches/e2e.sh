#!/usr/bin/env bash
# The project's end-to-end forwarding benchmark: pktgen as generator and
# sink, one DUT at a time on the same veth topology, every DUT measured in
# the same invocation so ratios compare like with like.
#
#   gen ns (g0) --veth--> DUT --veth--> sink ns (s0)            single-node DUTs
#   gen ns (g0) --> node A --underlay veth--> node B --> sink    two-node DUTs
#
# usage: benches/e2e.sh [DUT...]
# DUTs:  bridge            Linux bridge (baseline: ratios are against it)
#        vswitch-normal    vswitchd, MAC learning (`actions=normal`)
#        vswitch-p2p       vswitchd, explicit in_port/output flows
#        vswitch-vxlan     two vswitchd nodes, pod -> pod through the VXLAN overlay
#        kernel-vxlan      two Linux nodes: bridge + kernel vxlan device each side
#        ovs-afxdp-p2p     OVS userspace datapath, AF_XDP ports, port-to-port flows
# env:   SIZES="60 1514" RUNS=3 DURATION=5 GEN_CPU=0 SINK_CPU=0 DUT_CPU=1 RT_PRIO=20
#        (two-node DUTs run both daemons SCHED_OTHER on the DUT core: two
#        SCHED_FIFO pollers of equal priority on one core starve each other)
#        RATE=max (or pps) OUT=bench-results
# Output: one CSV row per run in $OUT/e2e.csv and a Markdown table (medians,
# min-max, ratio to the bridge) on stdout. Only addresses in 198.18.0.0/15
# and 10.244.0.0/16 inside namespaces this script creates; everything is
# removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DUTS=("$@"); [ ${#DUTS[@]} -gt 0 ] || DUTS=(bridge vswitch-normal vswitch-p2p vswitch-vxlan kernel-vxlan)
SIZES=${SIZES:-"60 1514"}; RUNS=${RUNS:-3}; DURATION=${DURATION:-5}
GEN_CPU=${GEN_CPU:-0}; SINK_CPU=${SINK_CPU:-0}; DUT_CPU=${DUT_CPU:-1}; RT_PRIO=${RT_PRIO:-20}
RATE=${RATE:-max}
OUT=${OUT:-$ROOT/bench-results}; mkdir -p "$OUT"
CSV=$OUT/e2e.csv
[ -f "$CSV" ] || echo "dut,size,run,sent_pps,delivered_pps,lost" > "$CSV"

bash scripts/setup.sh >/dev/null
for d in "${DUTS[@]}"; do
    case $d in ovs-*) dpkg -s openvswitch-switch >/dev/null 2>&1 || {
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends openvswitch-switch >/dev/null
        (service openvswitch-switch stop || /usr/share/openvswitch/scripts/ovs-ctl stop) >/dev/null 2>&1 || true; } ;;
    esac
done
cargo build --release --locked -q --bins
BIN=$ROOT/target/release
WORK=$(mktemp -d /tmp/vsw-e2e.XXXXXX)
NS=(vbgen vbdut vbsink vbnodeb)
PIDS=()

log() { echo "[$(date +%T)] $*" >&2; }
down() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
    PIDS=()
    for n in "${NS[@]}"; do ip netns pids "$n" 2>/dev/null | xargs -r kill -9 2>/dev/null || true; ip netns del "$n" 2>/dev/null || true; done
    rm -rf "$WORK/ovs"
}
trap 'down; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT

# Generator and sink namespaces; the DUT side ends d0 (gen) and d1 (sink)
# live in vbdut, or d0 in vbdut and d1 in vbnodeb for two-node DUTs.
topo() { # two_nodes?
    down
    for n in "${NS[@]}"; do ip netns add "$n"; ip -n "$n" link set lo up; done
    local far=vbdut; [ "$1" = 1 ] && far=vbnodeb
    ip link add g0 netns vbgen type veth peer name d0 netns vbdut
    ip link add s0 netns vbsink type veth peer name d1 netns "$far"
    ip -n vbgen addr add 10.244.1.10/24 dev g0
    ip -n vbsink addr add 10.244.2.20/24 dev s0
    for x in "vbgen g0" "vbsink s0" "vbdut d0" "$far d1"; do set -- $x; ip -n "$1" link set "$2" up; done
    ip netns exec vbgen ethtool -K g0 tx off >/dev/null 2>&1 || true
    ip netns exec vbsink ethtool -K s0 tx off >/dev/null 2>&1 || true
    if [ "$far" = vbnodeb ]; then
        ip link add ul0 netns vbdut type veth peer name ul0 netns vbnodeb
        ip -n vbdut addr add 198.18.50.1/24 dev ul0; ip -n vbnodeb addr add 198.18.50.2/24 dev ul0
        ip -n vbdut link set ul0 up; ip -n vbnodeb link set ul0 up
    fi
    # Threaded NAPI for the DUT's veths, pinned to the DUT core (its kernel
    # receive work shares the DUT's core, the harder case).
    for x in "vbdut d0" "$far d1"; do set -- $x
        ip netns exec "$1" sh -c "echo 1 > /sys/class/net/$2/threaded" 2>/dev/null || true
    done
    for p in $(ps -eo pid=,comm= | awk '$2 ~ /^napi\/d[01]-/ {print $1}'); do taskset -pc "$DUT_CPU" "$p" >/dev/null 2>&1 || true; done
}

mac_of() { ip netns exec "$1" cat "/sys/class/net/$2/address"; }

vswitchd_conf() { # name octet extra_node_keys extra_toml sock [rt_prio]
    local prio=${6:-$RT_PRIO}
    cat <<TOML
[node]
name = "$1"
pod_cidr = "10.244.$2.0/24"
gateway_ip = "10.244.$2.1"
host_port = "vswb0"
$3
[datapath]
backend = "afxdp"
rt_priority = $prio
cores = [$DUT_CPU]
[control]
socket = "$5"
state_dir = "$WORK/state-$1"
$4
TOML
}
start_vswitchd() { # ns conf sock
    ip netns exec "$1" "$BIN/vswitchd" --config "$2" 2>"$WORK/$1.log" &
    PIDS+=("$!")
    for _ in $(seq 100); do "$BIN/ofctl" --socket "$3" show >/dev/null 2>&1 && return 0; sleep 0.1; done
    cat "$WORK/$1.log" >&2; return 1
}

# Each DUT setup sets DST_MAC: the destination MAC the generator must use.
dut_up() {
    case $1 in
    bridge)
        topo 0
        ip netns exec vbdut sh -c "ip link add br0 type bridge stp_state 0 forward_delay 0 && ip link set d0 master br0 && ip link set d1 master br0 && ip link set br0 up"
        DST_MAC=$(mac_of vbsink s0) ;;
    vswitch-normal|vswitch-p2p)
        topo 0
        vswitchd_conf dut 250 "" $'[[ports]]\niface = "d0"\nofport = 1\n[[ports]]\niface = "d1"\nofport = 2' "$WORK/dut.sock" > "$WORK/dut.toml"
        start_vswitchd vbdut "$WORK/dut.toml" "$WORK/dut.sock"
        if [ "$1" = vswitch-p2p ]; then
            printf 'priority=10,in_port=1 actions=output:2\npriority=10,in_port=2 actions=output:1\n' | "$BIN/ofctl" --socket "$WORK/dut.sock" replace-flows -
        else
            ip netns exec vbsink ping -c1 -W1 10.244.1.10 >/dev/null 2>&1 || true  # learn the sink's MAC
        fi
        DST_MAC=$(mac_of vbsink s0) ;;
    vswitch-vxlan)
        topo 1
        # Node A: generator "pod" on d0 (10.244.1.0/24); node B: sink "pod" on d1 (10.244.2.0/24).
        vswitchd_conf nodea 1 $'uplink = "ul0"\nvtep_ip = "198.18.50.1"' \
            $'[[ports]]\niface = "d0"\nofport = 1\n[[remote_nodes]]\nname = "nodeb"\npod_cidr = "10.244.2.0/24"\nvtep_ip = "198.18.50.2"' "$WORK/a.sock" 0 > "$WORK/a.toml"
        vswitchd_conf nodeb 2 $'uplink = "ul0"\nvtep_ip = "198.18.50.2"' \
            $'[[ports]]\niface = "d1"\nofport = 1\n[[remote_nodes]]\nname = "nodea"\npod_cidr = "10.244.1.0/24"\nvtep_ip = "198.18.50.1"' "$WORK/b.sock" 0 > "$WORK/b.toml"
        start_vswitchd vbdut "$WORK/a.toml" "$WORK/a.sock"
        start_vswitchd vbnodeb "$WORK/b.toml" "$WORK/b.sock"
        # Static "pod" flows: the sink's MAC and port on node B (no CNI here).
        local smac; smac=$(mac_of vbsink s0)
        "$BIN/ofctl" --socket "$WORK/b.sock" add-flow "table=10,priority=200,ip,nw_dst=10.244.2.20 actions=mod_dl_dst:$smac,dec_ttl,output:1"
        if [ -n "${NO_CT:-}" ]; then   # diagnosis: bypass conntrack in table 0
            for s in a b; do "$BIN/ofctl" --socket "$WORK/$s.sock" add-flow "table=0,priority=400,ip actions=goto_table:1"; done
        fi
        for _ in $(seq 30); do "$BIN/ofctl" --socket "$WORK/a.sock" dump-nodes | grep -q ':..:..:..:..:..  *$\|[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]$' && break; sleep 0.2; done
        DST_MAC=$(ip netns exec vbdut cat /sys/class/net/vswb0/address) ;;   # the gateway MAC
    kernel-vxlan)
        topo 1
        for n in "vbdut 1 2 d0" "vbnodeb 2 1 d1"; do set -- $n
            ip netns exec "$1" sh -c "sysctl -qw net.ipv4.ip_forward=1
                ip link add vx0 type vxlan id 1 local 198.18.50.$2 dstport 4789 nolearning dev ul0
                ip link set vx0 address 02:56:c6:12:32:0$2 && ip addr add 10.244.$2.0/32 dev vx0 && ip link set vx0 up
                ip link add br0 type bridge && ip addr add 10.244.$2.1/24 dev br0 && ip link set br0 up
                ip link set $4 master br0
                ip route add 10.244.$3.0/24 via 10.244.$3.0 dev vx0 onlink
                ip neigh replace 10.244.$3.0 lladdr 02:56:c6:12:32:0$3 dev vx0 nud permanent
                bridge fdb append 02:56:c6:12:32:0$3 dev vx0 dst 198.18.50.$3"
        done
        ip netns exec vbsink ip route add default via 10.244.2.1
        ip netns exec vbsink ping -c1 -W1 10.244.2.1 >/dev/null 2>&1 || true
        DST_MAC=$(ip netns exec vbdut cat /sys/class/net/br0/address) ;;
    ovs-afxdp-p2p)
        topo 0
        local R=$WORK/ovs; mkdir -p "$R"
        export OVS_RUNDIR=$R OVS_LOGDIR=$R OVS_DBDIR=$R OVS_SYSCONFDIR=$R
        ovsdb-tool create "$R/conf.db" /usr/share/openvswitch/vswitch.ovsschema
        ip netns exec vbdut ovsdb-server "$R/conf.db" --remote=punix:"$R/db.sock" --pidfile="$R/db.pid" --detach --log-file="$R/db.log"
        local VS="ovs-vsctl --timeout=20 --db=unix:$R/db.sock"
        $VS --no-wait init
        $VS --no-wait set Open_vSwitch . other_config:pmd-cpu-mask="$(printf '0x%x' $((1 << DUT_CPU)))"
        ip netns exec vbdut sh -c "mount -t bpf bpf /sys/fs/bpf 2>/dev/null; exec ovs-vswitchd unix:$R/db.sock --pidfile=$R/vsd.pid --detach --log-file=$R/vsd.log"
        $VS add-br br0 -- set bridge br0 datapath_type=netdev
        $VS add-port br0 d0 -- set Interface d0 ofport_request=1 type=afxdp
        $VS add-port br0 d1 -- set Interface d1 ofport_request=2 type=afxdp
        ovs-ofctl -O OpenFlow13 del-flows "unix:$R/br0.mgmt"
        ovs-ofctl -O OpenFlow13 add-flow "unix:$R/br0.mgmt" in_port=1,actions=output:2
        ovs-ofctl -O OpenFlow13 add-flow "unix:$R/br0.mgmt" in_port=2,actions=output:1
        PIDS+=("$(cat "$R/db.pid")" "$(cat "$R/vsd.pid")")
        sleep 2
        DST_MAC=$(mac_of vbsink s0) ;;
    *) echo "unknown DUT $1" >&2; return 2 ;;
    esac
}

run_once() { # dut size run dst_mac
    local json sent
    ip netns exec vbsink taskset -c "$SINK_CPU" "$BIN/pktgen" sink --iface s0 --duration $((DURATION + 2)) --json > "$WORK/sink.json" 2>/dev/null &
    local sink=$!
    sleep 0.5
    json=$(ip netns exec vbgen "$BIN/pktgen" send --iface g0 --dst-mac "$4" --src-ip 10.244.1.10 --dst-ip 10.244.2.20 \
        --size "$2" --duration "$DURATION" --rate "$RATE" --flows 64 --cpu "$GEN_CPU" --json 2>/dev/null || echo '{}')
    wait "$sink" || true
    sent=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1] or "{}"); print(int(d.get("pps",0)))' "$json")
    python3 - "$WORK/sink.json" "$1" "$2" "$3" "$sent" >> "$CSV" <<'PY'
import json, sys
path, dut, size, run, sent = sys.argv[1:]
try:
    d = json.load(open(path))
except Exception:
    d = {}
print(f"{dut},{size},{run},{sent},{int(d.get('pps', 0))},{d.get('lost', '')}")
PY
    tail -1 "$CSV" >&2
}

for dut in "${DUTS[@]}"; do
    log "DUT $dut"
    DST_MAC=""
    if [ -n "${KEEP:-}" ]; then log "work dir $WORK"; fi
    if ! dut_up "$dut" || [ -z "$DST_MAC" ]; then log "$dut failed to start"; down; continue; fi
    for size in $SIZES; do
        for run in $(seq "$RUNS"); do run_once "$dut" "$size" "$run" "$DST_MAC"; done
    done
    for s in "$WORK"/*.sock; do
        [ -S "$s" ] && { echo "--- $(basename "$s")"; "$BIN/ofctl" --socket "$s" dump-ports | tail -8; } >> "$WORK/dump.txt" 2>&1
    done
    down
done

python3 - "$CSV" "${DUTS[@]}" <<'PY'
import csv, statistics, sys
path, duts = sys.argv[1], sys.argv[2:]
rows = [r for r in csv.DictReader(open(path)) if r["dut"] in duts]
by = {}
for r in rows:
    by.setdefault((r["dut"], r["size"]), []).append(int(r["delivered_pps"]))
print("| DUT | frame (B) | runs | delivered Mpps median (min–max) | vs bridge |")
print("|---|---|---|---|---|")
for (dut, size), v in by.items():
    base = by.get(("bridge", size))
    ratio = f"{statistics.median(v) / statistics.median(base):.2f}x" if base and statistics.median(base) else "-"
    print(f"| {dut} | {size} | {len(v)} | {statistics.median(v)/1e6:.3f} ({min(v)/1e6:.3f}–{max(v)/1e6:.3f}) | {ratio} |")
PY
