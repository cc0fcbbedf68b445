//! End-to-end tests of the `ofctl` binary against a fake vswitchd: a thread
//! on a temporary unix socket that records every request line and answers
//! each with one canned reply line.
//!
//! They check the contract scripts rely on: which request each command
//! sends, the human output formats (golden strings), `--json` anywhere on
//! the line, and that every failure is one `ofctl: ...` line on stderr with
//! status 1 (2 for usage errors) — including failures found before any
//! daemon is contacted.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use control::api::{
    CtStatsRow, CtZoneRow, FdbRow, FlowEntry, NodeRow, PortCounters, PortInfo, Reply,
    ReplyEnvelope, ServiceRow, ShowReply,
};
use serde_json::{json, Value};

/// A fresh temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ofctl-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The fake daemon. Its thread serves connections until the test process
/// ends; a test only looks at what it recorded.
struct FakeDaemon {
    dir: TempDir,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl FakeDaemon {
    /// Answers every request with `reply` (one line, newline added).
    fn start(reply: &str) -> FakeDaemon {
        let dir = TempDir::new();
        let listener = UnixListener::bind(dir.0.join("vswitchd.sock")).unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (conns, reqs) = (connections.clone(), requests.clone());
        let reply = format!("{reply}\n");
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                conns.fetch_add(1, Ordering::SeqCst);
                let mut out = stream.try_clone().unwrap();
                let mut lines = BufReader::new(stream);
                let mut line = String::new();
                while lines.read_line(&mut line).unwrap_or(0) > 0 {
                    reqs.lock().unwrap().push(std::mem::take(&mut line));
                    if !reply.trim().is_empty() && out.write_all(reply.as_bytes()).is_err() {
                        break;
                    }
                }
            }
        });
        FakeDaemon {
            dir,
            connections,
            requests,
        }
    }

    fn replying(reply: Reply) -> FakeDaemon {
        FakeDaemon::start(&serde_json::to_string(&ReplyEnvelope::ok(reply)).unwrap())
    }

    fn socket(&self) -> PathBuf {
        self.dir.0.join("vswitchd.sock")
    }

    /// The requests received, parsed; each must be exactly one line.
    fn requests(&self) -> Vec<Value> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|l| {
                assert!(l.ends_with('\n') && !l[..l.len() - 1].contains('\n'));
                serde_json::from_str(l).unwrap()
            })
            .collect()
    }

    /// The one request received, without its envelope.
    fn request(&self) -> Value {
        let reqs = self.requests();
        assert_eq!(reqs.len(), 1, "requests: {reqs:?}");
        assert_eq!(reqs[0]["version"], json!(control::api::VERSION));
        reqs[0]["request"].clone()
    }

    fn contacted(&self) -> bool {
        self.connections.load(Ordering::SeqCst) > 0
    }

    fn run(&self, args: &[&str]) -> Run {
        ofctl(Some(&self.socket()), args, None)
    }
}

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "{self:?}");
        assert_eq!(self.stderr, "", "{self:?}");
        &self.stdout
    }

    /// Checks the failure contract and returns the message.
    #[track_caller]
    fn failed(&self, code: i32) -> &str {
        assert_eq!(self.code, code, "{self:?}");
        assert_eq!(self.stdout, "", "{self:?}");
        assert_eq!(self.stderr.lines().count(), 1, "{self:?}");
        assert!(self.stderr.ends_with('\n'), "{self:?}");
        self.stderr
            .trim_end()
            .strip_prefix("ofctl: ")
            .unwrap_or_else(|| panic!("no ofctl: prefix: {self:?}"))
    }
}

/// Runs `ofctl --socket SOCKET ARGS...` (the socket flag first, unless
/// `socket` is `None`), with `stdin` fed to it.
fn ofctl(socket: Option<&Path>, args: &[&str], stdin: Option<&str>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ofctl"));
    cmd.env_remove("VSWITCH_SOCKET");
    if let Some(s) = socket {
        cmd.arg("--socket").arg(s);
    }
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    run(cmd, stdin)
}

