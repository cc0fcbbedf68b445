//! The `vswitchd` configuration file (TOML), as DESIGN.md §3 specifies it.
//!
//! These are serde types only, kept apart from the runtime objects they
//! configure. Unknown keys are rejected (`deny_unknown_fields`), and every
//! value that has a shape (CIDRs, addresses, MACs, backends) is checked in
//! [`Config::validate`] with a message that names the key.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use control::MacAddr;
use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This node.
    pub node: NodeConfig,
    /// Workers and tables.
    #[serde(default)]
    pub datapath: DatapathConfig,
    /// Control socket and state.
    #[serde(default)]
    pub control: ControlConfig,
    /// Other nodes of the overlay.
    #[serde(default)]
    pub remote_nodes: Vec<RemoteNode>,
    /// ClusterIP Services.
    #[serde(default)]
    pub services: Vec<Service>,
    /// Interfaces to attach at start (besides the host port and pods).
    #[serde(default)]
    pub ports: Vec<PortConfig>,
}

/// `[node]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Node name.
    pub name: String,
    /// This node's pod CIDR (`10.244.1.0/24`).
    pub pod_cidr: String,
    /// The pods' gateway address, held by the host port.
    pub gateway_ip: Ipv4Addr,
    /// Underlay address of this node's VTEP.
    #[serde(default)]
    pub vtep_ip: Option<Ipv4Addr>,
    /// The NIC (or veth) that carries the underlay.
    #[serde(default)]
    pub uplink: Option<String>,
    /// VXLAN network identifier.
    #[serde(default = "default_vni")]
    pub vni: u32,
    /// Inner MAC of this node's VTEP.
    #[serde(default)]
    pub vtep_mac: Option<MacAddr>,
    /// Underlay MTU; pods get `underlay_mtu - 50`.
    #[serde(default = "default_mtu")]
    pub underlay_mtu: u32,
    /// Name of the host port vswitchd creates (holds `gateway_ip`).
    #[serde(default = "default_host_port")]
    pub host_port: String,
}

fn default_vni() -> u32 {
    1
}
fn default_mtu() -> u32 {
    1500
}
fn default_host_port() -> String {
    "vsw0".into()
}

/// How a worker waits when it has no traffic.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum IdleMode {
    /// Spin for `spin_us` after the last packet, then block in `poll()`
    /// (the default: on veth the kernel's receive work shares the core).
    #[default]
    Block,
    /// Never block (a dedicated core, like OVS's PMD without pmd-sleep).
    Spin,
}

/// `[datapath]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DatapathConfig {
    /// `afxdp`, `afpacket` or `auto` (AF_XDP, falling back to AF_PACKET).
    #[serde(default = "default_backend")]
    pub backend: String,
    /// Worker threads.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Cores to pin workers to (worker i on `cores[i % len]`); empty: no pinning.
    #[serde(default)]
    pub cores: Vec<usize>,
    /// Most learned MACs.
    #[serde(default = "default_fdb_max")]
    pub fdb_max: usize,
    /// Seconds before a learned MAC ages out.
    #[serde(default = "default_fdb_aging")]
    pub fdb_aging_s: u64,
    /// Most conntrack entries.
    #[serde(default = "default_ct_max")]
    pub ct_max: usize,
    /// Idle behaviour of workers.
    #[serde(default)]
    pub idle: IdleMode,
    /// Microseconds a worker keeps polling after its last packet before it blocks.
    #[serde(default = "default_spin_us")]
    pub spin_us: u64,
    /// SCHED_FIFO priority for workers (1-99); 0 leaves them SCHED_OTHER.
    #[serde(default)]
    pub rt_priority: u8,
}

fn default_backend() -> String {
    "afxdp".into()
}
fn default_workers() -> usize {
    1
}
fn default_fdb_max() -> usize {
    8192
}
fn default_fdb_aging() -> u64 {
    300
}
fn default_ct_max() -> usize {
    1 << 20
}
fn default_spin_us() -> u64 {
    50
}

