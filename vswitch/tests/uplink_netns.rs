//! The uplink XDP program (`port::afxdp::steer`) on a real veth between
//! two throwaway network namespaces: the switch gets VXLAN to its VTEP and
//! nothing else; ARP, ping, TCP and every other UDP stay with the kernel.
//!
//! Each test builds namespace A (the node: the uplink end with the VTEP
//! 198.18.<net>.1/24 and a second address 198.18.<net>.3/24) and B (a peer
//! underlay host, 198.18.<net>.2/24), joined by a veth; names carry the
//! test and the pid, and a guard deletes both namespaces (and so the veth)
//! even when the test panics. The port is opened on a thread that has
//! `setns`-ed into A (sockets and XDP links keep their namespace when used
//! from other threads); ordinary sockets in each namespace are created the
//! same way; `ping` runs through `ip netns exec`.
//!
//! Needs root, `ip` (iproute2), `ping`, network namespaces and AF_XDP.
//! Without them a test prints `skipping: <reason>` and passes, unless `CI`
//! is set, where it fails.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use vswitch::pipeline::Batch;
use vswitch::port::afxdp::steer::{UplinkCounters, PROG_NAME, VXLAN_PORT};
use vswitch::port::afxdp::{AfXdpOptions, AfXdpPort, XdpAttach, XdpMode};
use vswitch::port::{PacketPool, Port};

/// Skips (prints why) or, under CI, fails.
fn skip(reason: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("required test environment missing under CI: {reason}");
    }
    let _ = writeln!(std::io::stderr(), "skipping: {reason}");
}

/// `Err(reason)` when this machine cannot run the namespace tests.
fn environment() -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("needs root (network namespaces, veth, XDP)".into());
    }
    for tool in [["ip", "-V"], ["ping", "-V"]] {
        match Command::new(tool[0]).arg(tool[1]).output() {
            Ok(o) if o.status.success() => {}
            _ => return Err(format!("`{}` not found", tool[0])),
        }
    }
    if !std::path::Path::new("/proc/self/ns/net").exists() {
        return Err("kernel without network namespaces".into());
    }
    Ok(())
}

