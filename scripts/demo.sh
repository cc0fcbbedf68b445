#!/usr/bin/env bash
# The main job: set up a fresh Debian 12 machine, then build a small cluster
# in network namespaces and show every traffic path working through
# vswitchd: two node namespaces joined by an underlay veth, each running the
# daemon, pods attached by the real CNI plugin (AF_XDP ports), ping and TCP
# between pods on one node, between the host and a pod, and between pods on
# different nodes through the VXLAN overlay, a ClusterIP Service balanced
# over a backend on each node, plus the tables an operator looks at.
# Everything it creates is removed on exit, also on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
bash scripts/setup.sh
# DEMO_PROFILE=debug uses the debug build (scripts/test.sh runs the demo that way).
if [ "${DEMO_PROFILE:-release}" = debug ]; then
    cargo build --locked -q --bins
    BIN="$PWD/target/debug"
else
    cargo build --release --locked -q --bins
    BIN="$PWD/target/release"
fi

NODE=vsw-demo-node
NODE2=vsw-demo-node2
PODS=(vsw-demo-a vsw-demo-b vsw-demo-c)
POD2=vsw-demo-d
CLIENT2=vsw-demo-e # a Service client on node 2
WORK=$(mktemp -d /tmp/vswitch-demo.XXXXXX)
SOCK="$WORK/vswitchd.sock"
SOCK2="$WORK/vswitchd2.sock"
DAEMON_PID=""
DAEMON2_PID=""
SERVERS=() # Service backends' server processes

cleanup() {
    set +e
    for pid in "${SERVERS[@]}"; do kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
    for p in "${PODS[@]}"; do
        [ -e "/run/netns/$p" ] && cni DEL "$p" >/dev/null 2>&1
        ip netns del "$p" 2>/dev/null
    done
    for p in "$POD2" "$CLIENT2"; do
        [ -e "/run/netns/$p" ] && cni2 DEL "$p" >/dev/null 2>&1
        ip netns del "$p" 2>/dev/null
    done
    for pid in "$DAEMON_PID" "$DAEMON2_PID"; do
        [ -n "$pid" ] && { kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }
    done
    ip netns del "$NODE" 2>/dev/null
    ip netns del "$NODE2" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
ofctl() { "$BIN/ofctl" --socket "$SOCK" "$@"; }
ofctl2() { "$BIN/ofctl" --socket "$SOCK2" "$@"; }
NETCONF='{"cniVersion":"1.0.0","name":"pods","type":"vswitch-cni","socket":"'$SOCK'","mtu":1450,
 "ipam":{"type":"host-local","subnet":"10.244.1.0/24","gateway":"10.244.1.1","dataDir":"'$WORK'/ipam"}}'
cni() { # cni COMMAND POD
    echo "$NETCONF" | CNI_COMMAND=$1 CNI_CONTAINERID="demo-$2" CNI_NETNS="/run/netns/$2" \
        CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni ip netns exec "$NODE" "$BIN/vswitch-cni"
}
NETCONF2='{"cniVersion":"1.0.0","name":"pods","type":"vswitch-cni","socket":"'$SOCK2'","mtu":1450,
 "ipam":{"type":"host-local","subnet":"10.244.2.0/24","gateway":"10.244.2.1","dataDir":"'$WORK'/ipam2"}}'
cni2() { # cni2 COMMAND POD (on the second node)
    echo "$NETCONF2" | CNI_COMMAND=$1 CNI_CONTAINERID="demo-$2" CNI_NETNS="/run/netns/$2" \
        CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni ip netns exec "$NODE2" "$BIN/vswitch-cni"
}
pod_ip() { ip -n "$1" -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1; }

# Leftovers of an interrupted earlier run.
for p in "${PODS[@]}" "$POD2" "$CLIENT2" "$NODE" "$NODE2"; do ip netns del "$p" 2>/dev/null || true; done

