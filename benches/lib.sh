# shellcheck shell=bash
# Shared by benches/e2e.sh and benches/scale.sh (sourced, never run): the
# veth topology, the DUTs, one measurement with pktgen, cleanup.
#
#   gen ns (g0) --veth--> DUT --veth--> sink ns (s0)            single-node DUTs
#   gen ns (g0) --> node A --underlay veth--> node B --> sink    two-node DUTs
#
# Addresses: 10.244.0.0/16 (pods), 10.96.0.0/12 (Service VIPs), 198.18.0.0/15
# (underlay), all inside the namespaces created here (vbgen vbdut vbsink
# vbnodeb); everything, processes included, is removed on exit, also on
# failure or Ctrl-C.

RUNS=${RUNS:-3}; DURATION=${DURATION:-5}
GEN_CPU=${GEN_CPU:-0}; SINK_CPU=${SINK_CPU:-0}; DUT_CPU=${DUT_CPU:-1}; RT_PRIO=${RT_PRIO:-20}
OUT=${OUT:-$ROOT/bench-results}; mkdir -p "$OUT"
START_TS=$(date +%s); LOAD0=$(cut -d' ' -f1 /proc/loadavg)
INV=$(date -u -d "@$START_TS" +%Y%m%dT%H%M%SZ)   # this invocation: summaries use only its CSV rows
BIN=$ROOT/target/release
NS=(vbgen vbdut vbsink vbnodeb)
PIDS=()
GEN_IP=10.244.1.10; SINK_IP=10.244.2.20; VIP=10.96.0.10; SVC_PORT=9

log() { echo "[$(date +%T)] $*" >&2; }

# Debian packages a DUT needs, installed on first use; false if they cannot be.
need_pkg() { # pkg...
    local p miss=()
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || miss+=("$p"); done
    [ ${#miss[@]} -eq 0 ] && return 0
    log "installing ${miss[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${miss[@]}" >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${miss[@]}" >/dev/null 2>&1; } \
        || { log "could not install ${miss[*]}"; return 1; }
    case " ${miss[*]} " in *" openvswitch-switch "*)   # the packaged service is not ours: stop it
        (service openvswitch-switch stop || /usr/share/openvswitch/scripts/ovs-ctl stop) >/dev/null 2>&1 || true ;; esac
}

# Whether the software of a DUT is there (installing the Debian packages the
# issue names when missing). xdp-redirect needs target/release/xdp-fwd or,
# failing that, the peer kit's xdptool (built into $WORK/kit).
dut_available() {
    case $1 in
    ovs-*) need_pkg openvswitch-switch && command -v ovs-vswitchd >/dev/null ;;
    testpmd-*) need_pkg dpdk dpdk-dev librte-net-af-xdp23 && command -v dpdk-testpmd >/dev/null ;;
    xdp-redirect) [ -x "$BIN/xdp-fwd" ] || kit_xdptool >/dev/null ;;
    *) return 0 ;;
    esac
}
KIT=/work/shared/bench/src
kit_xdptool() { # prints the path of the kit's xdptool, building it once
    [ -x "$WORK/kit/xdptool" ] || { [ -f "$KIT/Makefile" ] && need_pkg clang libbpf-dev && make -s -C "$KIT" B="$WORK/kit" >/dev/null 2>&1; } || return 1
    echo "$WORK/kit/xdptool"
}

bench_init() {
    bash scripts/setup.sh >/dev/null
    if [ -z "${SKIP_BUILD:-}" ]; then cargo build --release --locked -q --bins; fi
    # The generator: BPF_PROG_RUN live frames where this pktgen has them
    # (several times AF_XDP's rate, so the DUT, not the generator, is the
    # limit), else AF_XDP. TX_MODE=port|live overrides.
    if [ -z "${TX_MODE:-}" ]; then
        TX_MODE=port; "$BIN/pktgen" send --help 2>/dev/null | grep -q -- '--tx-mode' && TX_MODE=live
    fi
    WORK=$(mktemp -d /tmp/vsw-bench.XXXXXX)
    trap 'down; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
    trap 'exit 130' INT TERM
}

