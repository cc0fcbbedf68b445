//! Kernel ports against real veth pairs in throwaway network namespaces.
//!
//! Each test builds its own namespace and veth pair (names carry the test
//! and the pid; addresses are 10.244.x.y inside the namespace only) behind a
//! guard whose `Drop` deletes them even when the test panics. The port under
//! test sits on the root-side end; the namespace side is driven from a
//! thread that has `setns`-ed into the namespace, with ordinary UDP sockets.
//!
//! Needs root, `ip` (iproute2), network namespaces and, for the AF_XDP
//! tests, a kernel with AF_XDP. Without them a test prints
//! `skipping: <reason>` and passes, unless `CI` is set, where it fails.
#![expect(
    unsafe_code,
    reason = "poll() on a port's raw fd needs BorrowedFd::borrow_raw"
)]

use std::fs::File;
use std::io::Write as _;
use std::net::UdpSocket;
use std::os::fd::{AsFd, BorrowedFd};
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use vswitch::pipeline::Batch;
use vswitch::port::afpacket::AfPacketPort;
use vswitch::port::afxdp::{AfXdpOptions, AfXdpPort, XdpAttach, XdpMode};
use vswitch::port::open::{open_port, Backend};
use vswitch::port::{PacketPool, Port};

const NS_MAC: [u8; 6] = [0x02, 0x00, 0x0a, 0xf4, 0x00, 0x01];
const PEER_MAC: [u8; 6] = [0x02, 0x00, 0x0a, 0xf4, 0x00, 0x02];

/// Skips (prints why) or, under CI, fails.
fn skip(reason: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("required test environment missing under CI: {reason}");
    }
    // Straight to stderr, past the harness's output capture, so a skip
    // shows in a plain `cargo test`.
    let _ = writeln!(std::io::stderr(), "skipping: {reason}");
}

