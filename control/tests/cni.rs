//! End-to-end tests of the `vswitch-cni` binary: real network namespaces and
//! veths, Debian's `host-local` IPAM (`/usr/lib/cni`), and a fake vswitchd
//! on a temporary socket that records what it is asked.
//!
//! The namespace tests need root, iproute2, ethtool, util-linux (`nsenter`)
//! and `host-local`. Without them they print "skipping: <reason>" and pass,
//! except under CI (`CI` set), where they fail with the reason. Every test
//! names its namespaces and container ids after itself and the process id,
//! keeps IPAM data and plugin state in its own temporary directory, uses
//! addresses in 10.244.0.0/16 only, and removes everything it created (a
//! guard's `Drop`), even when an assertion fails. No traffic is tested:
//! there is no switch between the pod and the host end here.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use control::api::{Envelope, Reply, ReplyEnvelope, Request, ShowReply, VERSION};
use control::cni::host_iface_name;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_vswitch-cni");
const CNI_PATH: &str = "/usr/lib/cni";

/// Why the namespace tests cannot run here, if they cannot.
fn missing_prerequisite() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("needs root (network namespaces, veths)".into());
    }
    for (tool, arg) in [
        ("ip", "-V"),
        ("ethtool", "--version"),
        ("nsenter", "--version"),
    ] {
        let ok = Command::new(tool)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Some(format!("needs {tool} (iproute2, ethtool, util-linux)"));
        }
    }
    if !Path::new(CNI_PATH).join("host-local").is_file() {
        return Some(format!(
            "needs {CNI_PATH}/host-local (Debian package containernetworking-plugins)"
        ));
    }
    None
}

/// False (after saying why) when the test cannot run; panics under CI.
fn can_run(test: &str) -> bool {
    let Some(reason) = missing_prerequisite() else {
        return true;
    };
    if std::env::var_os("CI").is_some() {
        panic!("{test}: {reason} (CI is set, so this is a failure, not a skip)");
    }
    // Straight to stderr, not through `eprintln!`, which the test harness
    // captures and shows only for failures: a skip must be visible.
    let _ = writeln!(std::io::stderr(), "skipping: {test}: {reason}");
    false
}

/// A fake vswitchd: answers every request `ok` and records it.
struct FakeDaemon {
    socket: PathBuf,
    seen: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeDaemon {
    fn start(socket: PathBuf) -> FakeDaemon {
        let listener = UnixListener::bind(&socket).expect("bind fake daemon socket");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        let thread = thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let mut reader = BufReader::new(&conn);
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    continue;
                }
                let reply = match serde_json::from_str::<Envelope>(&line) {
                    Ok(env) if env.version == VERSION => {
                        let reply = match env.request {
                            Request::Show {} => Reply::Show(ShowReply {
                                node: "fake".into(),
                                workers: 1,
                                ports: Vec::new(),
                                vtep_mac: None,
                                tunnel: None,
                            }),
                            _ => Reply::Done,
                        };
                        seen2.lock().unwrap().push(env.request);
                        ReplyEnvelope::ok(reply)
                    }
                    _ => ReplyEnvelope::err(format!("bad request {line:?}")),
                };
                let mut out = serde_json::to_string(&reply).unwrap();
                out.push('\n');
                let _ = (&conn).write_all(out.as_bytes());
            }
        });
        FakeDaemon {
            socket,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn requests(&self) -> Vec<Request> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for FakeDaemon {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees `stop`.
        let _ = std::os::unix::net::UnixStream::connect(&self.socket);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What one invocation printed and how it exited.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {:?}", self.stdout))
    }

    fn ok(self) -> Run {
        assert_eq!(self.code, 0, "plugin failed: {}", self.stdout);
        self
    }

    /// Asserts a spec error result with `code` and returns it.
    fn err(self, code: u64) -> Value {
        assert_ne!(self.code, 0, "plugin succeeded: {}", self.stdout);
        let v = self.json();
        assert_eq!(v["code"], code, "{v}");
        for k in ["cniVersion", "msg", "details"] {
            assert!(v[k].is_string(), "error result lacks {k}: {v}");
        }
        v
    }
}

