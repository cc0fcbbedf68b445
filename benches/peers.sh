#!/usr/bin/env bash
# End-to-end forwarding benchmark of vswitchd against its peers, measured in
# the same run with the team's peer kit (../shared/bench): generator netns ->
# DUT netns -> sink netns over veth, one DUT core, 64 B and 1514 B frames.
#
# usage: benches/peers.sh [PEER...]     (default peers: bridge ovs-afxdp-p2p)
# env:   RUNS=3 DURATION=5 SIZES="60 1514" KIT=../shared/bench RT_PRIO=20
#        DUT_NAPI_CPU=<core> to move the DUT ports' kernel receive work to another core
# Installs what the peers need (openvswitch-switch) and removes everything it
# created. Results: bench-results/results.csv and a summary table on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
KIT=${KIT:-$ROOT/../shared/bench}
RT_PRIO=${RT_PRIO:-20}
PEERS=("$@"); [ ${#PEERS[@]} -gt 0 ] || PEERS=(bridge ovs-afxdp-p2p)
export RUNS=${RUNS:-3} DURATION=${DURATION:-5} IPERF=${IPERF:-0}
export OUT=${OUT:-$ROOT/bench-results} BUILD=${BUILD:-$ROOT/target/bench-kit}

bash scripts/setup.sh >/dev/null
need=()
for p in "${PEERS[@]}"; do
    case $p in
        ovs-*) dpkg -s openvswitch-switch >/dev/null 2>&1 || need+=(openvswitch-switch) ;;
        testpmd-*) dpkg -s dpdk >/dev/null 2>&1 || need+=(dpdk) ;;
    esac
done
if [ ${#need[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
    # The package starts a system OVS; the kit runs its own per DUT.
    (service openvswitch-switch stop || /usr/share/openvswitch/scripts/ovs-ctl stop) >/dev/null 2>&1 || true
fi
cargo build --release --locked -q --bins
BIN=$ROOT/target/release
WORK=$(mktemp -d /tmp/vsw-peers.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# One config per vswitch variant: the two DUT veths as ports 1 and 2.
for v in normal p2p; do
    cat > "$WORK/$v.toml" <<TOML
[node]
name = "bench-dut"
pod_cidr = "10.244.250.0/24"
gateway_ip = "10.244.250.1"
host_port = "vswb0"

[datapath]
backend = "afxdp"
rt_priority = $RT_PRIO

[control]
socket = "$WORK/$v.sock"
state_dir = "$WORK/state-$v"

[[ports]]
iface = "dut0"
ofport = 1

[[ports]]
iface = "dut1"
ofport = 2
TOML
done
printf 'priority=10,in_port=1 actions=output:2\npriority=10,in_port=2 actions=output:1\n' > "$WORK/p2p.flows"

run_kit() { # name config ready-cmd duts...
    local name=$1 cfg=$2 ready=$3; shift 3
    DUT_NAME=$name DUT_CMD="exec $BIN/vswitchd --config $cfg" DUT_READY_CMD="$ready" \
        "$KIT/run.sh" custom "$@"
}
run_kit vswitch-normal "$WORK/normal.toml" "$BIN/ofctl --socket $WORK/normal.sock show" "${PEERS[@]}"
run_kit vswitch-p2p "$WORK/p2p.toml" \
    "$BIN/ofctl --socket $WORK/p2p.sock replace-flows $WORK/p2p.flows"
python3 "$KIT/summarize.py" "$OUT/results.csv"