fn run(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{args:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Namespaces A (node) and B (peer) joined by a veth; deleted on drop.
struct Underlay {
    a: String,
    b: String,
    /// The uplink: A's end of the veth.
    a_if: String,
    net: u8,
}

impl Underlay {
    /// `tag`: 2 letters naming the test (interface names stay <= 15).
    fn new(tag: &str, net: u8, mtu: u32) -> Result<Underlay, String> {
        let pid = std::process::id() % 100_000;
        let u = Underlay {
            a: format!("vswu-{tag}a-{pid}"),
            b: format!("vswu-{tag}b-{pid}"),
            a_if: format!("ua{tag}{pid}"),
            net,
        };
        let b_if = format!("ub{tag}{pid}");
        // Leftovers of an earlier run with the same pid.
        u.cleanup();
        run(&["ip", "netns", "add", &u.a])?;
        run(&["ip", "netns", "add", &u.b])?;
        let mtu = mtu.to_string();
        let ip = |host: u8| format!("198.18.{net}.{host}/24");
        for cmd in [
            vec![
                "ip", "link", "add", &u.a_if, "mtu", &mtu, "netns", &u.a, "type", "veth", "peer",
                "name", &b_if, "mtu", &mtu, "netns", &u.b,
            ],
            vec!["ip", "-n", &u.a, "addr", "add", &ip(1), "dev", &u.a_if],
            vec!["ip", "-n", &u.a, "addr", "add", &ip(3), "dev", &u.a_if],
            vec!["ip", "-n", &u.b, "addr", "add", &ip(2), "dev", &b_if],
            vec!["ip", "-n", &u.a, "link", "set", "lo", "up"],
            vec!["ip", "-n", &u.b, "link", "set", "lo", "up"],
            vec!["ip", "-n", &u.a, "link", "set", &u.a_if, "up"],
            vec!["ip", "-n", &u.b, "link", "set", &b_if, "up"],
        ] {
            run(&cmd)?;
        }
        // Until the kernel's link watch has run, a veth end has `qdisc
        // noop` and drops what is sent on it.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let a = run(&["ip", "-n", &u.a, "link", "show", &u.a_if])?;
            let b = run(&["ip", "-n", &u.b, "link", "show", &b_if])?;
            let ready = |l: &str| l.contains("state UP") && !l.contains("qdisc noop");
            if ready(&a) && ready(&b) {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("veth not up after 5 s:\n{a}{b}"));
            }
            thread::sleep(Duration::from_millis(10));
        }
        Ok(u)
    }

    fn cleanup(&self) {
        // Deleting a namespace deletes the veth end in it, and so the pair.
        let _ = run(&["ip", "netns", "del", &self.a]);
        let _ = run(&["ip", "netns", "del", &self.b]);
    }

    fn addr(&self, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.net, host)
    }

    /// The VTEP: A's first address.
    fn vtep(&self) -> Ipv4Addr {
        self.addr(1)
    }

    /// `ip -d link show` of the uplink.
    fn uplink_link(&self) -> String {
        run(&["ip", "-n", &self.a, "-d", "link", "show", &self.a_if]).unwrap_or_else(|e| e)
    }

    /// Runs `f` on a thread inside namespace `ns`.
    fn in_ns<T: Send + 'static>(
        ns: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> thread::JoinHandle<T> {
        let path = format!("/run/netns/{ns}");
        thread::spawn(move || {
            let file = File::open(&path).expect("open netns");
            nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
    }

    fn in_a<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        Underlay::in_ns(&self.a, f).join().expect("thread in A")
    }

    fn in_b<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        Underlay::in_ns(&self.b, f).join().expect("thread in B")
    }

    /// Opens the steered port on the uplink, inside A.
    fn open_uplink(&self, mode: XdpMode) -> Result<AfXdpPort, vswitch::port::open::PortError> {
        let (iface, vtep) = (self.a_if.clone(), self.vtep());
        self.in_a(move || {
            let opts = AfXdpOptions {
                mode,
                ..AfXdpOptions::default()
            };
            AfXdpPort::open_uplink(&iface, 0, vtep, VXLAN_PORT, &opts)
        })
    }

    /// Sends one datagram per payload from B (198.18.<net>.2) to `to`.
    fn send_from_b(&self, to: SocketAddrV4, payloads: Vec<Vec<u8>>) {
        let from = SocketAddrV4::new(self.addr(2), 0);
        self.in_b(move || {
            let s = UdpSocket::bind(from).expect("bind sender in B");
            for p in payloads {
                s.send_to(&p, to).expect("send from B");
                thread::sleep(Duration::from_millis(10));
            }
        });
    }

    /// `ping` from namespace `ns` to `to`: 3 echoes, all answered.
    fn ping(&self, ns: &str, to: Ipv4Addr) -> Result<String, String> {
        run(&[
            "ip",
            "netns",
            "exec",
            ns,
            "ping",
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "2",
            &to.to_string(),
        ])
    }
}

