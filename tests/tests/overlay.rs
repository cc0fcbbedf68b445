//! End-to-end: two nodes joined by an underlay, pods on each, traffic through
//! the VXLAN overlay; and interop with a plain Linux node (kernel `vxlan`
//! device, flannel-style) as the remote VTEP.
//!
//! Underlay: a namespace holding a bridge, one veth to each node (addresses
//! 198.18.<n>.1 and .2), so a capture on the bridge sees the wire.

use std::time::Duration;

use vswitch_e2e::{
    overlay_keys, peer_toml, require_root, serial, sh, tag, tcp_transfer, underlay, wait_for,
    Netns, Node,
};

fn ping(from: &Netns, ip: &str) -> bool {
    from.ok(&format!("ping -c 2 -i 0.2 -W 1 {ip}"))
}

/// A node with one remote node `peer`, VNI 42.
fn overlay_node(
    ns: Netns,
    octet: u8,
    net: u8,
    me: u8,
    peer: u8,
    peer_octet: u8,
    peer_mac: Option<&str>,
) -> Node {
    Node::start_in(
        ns,
        octet,
        &overlay_keys(net, me, 42),
        &peer_toml(net, peer, peer_octet, peer_mac),
    )
}

#[test]
fn pods_on_two_nodes_talk_through_vxlan() {
    if !require_root("pods_on_two_nodes_talk_through_vxlan") {
        return;
    }
    let _g = serial();
    let (na, nb) = (Netns::new(&tag("oa")), Netns::new(&tag("ob")));
    let ul = underlay(&tag("ou"), 7, &[&na, &nb]);
    let a = overlay_node(na, 21, 7, 1, 2, 22, None);
    let b = overlay_node(nb, 22, 7, 2, 1, 21, None);
    let pa = a.pod(&tag("opa"));
    let pb = b.pod(&tag("opb"));

    // A capture on the underlay bridge sees VXLAN with our VNI.
    let cap = ul.spawn("timeout 8 tcpdump -l -n -i br0 -c 4 udp port 4789");
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        wait_for(Duration::from_secs(10), || ping(&pa.ns, &pb.ip)),
        "cross-node ping A -> B\nA log:\n{}\nB log:\n{}",
        a.vswitchd.log_text(),
        b.vswitchd.log_text()
    );
    // Keep traffic flowing until the capture has its packets (it may have
    // started listening after the first ping).
    let mut cap = cap;
    wait_for(Duration::from_secs(8), || {
        let _ = pa.ns.ok(&format!("ping -c 1 -W 1 {}", pb.ip));
        matches!(cap.try_wait(), Ok(Some(_)))
    });
    let out = cap.wait_with_output_lossy();
    assert!(out.contains("vni 42"), "underlay capture: {out}");

    assert!(ping(&pb.ns, &pa.ip), "cross-node ping B -> A");
    assert!(
        tcp_transfer(&pa.ns, &pb.ns, &pb.ip, 6001, 20_000_000),
        "20 MB A -> B"
    );
    assert!(
        tcp_transfer(&pb.ns, &pa.ns, &pa.ip, 6002, 20_000_000),
        "20 MB B -> A"
    );

    // The nodes' own underlay traffic is untouched by the switch...
    assert!(ping(&a.ns, "198.18.7.2"), "underlay ping while switching");
    assert!(
        tcp_transfer(&a.ns, &b.ns, "198.18.7.2", 6003, 2_000_000),
        "underlay TCP"
    );
    // ...and still works after the switch stops.
    let mut a = a;
    assert!(a.vswitchd.stop());
    assert!(ping(&a.ns, "198.18.7.2"), "underlay ping after stop");
    drop(pa);
    drop(pb);
}