/// One test's world: namespaces, temp dir, fake daemon; all removed on drop.
struct Fixture {
    test: &'static str,
    dir: PathBuf,
    subnet: u8,
    netns: Vec<String>,
    host_ifaces: Vec<String>,
    daemon: Option<FakeDaemon>,
}

impl Fixture {
    /// `subnet` picks 10.244.<subnet>.0/24.
    fn new(test: &'static str, subnet: u8) -> Fixture {
        let dir = std::env::temp_dir().join(format!("vswitch-cni-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut f = Fixture {
            test,
            dir,
            subnet,
            netns: Vec::new(),
            host_ifaces: Vec::new(),
            daemon: None,
        };
        f.daemon = Some(FakeDaemon::start(f.socket()));
        f
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("vswitchd.sock")
    }

    fn daemon(&self) -> &FakeDaemon {
        self.daemon.as_ref().expect("daemon running")
    }

    fn ipam_dir(&self) -> PathBuf {
        self.dir.join("ipam")
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// A new netns; returns its path.
    fn add_netns(&mut self, tag: &str) -> String {
        let name = format!("vswcni-{}-{tag}-{}", self.test, std::process::id());
        sh(&["ip", "netns", "add", &name]);
        self.netns.push(name.clone());
        format!("/run/netns/{name}")
    }

    fn container_id(&self, tag: &str) -> String {
        format!("{}-{tag}-{}", self.test, std::process::id())
    }

    fn gateway(&self) -> String {
        format!("10.244.{}.1", self.subnet)
    }

    fn conf(&self, version: &str) -> Value {
        json!({
            "cniVersion": version,
            "name": "pods",
            "type": "vswitch-cni",
            "socket": self.socket(),
            "stateDir": self.state_dir(),
            "ipam": {
                "type": "host-local",
                "subnet": format!("10.244.{}.0/24", self.subnet),
                "gateway": self.gateway(),
                "dataDir": self.ipam_dir(),
            }
        })
    }

    /// Runs the plugin with `vars` (CNI_PATH added) and `conf` on stdin.
    fn cni(&self, command: &str, vars: &[(&str, &str)], conf: &Value) -> Run {
        let mut all = vec![("CNI_COMMAND", command), ("CNI_PATH", CNI_PATH)];
        all.extend_from_slice(vars);
        invoke(&all, conf.to_string().as_bytes())
    }

    /// Runs an attachment command (ADD, DEL, CHECK) for `id`/`ifname`.
    fn attach_cmd(
        &mut self,
        command: &str,
        id: &str,
        netns: &str,
        ifname: &str,
        conf: &Value,
    ) -> Run {
        let host = host_iface_name(id, ifname);
        if !self.host_ifaces.contains(&host) {
            self.host_ifaces.push(host);
        }
        let mut vars = vec![("CNI_CONTAINERID", id), ("CNI_IFNAME", ifname)];
        if !netns.is_empty() {
            vars.push(("CNI_NETNS", netns));
        }
        self.cni(command, &vars, conf)
    }

    /// The host-local reservation file of `ip`.
    fn reservation(&self, ip: &str) -> PathBuf {
        self.ipam_dir().join("pods").join(ip)
    }

    fn reservations(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.ipam_dir().join("pods")) else {
            return Vec::new();
        };
        let mut v: Vec<String> = entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("10."))
            .collect();
        v.sort();
        v
    }