/// `Err(reason)` when this machine cannot run the namespace tests.
fn environment() -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("needs root (network namespaces, veth, XDP)".into());
    }
    match Command::new("ip").arg("-V").output() {
        Ok(o) if o.status.success() => {}
        _ => return Err("iproute2 `ip` not found".into()),
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
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A namespace `ns` with `eth0` (10.244.<net>.1/24, MAC [`NS_MAC`]), whose
/// veth peer `host` is in the root namespace, up, without an address.
/// 10.244.<net>.2 resolves statically to [`PEER_MAC`]. Deleted on drop.
struct Topo {
    ns: String,
    host: String,
    net: u8,
}

impl Topo {
    /// `tag`: 2-3 letters naming the test (interface names stay <= 15).
    fn new(tag: &str, net: u8, mtu: u32) -> Result<Topo, String> {
        let pid = std::process::id() % 100_000;
        let t = Topo {
            ns: format!("vswt-{tag}-{pid}"),
            host: format!("vx{tag}{pid}"),
            net,
        };
        assert!(t.host.len() <= 15, "{}", t.host);
        // Leftovers of an earlier run with the same pid.
        t.cleanup();
        let mtu = mtu.to_string();
        let addr = format!("10.244.{net}.1/24");
        let peer = format!("10.244.{net}.2");
        let mac = mac_str(NS_MAC);
        let peer_mac = mac_str(PEER_MAC);
        run(&["ip", "netns", "add", &t.ns])?;
        for cmd in [
            vec![
                "ip", "link", "add", &t.host, "mtu", &mtu, "type", "veth", "peer", "name", "eth0",
                "mtu", &mtu, "netns", &t.ns,
            ],
            vec!["ip", "-n", &t.ns, "link", "set", "eth0", "address", &mac],
            vec!["ip", "-n", &t.ns, "addr", "add", &addr, "dev", "eth0"],
            vec!["ip", "-n", &t.ns, "link", "set", "lo", "up"],
            vec!["ip", "-n", &t.ns, "link", "set", "eth0", "up"],
            vec![
                "ip",
                "-n",
                &t.ns,
                "neigh",
                "replace",
                &peer,
                "lladdr",
                &peer_mac,
                "dev",
                "eth0",
                "nud",
                "permanent",
            ],
            vec!["ip", "link", "set", &t.host, "up"],
        ] {
            run(&cmd)?;
        }
        t.wait_up()?;
        Ok(t)
    }

    /// Waits until both ends have carrier and a real qdisc: until the
    /// kernel's (asynchronous) link watch has run, a veth end still has
    /// `qdisc noop` and silently drops what is sent on it.
    fn wait_up(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let host = run(&["ip", "link", "show", &self.host])?;
            let ns = run(&["ip", "-n", &self.ns, "link", "show", "eth0"])?;
            let ready = |l: &str| l.contains("state UP") && !l.contains("qdisc noop");
            if ready(&host) && ready(&ns) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("veth not up after 5 s:\n{host}{ns}"));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn cleanup(&self) {
        let _ = run(&["ip", "link", "del", &self.host]);
        let _ = run(&["ip", "netns", "del", &self.ns]);
    }

    /// `ip -d link show` of the root-side end.
    fn host_link(&self) -> String {
        run(&["ip", "-d", "link", "show", &self.host]).unwrap_or_else(|e| e)
    }

    /// Runs `f` on a thread inside the namespace.
    fn in_ns<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> thread::JoinHandle<T> {
        let path = format!("/run/netns/{}", self.ns);
        thread::spawn(move || {
            let ns = File::open(&path).expect("open netns");
            nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
    }

    fn ns_ip(&self) -> [u8; 4] {
        [10, 244, self.net, 1]
    }

    fn peer_ip(&self) -> [u8; 4] {
        [10, 244, self.net, 2]
    }
}

impl Drop for Topo {
    fn drop(&mut self) {
        self.cleanup();
    }
}

fn mac_str(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Whether `ip -d link show` lists an XDP program.
fn has_xdp(link: &str) -> bool {
    link.split_whitespace()
        .any(|w| w.starts_with("xdp") || w.starts_with("prog/xdp"))
}

/// An Ethernet/IPv4/UDP frame from the peer (10.244.x.2:9999) to the
/// namespace (10.244.x.1:`dport`), checksums correct.
fn udp_to_ns(t: &Topo, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    etherparse::PacketBuilder::ethernet2(PEER_MAC, NS_MAC)
        .ipv4(t.peer_ip(), t.ns_ip(), 64)
        .udp(9999, dport)
        .write_to_vec(&mut v, payload)
        .expect("build frame");
    v
}

/// UDP payload of an Ethernet/IPv4/UDP frame.
fn udp_payload(frame: &[u8]) -> Option<Vec<u8>> {
    let p = etherparse::SlicedPacket::from_ethernet(frame).ok()?;
    match p.transport {
        Some(etherparse::TransportSlice::Udp(u)) => Some(u.payload().to_vec()),
        _ => None,
    }
}

/// Receives on `port` until `want` frames whose UDP payload starts with
/// `prefix` arrived or `limit` passed, blocking in poll() on the port's fd
/// like a worker. Returns the matching payloads and the total frames seen.
fn receive(
    port: &mut dyn Port,
    pool: &mut PacketPool,
    prefix: &[u8],
    want: usize,
    limit: Duration,
) -> (Vec<Vec<u8>>, usize) {
    let deadline = Instant::now() + limit;
    let mut matched = Vec::new();
    let mut seen = 0;
    let mut batch = Batch::new(1);
    while matched.len() < want && Instant::now() < deadline {
        let n = port.rx_burst(pool, &mut batch);
        if n == 0 {
            let fd = port.poll_fd().expect("kernel port has a poll fd");
            // SAFETY: the fd belongs to `port`, which is borrowed for the
            // whole function, so it stays open while `bfd` is used.
            let bfd = unsafe { BorrowedFd::borrow_raw(fd) };
            let mut fds = [PollFd::new(bfd, PollFlags::POLLIN)];
            let _ = nix::poll::poll(&mut fds, PollTimeout::from(50u16));
            continue;
        }
        seen += n;
        for &d in batch.descs() {
            if let Some(p) = udp_payload(pool.data(d)) {
                if p.starts_with(prefix) {
                    matched.push(p);
                }
            }
            pool.free(d);
        }
        batch.clear();
    }
    (matched, seen)
}

/// The full exchange on a port on `t.host`: the namespace sends 5 UDP
/// datagrams that the port must receive, then the port transmits one the
/// namespace must receive.
fn rx_tx_roundtrip(t: &Topo, port: &mut dyn Port, label: &str) {
    let mut pool = PacketPool::new(512);
    let peer = t.peer_ip();
    let prefix = format!("vswitch-{label}-");
    let sender_prefix = prefix.clone();
    let started = Instant::now();
    let sender = t.in_ns(move || {
        let s = UdpSocket::bind("0.0.0.0:0").expect("bind sender");
        for i in 0..5 {
            let msg = format!("{sender_prefix}{i}");
            s.send_to(msg.as_bytes(), (std::net::Ipv4Addr::from(peer), 9999))
                .expect("send");
            thread::sleep(Duration::from_millis(20));
        }
    });
    let (got, seen) = receive(
        port,
        &mut pool,
        prefix.as_bytes(),
        5,
        Duration::from_secs(5),
    );
    sender.join().expect("sender thread");
    let rx_time = started.elapsed();
    assert_eq!(
        got.len(),
        5,
        "{label}: received {} of 5 datagrams ({seen} frames in all)",
        got.len()
    );
    for (i, p) in got.iter().enumerate() {
        assert_eq!(
            p,
            format!("{prefix}{i}").as_bytes(),
            "{label}: order/content"
        );
    }

    // Transmit: the namespace listens, the port sends.
    let (ready_tx, ready_rx) = mpsc::channel();
    let receiver = t.in_ns(move || {
        let s = UdpSocket::bind("0.0.0.0:7777").expect("bind receiver");
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        ready_tx.send(()).unwrap();
        let mut buf = [0u8; 2048];
        s.recv(&mut buf).map(|n| buf[..n].to_vec())
    });
    ready_rx.recv().expect("receiver ready");
    let started = Instant::now();
    let payload = format!("{prefix}reply");
    let frame = udp_to_ns(t, 7777, payload.as_bytes());
    let mut descs = vec![pool.alloc_copy(&frame).expect("pool frame")];
    let (sent, bytes) = port.tx_burst(&mut pool, &mut descs);
    port.kick();
    assert_eq!((sent, bytes), (1, frame.len() as u64), "{label}: tx_burst");
    assert!(descs.is_empty(), "{label}: tx_burst drains its input");
    let got = receiver.join().expect("receiver thread");
    let tx_time = started.elapsed();
    assert_eq!(
        got.as_deref().map_err(|e| e.kind()),
        Ok(payload.as_bytes()),
        "{label}: namespace did not receive the transmitted datagram"
    );
    assert_eq!(pool.available(), 512, "{label}: every pool frame returned");
    println!(
        "{label}: rx 5/5 ({seen} frames seen) in {rx_time:?}, tx 1/1 delivered in {tx_time:?}; {}",
        port.detail()
    );
}

#[test]
fn afxdp_rx_tx_accounting_and_detach() {
    if let Err(r) = environment() {
        return skip(&r);
    }
    let t = Topo::new("xa", 77, 1500).expect("topology");
    let started = Instant::now();
    let mut port = match AfXdpPort::open(&t.host, 0, &AfXdpOptions::default()) {
        Ok(p) => p,
        Err(e) if e.errno() == Some(libc::EAFNOSUPPORT) => {
            return skip(&format!("kernel without AF_XDP: {e}"));
        }
        Err(e) => panic!("{e}"),
    };
    println!("afxdp open in {:?}", started.elapsed());
    let link = t.host_link();
    assert!(has_xdp(&link), "no XDP program attached:\n{link}");
    println!("attach mode: {} ({})", port.attach(), port.detail());
    assert!(
        port.detail().contains("bind=copy,need_wakeup"),
        "{}",
        port.detail()
    );
    assert_eq!(
        port.attach(),
        XdpAttach::Native,
        "veth at MTU 1500 takes native XDP"
    );
    assert!(
        port.detail().starts_with("xdp=native "),
        "{}",
        port.detail()
    );

    let a = port.frame_accounting();
    assert!(a.balanced(), "{a:?}");
    assert_eq!((a.total, a.fill, a.in_flight_tx), (4096, 2048, 0), "{a:?}");

    rx_tx_roundtrip(&t, &mut port, "afxdp");

    // (b) accounting after traffic: every frame is back where it belongs.
    port.kick();
    let a = port.frame_accounting();
    assert!(a.balanced(), "{a:?}");
    assert_eq!((a.fill, a.in_flight_tx, a.free), (2048, 0, 2048), "{a:?}");
    let c = port.counters();
    assert!(
        c.rx_packets >= 5 && c.tx_packets == 1 && c.bad_descs == 0,
        "{c:?}"
    );
    let s = port.xdp_stats().expect("XDP_STATISTICS");
    println!("counters {c:?}\nxdp stats {s:?}");
    assert_eq!((s.rx_invalid_descs, s.tx_invalid_descs), (0, 0), "{s:?}");

    // (c) dropping the port detaches the program.
    drop(port);
    let link = t.host_link();
    assert!(
        !has_xdp(&link),
        "XDP program left attached after drop:\n{link}"
    );
}

#[test]
fn afxdp_falls_back_to_skb_mode_when_native_is_refused() {
    if let Err(r) = environment() {
        return skip(&r);
    }
    // veth refuses native XDP when the peer MTU exceeds ~3506 (ERANGE).
    let t = Topo::new("xm", 78, 9000).expect("topology");
    let started = Instant::now();
    let port = match AfXdpPort::open(&t.host, 0, &AfXdpOptions::default()) {
        Ok(p) => p,
        Err(e) if e.errno() == Some(libc::EAFNOSUPPORT) => {
            return skip(&format!("kernel without AF_XDP: {e}"));
        }
        Err(e) => panic!("{e}"),
    };
    println!(
        "attach mode at MTU 9000: {} (open took {:?})",
        port.detail(),
        started.elapsed()
    );
    assert_eq!(port.attach(), XdpAttach::Skb);
    assert!(t.host_link().contains("xdpgeneric"), "{}", t.host_link());
    // Native only: the error names the interface, the queue and the step.
    let opts = AfXdpOptions {
        mode: XdpMode::Native,
        ..AfXdpOptions::default()
    };
    drop(port);
    // Reopened at once: the queue the dropped socket held is released by
    // deferred kernel work, which open() waits for.
    let started = Instant::now();
    let e = AfXdpPort::open(&t.host, 0, &opts).unwrap_err();
    println!("native-only error after {:?}: {e}", started.elapsed());
    assert_eq!(e.errno(), Some(libc::ERANGE), "{e}");
    assert!(
        e.to_string()
            .starts_with(&format!("afxdp {} queue 0: create socket", t.host)),
        "{e}"
    );
    assert!(!has_xdp(&t.host_link()), "{}", t.host_link());
}

#[test]
fn afpacket_rx_tx() {
    if let Err(r) = environment() {
        return skip(&r);
    }
    let t = Topo::new("pa", 79, 1500).expect("topology");
    let mut port = AfPacketPort::open(&t.host).expect("afpacket open");
    rx_tx_roundtrip(&t, &mut port, "afpacket");
    let s = port.stats();
    println!("afpacket stats {s:?}");
    assert!(s.rx_packets >= 5 && s.tx_packets == 1, "{s:?}");
    // PACKET_IGNORE_OUTGOING: our own transmit never came back.
    assert_eq!(s.rx_outgoing, 0, "{s:?}");
}

#[test]
fn open_port_on_a_missing_interface_names_it() {
    for b in [Backend::Afxdp, Backend::Afpacket, Backend::Auto] {
        let e = open_port("vswnope0", 0, b).unwrap_err();
        let s = e.to_string();
        println!("{b}: {s}");
        assert!(s.contains("vswnope0"), "{b}: {s}");
        assert_eq!(e.iface(), "vswnope0");
    }
}

#[test]
fn auto_falls_back_to_afpacket_when_afxdp_is_busy() {
    if let Err(r) = environment() {
        return skip(&r);
    }
    let t = Topo::new("au", 80, 1500).expect("topology");
    // Auto on a free interface takes AF_XDP.
    let first = open_port(&t.host, 0, Backend::Auto).expect("auto open");
    assert_eq!(first.backend(), "afxdp", "{}", first.detail());
    // The queue now has an AF_XDP socket: a second bind gets EBUSY, so
    // Auto must fall back to AF_PACKET (and log why).
    let mut second = open_port(&t.host, 0, Backend::Auto).expect("auto fallback");
    assert_eq!(second.backend(), "afpacket", "{}", second.detail());
    drop(first);
    assert!(!has_xdp(&t.host_link()), "{}", t.host_link());
    // The fallback port works.
    rx_tx_roundtrip(&t, second.as_mut(), "auto-afpacket");
}

/// Opens AF_XDP on `t.host` or says why the test must skip.
fn open_afxdp(t: &Topo) -> Option<AfXdpPort> {
    match AfXdpPort::open(&t.host, 0, &AfXdpOptions::default()) {
        Ok(p) => Some(p),
        Err(e) if e.errno() == Some(libc::EAFNOSUPPORT) => {
            skip(&format!("kernel without AF_XDP: {e}"));
            None
        }
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn afxdp_bursts_wrap_the_rings_and_keep_exact_accounting() {
    if let Err(r) = environment() {
        return skip(&r);
    }
    let t = Topo::new("xb", 81, 1500).expect("topology");
    let Some(mut port) = open_afxdp(&t) else {
        return;
    };
    let mut pool = PacketPool::new(1024);

    // rx: more datagrams than the fill ring has slots, so every ring wraps
    // and the fill ring is refilled many times over.
    const N: usize = 6000;
    let peer = std::net::Ipv4Addr::from(t.peer_ip());
    let started = Instant::now();
    let sender = t.in_ns(move || {
        let s = UdpSocket::bind("0.0.0.0:0").expect("bind sender");
        for i in 0..N {
            s.send_to(format!("burst-{i}").as_bytes(), (peer, 9999))
                .expect("send");
            if i % 200 == 199 {
                thread::sleep(Duration::from_millis(2));
            }
        }
    });
    let (got, _) = receive(&mut port, &mut pool, b"burst-", N, Duration::from_secs(10));
    sender.join().expect("sender");
    let rx_time = started.elapsed();
    let s = port.xdp_stats().expect("XDP_STATISTICS");
    let kernel_drops = (s.rx_dropped + s.rx_ring_full + s.rx_fill_ring_empty_descs) as usize;
    println!(
        "rx burst: {}/{N} in {rx_time:?}, kernel drops {kernel_drops} ({s:?})",
        got.len()
    );
    assert!(
        got.len() <= N && got.len() + kernel_drops >= N,
        "lost frames unaccounted"
    );
    assert!(got.len() >= N / 2, "received only {} of {N}", got.len());
    let a = port.frame_accounting();
    assert!(a.balanced(), "{a:?}");
    assert_eq!((a.fill, a.in_flight_tx), (2048, 0), "{a:?}");

    // tx: one burst of many more frames than one copy-mode sendto sends (32).
    const M: usize = 300;
    let (ready_tx, ready_rx) = mpsc::channel();
    let receiver = t.in_ns(move || {
        let s = UdpSocket::bind("0.0.0.0:7777").expect("bind receiver");
        nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::RcvBufForce, &(4 << 20))
            .expect("SO_RCVBUFFORCE");
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        ready_tx.send(()).unwrap();
        let mut buf = [0u8; 2048];
        let mut n = 0;
        while s.recv(&mut buf).is_ok() {
            n += 1;
        }
        n
    });
    ready_rx.recv().unwrap();
    let started = Instant::now();
    let mut descs: Vec<_> = (0..M)
        .map(|i| {
            let f = udp_to_ns(&t, 7777, format!("tx-{i}").as_bytes());
            pool.alloc_copy(&f).expect("pool frame")
        })
        .collect();
    let kicks_before = port.counters().tx_kicks;
    let (sent, _) = port.tx_burst(&mut pool, &mut descs);
    port.kick();
    let tx_time = started.elapsed();
    let delivered = receiver.join().expect("receiver");
    let c = port.counters();
    println!(
        "tx burst: sent {sent}, delivered {delivered}/{M} in {tx_time:?}, {} kicks",
        c.tx_kicks - kicks_before
    );
    assert_eq!(sent, M);
    assert_eq!(delivered, M, "namespace received {delivered} of {M}");
    assert!(c.tx_kicks - kicks_before >= (M / 32) as u64, "{c:?}");
    port.kick();
    let a = port.frame_accounting();
    assert!(a.balanced(), "{a:?}");
    assert_eq!((a.fill, a.in_flight_tx, a.free), (2048, 0, 2048), "{a:?}");
    assert_eq!(pool.available(), 1024);

    // A burst larger than the tx ring: what does not fit is dropped (and
    // counted), every pool frame still comes back.
    let mut big = PacketPool::new(3000);
    let f = udp_to_ns(&t, 7778, b"overflow");
    let mut descs: Vec<_> = (0..2500).map(|_| big.alloc_copy(&f).unwrap()).collect();
    let full_before = port.counters().tx_ring_full;
    let (sent, _) = port.tx_burst(&mut big, &mut descs);
    port.kick();
    let dropped = port.counters().tx_ring_full - full_before;
    println!("oversized burst: sent {sent}, dropped {dropped}");
    assert_eq!(sent, 2048, "tx ring holds 2048");
    assert_eq!(dropped, 2500 - 2048);
    assert_eq!(big.available(), 3000);
    let deadline = Instant::now() + Duration::from_secs(2);
    while port.frame_accounting().in_flight_tx > 0 && Instant::now() < deadline {
        port.kick();
        thread::sleep(Duration::from_millis(5));
    }
    let a = port.frame_accounting();
    assert!(a.balanced(), "{a:?}");
    assert_eq!((a.fill, a.in_flight_tx, a.free), (2048, 0, 2048), "{a:?}");
}

/// The namespace sends VLAN 100 tagged frames (raw, from an AF_PACKET
/// socket on its `eth0`: this kernel may lack 8021q). The root-side kernel
/// moves the tag into packet metadata before packet sockets see the frame,
/// so AF_PACKET must put it back; AF_XDP sees the frame before that. Either
/// way the pipeline must get the frame with its 802.1Q tag.
fn vlan_tag_survives(t: &Topo, port: &mut dyn Port, label: &str) {
    let mut frame = Vec::new();
    etherparse::PacketBuilder::ethernet2(NS_MAC, PEER_MAC)
        .single_vlan(etherparse::VlanId::try_new(100).unwrap())
        .ipv4(t.ns_ip(), t.peer_ip(), 64)
        .udp(7777, 9999)
        .write_to_vec(&mut frame, b"vlan-100")
        .expect("build frame");
    let sender = t.in_ns(move || {
        let mut p = AfPacketPort::open("eth0").expect("afpacket in namespace");
        let mut pool = PacketPool::new(8);
        for _ in 0..3 {
            let mut d = vec![pool.alloc_copy(&frame).unwrap()];
            assert_eq!(p.tx_burst(&mut pool, &mut d).0, 1, "namespace send");
            thread::sleep(Duration::from_millis(20));
        }
    });
    let mut pool = PacketPool::new(256);
    let mut batch = Batch::new(1);
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut tagged = None;
    while tagged.is_none() && Instant::now() < deadline {
        if port.rx_burst(&mut pool, &mut batch) == 0 {
            thread::sleep(Duration::from_millis(5));
            continue;
        }
        for &d in batch.descs() {
            let f = pool.data(d);
            if udp_payload(f).as_deref() == Some(b"vlan-100") {
                tagged = Some(f.to_vec());
            }
            pool.free(d);
        }
        batch.clear();
    }
    sender.join().unwrap();
    let f = tagged.unwrap_or_else(|| panic!("{label}: VLAN datagram not received"));
    assert_eq!(&f[0..6], &PEER_MAC, "{label}: dst MAC");
    assert_eq!(&f[6..12], &NS_MAC, "{label}: src MAC");
    assert_eq!(&f[12..14], &[0x81, 0x00], "{label}: 802.1Q TPID");
    assert_eq!(
        u16::from_be_bytes([f[14], f[15]]) & 0x0fff,
        100,
        "{label}: VID"
    );
    assert_eq!(&f[16..18], &[0x08, 0x00], "{label}: inner ethertype");
    println!("{label}: VLAN 100 tag delivered intact ({} bytes)", f.len());
}

#[test]
fn afpacket_keeps_vlan_tags() {
    if let Err(r) = environment() {
        return skip(&r);
    }
    let t = Topo::new("pv", 82, 1500).expect("topology");
    let mut port = AfPacketPort::open(&t.host).expect("afpacket open");
    vlan_tag_survives(&t, &mut port, "afpacket");
    // The kernel had stripped the tag; the port put it back.
    assert!(port.stats().rx_vlan_restored >= 1, "{:?}", port.stats());
}

#[test]
fn afxdp_keeps_vlan_tags() {
    if let Err(r) = environment() {
        return skip(&r);
    }
    let t = Topo::new("xv", 83, 1500).expect("topology");
    let Some(mut port) = open_afxdp(&t) else {
        return;
    };
    vlan_tag_survives(&t, &mut port, "afxdp");
}

/// Child half of the SIGKILL test: opens AF_XDP on the interface named by
/// `VSW_TEST_KILL_IFACE` and waits to be killed. A no-op in a normal run.
#[test]
fn sigkill_child() {
    let Some(iface) = std::env::var_os("VSW_TEST_KILL_IFACE") else {
        return;
    };
    let _port =
        AfXdpPort::open(iface.to_str().unwrap(), 0, &AfXdpOptions::default()).expect("child open");
    println!("child-ready");
    thread::sleep(Duration::from_secs(30));
}

#[test]
fn afxdp_after_sigkill_stale_program_is_reused_then_detached() {
    if let Err(r) = environment() {
        return skip(&r);
    }
    let t = Topo::new("xk", 84, 1500).expect("topology");
    /// Kills the child even when the test panics first.
    struct Child(std::process::Child);
    impl Drop for Child {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Child(
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "sigkill_child", "--nocapture"])
            .env("VSW_TEST_KILL_IFACE", &t.host)
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
            panic!("child exited before opening the port");
        }
    }
    drop(child); // SIGKILL
                 // SIGKILL leaves libxdp's program attached (nothing ran to detach it).
    assert!(has_xdp(&t.host_link()), "{}", t.host_link());
    // A restart reuses it and works...
    let mut port = open_afxdp(&t).expect("reopen after SIGKILL");
    rx_tx_roundtrip(&t, &mut port, "afxdp-after-kill");
    drop(port);
    // ...but the killed process's reference keeps it attached after a
    // clean close: start-up has to detach stale programs itself.
    assert!(has_xdp(&t.host_link()), "{}", t.host_link());
    let ifindex = nix::net::if_::if_nametoindex(t.host.as_str()).unwrap();
    let was = vswitch::port::afxdp::sys::detach_xdp(ifindex).expect("detach");
    println!("detached stale program: {was:?}");
    assert_eq!(was.attach, XdpAttach::Native);
    assert!(!has_xdp(&t.host_link()), "{}", t.host_link());
    // From a clean slate the usual lifecycle holds again.
    let port = open_afxdp(&t).expect("open after detach");
    drop(port);
    assert!(!has_xdp(&t.host_link()), "{}", t.host_link());
}