#[test]
fn interop_with_a_linux_vxlan_node() {
    if !require_root("interop_with_a_linux_vxlan_node") {
        return;
    }
    let _g = serial();
    let (na, nl) = (Netns::new(&tag("ia")), Netns::new(&tag("il")));
    let _ul = underlay(&tag("iu"), 8, &[&na, &nl]);
    // The Linux node, flannel-style: vxlan device, a bridge with a pod.
    let linux_mac = "02:aa:00:00:00:02";
    let pod = Netns::new(&tag("ipl"));
    nl.exec(&format!(
        "sysctl -qw net.ipv4.ip_forward=1 && \
         ip link add vx0 type vxlan id 42 local 198.18.8.2 dstport 4789 nolearning dev ul0 && \
         ip link set vx0 address {linux_mac} && ip link set vx0 mtu 1450 && \
         ip addr add 10.244.32.0/32 dev vx0 && ip link set vx0 up && \
         ip link add cni0 type bridge && ip addr add 10.244.32.1/24 dev cni0 && ip link set cni0 up"
    ));
    sh(&format!(
        "ip link add veth-lp netns {} type veth peer name eth0 netns {}",
        nl.name, pod.name
    ));
    nl.exec(
        "ip link set veth-lp master cni0 && ip link set veth-lp mtu 1450 && ip link set veth-lp up",
    );
    pod.exec(
        "ip addr add 10.244.32.5/24 dev eth0 && ip link set eth0 mtu 1450 && ip link set eth0 up && \
         ip route add default via 10.244.32.1",
    );
    // AF_XDP cannot complete partial checksums (notes/afxdp-veth.md): the
    // Linux side must send complete ones, as the CNI does for our pods.
    pod.exec("ethtool -K eth0 tx off >/dev/null");
    nl.exec("ethtool -K vx0 tx off >/dev/null; ethtool -K ul0 tx off >/dev/null");

    let a = overlay_node(na, 31, 8, 1, 2, 32, Some(linux_mac));
    // The local VTEP MAC is shown by `ofctl show`.
    let show: serde_json::Value =
        serde_json::from_str(&a.vswitchd.ofctl(&["--json", "show"])).unwrap();
    let our_mac = show["vtep_mac"]
        .as_str()
        .expect("show reports vtep_mac")
        .to_string();
    nl.exec(&format!(
        "ip route add 10.244.31.0/24 via 10.244.31.0 dev vx0 onlink && \
         ip neigh replace 10.244.31.0 lladdr {our_mac} dev vx0 nud permanent && \
         bridge fdb append {our_mac} dev vx0 dst 198.18.8.1"
    ));
    let pa = a.pod(&tag("ipa"));
    assert!(
        wait_for(Duration::from_secs(10), || ping(&pa.ns, "10.244.32.5")),
        "our pod -> Linux pod\n{}",
        a.vswitchd.log_text()
    );
    assert!(ping(&pod, &pa.ip), "Linux pod -> our pod");
    assert!(
        tcp_transfer(&pa.ns, &pod, "10.244.32.5", 6011, 5_000_000),
        "TCP to the Linux pod"
    );
    assert!(
        tcp_transfer(&pod, &pa.ns, &pa.ip, 6012, 5_000_000),
        "TCP from the Linux pod"
    );
}

trait LossyOutput {
    fn wait_with_output_lossy(self) -> String;
}

impl LossyOutput for std::process::Child {
    fn wait_with_output_lossy(self) -> String {
        match self.wait_with_output() {
            Ok(o) => format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => e.to_string(),
        }
    }
}

#[test]
fn remote_nodes_are_added_and_removed_at_run_time() {
    if !require_root("remote_nodes_are_added_and_removed_at_run_time") {
        return;
    }
    let _g = serial();
    let (na, nb) = (Netns::new(&tag("ra")), Netns::new(&tag("rb")));
    let _ul = underlay(&tag("ru"), 9, &[&na, &nb]);
    // Node A starts knowing nobody; node B knows A from its config.
    let a = Node::start_in(na, 41, &overlay_keys(9, 1, 42), "");
    let b = overlay_node(nb, 42, 9, 2, 1, 41, None);
    let pa = a.pod(&tag("rpa"));
    let pb = b.pod(&tag("rpb"));
    assert!(!ping(&pa.ns, &pb.ip), "A does not know B yet");
    a.vswitchd
        .ofctl(&["add-node", "peer", "10.244.42.0/24", "198.18.9.2"]);
    assert!(
        wait_for(Duration::from_secs(10), || ping(&pa.ns, &pb.ip)),
        "after add-node\n{}",
        a.vswitchd.log_text()
    );
    // Show lists the VXLAN port and the remote with its resolved next hop.
    let show = a.vswitchd.ofctl(&["show"]);
    assert!(show.contains("65000(vxlan): vni 42"), "{show}");
    assert!(
        show.contains("remote peer: 10.244.42.0/24") && !show.contains("unresolved"),
        "{show}"
    );
    let nodes = a.vswitchd.ofctl(&["dump-nodes"]);
    assert!(nodes.contains("198.18.9.2"), "{nodes}");
    // The model's flows carry its cookie.
    let flows = a
        .vswitchd
        .ofctl(&["dump-flows", "cookie=0x5653000000000000/0xffff000000000000"]);
    assert!(
        flows.contains("tun_dst") || flows.contains("198.18.9.2"),
        "{flows}"
    );
    // Trace shows the route and the encapsulation.
    let trace = a.vswitchd.ofctl(&[
        "trace",
        &format!("in_port=1,ip,dl_dst={},nw_dst={}", gw_mac(&a), pb.ip),
    ]);
    assert!(
        trace.contains("65000") || trace.to_lowercase().contains("vxlan"),
        "{trace}"
    );
    a.vswitchd.ofctl(&["del-node", "peer"]);
    assert!(!ping(&pa.ns, &pb.ip), "after del-node");
    let ports = a.vswitchd.ofctl(&["dump-ports"]);
    assert!(ports.contains("datapath drops"), "{ports}");
}

fn gw_mac(n: &Node) -> String {
    n.ns.exec("cat /sys/class/net/vsw0/address")
        .trim()
        .to_string()
}