down() {
    { exec 7>&-; } 2>/dev/null || true   # testpmd's stdin
    local p n
    for p in "${PIDS[@]:-}"; do if [ -n "$p" ]; then kill "$p" 2>/dev/null || true; fi; done
    for p in "${PIDS[@]:-}"; do if [ -n "$p" ]; then
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; fi; done
    PIDS=()
    for n in "${NS[@]}"; do ip netns pids "$n" 2>/dev/null | xargs -r kill -9 2>/dev/null || true; ip netns del "$n" 2>/dev/null || true; done
    rm -rf "${WORK:?}/ovs" "$WORK/tp.in"
}

# Generator and sink namespaces; the DUT side ends d0 (gen) and d1 (sink).
#   topo 0: d0 and d1 in vbdut
#   topo 1: d0 in vbdut, d1 in vbnodeb, underlay veth ul0 between them (two nodes)
#   topo 2: d0 and d1 in vbdut, plus the underlay veth ul0 to vbnodeb (one
#           overlay node whose uplink leads nowhere: Services need an overlay)
topo() {
    local n x far=vbdut
    down
    for n in "${NS[@]}"; do ip netns add "$n"; ip -n "$n" link set lo up; done
    [ "$1" = 1 ] && far=vbnodeb
    ip link add g0 netns vbgen type veth peer name d0 netns vbdut
    ip link add s0 netns vbsink type veth peer name d1 netns "$far"
    ip -n vbgen addr add $GEN_IP/24 dev g0
    ip -n vbsink addr add $SINK_IP/24 dev s0
    for x in "vbgen g0" "vbsink s0" "vbdut d0" "$far d1"; do set -- $x; ip -n "$1" link set "$2" up; done
    ip netns exec vbgen ethtool -K g0 tx off >/dev/null 2>&1 || true
    ip netns exec vbsink ethtool -K s0 tx off >/dev/null 2>&1 || true
    if [ "$1" != 0 ]; then
        ip link add ul0 netns vbdut type veth peer name ul0 netns vbnodeb
        ip -n vbdut addr add 198.18.50.1/24 dev ul0; ip -n vbnodeb addr add 198.18.50.2/24 dev ul0
        ip -n vbdut link set ul0 up; ip -n vbnodeb link set ul0 up
    fi
    # Threaded NAPI for the DUT's veths, pinned to the DUT core (its kernel
    # receive work shares the DUT's core, the harder case); the sink's on the
    # sink core at SCHED_FIFO 10 (so the elastic generator, not the sink's
    # receive path, absorbs a shortage of that core).
    napi_pin vbdut d0 "$DUT_CPU" ${DUT_NAPI_FIFO:-}; napi_pin "$far" d1 "$DUT_CPU" ${DUT_NAPI_FIFO:-}; napi_pin vbsink s0 "$SINK_CPU" 10
    if [ "$1" != 0 ]; then napi_pin vbdut ul0 "$DUT_CPU"; napi_pin vbnodeb ul0 "$DUT_CPU"; fi
}

# A veth runs its receive work in a NAPI context only with GRO on or an XDP
# program attached; without, it runs in the softirq of whoever sends (the
# generator's core) and writing `threaded` fails. So: GRO on (UDP probes
# are not merged: no UDP GRO forwarding), threaded NAPI, and its kthread
# (the one this write creates) pinned to a core. An XDP program attached
# later (AF_XDP DUTs, the sink) keeps that NAPI instance and its thread.
napi_pin() { # ns ifname cpu [fifo_prio]
    local before p
    ip netns exec "$1" ethtool -K "$2" gro on >/dev/null 2>&1 || true
    before=" $(ps -eo pid=,comm= | awk '$2 ~ /^napi\// {print $1}' | tr '\n' ' ') "
    ip netns exec "$1" sh -c "echo 1 > /sys/class/net/$2/threaded" 2>/dev/null || { log "no threaded NAPI on $1/$2"; return 0; }
    for p in $(ps -eo pid=,comm= | awk -v n="napi/$2-" 'index($2, n) == 1 {print $1}'); do
        case $before in *" $p "*) continue ;; esac   # not ours (an older thread of the same name)
        taskset -pc "$3" "$p" >/dev/null 2>&1 || true
        [ -z "${4:-}" ] || chrt -f -p "$4" "$p" >/dev/null 2>&1 || true
    done
}

