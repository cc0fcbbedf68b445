//! `pktgen` end to end: argument errors (no privileges needed), and
//! send/sink runs over a veth pair between two network namespaces (root:
//! skipped with a printed reason outside CI, a failure in CI).
//!
//! Every namespace, interface and process a test creates carries the
//! process id in its name and is removed by a guard, even when the test
//! panics; addresses are 198.18.X.Y inside those namespaces only.
#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const PKTGEN: &str = env!("CARGO_BIN_EXE_pktgen");

fn pktgen(args: &[&str]) -> Output {
    Command::new(PKTGEN)
        .args(args)
        .output()
        .expect("run pktgen")
}

/// Runs pktgen, expects failure with `code` and one stderr line
/// containing every `needle`.
fn expect_error(args: &[&str], code: i32, needles: &[&str]) {
    let o = pktgen(args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "{args:?}: stderr {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: one line expected: {err}");
    assert!(err.starts_with("pktgen: "), "{err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: {err:?} lacks {n:?}");
    }
    assert!(o.stdout.is_empty(), "{args:?}: nothing on stdout");
}

/// `pktgen send` on `lo` with valid defaults, each flag in `set`
/// replacing its default or added.
fn send_args<'a>(set: &[(&'a str, &'a str)]) -> Vec<&'a str> {
    let mut flags = vec![
        ("--iface", "lo"),
        ("--dst-mac", "02:00:00:00:00:02"),
        ("--src-ip", "198.18.0.1"),
        ("--dst-ip", "198.18.0.2"),
        ("--count", "1"),
    ];
    for &(k, v) in set {
        match flags.iter_mut().find(|(f, _)| *f == k) {
            Some(slot) => slot.1 = v,
            None => flags.push((k, v)),
        }
    }
    let mut args = vec!["send"];
    for (k, v) in flags {
        args.extend([k, v]);
    }
    args
}

#[test]
fn bad_arguments_are_one_line_errors() {
    let missing = format!("pgnope{}", std::process::id() % 100_000);
    expect_error(
        &send_args(&[("--iface", &missing)]),
        1,
        &[&missing, "not found"],
    );
    expect_error(
        &["sink", "--iface", &missing, "--duration", "1"],
        1,
        &[&missing, "not found"],
    );
    expect_error(&send_args(&[("--size", "59")]), 2, &["--size", "59"]);
    expect_error(&send_args(&[("--size", "1515")]), 2, &["--size", "1515"]);
    expect_error(
        &send_args(&[("--dst-mac", "02:00:00:00:00:zz")]),
        2,
        &["--dst-mac", "02:00:00:00:00:zz"],
    );
    expect_error(
        &send_args(&[("--src-mac", "02:00:00:00:00")]),
        2,
        &["--src-mac", "MAC"],
    );
    expect_error(
        &send_args(&[("--src-ip", "198.18.0.300")]),
        2,
        &["--src-ip", "198.18.0.300"],
    );
    expect_error(
        &send_args(&[("--duration", "1")]),
        2,
        &["--count", "--duration"],
    );
    expect_error(
        &["sink", "--iface", "lo", "--count", "5", "--duration", "1"],
        2,
        &["--count", "--duration"],
    );
    expect_error(&send_args(&[("--rate", "0")]), 2, &["--rate"]);
    expect_error(&send_args(&[("--flows", "0")]), 2, &["--flows"]);
    expect_error(&send_args(&[("--backend", "dpdk")]), 2, &["dpdk"]);
    expect_error(&send_args(&[("--vxlan", "1,198.18.0.1")]), 2, &["--vxlan"]);
    expect_error(&send_args(&[("--dst-ip", "")]), 2, &["--dst-ip"]);
    // Checked after parsing, before any port is opened.
    expect_error(
        &send_args(&[("--vxlan", "1,198.18.1.1,198.18.1.2")]),
        1,
        &["--size 60", "110"],
    );
    expect_error(
        &[
            "sink",
            "--iface",
            "lo",
            "--cpu",
            "100000",
            "--duration",
            "1",
        ],
        1,
        &["--cpu 100000"],
    );
    expect_error(&[], 2, &["send or sink"]);
    assert!(pktgen(&["--help"]).status.success());
}

