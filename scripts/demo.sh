#!/usr/bin/env bash
# The main job: set up a fresh Debian 12 machine, then build a small node in
# network namespaces and show every same-node traffic path working through
# vswitchd: a node namespace running the daemon, three pods attached by the
# real CNI plugin (AF_XDP ports), ping and TCP between pods and between the
# host and a pod, and the tables an operator looks at. Everything it creates
# is removed on exit, also on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
bash scripts/setup.sh
cargo build --release --locked -q --bins
BIN="$PWD/target/release"

NODE=vsw-demo-node
PODS=(vsw-demo-a vsw-demo-b vsw-demo-c)
WORK=$(mktemp -d /tmp/vswitch-demo.XXXXXX)
SOCK="$WORK/vswitchd.sock"
DAEMON_PID=""

cleanup() {
    set +e
    for p in "${PODS[@]}"; do
        [ -e "/run/netns/$p" ] && cni DEL "$p" >/dev/null 2>&1
        ip netns del "$p" 2>/dev/null
    done
    if [ -n "$DAEMON_PID" ]; then
        kill -TERM "$DAEMON_PID" 2>/dev/null
        wait "$DAEMON_PID" 2>/dev/null
    fi
    ip netns del "$NODE" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
ofctl() { "$BIN/ofctl" --socket "$SOCK" "$@"; }
NETCONF='{"cniVersion":"1.0.0","name":"pods","type":"vswitch-cni","socket":"'$SOCK'","mtu":1450,
 "ipam":{"type":"host-local","subnet":"10.244.1.0/24","gateway":"10.244.1.1","dataDir":"'$WORK'/ipam"}}'
cni() { # cni COMMAND POD
    echo "$NETCONF" | CNI_COMMAND=$1 CNI_CONTAINERID="demo-$2" CNI_NETNS="/run/netns/$2" \
        CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni ip netns exec "$NODE" "$BIN/vswitch-cni"
}
pod_ip() { ip -n "$1" -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1; }

# Leftovers of an interrupted earlier run.
for p in "${PODS[@]}" "$NODE"; do ip netns del "$p" 2>/dev/null || true; done

say "node namespace $NODE with vswitchd (AF_XDP ports, host port vsw0 = 10.244.1.1)"
ip netns add "$NODE"
ip -n "$NODE" link set lo up
cat > "$WORK/vswitchd.toml" <<TOML
[node]
name = "demo-node"
pod_cidr = "10.244.1.0/24"
gateway_ip = "10.244.1.1"
host_port = "vsw0"

[datapath]
backend = "afxdp"

[control]
socket = "$SOCK"
state_dir = "$WORK/state"
TOML
ip netns exec "$NODE" "$BIN/vswitchd" --config "$WORK/vswitchd.toml" 2>"$WORK/vswitchd.log" &
DAEMON_PID=$!
for _ in $(seq 100); do ofctl show >/dev/null 2>&1 && break; sleep 0.1; done
ofctl show >/dev/null || { cat "$WORK/vswitchd.log"; exit 1; }

say "three pods through vswitch-cni ADD"
for p in "${PODS[@]}"; do
    ip netns add "$p"
    cni ADD "$p" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("  '"$p"':", r["ips"][0]["address"], "via", r["ips"][0]["gateway"])'
done
A=$(pod_ip vsw-demo-a); B=$(pod_ip vsw-demo-b); C=$(pod_ip vsw-demo-c)

say "ping pod a -> pod b, pod b -> pod c, pod c -> host (gateway), host -> pod a"
ip netns exec vsw-demo-a ping -c 3 -i 0.2 -W 1 "$B" | tail -2
ip netns exec vsw-demo-b ping -c 3 -i 0.2 -W 1 "$C" | tail -2
ip netns exec vsw-demo-c ping -c 3 -i 0.2 -W 1 10.244.1.1 | tail -2
ip netns exec "$NODE" ping -c 3 -i 0.2 -W 1 "$A" | tail -2

say "TCP: 20 MB pod a -> pod b, 5 MB host -> pod c, content verified"
tcp() { # tcp FROM_NS TO_NS TO_IP PORT BYTES
    head -c "$5" /dev/urandom > "$WORK/src"
    ip netns exec "$2" timeout 60 nc -l "$3" "$4" > "$WORK/dst" &
    local srv=$!
    for _ in $(seq 50); do ip netns exec "$2" ss -ltn | grep -q ":$4 " && break; sleep 0.1; done
    local t0=$(date +%s.%N)
    ip netns exec "$1" timeout 60 nc -N -w 10 "$3" "$4" < "$WORK/src"
    wait "$srv"
    local t1=$(date +%s.%N)
    if cmp -s "$WORK/src" "$WORK/dst"; then
        python3 -c "print('  %s -> %s: %d bytes intact, %.2f Gbit/s' % ('$1', '$3', $5, $5*8/($t1-$t0)/1e9))"
    else
        echo "  $1 -> $3: CONTENT MISMATCH"; exit 1
    fi
}
tcp vsw-demo-a vsw-demo-b "$B" 5001 20000000
tcp "$NODE" vsw-demo-c "$C" 5002 5000000

say "a flow that drops ICMP to pod c (priority 100): ping fails, TCP still works"
ofctl add-flow "priority=100,icmp,nw_dst=$C actions=drop"
if ip netns exec vsw-demo-a ping -c 2 -i 0.2 -W 1 "$C" >/dev/null; then echo "  ping unexpectedly passed"; exit 1; else echo "  ping to $C blocked"; fi
tcp vsw-demo-a vsw-demo-c "$C" 5003 1000000
ofctl trace "in_port=1,icmp,nw_src=$A,nw_dst=$C" | sed 's/^/  /'
ofctl del-flows --strict "priority=100,icmp,nw_dst=$C"

say "ofctl show"
ofctl show
say "ofctl dump-flows"
ofctl dump-flows
say "ofctl dump-ports"
ofctl dump-ports
say "ofctl fdb-show"
ofctl fdb-show

say "CNI DEL of pod c: its port leaves the switch"
cni DEL vsw-demo-c
ofctl show | grep -c '^ [0-9L]' | xargs printf '  ports now: %s\n'
say "done: cleaning up"
