//! Helpers for the end-to-end tests: network namespaces, daemons and
//! commands, each owned by a guard that removes what it created even when
//! the test panics.
//!
//! Rules every test follows (DEVELOPERS.md, "The machine"): names carry the
//! test's own tag and the process id so parallel or leftover runs never
//! collide; addresses are only 10.244.0.0/16 (pods), 198.18.0.0/15
//! (underlay) and 10.96.0.0/12 (Services), inside namespaces the test made.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// True when the tests may touch the kernel (root). Outside CI a missing
/// privilege skips with a printed reason; in CI (`CI` set) it fails.
pub fn require_root(test: &str) -> bool {
    let root = nix_uid() == 0;
    if root {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: needs root (CI runs as root)");
    }
    eprintln!("skipping {test}: needs root");
    false
}

fn nix_uid() -> u32 {
    // /proc/self/status "Uid:" line; avoids an unsafe geteuid call.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(str::to_string))
        })
        .and_then(|u| u.parse().ok())
        .unwrap_or(u32::MAX)
}

/// Runs a command, returning its output (never panics on failure).
pub fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"))
}

/// Runs a shell command line; panics with its output if it fails.
pub fn sh(line: &str) -> String {
    let o = run("sh", &["-c", line]);
    if !o.status.success() {
        panic!(
            "command failed: {line}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs a shell command line; true when it succeeded.
pub fn sh_ok(line: &str) -> bool {
    run("sh", &["-c", line]).status.success()
}

/// A short unique tag for names: `<prefix><pid % 10000>` (≤ 9 chars).
pub fn tag(prefix: &str) -> String {
    assert!(
        prefix.len() <= 5,
        "prefix {prefix} too long for interface names"
    );
    format!("{prefix}{}", std::process::id() % 10_000)
}

/// A network namespace, deleted on drop (with every interface in it).
#[derive(Debug)]
pub struct Netns {
    /// Its name (under /run/netns).
    pub name: String,
}

impl Netns {
    /// Creates `name` (deleting a leftover of the same name first) with lo up.
    pub fn new(name: &str) -> Netns {
        let _ = run("ip", &["netns", "del", name]);
        sh(&format!("ip netns add {name}"));
        let ns = Netns { name: name.into() };
        ns.exec("ip link set lo up");
        ns
    }

    /// The path CNI_NETNS takes.
    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// Runs a shell line inside; panics on failure.
    pub fn exec(&self, line: &str) -> String {
        sh(&format!(
            "ip netns exec {} sh -c '{}'",
            self.name,
            line.replace('\'', "'\\''")
        ))
    }

    /// Runs a shell line inside; true on success.
    pub fn ok(&self, line: &str) -> bool {
        sh_ok(&format!(
            "ip netns exec {} sh -c '{}'",
            self.name,
            line.replace('\'', "'\\''")
        ))
    }

    /// Starts a background command inside.
    pub fn spawn(&self, line: &str) -> Child {
        Command::new("ip")
            .args(["netns", "exec", &self.name, "sh", "-c", line])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn in netns")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Kill whatever still runs inside, then remove the namespace.
        let _ = run(
            "sh",
            &[
                "-c",
                &format!("ip netns pids {} | xargs -r kill -9", self.name),
            ],
        );
        let _ = run("ip", &["netns", "del", &self.name]);
    }
}

/// Path of a binary built by this workspace (`target/<profile>/NAME`).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test>-<hash>
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} not built: run `cargo build --workspace --bins` first (scripts/test.sh does)",
        p.display()
    );
    p
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A `vswitchd` running inside a namespace; stopped with SIGTERM on drop.
#[derive(Debug)]
pub struct Vswitchd {
    child: Option<Child>,
    /// Its control socket.
    pub socket: PathBuf,
    /// Its log file.
    pub log: PathBuf,
    /// The namespace it runs in.
    pub ns: String,
    dir: PathBuf,
}

impl Vswitchd {
    /// Writes `config` (TOML; `{socket}` and `{state}` are substituted) and
    /// starts the daemon in namespace `ns`; waits until `ofctl show` answers.
    pub fn start(ns: &Netns, config: &str) -> Vswitchd {
        let dir = std::env::temp_dir().join(format!("vswitch-e2e-{}", ns.name));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("vswitchd.sock");
        let cfg = config
            .replace("{socket}", &socket.display().to_string())
            .replace("{state}", &dir.join("state").display().to_string());
        std::fs::write(dir.join("vswitchd.toml"), cfg).unwrap();
        let mut d = Vswitchd {
            child: None,
            socket,
            log: dir.join("vswitchd.log"),
            ns: ns.name.clone(),
            dir,
        };
        d.launch();
        d
    }

    /// Starts the daemon process with the config already written (again
    /// after [`Vswitchd::stop`] or [`Vswitchd::kill9`]).
    pub fn launch(&mut self) {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .arg(bin("vswitchd"))
            .arg("--config")
            .arg(self.dir.join("vswitchd.toml"))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.log)
                    .unwrap(),
            )
            .spawn()
            .expect("start vswitchd");
        self.child = Some(child);
        let ready = wait_for(Duration::from_secs(20), || {
            let exited = matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(Some(_))));
            exited || self.ofctl_ok(&["show"])
        }) && self.ofctl_ok(&["show"]);
        if !ready {
            panic!("vswitchd did not become ready; log:\n{}", self.log_text());
        }
    }

    /// Kills the daemon with SIGKILL (no cleanup), as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The daemon's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs `ofctl --socket S ARGS...`.
    pub fn ofctl_out(&self, args: &[&str]) -> Output {
        Command::new(bin("ofctl"))
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run ofctl")
    }

    /// Runs ofctl; true on success.
    pub fn ofctl_ok(&self, args: &[&str]) -> bool {
        self.ofctl_out(args).status.success()
    }

    /// Runs ofctl; panics (with the daemon log) on failure; returns stdout.
    pub fn ofctl(&self, args: &[&str]) -> String {
        let o = self.ofctl_out(args);
        if !o.status.success() {
            panic!(
                "ofctl {args:?} failed: {}\nvswitchd log:\n{}",
                String::from_utf8_lossy(&o.stderr),
                self.log_text()
            );
        }
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Stops the daemon with SIGTERM and waits; returns its exit success.
    pub fn stop(&mut self) -> bool {
        let Some(mut c) = self.child.take() else {
            return true;
        };
        // `ip netns exec` execs the daemon, so the child pid is vswitchd.
        let _ = run("kill", &["-TERM", &c.id().to_string()]);
        let ok = wait_for(Duration::from_secs(10), || {
            matches!(c.try_wait(), Ok(Some(_)))
        });
        if !ok {
            let _ = c.kill();
        }
        c.wait().map(|s| s.success()).unwrap_or(false)
    }

    /// The directory holding its config, socket and log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Vswitchd {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A pod made by the real CNI plugin: a namespace plus the plugin's ADD/DEL.
#[derive(Debug)]
pub struct Pod {
    /// The pod's namespace.
    pub ns: Netns,
    /// CNI container id.
    pub id: String,
    /// Its IPv4 address (from IPAM).
    pub ip: String,
    netconf: String,
    node_ns: String,
    deleted: bool,
}

impl Pod {
    /// Runs `vswitch-cni` ADD inside `node` for a new pod namespace `name`.
    /// `netconf` is the network config JSON.
    pub fn add(node: &Netns, name: &str, netconf: &str) -> Pod {
        let ns = Netns::new(name);
        let id = format!("c-{name}");
        let out = cni(&node.name, "ADD", &id, &ns.path(), netconf);
        if !out.status.success() {
            panic!(
                "CNI ADD {name} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("CNI result JSON");
        let ip = v["ips"][0]["address"]
            .as_str()
            .expect("an IP in the result")
            .split('/')
            .next()
            .unwrap()
            .to_string();
        Pod {
            ns,
            id,
            ip,
            netconf: netconf.into(),
            node_ns: node.name.clone(),
            deleted: false,
        }
    }

    /// Runs CNI DEL now.
    pub fn del(&mut self) -> Output {
        self.deleted = true;
        cni(
            &self.node_ns,
            "DEL",
            &self.id,
            &self.ns.path(),
            &self.netconf,
        )
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        if !self.deleted {
            let _ = self.del();
        }
    }
}

/// Runs the CNI plugin inside namespace `node` with stdin `netconf`.
pub fn cni(node: &str, command: &str, id: &str, netns: &str, netconf: &str) -> Output {
    use std::io::Write;
    let mut c = Command::new("ip")
        .args(["netns", "exec", node])
        .arg(bin("vswitch-cni"))
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", id)
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", "/usr/lib/cni")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run vswitch-cni");
    c.stdin
        .take()
        .unwrap()
        .write_all(netconf.as_bytes())
        .unwrap();
    c.wait_with_output().unwrap()
}

/// Serialises the network tests of one binary: they share a kernel and two
/// cores, and traffic tests fighting each other would only measure that.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// An underlay for overlay tests: a bridge `br0` in a new namespace `name`
/// and a veth into each of `nodes`, named `ul0` there, with address
/// 198.18.`net`.(i+1)/24 (so a capture on the bridge sees the wire).
pub fn underlay(name: &str, net: u8, nodes: &[&Netns]) -> Netns {
    let ns = Netns::new(name);
    ns.exec("ip link add br0 type bridge && ip link set br0 up");
    for (i, n) in nodes.iter().enumerate() {
        let br_side = format!("u{}{}", i, &name[name.len().saturating_sub(6)..]);
        sh(&format!(
            "ip link add ul0 netns {} type veth peer name {br_side} netns {}",
            n.name, ns.name
        ));
        ns.exec(&format!(
            "ip link set {br_side} master br0 && ip link set {br_side} up"
        ));
        n.exec(&format!(
            "ip addr add 198.18.{net}.{}/24 dev ul0 && ip link set ul0 up",
            i + 1
        ));
    }
    ns
}

/// `[node]` keys of an overlay node on [`underlay`] `net`: uplink `ul0`,
/// VTEP 198.18.`net`.`me`, VNI `vni`.
pub fn overlay_keys(net: u8, me: u8, vni: u32) -> String {
    format!("uplink = \"ul0\"\nvtep_ip = \"198.18.{net}.{me}\"\nvni = {vni}\n")
}

/// A `[[remote_nodes]]` entry `peer`: pods 10.244.`octet`.0/24 behind the
/// VTEP 198.18.`net`.`host` (with its VTEP MAC, if given).
pub fn peer_toml(net: u8, host: u8, octet: u8, vtep_mac: Option<&str>) -> String {
    let mac = vtep_mac
        .map(|m| format!("vtep_mac = \"{m}\"\n"))
        .unwrap_or_default();
    format!(
        "\n[[remote_nodes]]\nname = \"peer\"\npod_cidr = \"10.244.{octet}.0/24\"\nvtep_ip = \"198.18.{net}.{host}\"\n{mac}"
    )
}

/// A node: a namespace running `vswitchd`, and the CNI netconf for its pods.
#[derive(Debug)]
pub struct Node {
    /// The daemon (dropped before the namespace).
    pub vswitchd: Vswitchd,
    /// CNI network configuration JSON for pods of this node.
    pub netconf: String,
    /// Pod subnet, e.g. `10.244.11.0/24`.
    pub subnet: String,
    /// Gateway (host port) address.
    pub gateway: String,
    /// The node namespace (dropped last).
    pub ns: Netns,
}

impl Node {
    /// A node in namespace `name` with pod subnet `10.244.<octet>.0/24` and
    /// `extra` TOML appended to the config.
    pub fn start(name: &str, octet: u8, extra: &str) -> Node {
        Node::start_in(Netns::new(name), octet, "", extra)
    }

    /// A node in an existing namespace `ns`; `node_keys` are extra keys of
    /// the `[node]` table (uplink, vtep_ip, ...), `extra` is appended TOML
    /// (e.g. `[[remote_nodes]]`).
    pub fn start_in(ns: Netns, octet: u8, node_keys: &str, extra: &str) -> Node {
        let name = ns.name.clone();
        let subnet = format!("10.244.{octet}.0/24");
        let gateway = format!("10.244.{octet}.1");
        let config = format!(
            "[node]\nname = \"{name}\"\npod_cidr = \"{subnet}\"\ngateway_ip = \"{gateway}\"\n\
             host_port = \"vsw0\"\n{node_keys}\n\n[control]\nsocket = \"{{socket}}\"\nstate_dir = \"{{state}}\"\n{extra}"
        );
        let vswitchd = Vswitchd::start(&ns, &config);
        let ipam_dir = vswitchd.dir().join("ipam");
        let netconf = format!(
            r#"{{"cniVersion":"1.0.0","name":"pods-{name}","type":"vswitch-cni","socket":"{}","mtu":1450,"ipam":{{"type":"host-local","subnet":"{subnet}","gateway":"{gateway}","dataDir":"{}"}}}}"#,
            vswitchd.socket.display(),
            ipam_dir.display()
        );
        Node {
            vswitchd,
            netconf,
            subnet,
            gateway,
            ns,
        }
    }

    /// Adds a pod through the CNI plugin.
    pub fn pod(&self, name: &str) -> Pod {
        Pod::add(&self.ns, name, &self.netconf)
    }
}

/// Sends `bytes` random bytes over TCP from `from` to `to_ip:port` in
/// `to` with netcat and returns true when the receiver got exactly them.
pub fn tcp_transfer(from: &Netns, to: &Netns, to_ip: &str, port: u16, bytes: usize) -> bool {
    let dir = std::env::temp_dir().join(format!("vsw-xfer-{}-{}", from.name, to.name));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("src");
    let dst = dir.join("dst");
    sh(&format!("head -c {bytes} /dev/urandom > {}", src.display()));
    let mut server = to.spawn(&format!(
        "timeout 60 nc -l {to_ip} {port} > {}",
        dst.display()
    ));
    // Wait for the listener.
    wait_for(Duration::from_secs(5), || {
        to.ok(&format!("ss -ltn | grep -q ':{port} '"))
    });
    let sent = from.ok(&format!(
        "timeout 60 nc -N -w 10 {to_ip} {port} < {}",
        src.display()
    ));
    let _ = server.wait();
    let same = sent
        && sh(&format!("sha256sum < {}", src.display()))
            == sh(&format!("sha256sum < {}", dst.display()));
    let _ = std::fs::remove_dir_all(&dir);
    same
}