impl Default for DatapathConfig {
    fn default() -> Self {
        DatapathConfig {
            backend: default_backend(),
            workers: default_workers(),
            cores: Vec::new(),
            fdb_max: default_fdb_max(),
            fdb_aging_s: default_fdb_aging(),
            ct_max: default_ct_max(),
            idle: IdleMode::default(),
            spin_us: default_spin_us(),
            rt_priority: 0,
        }
    }
}

/// `[control]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    /// The unix socket clients connect to.
    #[serde(default = "default_socket")]
    pub socket: PathBuf,
    /// Where state that survives a restart lives.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// A group whose members may use the socket (mode 0660); none: 0600, root only.
    #[serde(default)]
    pub group: Option<String>,
}

fn default_socket() -> PathBuf {
    control::api::DEFAULT_SOCKET.into()
}
fn default_state_dir() -> PathBuf {
    "/var/lib/vswitch".into()
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            socket: default_socket(),
            state_dir: default_state_dir(),
            group: None,
        }
    }
}

/// `[[remote_nodes]]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RemoteNode {
    /// Node name.
    pub name: String,
    /// Its pod CIDR.
    pub pod_cidr: String,
    /// Its VTEP's underlay address.
    pub vtep_ip: Ipv4Addr,
    /// Inner destination MAC it expects.
    #[serde(default)]
    pub vtep_mac: Option<MacAddr>,
}

/// `[[services]]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Service name.
    pub name: String,
    /// ClusterIP.
    pub vip: Ipv4Addr,
    /// Service port.
    pub port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// `ip:port` endpoints.
    pub backends: Vec<String>,
}

/// `[[ports]]`: an interface attached at start.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    /// Interface name.
    pub iface: String,
    /// OpenFlow port number (lowest free when absent).
    #[serde(default)]
    pub ofport: Option<u32>,
    /// Backend for this port (the datapath default when absent).
    #[serde(default)]
    pub backend: Option<String>,
}

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {err}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        err: std::io::Error,
    },
    /// TOML syntax, an unknown key, or a value of the wrong type.
    #[error("config {path}: {msg}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// toml's message (line, column, key).
        msg: String,
    },
    /// A value with the right type but an invalid meaning.
    #[error("config: {key}: {msg}")]
    Invalid {
        /// Dotted key, e.g. `node.pod_cidr`.
        key: String,
        /// What is wrong.
        msg: String,
    },
}

fn invalid(key: &str, msg: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        msg: msg.into(),
    }
}

/// An IPv4 prefix `a.b.c.d/len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// Network address (host bits zero).
    pub addr: Ipv4Addr,
    /// Prefix length.
    pub len: u8,
}

