//! End-to-end: one node namespace running vswitchd, pods attached by the
//! real CNI plugin over AF_XDP, real kernel traffic (ping, TCP).

use std::time::{Duration, Instant};

use vswitch_e2e::{require_root, serial, sh, sh_ok, tag, tcp_transfer, wait_for, Node};

fn ping(from: &vswitch_e2e::Netns, ip: &str) -> bool {
    from.ok(&format!("ping -c 2 -i 0.2 -W 1 {ip}"))
}

/// Host-side interface names of the pods, in ofport order (LOCAL excluded).
fn pod_ports(node: &Node) -> Vec<(u32, String)> {
    let v: serde_json::Value =
        serde_json::from_str(&node.vswitchd.ofctl(&["--json", "show"])).unwrap();
    v["ports"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["ofport"].as_u64().unwrap() < 0xffff_ff00)
        .map(|p| {
            (
                p["ofport"].as_u64().unwrap() as u32,
                p["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn pods_and_host_talk_ping_and_20mb_tcp() {
    if !require_root("pods_and_host_talk_ping_and_20mb_tcp") {
        return;
    }
    let _g = serial();
    let node = Node::start(&tag("nA"), 11, "");
    let a = node.pod(&tag("pA"));
    let b = node.pod(&tag("pB"));
    assert!(
        ping(&a.ns, &b.ip),
        "pod A -> pod B ping\n{}",
        node.vswitchd.log_text()
    );
    assert!(ping(&b.ns, &a.ip), "pod B -> pod A ping");
    assert!(ping(&a.ns, &node.gateway), "pod -> host (gateway) ping");
    assert!(ping(&node.ns, &b.ip), "host -> pod ping");
    assert!(
        tcp_transfer(&a.ns, &b.ns, &b.ip, 5001, 20_000_000),
        "20 MB pod A -> pod B"
    );
    assert!(
        tcp_transfer(&node.ns, &a.ns, &a.ip, 5002, 5_000_000),
        "5 MB host -> pod A"
    );
    assert!(
        tcp_transfer(&b.ns, &node.ns, &node.gateway, 5003, 5_000_000),
        "5 MB pod B -> host"
    );
    // The switch learned both pods and the host.
    let fdb = node.vswitchd.ofctl(&["fdb-show"]);
    assert!(fdb.lines().count() >= 4, "{fdb}");
    let ports = node.vswitchd.ofctl(&["dump-ports"]);
    assert!(ports.contains("rx pkts="), "{ports}");
}

#[test]
fn flows_control_forwarding_and_count() {
    if !require_root("flows_control_forwarding_and_count") {
        return;
    }
    let _g = serial();
    let node = Node::start(&tag("nB"), 12, "");
    let a = node.pod(&tag("pC"));
    let b = node.pod(&tag("pD"));
    assert!(ping(&a.ns, &b.ip));
    let ports = pod_ports(&node);
    assert_eq!(ports.len(), 2, "{ports:?}");
    let (pa, pb) = (ports[0].0, ports[1].0);

    // No flows: nothing is forwarded.
    node.vswitchd.ofctl(&["del-flows"]);
    assert!(!ping(&a.ns, &b.ip), "traffic must stop without flows");
    // Explicit port-to-port flows restore it, and count.
    node.vswitchd.ofctl(&[
        "add-flow",
        &format!("priority=10,in_port={pa} actions=output:{pb}"),
    ]);
    node.vswitchd.ofctl(&[
        "add-flow",
        &format!("priority=10,in_port={pb} actions=output:{pa}"),
    ]);
    assert!(ping(&a.ns, &b.ip), "explicit flows forward");
    let dump = node.vswitchd.ofctl(&["dump-flows"]);
    let counted = dump
        .lines()
        .filter(|l| l.contains(&format!("in_port={pa} ")) || l.contains(&format!("in_port={pa},")))
        .any(|l| !l.contains("n_packets=0,"));
    assert!(counted, "n_packets must count: {dump}");

    // A priority drop flow for ICMP blocks ping while TCP still passes.
    node.vswitchd
        .ofctl(&["add-flow", "priority=100,icmp actions=drop"]);
    assert!(!ping(&a.ns, &b.ip), "icmp drop flow blocks ping");
    assert!(
        tcp_transfer(&a.ns, &b.ns, &b.ip, 5004, 1_000_000),
        "tcp passes the icmp drop"
    );
    let trace = node
        .vswitchd
        .ofctl(&["trace", &format!("in_port={pa},icmp,nw_dst={}", b.ip)]);
    assert!(trace.contains("drop"), "{trace}");
}

#[test]
fn ten_thousand_flows_install_fast_and_list() {
    if !require_root("ten_thousand_flows_install_fast_and_list") {
        return;
    }
    let _g = serial();
    let node = Node::start(&tag("nC"), 13, "");
    let file = node.vswitchd.dir().join("flows.txt");
    let mut text = String::new();
    for i in 0..10_000u32 {
        text.push_str(&format!(
            "table=1,priority={},ip,nw_dst=10.{}.{}.{} actions=output:{}\n",
            100 + i % 50,
            (i >> 16) & 0xff,
            (i >> 8) & 0xff,
            i & 0xff,
            1 + i % 4
        ));
    }
    std::fs::write(&file, text).unwrap();
    let t = Instant::now();
    node.vswitchd.ofctl(&["add-flows", file.to_str().unwrap()]);
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "add-flows of 10,000 took {took:?}"
    );
    let dump = node.vswitchd.ofctl(&["dump-flows", "table=1"]);
    assert_eq!(dump.lines().count(), 10_000);
    // A bad line makes the whole file fail and changes nothing.
    std::fs::write(
        &file,
        "table=2,ip actions=output:1\ntable=2,ip,nw_dts=1.2.3.4 actions=drop\n",
    )
    .unwrap();
    assert!(!node
        .vswitchd
        .ofctl_ok(&["add-flows", file.to_str().unwrap()]));
    assert_eq!(
        node.vswitchd
            .ofctl(&["dump-flows", "table=2"])
            .lines()
            .count(),
        0
    );
}

#[test]
fn del_port_under_traffic_keeps_the_switch_alive() {
    if !require_root("del_port_under_traffic_keeps_the_switch_alive") {
        return;
    }
    let _g = serial();
    let node = Node::start(&tag("nD"), 14, "");
    let a = node.pod(&tag("pE"));
    let b = node.pod(&tag("pF"));
    let c = node.pod(&tag("pG"));
    assert!(ping(&a.ns, &b.ip));
    let ports = pod_ports(&node);
    let b_iface = &ports[1].1;
    // Flood pod B with UDP from pod A while B's port is removed.
    let mut flood = a.ns.spawn(&format!(
        "timeout 4 sh -c 'while true; do head -c 1000 /dev/zero | nc -u -w0 {} 9; done' >/dev/null 2>&1",
        b.ip
    ));
    std::thread::sleep(Duration::from_millis(500));
    node.vswitchd.ofctl(&["del-port", b_iface]);
    let _ = flood.wait();
    // The daemon is alive, B is gone, A and C still talk.
    let show = node.vswitchd.ofctl(&["show"]);
    assert!(!show.contains(b_iface.as_str()), "{show}");
    assert!(ping(&a.ns, &c.ip), "other pods keep forwarding");
}

#[test]
fn control_socket_refuses_an_unprivileged_user() {
    if !require_root("control_socket_refuses_an_unprivileged_user") {
        return;
    }
    let _g = serial();
    let node = Node::start(&tag("nE"), 15, "");
    let sock = node.vswitchd.socket.display().to_string();
    let ofctl = vswitch_e2e::bin("ofctl");
    // Let "nobody" reach the socket file so the daemon's own check is what refuses.
    sh(&format!(
        "chmod 0777 {} {sock}",
        node.vswitchd.dir().display()
    ));
    let out = sh_ok(&format!(
        "setpriv --reuid=65534 --regid=65534 --clear-groups {} --socket {sock} show",
        ofctl.display()
    ));
    assert!(!out, "an unprivileged uid must be refused");
    let o = vswitch_e2e::run(
        "setpriv",
        &[
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            ofctl.to_str().unwrap(),
            "--socket",
            &sock,
            "show",
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("permission denied"), "{err}");
    // Root still gets in.
    assert!(node.vswitchd.ofctl_ok(&["show"]));
}

#[test]
fn cni_del_removes_the_port_and_stop_cleans_up() {
    if !require_root("cni_del_removes_the_port_and_stop_cleans_up") {
        return;
    }
    let _g = serial();
    let mut node = Node::start(&tag("nF"), 16, "");
    let mut a = node.pod(&tag("pH"));
    let ports = pod_ports(&node);
    assert_eq!(ports.len(), 1);
    let iface = ports[0].1.clone();
    assert!(
        node.ns
            .ok(&format!("ip -d link show {iface} | grep -q xdp")),
        "AF_XDP program attached"
    );
    assert!(a.del().status.success());
    assert!(pod_ports(&node).is_empty(), "DEL removes the switch port");
    assert!(a.del().status.success(), "DEL twice succeeds");
    assert!(
        !node.ns.ok(&format!("ip link show {iface}")),
        "veth removed"
    );
    // SIGTERM: the host port goes away and the daemon exits cleanly.
    assert!(node.ns.ok("ip link show vsw0"));
    assert!(node.vswitchd.stop(), "clean exit on SIGTERM");
    assert!(wait_for(Duration::from_secs(2), || !node
        .ns
        .ok("ip link show vsw0")));
}

#[test]
fn control_socket_survives_malformed_requests_and_many_clients() {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixStream;
    if !require_root("control_socket_survives_malformed_requests_and_many_clients") {
        return;
    }
    let _g = serial();
    let node = Node::start(&tag("nG"), 17, "");
    let s = UnixStream::connect(&node.vswitchd.socket).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    let mut ask = |line: &str| -> serde_json::Value {
        w.write_all(line.as_bytes()).unwrap();
        w.write_all(b"\n").unwrap();
        let mut reply = String::new();
        r.read_line(&mut reply).unwrap();
        serde_json::from_str(&reply).unwrap_or_else(|e| panic!("reply {reply:?}: {e}"))
    };
    for bad in [
        "this is not json",
        r#"{"version":1}"#,
        r#"{"version":2,"request":{"cmd":"show"}}"#,
        r#"{"version":1,"request":{"cmd":"reboot"}}"#,
        r#"{"version":1,"request":{"cmd":"add-flows","flows":"ip,nw_dts=1.2.3.4 actions=drop"}}"#,
        r#"{"version":1,"request":{"cmd":"add-port","iface":"no-such-if0"}}"#,
    ] {
        let v = ask(bad);
        assert_eq!(v["ok"], false, "{bad} -> {v}");
        assert!(
            v["error"]
                .as_str()
                .is_some_and(|e| !e.is_empty() && !e.contains('\n')),
            "{v}"
        );
    }
    let v = ask(r#"{"version":1,"request":{"cmd":"add-port","iface":"no-such-if0"}}"#);
    assert!(
        v["error"].as_str().unwrap().contains("no-such-if0"),
        "error names the interface: {v}"
    );
    // The same connection still works.
    assert_eq!(ask(r#"{"version":1,"request":{"cmd":"show"}}"#)["ok"], true);
    // Many clients at once.
    let sock = node.vswitchd.socket.clone();
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let sock = sock.clone();
            std::thread::spawn(move || {
                let mut c = control::client::Client::connect(&sock).unwrap();
                for _ in 0..20 {
                    c.call(control::api::Request::DumpFlows {
                        filter: String::new(),
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn stop_removes_every_xdp_program() {
    if !require_root("stop_removes_every_xdp_program") {
        return;
    }
    let _g = serial();
    let mut node = Node::start(&tag("nH"), 18, "");
    let _a = node.pod(&tag("pI"));
    let ports = pod_ports(&node);
    let iface = ports[0].1.clone();
    assert!(node
        .ns
        .ok(&format!("ip -d link show {iface} | grep -q prog/xdp")));
    assert!(node.vswitchd.stop());
    assert!(
        !node
            .ns
            .ok(&format!("ip -d link show {iface} | grep -q prog/xdp")),
        "XDP program left on {iface} after SIGTERM"
    );
}

#[test]
fn restart_after_a_crash_restores_pods_and_forwarding() {
    if !require_root("restart_after_a_crash_restores_pods_and_forwarding") {
        return;
    }
    let _g = serial();
    let mut node = Node::start(&tag("nI"), 19, "");
    let a = node.pod(&tag("pJ"));
    let b = node.pod(&tag("pK"));
    assert!(ping(&a.ns, &b.ip));
    let before = pod_ports(&node);
    node.vswitchd.kill9();
    // The crash leaves libxdp's program on the veths: pods are cut off.
    assert!(!ping(&a.ns, &b.ip));
    node.vswitchd.launch();
    assert_eq!(
        pod_ports(&node),
        before,
        "pods re-attached with their port numbers"
    );
    assert!(
        ping(&a.ns, &b.ip),
        "forwarding resumes after restart\n{}",
        node.vswitchd.log_text()
    );
    assert!(node.vswitchd.stop());
    for (_, iface) in &before {
        assert!(
            !node
                .ns
                .ok(&format!("ip -d link show {iface} | grep -q prog/xdp")),
            "stale XDP program left on {iface}"
        );
    }
}
