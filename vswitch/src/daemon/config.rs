//! The `vswitchd` configuration file (TOML), as DESIGN.md §3 specifies it.
//!
//! These are serde types only, kept apart from the runtime objects they
//! configure. Unknown keys are rejected (`deny_unknown_fields`), and every
//! value that has a shape (CIDRs, addresses, MACs, backends) is checked in
//! [`Config::validate`] with a message that names the key. The one bridge to
//! a runtime object is conntrack's: [`Config::ct_config`] builds its
//! `CtConfig` and [`Config::apply_ct_zone_limits`] sets its zone limits.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use control::MacAddr;
use serde::Deserialize;

use crate::tables::{Conntrack, CtConfig, CtTimeouts};

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
    /// Conntrack zone limits and timeouts (its global maximum is `datapath.ct_max`).
    #[serde(default)]
    pub conntrack: ConntrackConfig,
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
    /// Microseconds a worker keeps polling after its last packet before it
    /// blocks. Default 0: a SCHED_FIFO worker that spins starves the
    /// kernel's receive work for its ports when that runs on the same core
    /// (veth's NAPI), so it waits for frames that cannot arrive until it
    /// blocks (measured in back-to-back harness runs: 0 µs forwarded 1.35x what
    /// 50 µs did, with a quarter of the p99 latency; docs/benchmarks.md).
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
    0
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

/// `[conntrack]`: per-zone limits and timeouts. The global maximum stays
/// `datapath.ct_max`, where DESIGN.md §3 puts it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConntrackConfig {
    /// `zone_limits = [{ zone = 1, max = 100000 }]`: the most connections
    /// a zone may hold (like `ovs-appctl dpctl/ct-set-limits zone=1,limit=N`);
    /// zones not listed are bounded by `datapath.ct_max` only.
    #[serde(default)]
    pub zone_limits: Vec<ZoneLimit>,
    /// `[conntrack.timeouts]`: seconds per protocol state.
    #[serde(default)]
    pub timeouts: TimeoutsConfig,
}

/// One entry of `conntrack.zone_limits`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ZoneLimit {
    /// `ct_zone`, 0-65535 (the node's pipeline tracks in zone 1).
    pub zone: u32,
    /// Most connections in that zone, 1 to `datapath.ct_max`.
    pub max: u64,
}

/// Longest timeout accepted: 30 days, six times Linux's longest default
/// (TCP established, 5 days); anything longer is a typo, not a policy.
const MAX_TIMEOUT_S: u64 = 30 * 24 * 3600;

/// `[conntrack.timeouts]`: seconds, each optional (Linux's
/// `nf_conntrack_*_timeout_*` default when absent, see [`CtTimeouts`]).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsConfig {
    /// TCP after the SYN (120).
    pub tcp_syn_sent: Option<u64>,
    /// TCP after the SYN-ACK (60).
    pub tcp_syn_recv: Option<u64>,
    /// TCP established (432000, 5 days).
    pub tcp_established: Option<u64>,
    /// TCP after the first FIN (120).
    pub tcp_fin_wait: Option<u64>,
    /// TCP after the first FIN was acknowledged (60).
    pub tcp_close_wait: Option<u64>,
    /// TCP after both FINs, until both are acknowledged (30).
    pub tcp_last_ack: Option<u64>,
    /// TCP after both FINs were acknowledged (120).
    pub tcp_time_wait: Option<u64>,
    /// TCP after an RST (10).
    pub tcp_close: Option<u64>,
    /// UDP until a reply (30).
    pub udp_first: Option<u64>,
    /// UDP once replied (120).
    pub udp_stream: Option<u64>,
    /// ICMP echo (30).
    pub icmp: Option<u64>,
    /// Other protocols (600).
    pub other: Option<u64>,
}