impl Cidr {
    /// Parses `a.b.c.d/len`; host bits must be zero.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (a, l) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not a CIDR (expected a.b.c.d/len)"))?;
        let addr: Ipv4Addr = a
            .parse()
            .map_err(|_| format!("{a:?} is not an IPv4 address"))?;
        let len: u8 = l
            .parse()
            .ok()
            .filter(|l| *l <= 32)
            .ok_or_else(|| format!("{l:?} is not a prefix length (0-32)"))?;
        let c = Cidr { addr, len };
        if u32::from(addr) & !c.mask() != 0 {
            return Err(format!("{s} has host bits set"));
        }
        Ok(c)
    }

    /// The netmask as a number.
    pub fn mask(&self) -> u32 {
        if self.len == 0 {
            0
        } else {
            u32::MAX << (32 - self.len)
        }
    }

    /// True if `ip` is inside.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl Config {
    /// Reads, parses and validates a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|err| ConfigError::Read {
            path: path.into(),
            err,
        })?;
        let c = Config::parse(&text).map_err(|e| match e {
            ConfigError::Parse { msg, .. } => ConfigError::Parse {
                path: path.into(),
                msg,
            },
            other => other,
        })?;
        Ok(c)
    }

    /// Parses and validates TOML text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let c: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::from("<text>"),
            msg: e.to_string().trim().replace('\n', " "),
        })?;
        c.validate()?;
        Ok(c)
    }

    /// The pod CIDR, parsed.
    pub fn pod_cidr(&self) -> Cidr {
        Cidr::parse(&self.node.pod_cidr).expect("validated")
    }

    /// Checks what the types cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let n = &self.node;
        if n.name.is_empty() {
            return Err(invalid("node.name", "must not be empty"));
        }
        let cidr = Cidr::parse(&n.pod_cidr).map_err(|m| invalid("node.pod_cidr", m))?;
        if !cidr.contains(n.gateway_ip) {
            return Err(invalid(
                "node.gateway_ip",
                format!("{} is not inside node.pod_cidr {cidr}", n.gateway_ip),
            ));
        }
        if n.vni == 0 || n.vni >= 1 << 24 {
            return Err(invalid(
                "node.vni",
                format!("{} is not a 24-bit VNI (1-16777215)", n.vni),
            ));
        }
        if !(576..=9000).contains(&n.underlay_mtu) {
            return Err(invalid(
                "node.underlay_mtu",
                format!("{} is outside 576-9000", n.underlay_mtu),
            ));
        }
        check_ifname("node.host_port", &n.host_port)?;
        if let Some(u) = &n.uplink {
            check_ifname("node.uplink", u)?;
        }
        let d = &self.datapath;
        if !["afxdp", "afpacket", "auto"].contains(&d.backend.as_str()) {
            return Err(invalid(
                "datapath.backend",
                format!("{:?} is not one of afxdp, afpacket, auto", d.backend),
            ));
        }
        if d.workers == 0 || d.workers > 64 {
            return Err(invalid(
                "datapath.workers",
                format!("{} is outside 1-64", d.workers),
            ));
        }
        if d.rt_priority > 99 {
            return Err(invalid("datapath.rt_priority", "must be 0 (off) or 1-99"));
        }
        if d.fdb_aging_s == 0 {
            return Err(invalid("datapath.fdb_aging_s", "must be at least 1"));
        }
        for (i, r) in self.remote_nodes.iter().enumerate() {
            let c = Cidr::parse(&r.pod_cidr)
                .map_err(|m| invalid(&format!("remote_nodes[{i}].pod_cidr"), m))?;
            if c.contains(cidr.addr) || cidr.contains(c.addr) {
                return Err(invalid(
                    &format!("remote_nodes[{i}].pod_cidr"),
                    format!("{c} overlaps node.pod_cidr {cidr}"),
                ));
            }
        }
        for (i, s) in self.services.iter().enumerate() {
            if !["tcp", "udp"].contains(&s.protocol.as_str()) {
                return Err(invalid(
                    &format!("services[{i}].protocol"),
                    format!("{:?} is not tcp or udp", s.protocol),
                ));
            }
            for b in &s.backends {
                b.parse::<std::net::SocketAddrV4>().map_err(|_| {
                    invalid(
                        &format!("services[{i}].backends"),
                        format!("{b:?} is not ip:port"),
                    )
                })?;
            }
        }
        for (i, p) in self.ports.iter().enumerate() {
            check_ifname(&format!("ports[{i}].iface"), &p.iface)?;
            if let Some(b) = &p.backend {
                if !["afxdp", "afpacket", "auto"].contains(&b.as_str()) {
                    return Err(invalid(
                        &format!("ports[{i}].backend"),
                        format!("{b:?} is not one of afxdp, afpacket, auto"),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn check_ifname(key: &str, name: &str) -> Result<(), ConfigError> {
    if name.is_empty() || name.len() > 15 || name.contains(['/', ' ', ':']) {
        return Err(invalid(
            key,
            format!("{name:?} is not an interface name (1-15 chars, no / : or space)"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
[node]
name = "node-a"
pod_cidr = "10.244.1.0/24"
gateway_ip = "10.244.1.1"
vtep_ip = "198.18.0.1"
uplink = "eth0"
vni = 1
vtep_mac = "aa:bb:cc:00:00:01"
underlay_mtu = 1500
host_port = "vsw0"

[datapath]
backend = "afxdp"
workers = 1
cores = [1]
fdb_max = 8192
fdb_aging_s = 300
ct_max = 1048576

[control]
socket = "/run/vswitch/vswitchd.sock"
state_dir = "/var/lib/vswitch"

[[remote_nodes]]
name = "node-b"
pod_cidr = "10.244.2.0/24"
vtep_ip = "198.18.0.2"
vtep_mac = "aa:bb:cc:00:00:02"

[[services]]
name = "web"
vip = "10.96.0.10"
port = 80
protocol = "tcp"
backends = ["10.244.1.5:8080", "10.244.2.7:8080"]
"#;

    #[test]
    fn the_design_example_parses() {
        let c = Config::parse(FULL).unwrap();
        assert_eq!(c.node.name, "node-a");
        assert_eq!(c.pod_cidr().to_string(), "10.244.1.0/24");
        assert_eq!(c.datapath.cores, vec![1]);
        assert_eq!(
            c.remote_nodes[0].vtep_mac.unwrap().to_string(),
            "aa:bb:cc:00:00:02"
        );
        assert_eq!(c.services[0].backends.len(), 2);
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c =
            Config::parse("[node]\nname='n'\npod_cidr='10.244.3.0/24'\ngateway_ip='10.244.3.1'\n")
                .unwrap();
        assert_eq!(c.datapath.backend, "afxdp");
        assert_eq!(c.node.host_port, "vsw0");
        assert_eq!(
            c.control.socket,
            PathBuf::from("/run/vswitch/vswitchd.sock")
        );
        assert_eq!(c.datapath.idle, IdleMode::Block);
    }

    #[test]
    fn errors_name_the_key() {
        let e = Config::parse(&FULL.replace("fdb_max = 8192", "fdb_maxx = 8192")).unwrap_err();
        assert!(e.to_string().contains("fdb_maxx"), "{e}");
        let e = Config::parse(&FULL.replace("10.244.1.0/24", "10.244.1.0/33")).unwrap_err();
        assert!(e.to_string().contains("node.pod_cidr"), "{e}");
        let e = Config::parse(
            &FULL.replace("gateway_ip = \"10.244.1.1\"", "gateway_ip = \"10.244.9.1\""),
        )
        .unwrap_err();
        assert!(e.to_string().contains("node.gateway_ip"), "{e}");
        let e =
            Config::parse(&FULL.replace("backend = \"afxdp\"", "backend = \"dpdk\"")).unwrap_err();
        assert!(e.to_string().contains("datapath.backend"), "{e}");
        let e = Config::parse(&FULL.replace("10.244.2.0/24", "10.244.0.0/16")).unwrap_err();
        assert!(e.to_string().contains("remote_nodes[0].pod_cidr"), "{e}");
        let e = Config::parse(&FULL.replace("\"10.244.2.7:8080\"", "\"10.244.2.7\"")).unwrap_err();
        assert!(e.to_string().contains("services[0].backends"), "{e}");
        let e = Config::parse(
            &FULL.replace("vtep_mac = \"aa:bb:cc:00:00:01\"", "vtep_mac = \"aa:bb\""),
        )
        .unwrap_err();
        assert!(e.to_string().contains("vtep_mac"), "{e}");
        let e = Config::parse("[node]\nname='n'\n").unwrap_err();
        assert!(e.to_string().contains("pod_cidr"), "{e}");
    }
}

#[cfg(test)]
mod example_tests {
    #[test]
    fn the_shipped_example_config_is_valid() {
        let text = include_str!("../../../configs/node-a.toml");
        super::Config::parse(text).unwrap();
    }
}