say "two nodes: $NODE (pods 10.244.1.0/24, VTEP 198.18.0.1) and $NODE2 (10.244.2.0/24, VTEP 198.18.0.2), joined by an underlay veth"
for n in "$NODE" "$NODE2"; do ip netns add "$n"; ip -n "$n" link set lo up; done
ip link add ul0 netns "$NODE" type veth peer name ul0 netns "$NODE2"
ip -n "$NODE" addr add 198.18.0.1/24 dev ul0; ip -n "$NODE" link set ul0 up
ip -n "$NODE2" addr add 198.18.0.2/24 dev ul0; ip -n "$NODE2" link set ul0 up
node_config() { # name octet me peer sock state
    cat <<TOML
[node]
name = "$1"
pod_cidr = "10.244.$2.0/24"
gateway_ip = "10.244.$2.1"
host_port = "vsw0"
uplink = "ul0"
vtep_ip = "198.18.0.$3"
vni = 1

[datapath]
backend = "afxdp"

[conntrack]
zone_limits = [{ zone = 1, max = 65536 }] # the pipeline tracks pod traffic in zone 1

[control]
socket = "$5"
state_dir = "$6"

[[remote_nodes]]
name = "peer"
pod_cidr = "10.244.$4.0/24"
vtep_ip = "198.18.0.$4"
TOML
}
node_config demo-node-a 1 1 2 "$SOCK" "$WORK/state" > "$WORK/vswitchd.toml"
node_config demo-node-b 2 2 1 "$SOCK2" "$WORK/state2" > "$WORK/vswitchd2.toml"
ip netns exec "$NODE" "$BIN/vswitchd" --config "$WORK/vswitchd.toml" 2>"$WORK/vswitchd.log" &
DAEMON_PID=$!
ip netns exec "$NODE2" "$BIN/vswitchd" --config "$WORK/vswitchd2.toml" 2>"$WORK/vswitchd2.log" &
DAEMON2_PID=$!
for _ in $(seq 100); do ofctl show >/dev/null 2>&1 && ofctl2 show >/dev/null 2>&1 && break; sleep 0.1; done
ofctl show >/dev/null || { cat "$WORK/vswitchd.log"; exit 1; }
ofctl2 show >/dev/null || { cat "$WORK/vswitchd2.log"; exit 1; }

say "three pods through vswitch-cni ADD"
for p in "${PODS[@]}"; do
    ip netns add "$p"
    cni ADD "$p" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("  '"$p"':", r["ips"][0]["address"], "via", r["ips"][0]["gateway"])'
done
ip netns add "$POD2"
cni2 ADD "$POD2" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("  '"$POD2"' (node 2):", r["ips"][0]["address"], "via", r["ips"][0]["gateway"])'
A=$(pod_ip vsw-demo-a); B=$(pod_ip vsw-demo-b); C=$(pod_ip vsw-demo-c); D=$(pod_ip "$POD2")

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

say "cross-node through VXLAN: ping and TCP between pod a (node 1) and pod d (node 2)"
for _ in $(seq 20); do ip netns exec vsw-demo-a ping -c 1 -W 1 "$D" >/dev/null 2>&1 && break; sleep 0.25; done
ip netns exec vsw-demo-a ping -c 3 -i 0.2 -W 1 "$D" | tail -2
ip netns exec "$POD2" ping -c 3 -i 0.2 -W 1 "$A" | tail -2
tcp vsw-demo-a "$POD2" "$D" 5004 20000000
tcp "$POD2" vsw-demo-a "$A" 5005 20000000
echo "  the node's own underlay traffic is untouched:"
ip netns exec "$NODE" ping -c 2 -i 0.2 -W 1 198.18.0.2 | tail -1

say "a flow that drops ICMP to pod c (priority 500, above the node's table-0 flows): ping fails, TCP still works"
ofctl add-flow "priority=500,icmp,nw_dst=$C actions=drop"
if ip netns exec vsw-demo-a ping -c 2 -i 0.2 -W 1 "$C" >/dev/null; then echo "  ping unexpectedly passed"; exit 1; else echo "  ping to $C blocked"; fi
tcp vsw-demo-a vsw-demo-c "$C" 5003 1000000
ofctl trace "in_port=1,icmp,nw_src=$A,nw_dst=$C" | sed 's/^/  /'
ofctl del-flows --strict "priority=500,icmp,nw_dst=$C"