// ------------------------------------------------------------ veth runs

/// Held by every test that sends over veth: paced runs check their rate,
/// and on a small machine (2 vCPUs) another test's threads at full speed
/// would take the CPU it needs.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// True when the loopback tests can run; otherwise prints why (or, in
/// CI, fails).
fn may_run(test: &str) -> bool {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(str::to_string))
        })
        .and_then(|u| u.parse::<u32>().ok());
    let reason = if uid != Some(0) {
        Some("needs root (network namespaces, AF_XDP)")
    } else if !Command::new("ip")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        Some("needs iproute2 (`ip`)")
    } else {
        None
    };
    match reason {
        None => true,
        Some(r) if std::env::var_os("CI").is_some() => panic!("{test}: {r}"),
        Some(r) => {
            println!("skipping: {test}: {r}");
            false
        }
    }
}

fn sh(line: &str) {
    let o = Command::new("sh")
        .args(["-c", line])
        .output()
        .expect("run sh");
    assert!(
        o.status.success(),
        "failed: {line}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Two namespaces joined by a veth pair; deleted on drop.
struct Veth {
    ns: [String; 2],
    ifs: [String; 2],
    macs: [&'static str; 2],
    ips: [String; 2],
}

impl Veth {
    fn new(tag: &str) -> Veth {
        Veth::with_queues(tag, 1)
    }

    /// The pair with `queues` rx and tx queues on each side.
    fn with_queues(tag: &str, queues: u32) -> Veth {
        let pid = std::process::id() % 100_000;
        let x = 20 + pid % 200;
        let v = Veth {
            ns: [format!("pg{tag}a{pid}"), format!("pg{tag}b{pid}")],
            ifs: [format!("pg{tag}a{pid}"), format!("pg{tag}b{pid}")],
            macs: ["02:00:00:70:67:01", "02:00:00:70:67:02"],
            ips: [format!("198.18.{x}.1"), format!("198.18.{x}.2")],
        };
        v.teardown();
        for ns in &v.ns {
            sh(&format!("ip netns add {ns}"));
            // No IPv6 noise (router solicitations, MLD) on the test link.
            sh(&format!(
                "ip netns exec {ns} sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1"
            ));
            sh(&format!("ip -n {ns} link set lo up"));
        }
        let q = if queues > 1 {
            format!(" numtxqueues {queues} numrxqueues {queues}")
        } else {
            String::new()
        };
        sh(&format!(
            "ip link add {}{q} netns {} type veth peer name {}{q} netns {}",
            v.ifs[0], v.ns[0], v.ifs[1], v.ns[1]
        ));
        for i in 0..2 {
            let (ns, ifc) = (&v.ns[i], &v.ifs[i]);
            sh(&format!(
                "ip -n {ns} link set {ifc} address {} mtu 1500",
                v.macs[i]
            ));
            sh(&format!("ip -n {ns} addr add {}/24 dev {ifc}", v.ips[i]));
            sh(&format!("ip -n {ns} link set {ifc} up"));
        }
        v
    }

    fn teardown(&self) {
        for ns in &self.ns {
            let _ = Command::new("sh")
                .args([
                    "-c",
                    &format!("ip netns pids {ns} 2>/dev/null | xargs -r kill -9; ip netns del {ns} 2>/dev/null"),
                ])
                .status();
        }
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// A pktgen process, killed on drop; stderr lines arrive on a channel.
struct Proc {
    child: Child,
    stderr: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Proc {
    fn spawn(ns: &str, args: &[&str]) -> Proc {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, PKTGEN])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pktgen");
        let (tx, rx) = mpsc::channel();
        let err = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc {
            child,
            stderr: rx,
            seen: Vec::new(),
        }
    }

    /// Waits for a stderr line containing `needle`.
    fn wait_line(&mut self, needle: &str, timeout: Duration) {
        let end = Instant::now() + timeout;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.stderr.recv_timeout(left) {
                Ok(l) => {
                    let hit = l.contains(needle);
                    self.seen.push(l);
                    if hit {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        panic!(
            "no {needle:?} line within {timeout:?}; stderr: {:?}",
            self.seen
        );
    }

    /// Waits for exit; returns stdout (panics on timeout or failure).
    fn finish(mut self, timeout: Duration) -> String {
        let end = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                let mut out = String::new();
                if let Some(mut o) = self.child.stdout.take() {
                    let _ = std::io::Read::read_to_string(&mut o, &mut out);
                }
                self.seen.extend(self.stderr.try_iter());
                assert!(
                    st.success(),
                    "pktgen failed ({st}); stderr: {:?}",
                    self.seen
                );
                return out;
            }
            if Instant::now() > end {
                self.seen.extend(self.stderr.try_iter());
                panic!(
                    "pktgen did not finish within {timeout:?}; stderr: {:?}",
                    self.seen
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// Starts a sink on side B, sends from side A, returns (send, sink) summaries.
fn run_pair(
    v: &Veth,
    backend: &str,
    sink_extra: &[&str],
    send_extra: &[&str],
) -> (serde_json::Value, serde_json::Value) {
    let mut sink_args = vec!["sink", "--iface", &v.ifs[1], "--backend", backend, "--json"];
    sink_args.extend_from_slice(sink_extra);
    let mut sink = Proc::spawn(&v.ns[1], &sink_args);
    sink.wait_line("ready", Duration::from_secs(10));
    let mut send_args = vec![
        "send",
        "--iface",
        &v.ifs[0],
        "--backend",
        backend,
        "--dst-mac",
        v.macs[1],
        "--src-ip",
        &v.ips[0],
        "--dst-ip",
        &v.ips[1],
        "--json",
    ];
    send_args.extend_from_slice(send_extra);
    let sent = Proc::spawn(&v.ns[0], &send_args).finish(Duration::from_secs(20));
    let got = sink.finish(Duration::from_secs(20));
    (json(&sent), json(&got))
}

#[test]
fn veth_loopback_counts_every_frame_and_finds_loss() {
    if !may_run("veth_loopback_counts_every_frame_and_finds_loss") {
        return;
    }
    let _serial = one_at_a_time();
    let v = Veth::new("l");

    // AF_XDP both ends, 10000 frames at a moderate rate: nothing lost.
    let (tx, rx) = run_pair(
        &v,
        "afxdp",
        &["--count", "10000"],
        &["--count", "10000", "--rate", "20000", "--flows", "4"],
    );
    assert_eq!(tx["sent"], 10_000, "{tx}");
    assert_eq!(tx["backend"], "afxdp");
    assert_eq!(rx["received"], 10_000, "{rx}");
    assert_eq!(rx["lost"], 0, "{rx}");
    assert_eq!(rx["duplicates"], 0, "{rx}");
    assert_eq!(rx["reordered"], 0, "{rx}");
    assert_eq!(rx["flows"], 4, "{rx}");
    assert!(rx["p50_us"].as_f64().is_some_and(|l| l > 0.0), "{rx}");
    let pps = tx["pps"].as_u64().unwrap();
    assert!((15_000..=25_000).contains(&pps), "paced at 20 kpps: {tx}");

    // A gap every 100 sequence numbers: the sink reports the 99 "lost".
    let (tx, rx) = run_pair(
        &v,
        "afxdp",
        &["--count", "10000"],
        &[
            "--count",
            "10000",
            "--rate",
            "50000",
            "--test-seq-gap",
            "100",
        ],
    );
    assert_eq!(tx["sent"], 10_000, "{tx}");
    assert_eq!(rx["received"], 10_000, "{rx}");
    assert_eq!(rx["lost"], 99, "{rx}");

    // VXLAN-encapsulated probes are read through the encapsulation.
    let (_, rx) = run_pair(
        &v,
        "afxdp",
        &["--count", "2000"],
        &[
            "--count",
            "2000",
            "--rate",
            "50000",
            "--size",
            "128",
            "--vxlan",
            &format!("42,{},{}", v.ips[0], v.ips[1]),
        ],
    );
    assert_eq!(
        (rx["received"].as_u64(), rx["lost"].as_u64()),
        (Some(2000), Some(0)),
        "{rx}"
    );

    // Destinations spread over ports and addresses: every probe still counted.
    let (tx, rx) = run_pair(
        &v,
        "afxdp",
        &["--count", "3000"],
        &[
            "--count",
            "3000",
            "--rate",
            "50000",
            "--flows",
            "12",
            "--dst-ports",
            "3",
            "--dst-ips",
            "2",
        ],
    );
    assert_eq!(tx["sent"], 3000, "{tx}");
    assert_eq!(
        (
            rx["received"].as_u64(),
            rx["lost"].as_u64(),
            rx["flows"].as_u64()
        ),
        (Some(3000), Some(0), Some(12)),
        "{rx}"
    );

    // The AF_PACKET backend, and a sink told the sent count (tail loss).
    let (tx, rx) = run_pair(
        &v,
        "afpacket",
        &["--duration", "2", "--expect", "2100"],
        &["--count", "2000", "--rate", "20000"],
    );
    assert_eq!(tx["sent"], 2000, "{tx}");
    assert_eq!(tx["backend"], "afpacket");
    assert_eq!(rx["received"], 2000, "{rx}");
    assert_eq!(rx["lost"], 100, "{rx}");
}

// ------------------------------------------------------- several queues

#[test]
fn several_queues_split_the_flows_and_the_sink_merges_them() {
    if !may_run("several_queues_split_the_flows_and_the_sink_merges_them") {
        return;
    }
    let _serial = one_at_a_time();
    let v = Veth::with_queues("q", 2);
    let cpus = if std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2 {
        "0,1"
    } else {
        "0"
    };

    // Two sending threads (flows 0 2 4 6 and 1 3 5 7) into a two-queue
    // sink. An AF_XDP copy-mode socket tags its frames with its queue,
    // and veth delivers a frame to the peer's rx queue of that index (its
    // XDP rx queue), so each sink queue gets one sender's flows: 10000
    // each, and the merged count is exact.
    let (tx, rx) = run_pair(
        &v,
        "afxdp",
        &["--queues", "2", "--count", "20000", "--expect", "20000"],
        &[
            "--queues", "2", "--cpus", cpus, "--count", "20000", "--rate", "20000", "--flows", "8",
        ],
    );
    assert_eq!(tx["sent"], 20_000, "{tx}");
    assert_eq!(tx["queues"], 2, "{tx}");
    assert_eq!(tx["per_queue"], serde_json::json!([10_000, 10_000]), "{tx}");
    assert_eq!(rx["received"], 20_000, "{rx}");
    assert_eq!(rx["lost"], 0, "{rx}");
    assert_eq!(rx["duplicates"], 0, "{rx}");
    assert_eq!(rx["reordered"], 0, "{rx}");
    assert_eq!(rx["flows"], 8, "{rx}");
    assert_eq!(rx["queues"], 2, "{rx}");
    assert_eq!(rx["per_queue"], serde_json::json!([10_000, 10_000]), "{rx}");

    // A queue the interface does not have: one line naming it and its count.
    for (ns, iface, args, needle) in [
        (
            &v.ns[1],
            &v.ifs[1],
            vec![
                "sink", "--iface", &v.ifs[1], "--queues", "9", "--count", "1",
            ],
            "2 rx queues",
        ),
        (
            &v.ns[0],
            &v.ifs[0],
            vec![
                "send",
                "--iface",
                &v.ifs[0],
                "--queue",
                "1",
                "--queues",
                "2",
                "--dst-mac",
                v.macs[1],
                "--src-ip",
                &v.ips[0],
                "--dst-ip",
                &v.ips[1],
                "--count",
                "1",
            ],
            "2 tx queues",
        ),
    ] {
        let o = Command::new("ip")
            .args(["netns", "exec", ns, PKTGEN])
            .args(&args)
            .output()
            .expect("run pktgen");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line expected: {err}");
        assert!(
            err.starts_with("pktgen: ") && err.contains(needle) && err.contains(iface.as_str()),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn queue_options_refuse_bad_combinations_in_one_line() {
    expect_error(
        &send_args(&[("--queues", "2"), ("--tx-mode", "live")]),
        2,
        &["--queues 2", "live"],
    );
    expect_error(
        &send_args(&[("--queues", "2"), ("--cpu", "0")]),
        2,
        &["--cpu 0", "--cpus"],
    );
    expect_error(
        &send_args(&[("--cpus", "0"), ("--cpu", "0")]),
        2,
        &["--cpus", "--cpu"],
    );
    expect_error(
        &send_args(&[("--queues", "2"), ("--backend", "afpacket")]),
        2,
        &["--queues 2", "AF_XDP"],
    );
    expect_error(&send_args(&[("--queues", "0")]), 2, &["--queues"]);
    expect_error(&send_args(&[("--cpus", "3-1")]), 2, &["--cpus", "3-1"]);
    expect_error(
        &["sink", "--iface", "lo", "--queue", "1", "--count", "1"],
        1,
        &["--queue 1", "lo", "1 rx queue"],
    );
}

// ------------------------------------------------------- live-frame mode

const XDP_FWD: &str = env!("CARGO_BIN_EXE_xdp-fwd");

#[test]
fn live_mode_and_xdp_fwd_refuse_bad_arguments_in_one_line() {
    expect_error(
        &send_args(&[("--tx-mode", "live"), ("--test-seq-gap", "10")]),
        2,
        &["--test-seq-gap", "live"],
    );
    expect_error(&send_args(&[("--tx-mode", "fast")]), 2, &["fast"]);
    expect_error(
        &send_args(&[("--tx-mode", "live"), ("--dst-ports", "2")]),
        2,
        &["--dst-ports", "live"],
    );
    expect_error(
        &send_args(&[("--dst-port", "65535"), ("--dst-ports", "2")]),
        1,
        &["--dst-ports 2", "65535"],
    );
    expect_error(&send_args(&[("--dst-ips", "0")]), 2, &["--dst-ips"]);
    let missing = format!("pgnope{}", std::process::id() % 100_000);
    expect_error(
        &send_args(&[("--iface", &missing), ("--tx-mode", "live")]),
        1,
        &[&missing, "not found"],
    );
    for (args, code, needle) in [
        (vec![missing.as_str(), "lo"], 2, missing.as_str()),
        (vec!["lo"], 2, "usage"),
    ] {
        let o = Command::new(XDP_FWD)
            .args(&args)
            .output()
            .expect("run xdp-fwd");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line expected: {err}");
        assert!(
            err.starts_with("xdp-fwd: ") && err.contains(needle),
            "{err}"
        );
    }
}

#[test]
fn live_mode_counts_every_frame() {
    if !may_run("live_mode_counts_every_frame") {
        return;
    }
    let _serial = one_at_a_time();
    let v = Veth::new("x");

    // Paced (one frame per kernel call below 20 kpps): nothing lost.
    let (tx, rx) = run_pair(
        &v,
        "afxdp",
        &["--count", "50000", "--expect", "50000"],
        &[
            "--tx-mode",
            "live",
            "--count",
            "50000",
            "--rate",
            "20000",
            "--flows",
            "4",
        ],
    );
    assert_eq!(tx["sent"], 50_000, "{tx}");
    assert_eq!(tx["backend"], "xdp-live", "{tx}");
    assert_eq!(rx["received"], 50_000, "{rx}");
    assert_eq!(rx["lost"], 0, "{rx}");
    assert_eq!(rx["duplicates"], 0, "{rx}");
    assert_eq!(rx["reordered"], 0, "{rx}");
    assert_eq!(rx["flows"], 4, "{rx}");
    assert!(rx["p50_us"].as_f64().is_some_and(|l| l > 0.0), "{rx}");

    // VXLAN-encapsulated, source addresses beyond the first (70000 flows).
    let (tx, rx) = run_pair(
        &v,
        "afxdp",
        &["--count", "5000", "--expect", "5000"],
        &[
            "--tx-mode",
            "live",
            "--count",
            "5000",
            "--rate",
            "20000",
            "--flows",
            "70000",
            "--size",
            "128",
            "--vxlan",
            &format!("42,{},{}", v.ips[0], v.ips[1]),
        ],
    );
    assert_eq!(tx["sent"], 5000, "{tx}");
    assert_eq!(
        (
            rx["received"].as_u64(),
            rx["lost"].as_u64(),
            rx["flows"].as_u64()
        ),
        (Some(5000), Some(0), Some(5000)),
        "{rx}"
    );

    // Full speed, long kernel calls: exactly --count frames leave (the
    // program's counter), and whatever a debug-build sink keeps up with
    // is counted consistently.
    let (tx, rx) = run_pair(
        &v,
        "afxdp",
        &["--duration", "3", "--expect", "200000"],
        &["--tx-mode", "live", "--count", "200000", "--flows", "8"],
    );
    assert_eq!(tx["sent"], 200_000, "{tx}");
    let got = rx["received"].as_u64().unwrap();
    assert!(got > 0, "{rx}");
    assert_eq!(rx["lost"].as_u64().unwrap() + got, 200_000, "{rx}");
    assert_eq!(rx["duplicates"], 0, "{rx}");
    assert_eq!(rx["flows"], 8, "{rx}");

    // --duration ends the long calls with a signal, on time.
    let out = Proc::spawn(
        &v.ns[0],
        &[
            "send",
            "--iface",
            &v.ifs[0],
            "--tx-mode",
            "live",
            "--dst-mac",
            v.macs[1],
            "--src-ip",
            &v.ips[0],
            "--dst-ip",
            &v.ips[1],
            "--duration",
            "1",
            "--json",
        ],
    )
    .finish(Duration::from_secs(10));
    let tx = json(&out);
    let secs = tx["duration_s"].as_f64().unwrap();
    assert!((0.95..2.0).contains(&secs), "{tx}");
    assert!(tx["sent"].as_u64().unwrap() > 0, "{tx}");
}

/// gen -- (a, b: xdp-fwd) -- sink, each in its own namespace; deleted on
/// drop.
struct Chain {
    ns: [String; 3],
    /// gen side, a, b, sink side.
    ifs: [String; 4],
}

impl Chain {
    fn new() -> Chain {
        let pid = std::process::id() % 100_000;
        let c = Chain {
            ns: [
                format!("pgfg{pid}"),
                format!("pgfd{pid}"),
                format!("pgfs{pid}"),
            ],
            ifs: [
                format!("pgfg{pid}"),
                format!("pgfa{pid}"),
                format!("pgfb{pid}"),
                format!("pgfs{pid}"),
            ],
        };
        c.teardown();
        for ns in &c.ns {
            sh(&format!("ip netns add {ns}"));
            sh(&format!(
                "ip netns exec {ns} sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1"
            ));
        }
        let [g, d, s] = &c.ns;
        let [ig, ia, ib, is] = &c.ifs;
        sh(&format!(
            "ip link add {ig} netns {g} type veth peer name {ia} netns {d}"
        ));
        sh(&format!(
            "ip link add {ib} netns {d} type veth peer name {is} netns {s}"
        ));
        for (ns, ifc) in [(g, ig), (d, ia), (d, ib), (s, is)] {
            sh(&format!("ip -n {ns} link set {ifc} up"));
        }
        c
    }

    fn xdp_shown(&self, i: usize) -> String {
        let o = Command::new("ip")
            .args(["-n", &self.ns[1], "link", "show", &self.ifs[i]])
            .output()
            .expect("ip link show");
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    fn teardown(&self) {
        for ns in &self.ns {
            let _ = Command::new("sh")
                .args([
                    "-c",
                    &format!("ip netns pids {ns} 2>/dev/null | xargs -r kill -9; ip netns del {ns} 2>/dev/null"),
                ])
                .status();
        }
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        self.teardown();
    }
}

#[test]
fn xdp_fwd_forwards_every_frame_and_detaches_on_sigterm() {
    if !may_run("xdp_fwd_forwards_every_frame_and_detaches_on_sigterm") {
        return;
    }
    let _serial = one_at_a_time();
    let c = Chain::new();
    let mut fwd = Command::new("ip")
        .args(["netns", "exec", &c.ns[1], XDP_FWD, &c.ifs[1], &c.ifs[2]])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn xdp-fwd");
    // Killed on any exit from here (a panic included).
    struct Kill(Option<Child>);
    impl Drop for Kill {
        fn drop(&mut self) {
            if let Some(ch) = self.0.as_mut() {
                let _ = ch.kill();
                let _ = ch.wait();
            }
        }
    }
    let mut line = String::new();
    BufReader::new(fwd.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read xdp-fwd");
    let mut guard = Kill(Some(fwd));
    assert!(line.contains("ready"), "xdp-fwd said {line:?}");
    for i in [1, 2] {
        let shown = c.xdp_shown(i);
        assert!(
            shown.contains("prog/xdp") && !shown.contains("xdpgeneric"),
            "native XDP on {}: {shown}",
            c.ifs[i]
        );
    }

    let mut sink = Proc::spawn(
        &c.ns[2],
        &[
            "sink",
            "--iface",
            &c.ifs[3],
            "--backend",
            "afxdp",
            "--count",
            "20000",
            "--expect",
            "20000",
            "--json",
        ],
    );
    sink.wait_line("ready", Duration::from_secs(10));
    let sent = Proc::spawn(
        &c.ns[0],
        &[
            "send",
            "--iface",
            &c.ifs[0],
            "--tx-mode",
            "live",
            "--dst-mac",
            "02:00:00:70:67:02",
            "--src-ip",
            "198.18.250.1",
            "--dst-ip",
            "198.18.250.2",
            "--count",
            "20000",
            "--rate",
            "20000",
            "--flows",
            "3",
            "--json",
        ],
    )
    .finish(Duration::from_secs(20));
    let (tx, rx) = (json(&sent), json(&sink.finish(Duration::from_secs(20))));
    assert_eq!(tx["sent"], 20_000, "{tx}");
    assert_eq!(rx["received"], 20_000, "{rx}");
    assert_eq!(rx["lost"], 0, "{rx}");
    assert_eq!(rx["flows"], 3, "{rx}");

    let mut fwd = guard.0.take().expect("xdp-fwd");
    let st = Command::new("kill")
        .args(["-TERM", &fwd.id().to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
    let end = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = fwd.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < end, "xdp-fwd ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "xdp-fwd exit {status}");
    for i in [1, 2] {
        let shown = c.xdp_shown(i);
        assert!(!shown.contains("xdp"), "still attached: {shown}");
    }
}