fn run(mut cmd: Command, stdin: Option<&str>) -> Run {
    let mut child = cmd.spawn().unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        pipe.write_all(text.as_bytes()).unwrap();
    }
    drop(pipe);
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn temp_file(dir: &TempDir, name: &str, text: &str) -> String {
    let p = dir.0.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

const FLOWS: &str = "# pods\n\
    table=0,priority=100,ip,nw_dst=10.244.1.5,actions=output:2\n\
    \n\
    table=0,priority=0,actions=normal\n";

#[test]
fn each_command_sends_its_request() {
    let files = TempDir::new();
    let flow_file = temp_file(&files, "flows.txt", FLOWS);
    let cases: Vec<(Vec<&str>, Value)> = vec![
        (vec!["show"], json!({"cmd": "show"})),
        (
            vec!["add-port", "vsw1"],
            json!({"cmd": "add-port", "iface": "vsw1", "backend": null, "ofport": null}),
        ),
        (
            vec!["add-port", "vsw1", "--type", "afpacket", "--ofport", "5"],
            json!({"cmd": "add-port", "iface": "vsw1", "backend": "afpacket", "ofport": 5}),
        ),
        (
            vec!["add-port", "--type=afxdp", "eth0"],
            json!({"cmd": "add-port", "iface": "eth0", "backend": "afxdp", "ofport": null}),
        ),
        (
            vec!["del-port", "vsw1"],
            json!({"cmd": "del-port", "iface": "vsw1"}),
        ),
        (
            vec!["add-flow", "priority=10,tcp,tp_dst=80,actions=output:3"],
            json!({"cmd": "add-flows", "flows": "priority=10,tcp,tp_dst=80,actions=output:3"}),
        ),
        (
            vec!["add-flows", &flow_file],
            json!({"cmd": "add-flows", "flows": FLOWS}),
        ),
        (
            vec!["replace-flows", &flow_file],
            json!({"cmd": "replace-flows", "flows": FLOWS}),
        ),
        (
            vec!["del-flows"],
            json!({"cmd": "del-flows", "filter": "", "strict": false}),
        ),
        (
            vec!["del-flows", "table=1,ip,nw_dst=10.0.0.0/8"],
            json!({"cmd": "del-flows", "filter": "table=1,ip,nw_dst=10.0.0.0/8", "strict": false}),
        ),
        (
            vec!["del-flows", "--strict", "priority=5,ip"],
            json!({"cmd": "del-flows", "filter": "priority=5,ip", "strict": true}),
        ),
        (
            vec!["dump-flows"],
            json!({"cmd": "dump-flows", "filter": ""}),
        ),
        (
            vec!["dump-flows", "table=0,tcp"],
            json!({"cmd": "dump-flows", "filter": "table=0,tcp"}),
        ),
        (
            vec![
                "add-group",
                "group_id=1,type=select,bucket=output:1,bucket=output:2",
            ],
            json!({"cmd": "add-group",
                   "group": "group_id=1,type=select,bucket=output:1,bucket=output:2"}),
        ),
        (
            vec!["del-groups"],
            json!({"cmd": "del-groups", "group_id": null}),
        ),
        (
            vec!["del-groups", "group_id=7"],
            json!({"cmd": "del-groups", "group_id": 7}),
        ),
        (vec!["dump-groups"], json!({"cmd": "dump-groups"})),
        (
            vec!["dump-ports"],
            json!({"cmd": "dump-ports", "port": null}),
        ),
        (
            vec!["dump-ports", "vsw1"],
            json!({"cmd": "dump-ports", "port": "vsw1"}),
        ),
        (vec!["fdb-show"], json!({"cmd": "fdb-show"})),
        (
            vec!["trace", "in_port=1,tcp,nw_dst=10.244.1.5,tp_dst=80"],
            json!({"cmd": "trace", "flow": "in_port=1,tcp,nw_dst=10.244.1.5,tp_dst=80"}),
        ),
        (
            vec!["add-node", "node-b", "10.244.2.0/24", "198.18.0.2"],
            json!({"cmd": "add-node", "name": "node-b", "pod_cidr": "10.244.2.0/24",
                   "vtep_ip": "198.18.0.2", "vtep_mac": null}),
        ),
        (
            // The MAC is sent in canonical (lowercase) form.
            vec![
                "add-node",
                "node-b",
                "10.244.2.0/24",
                "198.18.0.2",
                "AA:BB:CC:00:00:02",
            ],
            json!({"cmd": "add-node", "name": "node-b", "pod_cidr": "10.244.2.0/24",
                   "vtep_ip": "198.18.0.2", "vtep_mac": "aa:bb:cc:00:00:02"}),
        ),
        (
            vec!["del-node", "node-b"],
            json!({"cmd": "del-node", "name": "node-b"}),
        ),
        (vec!["dump-nodes"], json!({"cmd": "dump-nodes"})),
        (
            vec![
                "add-service",
                "default/web",
                "10.96.0.10:80/TCP",
                "10.244.1.5:8080",
                "10.244.2.7:8080",
            ],
            json!({"cmd": "add-service", "name": "default/web", "vip": "10.96.0.10",
                   "port": 80, "protocol": "tcp",
                   "endpoints": ["10.244.1.5:8080", "10.244.2.7:8080"]}),
        ),
        (
            vec!["add-service", "dns", "10.96.0.53:53/udp"],
            json!({"cmd": "add-service", "name": "dns", "vip": "10.96.0.53",
                   "port": 53, "protocol": "udp", "endpoints": []}),
        ),
        (
            vec!["del-service", "default/web"],
            json!({"cmd": "del-service", "name": "default/web"}),
        ),
        (vec!["dump-services"], json!({"cmd": "dump-services"})),
        (
            vec!["dump-conntrack"],
            json!({"cmd": "dump-conntrack", "zone": null}),
        ),
        (
            vec!["dump-conntrack", "--zone", "1"],
            json!({"cmd": "dump-conntrack", "zone": 1}),
        ),
        (
            vec!["flush-conntrack"],
            json!({"cmd": "flush-conntrack", "zone": null}),
        ),
        (
            vec!["flush-conntrack", "--zone", "7"],
            json!({"cmd": "flush-conntrack", "zone": 7}),
        ),
    ];
    for (args, want) in cases {
        // --json so that any reply prints: this test is about requests.
        let d = FakeDaemon::replying(Reply::Done);
        let mut argv = args.clone();
        argv.push("--json");
        let r = d.run(&argv);
        r.ok();
        assert_eq!(d.request(), want, "ofctl {args:?}");
    }
}

#[test]
fn json_flag_works_before_and_after_the_command() {
    let reply = Reply::Flows {
        flows: vec![flow_entry(
            " cookie=0x0, duration=1.5s, table=0, n_packets=3, n_bytes=180, priority=0 actions=NORMAL",
        )],
    };
    let want = serde_json::to_value(&reply).unwrap();
    let d = FakeDaemon::replying(reply);
    let before = d.run(&["--json", "dump-flows"]);
    let after = d.run(&["dump-flows", "--json"]);
    // --socket after the command too.
    let sock = d.socket();
    let late = ofctl(
        None,
        &["dump-flows", "--json", "--socket", sock.to_str().unwrap()],
        None,
    );
    for r in [&before, &after, &late] {
        let doc: Value = serde_json::from_str(r.ok()).unwrap();
        assert_eq!(doc, want);
    }
    assert_eq!(d.requests().len(), 3);
}

#[test]
fn socket_comes_from_the_environment() {
    let d = FakeDaemon::replying(Reply::Groups { groups: vec![] });
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ofctl"));
    cmd.env("VSWITCH_SOCKET", d.socket())
        .arg("dump-groups")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    assert_eq!(run(cmd, None).ok(), "");
    assert_eq!(d.request(), json!({"cmd": "dump-groups"}));
}

fn flow_entry(text: &str) -> FlowEntry {
    FlowEntry {
        text: text.into(),
        table: 0,
        priority: 0,
        cookie: 0,
        n_packets: 3,
        n_bytes: 180,
        duration_s: 1.5,
    }
}

#[test]
fn show_prints_ovs_style_port_blocks() {
    let d = FakeDaemon::replying(Reply::Show(ShowReply {
        node: "node-a".into(),
        workers: 2,
        ports: vec![
            PortInfo {
                ofport: 1,
                name: "vsw1".into(),
                backend: "afxdp".into(),
                mac: "aa:bb:cc:00:00:01".into(),
                link_up: true,
                worker: 0,
                queue: 0,
                detail: "xdp mode native, copy".into(),
            },
            PortInfo {
                ofport: 12,
                name: "veth12".into(),
                backend: "afpacket".into(),
                mac: "aa:bb:cc:00:00:0c".into(),
                link_up: false,
                worker: 1,
                queue: 3,
                detail: String::new(),
            },
            PortInfo {
                ofport: 0xffff_fffe,
                name: "vsw0".into(),
                backend: "mem".into(),
                mac: "aa:bb:cc:00:00:ff".into(),
                link_up: true,
                worker: 0,
                queue: 0,
                detail: String::new(),
            },
        ],
        vtep_mac: None,
        tunnel: None,
    }));
    assert_eq!(
        d.run(&["show"]).ok(),
        "vswitch node-a: n_workers:2, n_ports:3\n\
         \x201(vsw1): addr:aa:bb:cc:00:00:01\n\
         \x20    backend: afxdp, worker 0, queue 0, xdp mode native, copy\n\
         \x20    state:   LINK_UP\n\
         \x2012(veth12): addr:aa:bb:cc:00:00:0c\n\
         \x20    backend: afpacket, worker 1, queue 3\n\
         \x20    state:   LINK_DOWN\n\
         \x20LOCAL(vsw0): addr:aa:bb:cc:00:00:ff\n\
         \x20    backend: mem, worker 0, queue 0\n\
         \x20    state:   LINK_UP\n"
    );
}

#[test]
fn dump_flows_prints_the_daemon_lines() {
    let lines = [
        " cookie=0x0, duration=1.5s, table=0, n_packets=3, n_bytes=180, priority=100,ip,nw_dst=10.244.1.5 actions=output:2",
        " cookie=0x0, duration=2s, table=0, n_packets=0, n_bytes=0, priority=0 actions=NORMAL",
    ];
    let d = FakeDaemon::replying(Reply::Flows {
        flows: lines.iter().map(|l| flow_entry(l)).collect(),
    });
    assert_eq!(
        d.run(&["dump-flows"]).ok(),
        format!("{}\n{}\n", lines[0], lines[1])
    );
}

#[test]
fn dump_groups_prints_one_group_per_line() {
    let d = FakeDaemon::replying(Reply::Groups {
        groups: vec![
            " group_id=1,type=select,bucket=weight:100,actions=output:1".into(),
            " group_id=2,type=all,bucket=actions=output:1,bucket=actions=output:2".into(),
        ],
    });
    assert_eq!(
        d.run(&["dump-groups"]).ok(),
        " group_id=1,type=select,bucket=weight:100,actions=output:1\n\
         \x20group_id=2,type=all,bucket=actions=output:1,bucket=actions=output:2\n"
    );
}

fn counters(ofport: u32, name: &str, base: u64) -> PortCounters {
    PortCounters {
        ofport,
        name: name.into(),
        rx_packets: base,
        rx_bytes: base * 64,
        rx_dropped: 1,
        rx_errors: 0,
        tx_packets: base / 2,
        tx_bytes: base * 32,
        tx_dropped: 2,
        tx_errors: 0,
    }
}

#[test]
fn dump_ports_prints_ovs_counters_then_drop_reasons() {
    let mut unknown = counters(0xffff_fffe, "vsw0", 4);
    unknown.rx_errors = u64::MAX;
    let d = FakeDaemon::replying(Reply::Ports {
        ports: vec![
            counters(1, "vsw1", 10),
            counters(12, "veth12", 1000),
            unknown,
        ],
        drops: vec![("no-match".into(), 7), ("ttl-exceeded".into(), 1)],
    });
    assert_eq!(
        d.run(&["dump-ports"]).ok(),
        "OFPST_PORT reply: 3 ports\n\
         \x20 port  1: rx pkts=10, bytes=640, drop=1, errs=0\n\
         \x20          tx pkts=5, bytes=320, drop=2, errs=0\n\
         \x20 port 12: rx pkts=1000, bytes=64000, drop=1, errs=0\n\
         \x20          tx pkts=500, bytes=32000, drop=2, errs=0\n\
         \x20 port LOCAL: rx pkts=4, bytes=256, drop=1, errs=?\n\
         \x20          tx pkts=2, bytes=128, drop=2, errs=0\n\
         datapath drops:\n\
         \x20 no-match=7\n\
         \x20 ttl-exceeded=1\n"
    );

    let d = FakeDaemon::replying(Reply::Ports {
        ports: vec![counters(3, "vsw3", 2)],
        drops: vec![],
    });
    assert_eq!(
        d.run(&["dump-ports", "3"]).ok(),
        "OFPST_PORT reply: 1 ports\n\
         \x20 port  3: rx pkts=2, bytes=128, drop=1, errs=0\n\
         \x20          tx pkts=1, bytes=64, drop=2, errs=0\n\
         datapath drops: none\n"
    );
    assert_eq!(d.request(), json!({"cmd": "dump-ports", "port": "3"}));
}

#[test]
fn fdb_show_prints_like_ovs_appctl() {
    let d = FakeDaemon::replying(Reply::Fdb {
        entries: vec![
            FdbRow {
                port: 1,
                vlan: 0,
                mac: "0a:58:0a:f4:01:05".into(),
                age_s: 3,
            },
            FdbRow {
                port: 12,
                vlan: 100,
                mac: "0a:58:0a:f4:01:06".into(),
                age_s: 250,
            },
            FdbRow {
                port: 0xffff_fffe,
                vlan: 0,
                mac: "aa:bb:cc:00:00:ff".into(),
                age_s: 0,
            },
        ],
    });
    assert_eq!(
        d.run(&["fdb-show"]).ok(),
        " port  VLAN  MAC                Age\n\
         \x20   1     0  0a:58:0a:f4:01:05    3\n\
         \x20  12   100  0a:58:0a:f4:01:06  250\n\
         LOCAL     0  aa:bb:cc:00:00:ff    0\n"
    );
}

#[test]
fn trace_prints_steps_then_datapath_actions() {
    let d = FakeDaemon::replying(Reply::Trace {
        lines: vec![
            " 0. ip,nw_dst=10.244.1.5, priority 100".into(),
            "    output:2".into(),
        ],
        verdict: "output:2".into(),
    });
    assert_eq!(
        d.run(&["trace", "in_port=1,ip,nw_dst=10.244.1.5"]).ok(),
        "Flow: in_port=1,ip,nw_dst=10.244.1.5\n\
         \n\
         \x200. ip,nw_dst=10.244.1.5, priority 100\n\
         \x20   output:2\n\
         \n\
         Datapath actions: output:2\n"
    );
}

fn node_row(name: &str, third: u8, vtep_mac: &str, next_hop: Option<&str>) -> NodeRow {
    NodeRow {
        name: name.into(),
        pod_cidr: format!("10.244.{third}.0/24"),
        vtep_ip: format!("198.18.0.{third}"),
        vtep_mac: vtep_mac.into(),
        next_hop_mac: next_hop.map(str::to_string),
    }
}

#[test]
fn dump_nodes_prints_a_table() {
    let reply = Reply::Nodes {
        nodes: vec![
            node_row("node-b", 2, "aa:bb:cc:00:00:02", Some("52:54:00:00:00:02")),
            node_row("node-cc", 13, "02:56:c6:12:00:0d", None),
        ],
    };
    let d = FakeDaemon::replying(reply.clone());
    assert_eq!(
        d.run(&["dump-nodes"]).ok(),
        "NAME     POD_CIDR        VTEP_IP      VTEP_MAC           NEXT_HOP_MAC\n\
         node-b   10.244.2.0/24   198.18.0.2   aa:bb:cc:00:00:02  52:54:00:00:00:02\n\
         node-cc  10.244.13.0/24  198.18.0.13  02:56:c6:12:00:0d  -\n"
    );
    let doc: Value = serde_json::from_str(d.run(&["dump-nodes", "--json"]).ok()).unwrap();
    assert_eq!(doc, serde_json::to_value(&reply).unwrap());
    assert_eq!(doc["nodes"][1]["next_hop_mac"], Value::Null);

    let d = FakeDaemon::replying(Reply::Nodes { nodes: vec![] });
    assert_eq!(
        d.run(&["dump-nodes"]).ok(),
        "NAME  POD_CIDR  VTEP_IP  VTEP_MAC  NEXT_HOP_MAC\n"
    );

    let d = FakeDaemon::replying(Reply::Done);
    assert_eq!(
        d.run(&["dump-nodes"]).failed(1),
        "unexpected reply from vswitchd: wanted \"nodes\", got \"done\""
    );
}

#[test]
fn dump_services_prints_a_table() {
    let reply = Reply::Services {
        services: vec![
            ServiceRow {
                name: "default/web".into(),
                vip: "10.96.0.10".into(),
                port: 80,
                protocol: "tcp".into(),
                endpoints: vec!["10.244.1.5:8080".into(), "10.244.2.7:8080".into()],
            },
            ServiceRow {
                name: "dns".into(),
                vip: "10.96.0.53".into(),
                port: 53,
                protocol: "udp".into(),
                endpoints: vec![],
            },
        ],
    };
    let d = FakeDaemon::replying(reply.clone());
    assert_eq!(
        d.run(&["dump-services"]).ok(),
        "NAME         VIP         PORT    ENDPOINTS\n\
         default/web  10.96.0.10  80/tcp  10.244.1.5:8080,10.244.2.7:8080\n\
         dns          10.96.0.53  53/udp  -\n"
    );
    let doc: Value = serde_json::from_str(d.run(&["dump-services", "--json"]).ok()).unwrap();
    assert_eq!(doc, serde_json::to_value(&reply).unwrap());

    let d = FakeDaemon::replying(Reply::Done);
    assert_eq!(
        d.run(&["dump-services"]).failed(1),
        "unexpected reply from vswitchd: wanted \"services\", got \"done\""
    );
}

#[test]
fn dump_conntrack_prints_entries_then_counters() {
    let line = "tcp,orig=(src=10.244.1.6,dst=10.96.0.10,sport=40000,dport=80),reply=(src=10.244.1.5,dst=10.244.1.6,sport=8080,dport=40000),zone=1,protoinfo=(state=ESTABLISHED)";
    let reply = Reply::Conntrack {
        entries: vec![line.into()],
        stats: CtStatsRow {
            entries: 1,
            limit: 65536,
            committed: 4,
            refused: 0,
            early_dropped: 0,
            invalid: 2,
            expired: 3,
            zones: Vec::new(),
        },
    };
    let d = FakeDaemon::replying(reply.clone());
    assert_eq!(
        d.run(&["dump-conntrack", "--zone", "1"]).ok(),
        format!("{line}\nconntrack: entries=1 limit=65536 committed=4 refused=0 early_dropped=0 invalid=2 expired=3\n")
    );
    assert_eq!(
        d.requests()[0]["request"],
        json!({"cmd": "dump-conntrack", "zone": 1})
    );
    let doc: Value = serde_json::from_str(d.run(&["dump-conntrack", "--json"]).ok()).unwrap();
    assert_eq!(doc, serde_json::to_value(&reply).unwrap());

    // Zones with a limit (config `conntrack.zone_limits`): one line each.
    let reply = Reply::Conntrack {
        entries: Vec::new(),
        stats: CtStatsRow {
            entries: 20,
            limit: 65536,
            zones: vec![
                CtZoneRow {
                    zone: 1,
                    limit: 1000,
                    entries: 20,
                },
                CtZoneRow {
                    zone: 7,
                    limit: 5,
                    entries: 0,
                },
            ],
            ..CtStatsRow::default()
        },
    };
    let d = FakeDaemon::replying(reply.clone());
    assert_eq!(
        d.run(&["dump-conntrack"]).ok(),
        "conntrack: entries=20 limit=65536 committed=0 refused=0 early_dropped=0 invalid=0 expired=0\n\
         conntrack: zone=1 limit=1000 entries=20\n\
         conntrack: zone=7 limit=5 entries=0\n"
    );
    let doc: Value = serde_json::from_str(d.run(&["dump-conntrack", "--json"]).ok()).unwrap();
    assert_eq!(
        doc["stats"]["zones"],
        json!([{"zone": 1, "limit": 1000, "entries": 20}, {"zone": 7, "limit": 5, "entries": 0}])
    );

    let d = FakeDaemon::replying(Reply::Count { count: 5 });
    assert_eq!(d.run(&["flush-conntrack"]).ok(), "");
    assert_eq!(
        d.run(&["dump-conntrack"]).failed(1),
        "unexpected reply from vswitchd: wanted \"conntrack\", got \"count\""
    );
}

#[test]
fn bad_service_arguments_are_reported_without_contacting_the_daemon() {
    let d = FakeDaemon::replying(Reply::Done);
    let cases: [(&[&str], &str); 9] = [
        (
            &["add-service", "web", "10.96.0.10:80"],
            "service web: invalid \"10.96.0.10:80\": expected VIP:PORT/PROTO like 10.96.0.10:80/tcp",
        ),
        (
            &["add-service", "web", "10.96.0.10:0/tcp"],
            "service web: invalid port \"0\" in \"10.96.0.10:0/tcp\": expected 1-65535",
        ),
        (
            &["add-service", "web", "10.96.0.300:80/tcp"],
            "service web: VIP \"10.96.0.300\" is not an IPv4 address",
        ),
        (
            &["add-service", "web", "10.96.0.10:80/sctp"],
            "service web: invalid protocol \"sctp\": expected tcp or udp",
        ),
        (
            &["add-service", "web", "10.96.0.10:80/tcp", "10.244.1.5"],
            "service web: endpoint \"10.244.1.5\" is not IP:PORT like 10.244.1.5:8080",
        ),
        (
            &[
                "add-service",
                "web",
                "10.96.0.10:80/tcp",
                "10.244.1.5:80",
                "10.244.1.5:80",
            ],
            "service web: endpoint 10.244.1.5:80 is listed twice",
        ),
        (
            &["add-service", "web", "224.0.0.1:80/tcp"],
            "service web: VIP 224.0.0.1 is not a unicast address",
        ),
        (
            &["add-service", "Web", "10.96.0.10:80/tcp"],
            "service \"Web\": only lowercase letters, digits, '-', '.' and one '/' are allowed",
        ),
        (
            &["del-service", "a/b/c"],
            "service \"a/b/c\": expected NAME or NAMESPACE/NAME",
        ),
    ];
    for (args, want) in cases {
        assert_eq!(d.run(args).failed(1), want, "ofctl {args:?}");
    }
    assert!(!d.contacted());
    // A zone that is not a u16 is a usage error.
    let r = d.run(&["dump-conntrack", "--zone", "70000"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(!d.contacted());
}

#[test]
fn bad_node_arguments_are_reported_without_contacting_the_daemon() {
    let d = FakeDaemon::replying(Reply::Done);
    let cases: [(&[&str], &str); 9] = [
        (
            &["add-node", "node-b", "10.244.2.0", "198.18.0.2"],
            "invalid CIDR \"10.244.2.0\": expected ADDRESS/LENGTH like 10.244.2.0/24",
        ),
        (
            &["add-node", "node-b", "10.244.2.5/24", "198.18.0.2"],
            "invalid CIDR \"10.244.2.5/24\": host bits are set (the network is 10.244.2.0/24)",
        ),
        (
            &["add-node", "node-b", "10.244.2.0/40", "198.18.0.2"],
            "invalid CIDR \"10.244.2.0/40\": the prefix length must be 0-32",
        ),
        (
            &["add-node", "node-b", "10.244.2.0/24", "198.18.0.300"],
            "invalid VTEP IP \"198.18.0.300\": expected an IPv4 address like 198.18.0.2",
        ),
        (
            &[
                "add-node",
                "node-b",
                "10.244.2.0/24",
                "198.18.0.2",
                "aa:bb:cc",
            ],
            "invalid VTEP MAC \"aa:bb:cc\": expected a MAC address like aa:bb:cc:00:00:02",
        ),
        (
            &[
                "add-node",
                "node-b",
                "10.244.2.0/24",
                "198.18.0.2",
                "ff:ff:ff:ff:ff:ff",
            ],
            "remote node node-b: VTEP MAC ff:ff:ff:ff:ff:ff is not a unicast MAC",
        ),
        (
            &["add-node", "node-b", "10.244.2.0/24", "0.0.0.0"],
            "remote node node-b: VTEP IP 0.0.0.0 is not a unicast address",
        ),
        (
            &["add-node", "Node_B", "10.244.2.0/24", "198.18.0.2"],
            "invalid node name \"Node_B\": only lowercase letters, digits, '-' and '.' are allowed",
        ),
        (
            &["del-node", "node-b."],
            "invalid node name \"node-b.\": must start and end with a letter or digit",
        ),
    ];
    for (args, want) in cases {
        assert_eq!(d.run(args).failed(1), want, "ofctl {args:?}");
    }
    assert!(!d.contacted());
}

#[test]
fn changes_print_nothing_on_success() {
    let d = FakeDaemon::replying(Reply::Count { count: 1 });
    assert_eq!(d.run(&["add-flow", "ip,actions=drop"]).ok(), "");
    assert_eq!(d.run(&["del-flows", "ip"]).ok(), "");
    let d = FakeDaemon::replying(Reply::Port { ofport: 4 });
    assert_eq!(d.run(&["add-port", "vsw4"]).ok(), "");
    let d = FakeDaemon::replying(Reply::Done);
    assert_eq!(d.run(&["del-port", "vsw4"]).ok(), "");
    assert_eq!(
        d.run(&["add-node", "node-b", "10.244.2.0/24", "198.18.0.2"])
            .ok(),
        ""
    );
    let d = FakeDaemon::replying(Reply::Count { count: 0 });
    assert_eq!(d.run(&["del-node", "node-b"]).ok(), "");
}

#[test]
fn daemon_error_is_one_stderr_line_with_status_1() {
    let msg = "line 2, column 5 near \"output:99\": no port 99";
    let d = FakeDaemon::start(&serde_json::to_string(&ReplyEnvelope::err(msg)).unwrap());
    let r = d.run(&["add-flow", "ip,actions=output:99"]);
    assert_eq!(r.failed(1), msg);
    // Also with --json: errors are never on stdout.
    let r = d.run(&["--json", "dump-ports", "vsw9"]);
    assert_eq!(r.failed(1), msg);
}

#[test]
fn no_daemon_names_the_socket() {
    let dir = TempDir::new();
    let sock = dir.0.join("vswitchd.sock");
    let r = ofctl(Some(&sock), &["show"], None);
    assert_eq!(
        r.failed(1),
        format!(
            "cannot connect to vswitchd at {}: No such file or directory (is vswitchd running?)",
            sock.display()
        )
    );
    // The default socket is named when none is given (the test machine has
    // no daemon there; skip if it does).
    let default = control::api::DEFAULT_SOCKET;
    if !Path::new(default).exists() {
        let r = ofctl(None, &["dump-flows"], None);
        assert!(
            r.failed(1)
                .starts_with(&format!("cannot connect to vswitchd at {default}: ")),
            "{r:?}"
        );
    } else {
        eprintln!("skipping the default-socket check: {default} exists");
    }
}

#[test]
fn bad_flow_text_is_reported_without_contacting_the_daemon() {
    let d = FakeDaemon::replying(Reply::Done);
    let cases: [(&[&str], &str); 5] = [
        (
            &["add-flow", "ip,nw_sorc=10.0.0.1,actions=drop"],
            "column 4 near \"nw_sorc\": unknown match field",
        ),
        (
            &["dump-flows", "table=0,nw_dst=10.0.0.1"],
            "column 9 near \"nw_dst\": ",
        ),
        (
            &["del-flows", "actions=drop"],
            "column 1 near \"actions=drop\": actions are not allowed",
        ),
        (
            &["add-group", "group_id=1,type=fast"],
            "column 17 near \"fast\": group type must be all, select or indirect",
        ),
        (
            &["trace", "in_port=1,tp_dst=80"],
            "column 11 near \"tp_dst\": ",
        ),
    ];
    for (args, want) in cases {
        let r = d.run(args);
        let msg = r.failed(1);
        assert!(
            msg.starts_with(want) || msg.contains(want),
            "ofctl {args:?}: {msg}"
        );
    }
    assert!(!d.contacted());
}

#[test]
fn add_flows_reads_stdin() {
    let d = FakeDaemon::replying(Reply::Count { count: 2 });
    let r = ofctl(Some(&d.socket()), &["add-flows", "-"], Some(FLOWS));
    assert_eq!(r.ok(), "");
    assert_eq!(d.request(), json!({"cmd": "add-flows", "flows": FLOWS}));

    let d = FakeDaemon::replying(Reply::Count { count: 2 });
    let r = ofctl(
        Some(&d.socket()),
        &["replace-flows", "-", "--json"],
        Some(FLOWS),
    );
    assert_eq!(
        serde_json::from_str::<Value>(r.ok()).unwrap(),
        json!({"kind": "count", "count": 2})
    );
    assert_eq!(d.request(), json!({"cmd": "replace-flows", "flows": FLOWS}));
}

#[test]
fn add_flows_file_with_a_bad_line_sends_nothing() {
    let files = TempDir::new();
    let bad = "table=0,priority=100,ip,actions=output:2\n\
               table=0,priority=50,arp,actions=normal\n\
               table=0,priority=10,ip,nw_dts=10.0.0.1,actions=drop\n\
               table=0,priority=0,actions=drop\n";
    let path = temp_file(&files, "bad.flows", bad);
    let d = FakeDaemon::replying(Reply::Count { count: 4 });
    for cmd in ["add-flows", "replace-flows"] {
        let r = d.run(&[cmd, &path]);
        assert_eq!(
            r.failed(1),
            format!("{path}: line 3, column 24 near \"nw_dts\": unknown match field")
        );
    }
    let r = ofctl(Some(&d.socket()), &["add-flows", "-"], Some(bad));
    assert_eq!(
        r.failed(1),
        "stdin: line 3, column 24 near \"nw_dts\": unknown match field"
    );
    let missing = files.0.join("missing.flows");
    let r = d.run(&["add-flows", missing.to_str().unwrap()]);
    assert_eq!(
        r.failed(1),
        format!(
            "cannot read {}: No such file or directory",
            missing.display()
        )
    );
    assert!(!d.contacted());
}

#[test]
fn usage_errors_are_one_line_with_status_2() {
    let d = FakeDaemon::replying(Reply::Done);
    for args in [
        &["dump-flow"][..],
        &[],
        &["add-port"],
        &["add-port", "vsw1", "--type", "tap"],
        &["add-port", "vsw1", "--ofport", "0"],
        &["show", "extra"],
        &["--bogus", "show"],
        &["add-node", "node-b", "10.244.2.0/24"],
        &[
            "add-node",
            "n",
            "10.244.2.0/24",
            "198.18.0.2",
            "aa:bb:cc:00:00:02",
            "x",
        ],
        &["del-node"],
        &["dump-nodes", "node-b"],
    ] {
        let r = d.run(args);
        let msg = r.failed(2);
        assert!(
            msg.ends_with("(try 'ofctl --help')"),
            "ofctl {args:?}: {msg}"
        );
    }
    assert!(d
        .run(&["add-port", "x", "--type", "tap"])
        .failed(2)
        .contains("afxdp"));
    assert!(!d.contacted());
    let help = d.run(&["--help"]);
    assert!(help.ok().contains("dump-flows"));
}

#[test]
fn unexpected_or_foreign_replies_fail_cleanly() {
    let d = FakeDaemon::replying(Reply::Done);
    let r = d.run(&["dump-flows"]);
    assert_eq!(
        r.failed(1),
        "unexpected reply from vswitchd: wanted \"flows\", got \"done\""
    );

    let d = FakeDaemon::start(r#"{"version":9,"ok":true,"reply":{"kind":"done"}}"#);
    let r = d.run(&["show"]);
    assert!(r.failed(1).contains("protocol version 9"), "{r:?}");

    // A daemon that reads the request and never answers.
    let d = FakeDaemon::start("");
    let r = d.run(&["show", "--timeout", "1"]);
    assert_eq!(
        r.failed(1),
        format!(
            "vswitchd at {} did not answer within 1s",
            d.socket().display()
        )
    );
}