impl Drop for Underlay {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// Whether `ip -d link show` lists an XDP program.
fn has_xdp(link: &str) -> bool {
    link.split_whitespace()
        .any(|w| w.starts_with("xdp") || w.starts_with("prog/xdp"))
}

/// Waits up to 2 s for `ip -d link show` of the uplink to lose its program.
fn no_xdp_soon(u: &Underlay) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let link = u.uplink_link();
        if !has_xdp(&link) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(link);
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// A VXLAN header (flags: VNI valid; VNI 42) followed by `text`.
fn vxlan(text: &str) -> Vec<u8> {
    let mut v = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
    v.extend_from_slice(text.as_bytes());
    v
}

/// (IPv4 destination, UDP destination port, UDP payload) of a frame.
fn udp_of(frame: &[u8]) -> Option<(Ipv4Addr, u16, Vec<u8>)> {
    let p = etherparse::SlicedPacket::from_ethernet(frame).ok()?;
    let dst = match p.net? {
        etherparse::NetSlice::Ipv4(ip) => ip.header().destination_addr(),
        _ => return None,
    };
    match p.transport? {
        etherparse::TransportSlice::Udp(u) => {
            Some((dst, u.destination_port(), u.payload().to_vec()))
        }
        _ => None,
    }
}

/// Everything the port receives within `limit` (or until `want` frames
/// arrived), as (destination, port, payload); non-UDP frames as `None`.
fn receive(
    port: &mut AfXdpPort,
    want: usize,
    limit: Duration,
) -> Vec<Option<(Ipv4Addr, u16, Vec<u8>)>> {
    let mut pool = PacketPool::new(256);
    let mut batch = Batch::new(1);
    let mut got = Vec::new();
    let deadline = Instant::now() + limit;
    while got.len() < want && Instant::now() < deadline {
        if port.rx_burst(&mut pool, &mut batch) == 0 {
            port.kick();
            thread::sleep(Duration::from_millis(2));
            continue;
        }
        for &d in batch.descs() {
            got.push(udp_of(pool.data(d)));
            pool.free(d);
        }
        batch.clear();
    }
    got
}

/// A UDP socket bound in A, with a short read timeout.
fn listen_in_a(u: &Underlay, at: SocketAddrV4) -> UdpSocket {
    let s = u.in_a(move || UdpSocket::bind(at).expect("bind listener in A"));
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    s
}

/// The next datagram on `s`, if one comes within its timeout.
fn recv_text(s: &UdpSocket) -> Option<Vec<u8>> {
    let mut buf = [0u8; 2048];
    s.recv(&mut buf).ok().map(|n| buf[..n].to_vec())
}

fn counters(port: &AfXdpPort) -> UplinkCounters {
    port.steering()
        .expect("an uplink port has its steering")
        .counters()
        .expect("read uplink counters")
}

/// Opens the uplink port or explains why the test cannot run.
fn open_or_skip(u: &Underlay, mode: XdpMode) -> Option<AfXdpPort> {
    match u.open_uplink(mode) {
        Ok(p) => Some(p),
        Err(e) if e.errno() == Some(libc::EAFNOSUPPORT) => {
            skip(&format!("kernel without AF_XDP: {e}"));
            None
        }
        Err(e) => panic!("{e}"),
    }
}

/// A TCP exchange B -> A (198.18.<net>.1:5001): 256 KiB up, a count back.
fn tcp_b_to_a(u: &Underlay) -> Result<usize, String> {
    const LEN: usize = 256 * 1024;
    let at = SocketAddrV4::new(u.vtep(), 5001);
    let listener = u.in_a(move || TcpListener::bind(at).expect("bind TCP in A"));
    let server = thread::spawn(move || -> std::io::Result<usize> {
        let (mut s, _) = listener.accept()?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0;
        while total < LEN {
            match s.read(&mut buf)? {
                0 => break,
                n => total += n,
            }
        }
        s.write_all(format!("got {total}").as_bytes())?;
        Ok(total)
    });
    let reply = u.in_b(move || -> std::io::Result<String> {
        let mut s = TcpStream::connect_timeout(&at.into(), Duration::from_secs(3))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(&vec![0x5a; LEN])?;
        let mut r = String::new();
        s.read_to_string(&mut r)?;
        Ok(r)
    });
    let total = server
        .join()
        .expect("server thread")
        .map_err(|e| format!("server: {e}"))?;
    let reply = reply.map_err(|e| format!("client: {e}"))?;
    if reply != format!("got {LEN}") || total != LEN {
        return Err(format!(
            "server read {total} of {LEN}, client got {reply:?}"
        ));
    }
    Ok(total)
}

#[test]
fn uplink_steers_only_vxlan_to_the_vtep() {
    if let Err(r) = environment() {
        return skip(&r);
    }
    let u = Underlay::new("st", 90, 1500).expect("topology");
    let started = Instant::now();
    let Some(mut port) = open_or_skip(&u, XdpMode::Auto) else {
        return;
    };
    let detail = port.detail();
    println!("uplink open in {:?}: {detail}", started.elapsed());
    let link = u.uplink_link();
    assert_eq!(port.attach(), XdpAttach::Native, "veth at MTU 1500: native");
    assert!(
        detail.starts_with(&format!(
            "xdp=native prog={PROG_NAME} vtep=198.18.90.1:4789 "
        )),
        "{detail}"
    );
    let prog_id = port.steering().unwrap().prog_id();
    assert!(prog_id > 0, "{detail}");
    assert!(
        link.contains(&format!("prog/xdp id {prog_id}")),
        "our program is not the one attached:\n{link}"
    );

    let own = listen_in_a(&u, SocketAddrV4::new(u.vtep(), VXLAN_PORT));
    let other_addr = listen_in_a(&u, SocketAddrV4::new(u.addr(3), VXLAN_PORT));
    let other_port = listen_in_a(&u, SocketAddrV4::new(u.vtep(), VXLAN_PORT + 1));
    let c0 = counters(&port);

    // (a) VXLAN to the VTEP: on the AF_XDP socket, not in the kernel.
    let sent: Vec<Vec<u8>> = (0..5).map(|i| vxlan(&format!("uplink-a-{i}"))).collect();
    u.send_from_b(SocketAddrV4::new(u.vtep(), VXLAN_PORT), sent.clone());
    let got = receive(&mut port, 5, Duration::from_secs(5));
    let want: Vec<_> = sent
        .iter()
        .map(|p| Some((u.vtep(), VXLAN_PORT, p.clone())))
        .collect();
    assert_eq!(
        got, want,
        "(a) the port must receive exactly the 5 datagrams"
    );
    assert_eq!(
        recv_text(&own),
        None,
        "(a) the kernel's listener on the VTEP:4789 received a datagram meant for the switch"
    );
    let c1 = counters(&port);
    println!("(a) 5/5 on AF_XDP, none in the kernel; counters {c0:?} -> {c1:?}");
    assert_eq!(c1.redirected - c0.redirected, 5, "(e) {c0:?} -> {c1:?}");
    assert_eq!(c1.unbound, c0.unbound, "(e) {c0:?} -> {c1:?}");

    // (c) VXLAN to another address and UDP to another port of the VTEP:
    // the kernel's.
    u.send_from_b(
        SocketAddrV4::new(u.addr(3), VXLAN_PORT),
        vec![vxlan("uplink-c-addr")],
    );
    u.send_from_b(
        SocketAddrV4::new(u.vtep(), VXLAN_PORT + 1),
        vec![vxlan("uplink-c-port")],
    );
    assert_eq!(
        recv_text(&other_addr),
        Some(vxlan("uplink-c-addr")),
        "(c) VXLAN to 198.18.90.3 must reach the kernel"
    );
    assert_eq!(
        recv_text(&other_port),
        Some(vxlan("uplink-c-port")),
        "(c) UDP to the VTEP's port 4790 must reach the kernel"
    );
    let stray = receive(&mut port, 1, Duration::from_millis(300));
    assert!(stray.is_empty(), "(c) the port received {stray:?}");
    let c2 = counters(&port);
    println!("(c) both in the kernel, none on AF_XDP; counters {c2:?}");
    assert_eq!(c2.redirected, c1.redirected, "(e) {c1:?} -> {c2:?}");
    assert!(c2.passed >= c1.passed + 2, "(e) {c1:?} -> {c2:?}");

    // (b) ARP, ping and TCP between the underlay addresses.
    run(&["ip", "-n", &u.b, "neigh", "flush", "all"]).expect("flush B's neighbours");
    run(&["ip", "-n", &u.a, "neigh", "flush", "all"]).expect("flush A's neighbours");
    u.ping(&u.b, u.vtep())
        .unwrap_or_else(|e| panic!("(b) ping B -> A with the program attached: {e}"));
    u.ping(&u.a, u.addr(2))
        .unwrap_or_else(|e| panic!("(b) ping A -> B with the program attached: {e}"));
    let neigh = run(&["ip", "-n", &u.b, "neigh", "show", &u.vtep().to_string()]).unwrap();
    assert!(neigh.contains("lladdr"), "(b) B did not resolve A: {neigh}");
    let bytes = tcp_b_to_a(&u).unwrap_or_else(|e| panic!("(b) TCP B -> A: {e}"));
    let c3 = counters(&port);
    println!("(b) ARP, ping both ways, TCP {bytes} bytes ok; counters {c3:?}");
    assert_eq!(c3.redirected, c2.redirected, "(e) {c2:?} -> {c3:?}");
    // At least: 3 echo requests, 3 echo replies, an ARP, the TCP segments.
    assert!(c3.passed >= c2.passed + 10, "(e) {c2:?} -> {c3:?}");
    assert_eq!(c3.unbound, c0.unbound, "(e) {c0:?} -> {c3:?}");

    let stats = port.xdp_stats().expect("XDP_STATISTICS");
    println!("port counters {:?}\nxdp stats {stats:?}", port.counters());
    assert_eq!(port.counters().rx_packets, 5, "{:?}", port.counters());

    // (d) dropping the port (the last holder of the program) detaches it.
    drop(port);
    no_xdp_soon(&u).unwrap_or_else(|l| panic!("(d) XDP program left after drop:\n{l}"));
    // And the kernel owns port 4789 of the VTEP again.
    u.send_from_b(
        SocketAddrV4::new(u.vtep(), VXLAN_PORT),
        vec![vxlan("uplink-d")],
    );
    assert_eq!(recv_text(&own), Some(vxlan("uplink-d")), "(d) after drop");
}

#[test]
fn uplink_falls_back_to_skb_mode_when_native_is_refused() {
    if let Err(r) = environment() {
        return skip(&r);
    }
    // veth refuses native XDP when the peer MTU exceeds ~3506 (ERANGE).
    let u = Underlay::new("jm", 91, 9000).expect("topology");
    let Some(mut port) = open_or_skip(&u, XdpMode::Auto) else {
        return;
    };
    let detail = port.detail();
    println!("uplink at MTU 9000: {detail}");
    assert_eq!(port.attach(), XdpAttach::Skb, "{detail}");
    assert!(
        detail.starts_with(&format!("xdp=skb prog={PROG_NAME} vtep=198.18.91.1:4789 ")),
        "{detail}"
    );
    assert!(
        u.uplink_link().contains("xdpgeneric"),
        "{}",
        u.uplink_link()
    );

    let own = listen_in_a(&u, SocketAddrV4::new(u.vtep(), VXLAN_PORT));
    u.send_from_b(
        SocketAddrV4::new(u.vtep(), VXLAN_PORT),
        vec![vxlan("skb-0"), vxlan("skb-1")],
    );
    let got = receive(&mut port, 2, Duration::from_secs(5));
    assert_eq!(got.len(), 2, "generic mode redirects too: {got:?}");
    assert_eq!(
        recv_text(&own),
        None,
        "generic mode: kernel got a VXLAN datagram"
    );
    u.ping(&u.b, u.vtep())
        .unwrap_or_else(|e| panic!("ping B -> A in generic mode: {e}"));
    let c = counters(&port);
    println!("counters {c:?}");
    assert_eq!(c.redirected, 2, "{c:?}");
    assert!(c.passed >= 3, "{c:?}");

    drop(port);
    no_xdp_soon(&u).unwrap_or_else(|l| panic!("XDP program left after drop:\n{l}"));
}

#[test]
fn uplink_skb_mode_on_request_and_a_second_uplink_is_refused() {
    if let Err(r) = environment() {
        return skip(&r);
    }
    let u = Underlay::new("sk", 92, 1500).expect("topology");
    let Some(port) = open_or_skip(&u, XdpMode::Skb) else {
        return;
    };
    assert_eq!(port.attach(), XdpAttach::Skb, "{}", port.detail());
    assert!(
        u.uplink_link().contains("xdpgeneric"),
        "{}",
        u.uplink_link()
    );
    // A live link is never replaced: a second uplink program on the same
    // interface fails and names the interface and the step.
    let err = u
        .open_uplink(XdpMode::Auto)
        .expect_err("a second uplink program must not replace a live one");
    let msg = err.to_string();
    println!("second uplink: {msg}");
    assert!(msg.contains(&u.a_if), "{msg}");
    assert!(msg.contains("clear stale XDP program"), "{msg}");
    assert_eq!(err.errno(), Some(libc::EBUSY), "{msg}");
    // The first one is untouched.
    assert!(
        u.uplink_link().contains("xdpgeneric"),
        "{}",
        u.uplink_link()
    );
    drop(port);
    no_xdp_soon(&u).unwrap_or_else(|l| panic!("XDP program left after drop:\n{l}"));
}

/// Child half of the crash test: in the namespace it was started in (by
/// `ip netns exec`), opens the port named by `VSW_UPLINK_CHILD`
/// (`libxdp:<iface>` or `uplink:<iface>:<vtep>`) and waits to be killed.
/// A no-op in a normal run.
#[test]
fn uplink_child() {
    let Ok(spec) = std::env::var("VSW_UPLINK_CHILD") else {
        return;
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let opts = AfXdpOptions::default();
    let _port = match parts[..] {
        ["libxdp", iface] => AfXdpPort::open(iface, 0, &opts).expect("child open libxdp"),
        ["uplink", iface, vtep] => {
            AfXdpPort::open_uplink(iface, 0, vtep.parse().unwrap(), VXLAN_PORT, &opts)
                .expect("child open uplink")
        }
        _ => panic!("bad VSW_UPLINK_CHILD {spec}"),
    };
    println!("child-ready");
    thread::sleep(Duration::from_secs(30));
}

/// Kills the child even when the test panics first.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts [`uplink_child`] in namespace `ns` and waits until its port is open.
fn spawn_child(ns: &str, spec: &str) -> Child {
    let exe = std::env::current_exe().unwrap();
    let mut child = Child(
        Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(exe)
            .args(["--exact", "uplink_child", "--nocapture"])
            .env("VSW_UPLINK_CHILD", spec)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn child"),
    );
    let mut out = std::io::BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("child-ready") {
        line.clear();
        if std::io::BufRead::read_line(&mut out, &mut line).unwrap() == 0 {
            panic!("child ({spec}) exited before opening its port");
        }
    }
    child
}

#[test]
fn uplink_clears_a_stale_program_and_leaves_nothing_after_sigkill() {
    if let Err(r) = environment() {
        return skip(&r);
    }
    let u = Underlay::new("kl", 93, 1500).expect("topology");

    // A switch killed while it used libxdp's program leaves it attached.
    drop(spawn_child(&u.a, &format!("libxdp:{}", u.a_if)));
    let stale = u.uplink_link();
    assert!(
        has_xdp(&stale),
        "libxdp's program should outlive SIGKILL:\n{stale}"
    );
    // The uplink replaces it and works.
    let Some(mut port) = open_or_skip(&u, XdpMode::Auto) else {
        return;
    };
    println!("after a stale libxdp program: {}", port.detail());
    let prog_id = port.steering().unwrap().prog_id();
    assert!(
        u.uplink_link().contains(&format!("prog/xdp id {prog_id}")),
        "{}",
        u.uplink_link()
    );
    u.send_from_b(SocketAddrV4::new(u.vtep(), VXLAN_PORT), vec![vxlan("kl-0")]);
    let got = receive(&mut port, 1, Duration::from_secs(5));
    assert_eq!(got, [Some((u.vtep(), VXLAN_PORT, vxlan("kl-0")))]);
    drop(port);
    no_xdp_soon(&u).unwrap_or_else(|l| panic!("XDP program left after drop:\n{l}"));

    // A switch killed while it used the uplink program leaves nothing:
    // the BPF link dies with the process.
    let child = spawn_child(&u.a, &format!("uplink:{}:{}", u.a_if, u.vtep()));
    assert!(has_xdp(&u.uplink_link()), "{}", u.uplink_link());
    drop(child);
    no_xdp_soon(&u).unwrap_or_else(|l| panic!("XDP program left after SIGKILL:\n{l}"));
    u.ping(&u.b, u.vtep())
        .unwrap_or_else(|e| panic!("ping after the crash: {e}"));
}