mac_of() { ip netns exec "$1" cat "/sys/class/net/$2/address"; }

vswitchd_conf() { # name octet|"cidr gw" extra_node_keys extra_toml sock [rt_prio] [extra_datapath_keys]
    local prio=${6:-$RT_PRIO} cidr="10.244.$2.0/24" gw="10.244.$2.1"
    case $2 in */*) cidr=${2%% *}; gw=${2##* } ;; esac
    cat <<TOML
[node]
name = "$1"
pod_cidr = "$cidr"
gateway_ip = "$gw"
host_port = "vswb0"
$3
[datapath]
backend = "afxdp"
rt_priority = $prio
cores = [$DUT_CPU]
${SPIN_US:+spin_us = $SPIN_US}
${IDLE:+idle = \"$IDLE\"}
${7:-}
[control]
socket = "$5"
state_dir = "$WORK/state-$1"
$4
TOML
}
start_vswitchd() { # ns conf sock
    ip netns exec "$1" "$BIN/vswitchd" --config "$2" 2>"$WORK/$1.log" &
    PIDS+=("$!")
    for _ in $(seq 300); do "$BIN/ofctl" --socket "$3" show >/dev/null 2>&1 && return 0; sleep 0.1; done
    cat "$WORK/$1.log" >&2; return 1
}
OFCTL() { "$BIN/ofctl" --socket "$SOCK" "$@"; }

# The Service DUT's config: one overlay node (uplink ul0 to nowhere), pods
# in 10.244.0.0/16: the generator on d0 (ofport 1), the sink on d1 (ofport 2).
# $1: extra TOML ([[services]] entries), $2: extra [datapath] keys (ct_max).
# (dut_up takes them from SVC_TOML_FILE and DP_EXTRA; without SVC_TOML_FILE
# it adds the one Service bench/svc, VIP:9/udp -> SINK_IP:9, with ofctl.)
service_conf() {
    vswitchd_conf dut "10.244.0.0/16 10.244.0.1" $'uplink = "ul0"\nvtep_ip = "198.18.50.1"' \
        $'[[ports]]\niface = "d0"\nofport = 1\n[[ports]]\niface = "d1"\nofport = 2\n'"${1:-}" "$WORK/dut.sock" "" "${2:-}"
}
# N [[services]] entries, VIPs 10.96.x.y from 10.96.0.10 on, all to the
# sink: the last one is $VIP_N (traffic goes there).
services_toml() { # n
    python3 - "$1" "$SINK_IP" "$SVC_PORT" <<'PY'
import ipaddress, sys
n, sink, port = int(sys.argv[1]), sys.argv[2], sys.argv[3]
base = int(ipaddress.IPv4Address("10.96.0.10"))
for i in range(n):
    print(f'[[services]]\nname = "bench/svc{i}"\nvip = "{ipaddress.IPv4Address(base + i)}"\nport = {port}\nprotocol = "udp"\nbackends = ["{sink}:{port}"]')
PY
}
nth_vip() { python3 -c 'import ipaddress,sys; print(ipaddress.IPv4Address(int(ipaddress.IPv4Address("10.96.0.10")) + int(sys.argv[1])))' "$1"; }

# The static route to the sink "pod" (no CNI here): table 10, as a pod flow.
sink_route() { # sock port_of_sink
    local smac gmac; smac=$(mac_of vbsink s0); gmac=$(ip netns exec vbdut cat /sys/class/net/vswb0/address)
    "$BIN/ofctl" --socket "$1" add-flow "table=10,priority=200,ip,nw_dst=$SINK_IP actions=mod_dl_src:$gmac,mod_dl_dst:$smac,dec_ttl,output:$2"
}

testpmd_up() {
    local log=$WORK/testpmd.log
    mkfifo "$WORK/tp.in"
    # main lcore = GEN_CPU (blocks on stdin, the fifo), forwarding lcore = DUT_CPU
    ( ulimit -l unlimited 2>/dev/null || true
      exec ip netns exec vbdut sh -c "mount -t bpf bpf /sys/fs/bpf 2>/dev/null; exec stdbuf -oL dpdk-testpmd -l $GEN_CPU,$DUT_CPU --main-lcore $GEN_CPU \
        --no-huge -m 1024 --no-pci --file-prefix vswbench --log-level=pmd.net.af_xdp:info \
        --vdev net_af_xdp0,iface=d0,start_queue=0,queue_count=1 --vdev net_af_xdp1,iface=d1,start_queue=0,queue_count=1 \
        -- --forward-mode=io --nb-cores=1 --rxq=1 --txq=1 --burst=64 --auto-start" ) <"$WORK/tp.in" >"$log" 2>&1 &
    PIDS+=("$!"); exec 7>"$WORK/tp.in"
    for _ in $(seq 60); do grep -q "Press enter to exit\|testpmd>" "$log" 2>/dev/null && break; sleep 0.5; done
    grep -q "Press enter to exit" "$log" || { log "testpmd did not start"; tail -20 "$log" >&2; return 1; }
    sleep 1
}

# shellcheck disable=SC2034  # XDP_VIA: read by e2e.sh
xdp_redirect_up() {
    if [ -x "$BIN/xdp-fwd" ]; then
        ip netns exec vbdut "$BIN/xdp-fwd" d0 d1 >"$WORK/xdp-fwd.log" 2>&1 &
        PIDS+=("$!")
        for _ in $(seq 50); do grep -q ready "$WORK/xdp-fwd.log" && break; kill -0 "${PIDS[-1]}" 2>/dev/null || break; sleep 0.1; done
        kill -0 "${PIDS[-1]}" 2>/dev/null || { log "xdp-fwd exited"; cat "$WORK/xdp-fwd.log" >&2; return 1; }
        XDP_VIA="xdp-fwd"
    else
        local t; t=$(kit_xdptool) || { log "no xdp-fwd and no kit xdptool"; return 1; }
        ip netns exec vbdut env XDPTOOL_OBJDIR="$WORK/kit" "$t" redirect d0 d1
        ip netns exec vbdut env XDPTOOL_OBJDIR="$WORK/kit" "$t" redirect d1 d0
        XDP_VIA="kit xdptool"   # detached with the namespace (its links go with it)
    fi
    sleep 0.5
}

# Each DUT setup sets DST_MAC (the destination MAC the generator must use),
# DST_IP (where it sends) and SOCK (vswitchd's control socket, if any).
dut_up() {
    DST_MAC=""; DST_IP=$SINK_IP; SOCK=""; GEN_EXTRA=""; GEN_SIZE_ADD=0
    case $1 in
    bridge)
        topo 0
        ip netns exec vbdut sh -c "ip link add br0 type bridge stp_state 0 forward_delay 0 && ip link set d0 master br0 && ip link set d1 master br0 && ip link set br0 up"
        DST_MAC=$(mac_of vbsink s0) ;;
    vswitch-normal|vswitch-p2p)
        topo 0
        SOCK=$WORK/dut.sock
        vswitchd_conf dut 250 "" $'[[ports]]\niface = "d0"\nofport = 1\n[[ports]]\niface = "d1"\nofport = 2' "$SOCK" > "$WORK/dut.toml"
        start_vswitchd vbdut "$WORK/dut.toml" "$SOCK" || return 1
        if [ "$1" = vswitch-p2p ]; then
            printf 'priority=10,in_port=1 actions=output:2\npriority=10,in_port=2 actions=output:1\n' | OFCTL replace-flows -
        else
            ip netns exec vbsink ping -c1 -W1 $GEN_IP >/dev/null 2>&1 || true  # learn the sink's MAC
        fi
        DST_MAC=$(mac_of vbsink s0) ;;
    vswitch-service)
        # One overlay node; generator pod -> VIP 10.96.0.10:9/udp (to the
        # gateway MAC) -> ct(nat) -> Service group -> DNAT to the sink pod
        # 10.244.2.20:9 -> table 10 -> d1.
        topo 2
        SOCK=$WORK/dut.sock
        service_conf "$(cat "${SVC_TOML_FILE:-/dev/null}")" "${DP_EXTRA:-}" > "$WORK/dut.toml"
        start_vswitchd vbdut "$WORK/dut.toml" "$SOCK" || return 1
        [ -n "${SVC_TOML_FILE:-}" ] || OFCTL add-service bench/svc "$VIP:$SVC_PORT/udp" "$SINK_IP:$SVC_PORT" >/dev/null
        sink_route "$SOCK" 2
        DST_IP=${SVC_VIP:-$VIP}
        DST_MAC=$(ip netns exec vbdut cat /sys/class/net/vswb0/address) ;;   # the gateway MAC
    vswitch-vxlan)
        topo 1
        # Node A: generator "pod" on d0 (10.244.1.0/24); node B: sink "pod" on d1 (10.244.2.0/24).
        vswitchd_conf nodea 1 $'uplink = "ul0"\nvtep_ip = "198.18.50.1"' \
            $'[[ports]]\niface = "d0"\nofport = 1\n[[remote_nodes]]\nname = "nodeb"\npod_cidr = "10.244.2.0/24"\nvtep_ip = "198.18.50.2"' "$WORK/a.sock" 0 > "$WORK/a.toml"
        vswitchd_conf nodeb 2 $'uplink = "ul0"\nvtep_ip = "198.18.50.2"' \
            $'[[ports]]\niface = "d1"\nofport = 1\n[[remote_nodes]]\nname = "nodea"\npod_cidr = "10.244.1.0/24"\nvtep_ip = "198.18.50.1"' "$WORK/b.sock" 0 > "$WORK/b.toml"
        start_vswitchd vbdut "$WORK/a.toml" "$WORK/a.sock" || return 1
        start_vswitchd vbnodeb "$WORK/b.toml" "$WORK/b.sock" || return 1
        # Static "pod" flow: the sink's MAC and port on node B (no CNI here).
        local smac; smac=$(mac_of vbsink s0)
        "$BIN/ofctl" --socket "$WORK/b.sock" add-flow "table=10,priority=200,ip,nw_dst=$SINK_IP actions=mod_dl_dst:$smac,dec_ttl,output:1"
        if [ -n "${NO_CT:-}" ]; then   # diagnosis: bypass conntrack in table 0
            local s; for s in a b; do "$BIN/ofctl" --socket "$WORK/$s.sock" add-flow "table=0,priority=400,ip actions=goto_table:1"; done
        fi
        for _ in $(seq 30); do "$BIN/ofctl" --socket "$WORK/a.sock" dump-nodes | grep -q ':..:..:..:..:..  *$\|[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]$' && break; sleep 0.2; done
        DST_MAC=$(ip netns exec vbdut cat /sys/class/net/vswb0/address) ;;   # the gateway MAC
    vswitch-vxlan-encap)
        # One node's half of the cross-node path: generator pod on d0 ->
        # route to the remote node's pod CIDR -> VXLAN encapsulation -> the
        # uplink d1, whose far end (the sink, s0 = 198.18.50.2) stands for
        # the remote VTEP; the sink counts the probes inside the VXLAN frames.
        topo 0
        ip -n vbdut addr add 198.18.50.1/24 dev d1; ip -n vbsink addr add 198.18.50.2/24 dev s0
        SOCK=$WORK/dut.sock
        vswitchd_conf nodea 1 $'uplink = "d1"\nvtep_ip = "198.18.50.1"\nvni = 1' \
            $'[[ports]]\niface = "d0"\nofport = 1\n[[remote_nodes]]\nname = "nodeb"\npod_cidr = "10.244.2.0/24"\nvtep_ip = "198.18.50.2"' "$SOCK" > "$WORK/dut.toml"
        start_vswitchd vbdut "$WORK/dut.toml" "$SOCK" || return 1
        for _ in $(seq 30); do OFCTL dump-nodes | grep -q '[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]$' && break; sleep 0.2; done
        DST_MAC=$(ip netns exec vbdut cat /sys/class/net/vswb0/address) ;;   # the gateway MAC
    vswitch-vxlan-decap)
        # The other half: VXLAN frames from a remote VTEP (the generator,
        # g0 = 198.18.50.1) on the uplink d0 -> strict decapsulation -> route
        # to the local pod on d1 (the sink).
        topo 0
        ip -n vbdut addr add 198.18.50.2/24 dev d0; ip -n vbgen addr add 198.18.50.1/24 dev g0
        SOCK=$WORK/dut.sock
        vswitchd_conf nodeb 2 $'uplink = "d0"\nvtep_ip = "198.18.50.2"\nvni = 1\nvtep_mac = "02:70:67:00:00:02"' \
            $'[[ports]]\niface = "d1"\nofport = 1\n[[remote_nodes]]\nname = "nodea"\npod_cidr = "10.244.1.0/24"\nvtep_ip = "198.18.50.1"' "$SOCK" > "$WORK/dut.toml"
        start_vswitchd vbdut "$WORK/dut.toml" "$SOCK" || return 1
        sink_route "$SOCK" 1
        # pktgen's inner destination MAC is 02:70:67:00:00:02: the node's VTEP MAC above.
        GEN_EXTRA="--vxlan 1,198.18.50.1,198.18.50.2"; GEN_SIZE_ADD=50   # --size is the outer frame's
        DST_MAC=$(mac_of vbdut d0) ;;
    kernel-vxlan)
        topo 1
        local n
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
        ip netns exec vbdut ovsdb-server "$R/conf.db" --remote=punix:"$R/db.sock" --pidfile="$R/db.pid" --detach --log-file="$R/db.log" 2>>"$R/start.log"
        PIDS+=("$(cat "$R/db.pid")")
        local VS="ovs-vsctl --timeout=20 --db=unix:$R/db.sock"
        $VS --no-wait init
        $VS --no-wait set Open_vSwitch . other_config:pmd-cpu-mask="$(printf '0x%x' $((1 << DUT_CPU)))"
        ip netns exec vbdut sh -c "mount -t bpf bpf /sys/fs/bpf 2>/dev/null; exec ovs-vswitchd unix:$R/db.sock --pidfile=$R/vsd.pid --detach --log-file=$R/vsd.log" 2>>"$R/start.log"
        PIDS+=("$(cat "$R/vsd.pid")")
        $VS add-br br0 -- set bridge br0 datapath_type=netdev
        $VS add-port br0 d0 -- set Interface d0 ofport_request=1 type=afxdp
        $VS add-port br0 d1 -- set Interface d1 ofport_request=2 type=afxdp
        ovs-ofctl -O OpenFlow13 del-flows "unix:$R/br0.mgmt"
        ovs-ofctl -O OpenFlow13 add-flow "unix:$R/br0.mgmt" in_port=1,actions=output:2
        ovs-ofctl -O OpenFlow13 add-flow "unix:$R/br0.mgmt" in_port=2,actions=output:1
        sleep 2
        DST_MAC=$(mac_of vbsink s0) ;;
    testpmd-afxdp)
        topo 0
        testpmd_up || return 1
        DST_MAC=$(mac_of vbsink s0) ;;
    xdp-redirect)
        topo 0
        xdp_redirect_up || return 1
        DST_MAC=$(mac_of vbsink s0) ;;
    *) echo "unknown DUT $1" >&2; return 2 ;;
    esac
    [ -n "$DST_MAC" ]
}

# Frames that do not fit the DUT: 1514-byte frames grow past a 1500-byte
# underlay once VXLAN-encapsulated (dropped as mtu-exceeded by design).
size_fits() { # dut size
    case $1 in *vxlan*) [ "$2" -le 1464 ] ;; *) return 0 ;; esac
}

# "cpuN:busy:total ..." jiffies of every CPU (busy: all but idle and iowait).
cpu_jiffies() { awk '$1 ~ /^cpu[0-9]+$/ {b=0; t=0; for (i=2; i<=NF; i++) {t+=$i; if (i!=5 && i!=6) b+=$i}; printf "%s:%d:%d ", substr($1,4), b, t}' /proc/stat; }

# One measurement: the sink (AF_XDP) in vbsink, the generator (AF_XDP) in
# vbgen, DURATION seconds at RATE over FLOWS flows. Prints
# "sent_pps,delivered_pps,lost,p50_us,p99_us,p999_us,gen_cpu_busy,dut_cpu_busy"
# (latencies one-way: sender and sink share the clock; busy: % of the
# generator's run that its core and the DUT's core were not idle, whoever
# ran there). SINK_FIFO=prio runs the sink SCHED_FIFO
# (it blocks in poll() when idle, so it then preempts the generator on its
# shared core as soon as a frame arrives instead of waiting for a time slice).
measure() { # size rate flows
    local json sink
    ip netns exec vbsink taskset -c "$SINK_CPU" ${SINK_FIFO:+chrt -f "$SINK_FIFO"} "$BIN/pktgen" sink --iface s0 --duration $((DURATION + 2)) --json > "$WORK/sink.json" 2>"$WORK/sink.err" &
    sink=$!
    sleep 0.5
    local c0 c1; c0=$(cpu_jiffies)
    json=$(ip netns exec vbgen "$BIN/pktgen" send --iface g0 --dst-mac "$DST_MAC" --src-ip $GEN_IP --dst-ip "$DST_IP" --dst-port $SVC_PORT \
        --size "$(( $1 + ${GEN_SIZE_ADD:-0} ))" --duration "$DURATION" --rate "$2" --flows "$3" --cpu "$GEN_CPU" ${TX_MODE:+--tx-mode "$TX_MODE"} ${GEN_EXTRA:-} --json 2>"$WORK/send.err" || echo '{}')
    c1=$(cpu_jiffies)
    wait "$sink" || true
    python3 - "$WORK/sink.json" "$json" "$c0" "$c1" "$GEN_CPU" "$DUT_CPU" <<'PY'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except Exception:
    d = {}
try:
    s = json.loads(sys.argv[2] or "{}")
except Exception:
    s = {}
f = lambda v: "" if v is None else v
def busy(cpu):  # % of the sender's run that the CPU was not idle
    a, b = (dict((x.split(":")[0], [int(v) for v in x.split(":")[1:]]) for x in c.split()) for c in sys.argv[3:5])
    try:
        (ba, ta), (bb, tb) = a[cpu], b[cpu]
        return round(100 * (bb - ba) / (tb - ta)) if tb > ta else ""
    except KeyError:
        return ""
print(f"{int(s.get('pps', 0))},{int(d.get('pps', 0))},{f(d.get('lost'))},{f(d.get('p50_us'))},{f(d.get('p99_us'))},{f(d.get('p999_us'))},{busy(sys.argv[5])},{busy(sys.argv[6])}")
PY
}

# Where and how: machine, cores, command, for the report.
machine_info() {
    echo "- date: $(date -u -d "@$START_TS" '+%Y-%m-%d %H:%M') – $(date -u '+%H:%M UTC'), invocation $INV"
    echo "- machine: $(nproc) vCPUs ($(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME"), kernel $(uname -r)"
    echo "- cores: generator $GEN_CPU, sink $SINK_CPU (and the sink veth's threaded NAPI, SCHED_FIFO 10), DUT $DUT_CPU (and the DUT veths' threaded NAPI); vswitchd worker SCHED_FIFO $RT_PRIO (two-node DUTs: SCHED_OTHER)"
    echo "- generator: \`pktgen send --tx-mode $TX_MODE\` ($([ "$TX_MODE" = live ] && echo "BPF_PROG_RUN live frames" || echo "AF_XDP")), sink: \`pktgen sink\` (AF_XDP)"
    echo "- load (1-min loadavg) at start: $LOAD0, at the end: $(cut -d' ' -f1 /proc/loadavg) (ours included)"
}