say "a ClusterIP Service 10.96.0.10:80/tcp over pod b (node 1) and pod d (node 2), on both nodes"
# Each backend answers "id" with its own name (tests/scripts/svc_server.py).
for p in vsw-demo-b "$POD2"; do
    ip netns exec "$p" python3 tests/scripts/svc_server.py "$p" "$(pod_ip "$p")" 8080 >/dev/null 2>&1 &
    SERVERS+=($!)
done
for p in vsw-demo-b "$POD2"; do
    for _ in $(seq 50); do ip netns exec "$p" ss -ltn | grep -q ':8080 ' && break; sleep 0.1; done
done
# Every node needs every Service (kube-proxy style): clients on either node reach it.
ofctl add-service default/web 10.96.0.10:80/tcp "$B:8080" "$D:8080"
ofctl2 add-service default/web 10.96.0.10:80/tcp "$B:8080" "$D:8080"
ip netns add "$CLIENT2"
cni2 ADD "$CLIENT2" >/dev/null
echo "  ofctl dump-services (node 1):"
ofctl dump-services | sed 's/^/    /'
svc_clients() { # svc_clients POD N: N connections to the VIP; prints how many each backend answered
    local out
    out=$(ip netns exec "$1" timeout 60 python3 tests/scripts/svc_client.py ids 10.96.0.10 80 "$2") || {
        echo "  $1: connections to 10.96.0.10:80 failed after $(printf '%s' "$out" | grep -c .) answers"; exit 1; }
    local nb nd
    nb=$(printf '%s\n' "$out" | grep -c '^vsw-demo-b ' || true)
    nd=$(printf '%s\n' "$out" | grep -c "^$POD2 " || true)
    echo "  $1 ($(pod_ip "$1")) -> 10.96.0.10:80, $2 connections: pod b (node 1) answered $nb, pod d (node 2) answered $nd"
    if [ "$nb" -eq 0 ] || [ "$nd" -eq 0 ] || [ $((nb + nd)) -ne "$2" ]; then
        echo "  FAILED: every backend must answer some of the $2 connections"; exit 1
    fi
    # DNAT only: backends see the client's own address.
    printf '%s\n' "$out" | awk -v ip="$(pod_ip "$1")" '$2 != ip { bad = 1 } END { exit bad }' ||
        { echo "  FAILED: a backend saw another source address than $(pod_ip "$1")"; exit 1; }
}
svc_clients vsw-demo-a 20
svc_clients "$CLIENT2" 20
echo "  ofctl dump-conntrack --zone 1 (node 1): the first connections to the VIP, the counters and zone 1's limit:"
ofctl dump-conntrack --zone 1 | grep 'dst=10.96.0.10,' | sed -n '1,3p' | sed 's/^/    /'
ofctl dump-conntrack --zone 1 | grep '^conntrack:' | sed 's/^/    /'

say "ofctl show"
ofctl show
say "ofctl dump-flows"
ofctl dump-flows
say "ofctl dump-ports"
ofctl dump-ports
say "ofctl fdb-show"
ofctl fdb-show
say "ofctl dump-nodes (node 1)"
ofctl dump-nodes
say "ofctl trace of pod a -> pod d (route, rewrite, encapsulation)"
GWMAC=$(ip netns exec "$NODE" cat /sys/class/net/vsw0/address)
ofctl trace "in_port=1,ip,dl_dst=$GWMAC,nw_src=$A,nw_dst=$D,nw_ttl=64" | sed 's/^/  /'

say "CNI DEL of pod c: its port leaves the switch"
cni DEL vsw-demo-c
ofctl show | grep -c 'backend:' | xargs printf '  ports now: %s (was 5)\n'
say "done: cleaning up"
