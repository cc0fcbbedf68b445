//! End-to-end: ClusterIP Services through conntrack and DNAT, with backends
//! on two nodes of the overlay; reverse NAT on replies; endpoint changes that
//! move only new connections.

use std::collections::BTreeMap;
use std::time::Duration;

use vswitch_e2e::{
    overlay_keys, peer_toml, require_root, serial, tag, underlay, wait_for, Netns, Node, Pod,
};

fn script(name: &str) -> String {
    format!("{}/scripts/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A node with one remote node `peer`, VNI 5.
fn node(ns: Netns, octet: u8, net: u8, me: u8, peer: u8, peer_octet: u8) -> Node {
    Node::start_in(
        ns,
        octet,
        &overlay_keys(net, me, 5),
        &peer_toml(net, peer, peer_octet, None),
    )
}

fn counts(lines: &str) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for l in lines.lines() {
        if let Some(name) = l.split_whitespace().next() {
            *m.entry(name.to_string()).or_default() += 1;
        }
    }
    m
}

/// A `svc_server.py` backend named `name` on port 8080 of `pod`, listening
/// when this returns; stopped when dropped (also when a test fails).
struct Server(std::process::Child);

fn serve(pod: &Pod, name: &str) -> Server {
    let child = pod.ns.spawn(&format!(
        "exec python3 {} {name} {} 8080",
        script("svc_server.py"),
        pod.ip
    ));
    assert!(
        wait_for(Duration::from_secs(5), || pod
            .ns
            .ok("ss -ltn | grep -q :8080")),
        "backend {name} listens on {}:8080",
        pod.ip
    );
    Server(child)
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn cluster_ip_balances_over_two_nodes_and_keeps_established_connections() {
    if !require_root("cluster_ip_balances_over_two_nodes_and_keeps_established_connections") {
        return;
    }
    let _g = serial();
    let (na, nb) = (Netns::new(&tag("sa")), Netns::new(&tag("sb")));
    let _ul = underlay(&tag("su"), 11, &[&na, &nb]);
    let a = node(na, 51, 11, 1, 2, 52);
    let b = node(nb, 52, 11, 2, 1, 51);
    let client = a.pod(&tag("scl"));
    let be1 = a.pod(&tag("sb1"));
    let be2 = b.pod(&tag("sb2"));
    let _servers = (serve(&be1, "be1"), serve(&be2, "be2"));
    // The Service, on the client's node (kube-proxy style: every node knows every Service).
    a.vswitchd.ofctl(&[
        "add-service",
        "default/web",
        "10.96.0.10:80/tcp",
        &format!("{}:8080", be1.ip),
        &format!("{}:8080", be2.ip),
    ]);
    let out = client.ns.exec(&format!(
        "python3 {} ids 10.96.0.10 80 40",
        script("svc_client.py")
    ));
    let c = counts(&out);
    assert_eq!(
        c.values().sum::<usize>(),
        40,
        "{out}\n{}",
        a.vswitchd.log_text()
    );
    assert!(
        c.get("be1").copied().unwrap_or(0) > 0 && c.get("be2").copied().unwrap_or(0) > 0,
        "both backends serve: {c:?}"
    );
    // Backends see the client's own address (DNAT only, no SNAT).
    assert!(out.lines().all(|l| l.ends_with(&client.ip)), "{out}");
    let ct = a.vswitchd.ofctl(&["dump-conntrack"]);
    assert!(ct.contains("10.96.0.10"), "{ct}");

    // A long stream, then the endpoints change to the *other* backend
    // only: the stream survives, new connections all go to the one left.
    let mut stream = client.ns.spawn(&format!(
        "python3 {} stream 10.96.0.10 80 3000000",
        script("svc_client.py")
    ));
    let mut first = String::new();
    {
        use std::io::BufRead;
        let out = stream.stdout.as_mut().unwrap();
        std::io::BufReader::new(out).read_line(&mut first).unwrap();
    }
    let (gone, kept, kept_ip) = if first.contains("be1") {
        ("be1", "be2", be2.ip.clone())
    } else {
        ("be2", "be1", be1.ip.clone())
    };
    assert!(first.contains(gone), "{first}");
    a.vswitchd.ofctl(&[
        "add-service",
        "default/web",
        "10.96.0.10:80/tcp",
        &format!("{kept_ip}:8080"),
    ]);
    let out = client.ns.exec(&format!(
        "python3 {} ids 10.96.0.10 80 10",
        script("svc_client.py")
    ));
    assert_eq!(
        counts(&out).get(kept),
        Some(&10),
        "new connections go to the remaining backend: {out}"
    );
    let s = stream.wait_with_output().unwrap();
    let s = String::from_utf8_lossy(&s.stdout);
    assert!(
        s.contains("received 3000000 intact"),
        "established stream to {gone} survives the change: {s}"
    );

    // Deleting the Service stops new connections.
    a.vswitchd.ofctl(&["del-service", "default/web"]);
    assert!(!client.ns.ok(&format!(
        "timeout 8 python3 {} ids 10.96.0.10 80 1",
        script("svc_client.py")
    )));
}

#[test]
fn a_full_conntrack_table_refuses_new_connections_but_keeps_established_ones() {
    if !require_root("a_full_conntrack_table_refuses_new_connections_but_keeps_established_ones") {
        return;
    }
    let _g = serial();
    let (na, nb) = (Netns::new(&tag("fa")), Netns::new(&tag("fb")));
    let _ul = underlay(&tag("fu"), 12, &[&na, &nb]);
    // A tiny table: 6 connections.
    let a = Node::start_in(
        na,
        61,
        &overlay_keys(12, 1, 5),
        &format!("\n[datapath]\nct_max = 6\n{}", peer_toml(12, 2, 62, None)),
    );
    let _b = node(nb, 62, 12, 2, 1, 61);
    let client = a.pod(&tag("fcl"));
    let be = a.pod(&tag("fbe"));
    let _server = serve(&be, "be");
    a.vswitchd.ofctl(&[
        "add-service",
        "default/full",
        "10.96.0.20:80/tcp",
        &format!("{}:8080", be.ip),
    ]);
    // An established transfer first...
    let stream = client.ns.spawn(&format!(
        "python3 {} stream 10.96.0.20 80 2000000",
        script("svc_client.py")
    ));
    std::thread::sleep(Duration::from_millis(500));
    // ...then many short connections: the table fills and new ones are refused.
    let _ = client.ns.ok(&format!(
        "timeout 20 python3 {} ids 10.96.0.20 80 12",
        script("svc_client.py")
    ));
    let ct = a.vswitchd.ofctl(&["dump-conntrack"]);
    let stats = ct.lines().last().unwrap_or_default().to_string();
    let refused: u64 = stats
        .split_whitespace()
        .find_map(|w| w.strip_prefix("refused="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no refused= in {stats:?}"));
    assert!(refused > 0, "the full table refuses new connections: {ct}");
    let s = stream.wait_with_output().unwrap();
    let s = String::from_utf8_lossy(&s.stdout);
    assert!(
        s.contains("received 2000000 intact"),
        "the established transfer completes: {s}"
    );
}

#[test]
fn hairpin_a_pod_reaching_itself_through_its_service() {
    if !require_root("hairpin_a_pod_reaching_itself_through_its_service") {
        return;
    }
    let _g = serial();
    let na = Netns::new(&tag("ha"));
    let _ul = underlay(&tag("hu"), 13, &[&na]);
    let a = Node::start_in(na, 71, &overlay_keys(13, 1, 5), "");
    let be = a.pod(&tag("hbe"));
    let other = a.pod(&tag("hot"));
    let _server = serve(&be, "be");
    // The pod is the Service's only endpoint: every connection it makes to
    // the VIP lands on itself.
    a.vswitchd.ofctl(&[
        "add-service",
        "default/self",
        "10.96.0.30:80/tcp",
        &format!("{}:8080", be.ip),
    ]);
    let flows = a.vswitchd.ofctl(&["dump-flows"]);
    let be_port = flows
        .lines()
        .find(|l| l.contains(&format!("nw_dst={} actions", be.ip)) && l.contains("IN_PORT"))
        .and_then(|l| l.split("in_port=").nth(1))
        .and_then(|r| r.split(',').next())
        .unwrap_or_else(|| panic!("no hairpin return flow for {}: {flows}", be.ip))
        .to_string();
    let out = be.ns.spawn(&format!(
        "timeout 30 python3 {} ids 10.96.0.30 80 10",
        script("svc_client.py")
    ));
    let out = out.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&out.stdout).to_string();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.len(),
        10,
        "{out}\nflows:\n{}\nconntrack:\n{}\nports:\n{}\ntrace of a SYN:\n{}",
        a.vswitchd.ofctl(&["dump-flows"]),
        a.vswitchd.ofctl(&["dump-conntrack"]),
        a.vswitchd.ofctl(&["dump-ports"]),
        a.vswitchd.ofctl(&[
            "trace",
            &format!(
                "in_port={},tcp,nw_src={},nw_dst=10.96.0.30,tp_src=40000,tp_dst=80,tcp_flags=+syn",
                be_port, be.ip
            )
        ]),
    );
    // The client saw the VIP as its peer (svc_client asserts it); the
    // server saw the gateway, not itself (the masquerade).
    assert!(
        lines.iter().all(|l| *l == format!("be {}", a.gateway)),
        "hairpin connections come from the gateway: {out}"
    );
    // A long hairpin stream is intact (every segment both ways NATed twice).
    let s = be.ns.exec(&format!(
        "python3 {} stream 10.96.0.30 80 2000000",
        script("svc_client.py")
    ));
    assert!(s.contains("received 2000000 intact"), "{s}");
    // Another pod is not masqueraded.
    let out = other.ns.exec(&format!(
        "python3 {} ids 10.96.0.30 80 3",
        script("svc_client.py")
    ));
    assert!(
        out.lines().count() == 3 && out.lines().all(|l| l == format!("be {}", other.ip)),
        "{out}"
    );
    // The masquerade is a zone-2 entry: source rewritten to the gateway.
    let ct = a.vswitchd.ofctl(&["dump-conntrack", "--zone", "2"]);
    assert!(
        ct.contains(&format!("src={}", be.ip)) && ct.contains(&format!("dst={}", a.gateway)),
        "{ct}"
    );
}