impl TimeoutsConfig {
    /// Each key with its value and the [`CtTimeouts`] field it sets: the
    /// one list that validation and conversion share.
    fn fields<'a>(
        &self,
        t: &'a mut CtTimeouts,
    ) -> [(&'static str, Option<u64>, &'a mut Duration); 12] {
        [
            ("tcp_syn_sent", self.tcp_syn_sent, &mut t.tcp_syn_sent),
            ("tcp_syn_recv", self.tcp_syn_recv, &mut t.tcp_syn_recv),
            (
                "tcp_established",
                self.tcp_established,
                &mut t.tcp_established,
            ),
            ("tcp_fin_wait", self.tcp_fin_wait, &mut t.tcp_fin_wait),
            ("tcp_close_wait", self.tcp_close_wait, &mut t.tcp_close_wait),
            ("tcp_last_ack", self.tcp_last_ack, &mut t.tcp_last_ack),
            ("tcp_time_wait", self.tcp_time_wait, &mut t.tcp_time_wait),
            ("tcp_close", self.tcp_close, &mut t.tcp_close),
            ("udp_first", self.udp_first, &mut t.udp_first),
            ("udp_stream", self.udp_stream, &mut t.udp_stream),
            ("icmp", self.icmp, &mut t.icmp),
            ("other", self.other, &mut t.other),
        ]
    }

    /// Linux's defaults with the configured values in their place.
    pub fn to_ct_timeouts(&self) -> CtTimeouts {
        let mut t = CtTimeouts::default();
        for (_, v, d) in self.fields(&mut t) {
            if let Some(s) = v {
                *d = Duration::from_secs(s);
            }
        }
        t
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

    /// The conntrack table's size and timeouts: `datapath.ct_max` and
    /// `[conntrack.timeouts]`.
    pub fn ct_config(&self) -> CtConfig {
        CtConfig {
            max_entries: self.datapath.ct_max,
            timeouts: self.conntrack.timeouts.to_ct_timeouts(),
        }
    }

    /// Sets `conntrack.zone_limits` on `ct` (built from [`Config::ct_config`]).
    pub fn apply_ct_zone_limits(&self, ct: &Conntrack) {
        for l in &self.conntrack.zone_limits {
            // Validated: zone <= 65535, 1 <= max < u32::MAX.
            ct.set_zone_limit(l.zone as u16, Some(l.max as u32));
        }
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
        if d.ct_max == 0 {
            return Err(invalid("datapath.ct_max", "must be at least 1"));
        }
        self.validate_conntrack()?;
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
        // Without node.vtep_ip and node.uplink the node is a plain learning
        // switch with no node model: remote nodes and Services would be
        // silently ignored, so they are refused.
        let overlay = n.vtep_ip.is_some() || n.uplink.is_some();
        if !overlay {
            let what = if !self.remote_nodes.is_empty() {
                Some("remote_nodes[0]")
            } else if !self.services.is_empty() {
                Some("services[0]")
            } else {
                None
            };
            if let Some(key) = what {
                return Err(invalid(
                    key,
                    "needs an overlay node: set node.vtep_ip and node.uplink (without them the node is a plain learning switch)",
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

impl Config {
    fn validate_conntrack(&self) -> Result<(), ConfigError> {
        let ct_max = self.datapath.ct_max as u64;
        let mut seen = std::collections::HashSet::new();
        for (i, l) in self.conntrack.zone_limits.iter().enumerate() {
            if l.zone > u32::from(u16::MAX) {
                return Err(invalid(
                    &format!("conntrack.zone_limits[{i}].zone"),
                    format!("{} is outside 0-65535", l.zone),
                ));
            }
            if !seen.insert(l.zone) {
                return Err(invalid(
                    &format!("conntrack.zone_limits[{i}].zone"),
                    format!("zone {} is listed twice", l.zone),
                ));
            }
            // u32::MAX is the table's "no limit".
            let most = ct_max.min(u64::from(u32::MAX - 1));
            if l.max == 0 || l.max > most {
                return Err(invalid(
                    &format!("conntrack.zone_limits[{i}].max"),
                    format!(
                        "{} is outside 1-{most} (datapath.ct_max is {ct_max})",
                        l.max
                    ),
                ));
            }
        }
        for (name, v, _) in self.conntrack.timeouts.fields(&mut CtTimeouts::default()) {
            if let Some(s) = v {
                if s == 0 || s > MAX_TIMEOUT_S {
                    return Err(invalid(
                        &format!("conntrack.timeouts.{name}"),
                        format!("{s} is outside 1-{MAX_TIMEOUT_S} seconds (30 days)"),
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
        let plain = FULL
            .replace("vtep_ip = \"198.18.0.1\"\n", "")
            .replace("uplink = \"eth0\"\n", "");
        let e = Config::parse(&plain).unwrap_err();
        assert!(
            e.to_string().contains("remote_nodes[0]") && e.to_string().contains("overlay"),
            "{e}"
        );
        let no_remotes = plain.replace(
            "[[remote_nodes]]\nname = \"node-b\"\npod_cidr = \"10.244.2.0/24\"\nvtep_ip = \"198.18.0.2\"\nvtep_mac = \"aa:bb:cc:00:00:02\"\n",
            "",
        );
        let e = Config::parse(&no_remotes).unwrap_err();
        assert!(e.to_string().contains("services[0]"), "{e}");
        let e = Config::parse("[node]\nname='n'\n").unwrap_err();
        assert!(e.to_string().contains("pod_cidr"), "{e}");
    }

    fn with_conntrack(extra: &str) -> Result<Config, ConfigError> {
        Config::parse(&format!(
            "[node]\nname='n'\npod_cidr='10.244.3.0/24'\ngateway_ip='10.244.3.1'\n{extra}"
        ))
    }

    #[test]
    fn conntrack_defaults_are_linux_and_ct_max() {
        let c = with_conntrack("[datapath]\nct_max = 5000\n").unwrap();
        assert_eq!(c.conntrack, ConntrackConfig::default());
        assert_eq!(
            c.ct_config(),
            CtConfig {
                max_entries: 5000,
                timeouts: CtTimeouts::default()
            }
        );
    }

    #[test]
    fn conntrack_zone_limits_and_timeouts_parse() {
        let c = with_conntrack(
            "[conntrack]\nzone_limits = [{ zone = 1, max = 100000 }, { zone = 65535, max = 10 }]\n\
             [conntrack.timeouts]\ntcp_established = 86400\nudp_first = 5\nicmp = 1\n",
        )
        .unwrap();
        assert_eq!(
            c.conntrack.zone_limits,
            [
                ZoneLimit {
                    zone: 1,
                    max: 100_000
                },
                ZoneLimit {
                    zone: 65535,
                    max: 10
                }
            ]
        );
        let t = c.ct_config().timeouts;
        let d = CtTimeouts::default();
        assert_eq!(t.tcp_established, Duration::from_secs(86400));
        assert_eq!(t.udp_first, Duration::from_secs(5));
        assert_eq!(t.icmp, Duration::from_secs(1));
        assert_eq!(
            CtTimeouts {
                tcp_established: d.tcp_established,
                udp_first: d.udp_first,
                icmp: d.icmp,
                ..t
            },
            d,
            "the others keep their defaults"
        );
        // Every key CtTimeouts has is accepted (the array-of-tables form too).
        let all = [
            "tcp_syn_sent",
            "tcp_syn_recv",
            "tcp_established",
            "tcp_fin_wait",
            "tcp_close_wait",
            "tcp_last_ack",
            "tcp_time_wait",
            "tcp_close",
            "udp_first",
            "udp_stream",
            "icmp",
            "other",
        ];
        let text: String = all.iter().map(|k| format!("{k} = 7\n")).collect();
        let c = with_conntrack(&format!(
            "[[conntrack.zone_limits]]\nzone = 0\nmax = 3\n[conntrack.timeouts]\n{text}"
        ))
        .unwrap();
        let s = Duration::from_secs(7);
        assert_eq!(
            c.ct_config().timeouts,
            CtTimeouts {
                tcp_syn_sent: s,
                tcp_syn_recv: s,
                tcp_established: s,
                tcp_fin_wait: s,
                tcp_close_wait: s,
                tcp_last_ack: s,
                tcp_time_wait: s,
                tcp_close: s,
                udp_first: s,
                udp_stream: s,
                icmp: s,
                other: s,
            }
        );
        assert_eq!(c.conntrack.zone_limits, [ZoneLimit { zone: 0, max: 3 }]);
    }

    #[test]
    fn conntrack_errors_name_the_key() {
        let cases = [
            (
                "[conntrack]\nzone_limits = [{ zone = 65536, max = 1 }]",
                "config: conntrack.zone_limits[0].zone: 65536 is outside 0-65535",
            ),
            (
                "[conntrack]\nzone_limits = [{ zone = 1, max = 5 }, { zone = 1, max = 6 }]",
                "config: conntrack.zone_limits[1].zone: zone 1 is listed twice",
            ),
            (
                "[conntrack]\nzone_limits = [{ zone = 1, max = 0 }]",
                "config: conntrack.zone_limits[0].max: 0 is outside 1-1048576 (datapath.ct_max is 1048576)",
            ),
            (
                "[datapath]\nct_max = 100\n[conntrack]\nzone_limits = [{ zone = 2, max = 101 }]",
                "config: conntrack.zone_limits[0].max: 101 is outside 1-100 (datapath.ct_max is 100)",
            ),
            (
                "[conntrack.timeouts]\ntcp_established = 0",
                "config: conntrack.timeouts.tcp_established: 0 is outside 1-2592000 seconds (30 days)",
            ),
            (
                "[conntrack.timeouts]\nother = 2592001",
                "config: conntrack.timeouts.other: 2592001 is outside 1-2592000 seconds (30 days)",
            ),
            (
                "[datapath]\nct_max = 0",
                "config: datapath.ct_max: must be at least 1",
            ),
        ];
        for (text, msg) in cases {
            let e = with_conntrack(text).unwrap_err();
            assert_eq!(e.to_string(), msg, "{text}");
        }
        // Shape errors come from toml and name the key too.
        for (text, key) in [
            ("[conntrack.timeouts]\ntcp_establish = 10", "tcp_establish"),
            ("[conntrack.timeouts]\nudp_first = -1", "udp_first"),
            ("[conntrack.timeouts]\nudp_first = \"30s\"", "udp_first"),
            ("[conntrack]\nzone_limits = [{ zone = 1 }]", "max"),
            (
                "[conntrack]\nzone_limits = [{ zone = 1, limit = 2 }]",
                "limit",
            ),
            (
                "[conntrack]\nzone_limits = [{ zone = -1, max = 2 }]",
                "zone",
            ),
            ("[conntrack]\nct_max = 5", "ct_max"),
        ] {
            let e = with_conntrack(text).unwrap_err();
            assert!(
                matches!(e, ConfigError::Parse { .. }) && e.to_string().contains(key),
                "{text}: {e}"
            );
        }
    }

    /// The daemon's two calls (`ct_config`, `apply_ct_zone_limits`) give a
    /// table that refuses a zone's connections past its limit, and expires
    /// them on the configured timeout.
    #[test]
    fn configured_zone_limit_and_timeout_apply() {
        use crate::key::ct_state::{EST, NEW};
        use crate::tables::CtPacket;
        use std::net::Ipv4Addr;

        let c = with_conntrack(
            "[datapath]\nct_max = 100\n[conntrack]\nzone_limits = [{ zone = 1, max = 3 }]\n\
             [conntrack.timeouts]\nudp_first = 5\n",
        )
        .unwrap();
        let ct = Conntrack::new(c.ct_config());
        c.apply_ct_zone_limits(&ct);
        assert_eq!((ct.zone_limit(1), ct.zone_limit(2)), (Some(3), None));
        assert_eq!(ct.stats().limit, 100);

        let (client, dns) = (Ipv4Addr::new(10, 244, 3, 2), Ipv4Addr::new(10, 96, 0, 10));
        let query = |sport| CtPacket::udp((client, sport), (dns, 53), 64);
        let answer = |sport| CtPacket::udp((dns, 53), (client, sport), 64);
        // Three answered (assured: never early-dropped) connections fill zone 1.
        for sport in 1..=3 {
            ct.process(&query(sport), 1, true, None, None, 0);
            ct.process(&answer(sport), 1, false, None, None, 0);
        }
        // A fourth is refused: it stays +new and is not stored.
        let v = ct.process(&query(4), 1, true, None, None, 0);
        assert!(v.is(NEW), "{v:?}");
        assert!(ct.process(&query(4), 1, false, None, None, 0).is(NEW));
        assert_eq!(ct.zone_len(1), 3);
        assert_eq!(ct.stats().refused, 1);
        // Other zones are bounded by ct_max only.
        for sport in 1..=10 {
            ct.process(&query(sport), 2, true, None, None, 0);
        }
        assert_eq!(ct.zone_len(2), 10);

        // udp_first = 5 s: unanswered zone-2 connections expire after it.
        let seen = |sport, now| ct.process(&query(sport), 2, false, None, None, now);
        assert!(seen(1, 4_000_000_000).is(EST), "alive before udp_first");
        assert!(
            seen(2, 6_000_000_000).is(NEW),
            "expired after udp_first = 5 s"
        );
    }
}

#[cfg(test)]
mod example_tests {
    #[test]
    fn the_shipped_example_config_is_valid() {
        let text = include_str!("../../../configs/node-a.toml");
        super::Config::parse(text).unwrap();
    }

    /// The commented-out `[conntrack]` keys are valid once uncommented,
    /// and the values shown are the defaults.
    #[test]
    fn the_example_conntrack_keys_are_valid_defaults() {
        let text = include_str!("../../../configs/node-a.toml");
        let uncommented: String = text
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(k) if k.starts_with("[conntrack") || k.contains(" = ") => k,
                _ => l,
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let c = super::Config::parse(&uncommented).unwrap();
        assert_eq!(c.conntrack.zone_limits.len(), 1);
        assert_eq!(
            c.ct_config(),
            super::Config::parse(text).unwrap().ct_config()
        );
    }
}