    fn records(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.state_dir().join("pods")) else {
            return Vec::new();
        };
        entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.daemon.take();
        for h in &self.host_ifaces {
            let _ = quiet(&["ip", "link", "del", "dev", h]);
        }
        for n in &self.netns {
            let _ = quiet(&["ip", "netns", "del", n]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs the plugin with only `vars` (and `PATH`) set and `stdin`.
fn invoke(vars: &[(&str, &str)], stdin: &[u8]) -> Run {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("run vswitch-cni");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    }
}

/// A netconf for the tests that never get as far as IPAM.
fn plain_conf(version: &str) -> Vec<u8> {
    json!({"cniVersion": version, "name": "pods", "type": "vswitch-cni",
           "ipam": {"type": "host-local", "subnet": "10.244.100.0/24"}})
    .to_string()
    .into_bytes()
}

/// ADD variables for a netns that does not exist.
const NO_SUCH_POD: [(&str, &str); 5] = [
    ("CNI_COMMAND", "ADD"),
    ("CNI_CONTAINERID", "c1"),
    ("CNI_NETNS", "/run/netns/vswitch-cni-test-nonexistent"),
    ("CNI_IFNAME", "eth0"),
    ("CNI_PATH", CNI_PATH),
];

/// Runs a command that must succeed; its stdout.
fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command; whether it succeeded.
fn quiet(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `ip -j -d addr show dev IF` in the netns at `netns` (or the host when
/// empty); `None` when the link does not exist.
fn link(netns: &str, ifname: &str) -> Option<Value> {
    let mut args = vec![];
    let ns_arg = format!("--net={netns}");
    if !netns.is_empty() {
        args.extend(["nsenter", ns_arg.as_str(), "--"]);
    }
    args.extend(["ip", "-j", "-d", "addr", "show", "dev", ifname]);
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    if !out.status.success() {
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array().and_then(|a| a.first()).cloned()
}

fn ipv4_of(link: &Value) -> Vec<String> {
    link["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["family"] == "inet")
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .collect()
}

/// Asserts everything ADD promises, returns the pod address (`10.244.x.y`).
fn assert_attached(
    f: &Fixture,
    result: &Value,
    id: &str,
    netns: &str,
    ifname: &str,
    version: &str,
) -> String {
    let host = host_iface_name(id, ifname);
    assert_eq!(result["cniVersion"], version, "{result}");

    // Result shape.
    let ifaces = result["interfaces"].as_array().expect("interfaces");
    assert_eq!(ifaces.len(), 2, "{result}");
    assert_eq!(ifaces[0]["name"], host.as_str());
    assert!(ifaces[0].get("sandbox").is_none(), "{result}");
    assert_eq!(ifaces[1]["name"], ifname);
    assert_eq!(ifaces[1]["sandbox"], netns);
    let ips = result["ips"].as_array().expect("ips");
    assert_eq!(ips.len(), 1, "{result}");
    assert_eq!(ips[0]["interface"], 1);
    assert_eq!(ips[0]["gateway"], f.gateway().as_str());
    let cidr = ips[0]["address"].as_str().unwrap().to_string();
    let prefix = format!("10.244.{}.", f.subnet);
    assert!(cidr.starts_with(&prefix) && cidr.ends_with("/24"), "{cidr}");
    let routes = result["routes"].as_array().expect("routes");
    assert!(
        routes
            .iter()
            .any(|r| r["dst"] == "0.0.0.0/0" && r["gw"] == f.gateway().as_str()),
        "{result}"
    );
    assert!(result["dns"].is_object(), "{result}");
    let v1_1 = version == "1.1.0";
    let v0 = version.starts_with("0.");
    for i in ifaces {
        assert_eq!(
            i.get("mtu").is_some(),
            v1_1,
            "mtu only from 1.1.0: {result}"
        );
    }
    assert_eq!(
        ips[0].get("version").is_some(),
        v0,
        "ips[].version only before 1.0.0: {result}"
    );
    if v0 {
        assert_eq!(ips[0]["version"], "4");
    }

    // The pod side.
    let pod = link(netns, ifname).expect("pod interface exists");
    assert_eq!(pod["mtu"], 1450);
    assert!(
        pod["flags"].as_array().unwrap().iter().any(|f| f == "UP"),
        "{pod}"
    );
    assert_eq!(ipv4_of(&pod), vec![cidr.clone()]);
    assert_eq!(ifaces[1]["mac"], pod["address"]);
    let lo = link(netns, "lo").unwrap();
    assert!(
        lo["flags"].as_array().unwrap().iter().any(|f| f == "UP"),
        "{lo}"
    );
    let ns_arg = format!("--net={netns}");
    let routes = sh(&[
        "nsenter", &ns_arg, "--", "ip", "-j", "route", "show", "default",
    ]);
    let routes: Value = serde_json::from_str(&routes).unwrap();
    assert_eq!(routes[0]["gateway"], f.gateway().as_str(), "{routes}");
    assert_eq!(routes[0]["dev"], ifname, "{routes}");
    let features = sh(&["nsenter", &ns_arg, "--", "ethtool", "-k", ifname]);
    assert!(
        features.lines().any(|l| l.trim() == "tx-checksumming: off"),
        "tx checksum offload must be off on the pod side:\n{features}"
    );

    // The host side.
    let h = link("", &host).expect("host veth exists");
    assert_eq!(h["mtu"], 1450);
    assert!(
        h["flags"].as_array().unwrap().iter().any(|f| f == "UP"),
        "{h}"
    );
    assert_eq!(h["ifalias"], format!("vswitch-cni pods {id} {ifname}"));
    assert_eq!(ifaces[0]["mac"], h["address"]);

    // The daemon heard of it.
    let ip = cidr.split('/').next().unwrap().to_string();
    let want = Request::AddPod {
        container_id: id.to_string(),
        iface: host,
        mac: pod["address"].as_str().unwrap().to_string(),
        ip: ip.clone(),
    };
    assert!(
        f.daemon().requests().contains(&want),
        "{:?}",
        f.daemon().requests()
    );
    ip
}

fn assert_detached(f: &Fixture, id: &str, ifname: &str, ip: &str) {
    let host = host_iface_name(id, ifname);
    assert!(link("", &host).is_none(), "host veth {host} still exists");
    assert!(!f.reservation(ip).exists(), "address {ip} still reserved");
    assert!(f.records().is_empty(), "state left: {:?}", f.records());
    let want = Request::DelPod {
        container_id: id.to_string(),
        iface: host,
    };
    assert!(
        f.daemon().requests().contains(&want),
        "{:?}",
        f.daemon().requests()
    );
}

fn with_prev(conf: &Value, prev: &Value) -> Value {
    let mut c = conf.clone();
    c["prevResult"] = prev.clone();
    c
}

#[test]
fn version_lists_supported_versions() {
    let v = invoke(&[("CNI_COMMAND", "VERSION")], br#"{"cniVersion":"1.0.0"}"#)
        .ok()
        .json();
    assert_eq!(
        v,
        json!({"cniVersion": "1.0.0",
               "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]})
    );
}

#[test]
fn bad_json_is_code_6() {
    invoke(&NO_SUCH_POD, b"{\"cniVersion\":").err(6);
    invoke(&NO_SUCH_POD, b"").err(6);
}

#[test]
fn missing_netns_is_code_4() {
    let vars: Vec<_> = NO_SUCH_POD
        .into_iter()
        .filter(|(k, _)| *k != "CNI_NETNS")
        .collect();
    let v = invoke(&vars, &plain_conf("1.0.0")).err(4);
    assert!(v["details"].as_str().unwrap().contains("CNI_NETNS"), "{v}");
    assert_eq!(v["cniVersion"], "1.0.0");
}

#[test]
fn unsupported_version_is_code_1() {
    invoke(&NO_SUCH_POD, &plain_conf("0.2.0")).err(1);
    invoke(&NO_SUCH_POD, &plain_conf("9.0.0")).err(1);
}

#[test]
fn add_to_a_missing_netns_is_code_3() {
    invoke(&NO_SUCH_POD, &plain_conf("1.0.0")).err(3);
}

#[test]
fn add_check_del_1_0_0() {
    if !can_run("add_check_del_1_0_0") {
        return;
    }
    let mut f = Fixture::new("acd", 101);
    let netns = f.add_netns("pod");
    let id = f.container_id("a");
    let conf = f.conf("1.0.0");

    let result = f.attach_cmd("ADD", &id, &netns, "eth0", &conf).ok().json();
    let ip = assert_attached(&f, &result, &id, &netns, "eth0", "1.0.0");
    assert!(f.reservation(&ip).exists());
    assert_eq!(f.records(), vec![format!("{id}@eth0")]);

    let check = f
        .attach_cmd("CHECK", &id, &netns, "eth0", &with_prev(&conf, &result))
        .ok();
    assert_eq!(check.stdout, "", "CHECK prints nothing on success");

    f.attach_cmd("DEL", &id, &netns, "eth0", &with_prev(&conf, &result))
        .ok();
    assert_detached(&f, &id, "eth0", &ip);
    assert!(
        link(&netns, "eth0").is_none(),
        "pod end went with the host end"
    );

    // DEL is idempotent.
    f.attach_cmd("DEL", &id, &netns, "eth0", &conf).ok();
    f.attach_cmd("DEL", &id, "", "eth0", &conf).ok();

    // The address was released: a new ADD gets one again, and DEL frees it.
    let result = f.attach_cmd("ADD", &id, &netns, "eth0", &conf).ok().json();
    let ip = assert_attached(&f, &result, &id, &netns, "eth0", "1.0.0");
    f.attach_cmd("DEL", &id, &netns, "eth0", &conf).ok();
    assert_detached(&f, &id, "eth0", &ip);
    assert!(f.reservations().is_empty(), "{:?}", f.reservations());
}

#[test]
fn add_results_per_version() {
    if !can_run("add_results_per_version") {
        return;
    }
    let mut f = Fixture::new("versions", 102);
    for (tag, version) in [("v110", "1.1.0"), ("v040", "0.4.0"), ("v031", "0.3.1")] {
        let netns = f.add_netns(tag);
        let id = f.container_id(tag);
        let conf = f.conf(version);
        let result = f.attach_cmd("ADD", &id, &netns, "eth0", &conf).ok().json();
        let ip = assert_attached(&f, &result, &id, &netns, "eth0", version);
        if version != "0.3.1" {
            f.attach_cmd("CHECK", &id, &netns, "eth0", &with_prev(&conf, &result))
                .ok();
        } else {
            // CHECK came with 0.4.0.
            f.attach_cmd("CHECK", &id, &netns, "eth0", &with_prev(&conf, &result))
                .err(1);
        }
        f.attach_cmd("DEL", &id, &netns, "eth0", &conf).ok();
        assert_detached(&f, &id, "eth0", &ip);
    }
}

#[test]
fn check_reports_a_broken_attachment() {
    if !can_run("check_reports_a_broken_attachment") {
        return;
    }
    let mut f = Fixture::new("checkbad", 103);
    let netns = f.add_netns("pod");
    let id = f.container_id("a");
    let conf = f.conf("1.1.0");
    let result = f.attach_cmd("ADD", &id, &netns, "eth0", &conf).ok().json();
    let ns_arg = format!("--net={netns}");
    sh(&[
        "nsenter", &ns_arg, "--", "ethtool", "-K", "eth0", "tx", "on",
    ]);
    let v = f
        .attach_cmd("CHECK", &id, &netns, "eth0", &with_prev(&conf, &result))
        .err(103);
    assert!(
        v["details"].as_str().unwrap().contains("tx checksum"),
        "{v}"
    );
    f.attach_cmd("DEL", &id, &netns, "eth0", &conf).ok();
}

#[test]
fn del_after_netns_is_gone() {
    if !can_run("del_after_netns_is_gone") {
        return;
    }
    let mut f = Fixture::new("delgone", 104);
    let netns = f.add_netns("pod");
    let id = f.container_id("a");
    let conf = f.conf("1.0.0");
    let result = f.attach_cmd("ADD", &id, &netns, "eth0", &conf).ok().json();
    let ip = assert_attached(&f, &result, &id, &netns, "eth0", "1.0.0");
    let name = f.netns.pop().unwrap();
    sh(&["ip", "netns", "del", &name]);
    f.attach_cmd("DEL", &id, &netns, "eth0", &with_prev(&conf, &result))
        .ok();
    assert_detached(&f, &id, "eth0", &ip);
    f.attach_cmd("DEL", &id, &netns, "eth0", &conf).ok();
}

#[test]
fn del_removes_only_its_own_host_veth() {
    if !can_run("del_removes_only_its_own_host_veth") {
        return;
    }
    let mut f = Fixture::new("delown", 109);
    let conf = f.conf("1.0.0");

    // An ADD killed before it set the alias: the record names the link.
    let netns = f.add_netns("noalias");
    let id = f.container_id("noalias");
    let result = f.attach_cmd("ADD", &id, &netns, "eth0", &conf).ok().json();
    let ip = assert_attached(&f, &result, &id, &netns, "eth0", "1.0.0");
    let host = host_iface_name(&id, "eth0");
    sh(&["ip", "link", "set", "dev", &host, "alias", ""]);
    assert!(link("", &host).unwrap().get("ifalias").is_none());
    f.attach_cmd("DEL", &id, &netns, "eth0", &conf).ok();
    assert_detached(&f, &id, "eth0", &ip);

    // A link of that name that belongs to someone else is left alone.
    let id = f.container_id("foreign");
    let host = host_iface_name(&id, "eth0");
    f.host_ifaces.push(host.clone());
    sh(&[
        "ip",
        "link",
        "add",
        &host,
        "type",
        "veth",
        "peer",
        "name",
        "vswcnitmp0",
    ]);
    sh(&[
        "ip",
        "link",
        "set",
        "dev",
        &host,
        "alias",
        "not-vswitch-cni",
    ]);
    f.attach_cmd("DEL", &id, "", "eth0", &conf).ok();
    assert!(link("", &host).is_some(), "a foreign {host} was deleted");
    let v = f.attach_cmd("ADD", &id, &netns, "eth0", &conf).err(102);
    assert!(v["details"].as_str().unwrap().contains(&host), "{v}");
    assert!(f.records().is_empty(), "{:?}", f.records());
    assert!(f.reservations().is_empty(), "{:?}", f.reservations());
}

#[test]
fn add_with_existing_ifname_fails_and_leaves_nothing() {
    if !can_run("add_with_existing_ifname_fails_and_leaves_nothing") {
        return;
    }
    let mut f = Fixture::new("exists", 105);
    let netns = f.add_netns("pod");
    let ns_arg = format!("--net={netns}");
    // Some other interface already holds the name (dummy may be absent
    // from the kernel; a veth pair inside the netns is always there).
    sh(&[
        "nsenter", &ns_arg, "--", "ip", "link", "add", "eth0", "type", "veth", "peer", "name",
        "other0",
    ]);
    let id = f.container_id("a");
    let v = f
        .attach_cmd("ADD", &id, &netns, "eth0", &f.conf("1.0.0"))
        .err(102);
    assert!(v["details"].as_str().unwrap().contains("eth0"), "{v}");
    assert!(link("", &host_iface_name(&id, "eth0")).is_none());
    assert!(f.reservations().is_empty(), "{:?}", f.reservations());
    assert!(f.records().is_empty(), "{:?}", f.records());
    assert!(f.daemon().requests().is_empty());
}

#[test]
fn add_rolls_back_when_the_daemon_is_down() {
    if !can_run("add_rolls_back_when_the_daemon_is_down") {
        return;
    }
    let mut f = Fixture::new("nodaemon", 106);
    let netns = f.add_netns("pod");
    let id = f.container_id("a");
    let mut conf = f.conf("1.0.0");
    conf["socket"] = json!(f.dir.join("nobody.sock"));
    let v = f.attach_cmd("ADD", &id, &netns, "eth0", &conf).err(11);
    assert!(
        v["details"].as_str().unwrap().contains("nobody.sock"),
        "{v}"
    );
    assert!(
        link("", &host_iface_name(&id, "eth0")).is_none(),
        "veth left behind"
    );
    assert!(link(&netns, "eth0").is_none(), "pod interface left behind");
    assert!(f.reservations().is_empty(), "{:?}", f.reservations());
    assert!(f.records().is_empty(), "{:?}", f.records());
    // DEL with the daemon down still succeeds.
    f.attach_cmd("DEL", &id, &netns, "eth0", &conf).ok();
}

#[test]
fn status_with_and_without_the_daemon() {
    if !can_run("status_with_and_without_the_daemon") {
        return;
    }
    let mut f = Fixture::new("status", 107);
    let run = f.cni("STATUS", &[], &f.conf("1.1.0")).ok();
    assert_eq!(run.stdout, "");
    assert!(f.daemon().requests().contains(&Request::Show {}));
    f.daemon.take();
    std::fs::remove_file(f.socket()).unwrap();
    let v = f.cni("STATUS", &[], &f.conf("1.1.0")).err(50);
    assert!(
        v["details"].as_str().unwrap().contains("vswitchd.sock"),
        "{v}"
    );
    // STATUS is 1.1.0.
    f.cni("STATUS", &[], &f.conf("1.0.0")).err(1);
}

#[test]
fn gc_removes_stale_attachments() {
    if !can_run("gc_removes_stale_attachments") {
        return;
    }
    let mut f = Fixture::new("gc", 108);
    let conf = f.conf("1.1.0");
    let mut ips = HashMap::new();
    let mut ids = HashMap::new();
    for tag in ["keep", "stale", "gone"] {
        let netns = f.add_netns(tag);
        let id = f.container_id(tag);
        let result = f.attach_cmd("ADD", &id, &netns, "eth0", &conf).ok().json();
        ips.insert(
            tag,
            assert_attached(&f, &result, &id, &netns, "eth0", "1.1.0"),
        );
        ids.insert(tag, id);
    }
    // "gone": its netns was deleted (veth pair with it) and DEL never came.
    let gone_ns = f.netns.pop().unwrap();
    sh(&["ip", "netns", "del", &gone_ns]);

    let mut gc_conf = conf.clone();
    gc_conf["cni.dev/valid-attachments"] = json!([{"containerID": ids["keep"], "ifname": "eth0"}]);
    assert_eq!(f.cni("GC", &[], &gc_conf).ok().stdout, "");

    for tag in ["stale", "gone"] {
        let host = host_iface_name(&ids[tag], "eth0");
        assert!(link("", &host).is_none(), "{tag}: {host} still exists");
        assert!(
            !f.reservation(&ips[tag]).exists(),
            "{tag}: address still reserved"
        );
        let want = Request::DelPod {
            container_id: ids[tag].clone(),
            iface: host,
        };
        assert!(f.daemon().requests().contains(&want), "{tag}: no DelPod");
    }
    assert!(link("", &host_iface_name(&ids["keep"], "eth0")).is_some());
    assert!(f.reservation(&ips["keep"]).exists());
    assert_eq!(f.records(), vec![format!("{}@eth0", ids["keep"])]);

    // A second GC with the same list changes nothing.
    f.cni("GC", &[], &gc_conf).ok();
    assert!(link("", &host_iface_name(&ids["keep"], "eth0")).is_some());
    let netns = format!("/run/netns/{}", f.netns[0]);
    let keep = ids["keep"].clone();
    f.attach_cmd("DEL", &keep, &netns, "eth0", &conf).ok();
    assert_detached(&f, &keep, "eth0", &ips["keep"]);
}
