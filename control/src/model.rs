//! The node model — this node, its pods, the remote nodes of the overlay —
//! and its compilation into flows: the overlay's control plane.
//!
//! The model is plain data (serde, so the daemon can persist it); [`compile`]
//! turns it into the flows of two tables, [`diff`] turns two compilations
//! into the few flow changes that take the switch from one to the other, and
//! [`host_routes`] lists the routes the daemon installs in its own namespace
//! so the host reaches remote pods through the switch. All three are pure:
//! this module never talks to the datapath or the kernel.
//!
//! Design decisions (docs/pipeline.md, "Kubernetes table layout", has the
//! tables flow by flow):
//! - Ports: pods have small ofports given by the daemon; the host port is
//!   OpenFlow `LOCAL` (its interface, `vsw0`, holds the gateway IP, so the
//!   kernel answers pods' ARP for the gateway with vsw0's MAC, `gw_mac`); the
//!   VXLAN tunnel is the logical port [`VXLAN_OFPORT`].
//! - Table 0 sends every IPv4 packet through conntrack (`ct(zone=1,nat,
//!   table=1)`: replies are reverse-NATed, established connections keep
//!   their backend) and classifies non-IP traffic; table 1 load-balances new
//!   connections to a Service VIP through a select group whose buckets
//!   commit and DNAT to one endpoint each; table 2 classifies IP traffic
//!   (tunnel, routed, or L2) and table 10 routes on the destination IP.
//!   Same-node pod traffic and ARP stay L2 (`normal`).
//! - Tunnel traffic is only ever delivered to a local pod or to the gateway
//!   IP, never re-encapsulated and never handed to the host for routing:
//!   the node must not relay overlay traffic into its root namespace.
//!   Delivery to the gateway IP is needed by the host→remote-pod path (the
//!   reply comes back addressed to the remote host's gateway IP).
//! - Every compiled flow carries a cookie `0x5653` ("VS") `| kind | hash of
//!   the object key`, so the model's flows can be listed and deleted by
//!   cookie while user flows (cookie 0) are never touched.
//! - A flow's identity is `(table, priority, match)`, as in OpenFlow: an add
//!   with the same identity replaces the flow, which [`diff`] relies on.
//! - Validation errors name the object (the node, the pod's container id,
//!   the remote node's name) and what is wrong with it.
//!
//! - Hairpin (a pod reaching a Service and landing on itself): after the
//!   DNAT, table 2 masquerades the connection to the gateway IP in its own
//!   zone ([`CT_ZONE_HAIRPIN`]) and table 10 sends it back out of the port
//!   it came in on; the pod's replies, addressed to the gateway IP, are
//!   un-masqueraded by table 0 in that zone before zone 1 reverses the DNAT.
//!
//! It does not keep state across calls, pick ofports, or resolve underlay
//! next hops (the daemon does).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::api::{NodeRow, ServiceRow};
use crate::flow::{
    ct_state, Action, Bucket, CtAction, Field, Flow, FlowFilter, Group, GroupType, Match, Nat,
    ETH_TYPE_IP, IPPROTO_TCP, IPPROTO_UDP,
};
use crate::types::{MacAddr, PortNo};

/// OpenFlow number of the VXLAN tunnel port: frames decapsulated from the
/// overlay arrive on it, and `output:65000` after `set_field:..->tun_dst`
/// and `set_field:..->tun_id` encapsulates toward a remote VTEP.
pub const VXLAN_OFPORT: u32 = 65000;

/// Bytes VXLAN adds in front of an inner frame (outer IPv4 20, UDP 8,
/// VXLAN 8, inner Ethernet 14): pods get `underlay_mtu - 50`.
pub const VXLAN_OVERHEAD: u32 = 50;

/// Largest VXLAN network identifier (24 bits).
pub const MAX_VNI: u32 = 0xff_ffff;

/// Table 0: every IPv4 packet to conntrack (zone [`CT_ZONE`]), then table
/// [`TABLE_SERVICES`]; non-IP classification (tunnel or L2-switched traffic).
pub const TABLE_CLASSIFY: u8 = 0;
/// Table 1: Service load balancing of new connections to a VIP.
pub const TABLE_SERVICES: u8 = 1;
/// Table 2: IP classification (tunnel, routed, or L2-switched traffic).
pub const TABLE_IP_CLASSIFY: u8 = 2;
/// The conntrack zone of the connections the model tracks and NATs for
/// Services.
pub const CT_ZONE: u16 = 1;
/// Table 5: conntrack in [`CT_ZONE`] for IPv4 packets to the gateway IP,
/// after zone [`CT_ZONE_HAIRPIN`] has undone a hairpin masquerade; then
/// table [`TABLE_SERVICES`].
pub const TABLE_CT: u8 = 5;
/// The conntrack zone of hairpin masquerades: a pod that reaches a Service
/// and is chosen as its own endpoint gets its source rewritten to the
/// gateway IP in this zone (kube-proxy's masquerade), so the pod sees a
/// peer other than itself and answers through the switch.
pub const CT_ZONE_HAIRPIN: u16 = 2;
/// Group ids of Services are [`service_group_id`]s: 31-bit hashes of the name.
pub const SERVICE_GROUP_MASK: u32 = 0x7fff_ffff;
/// Table 10: L3 forwarding on the destination IP.
pub const TABLE_L3: u8 = 10;

/// The high 16 bits of every cookie the model writes: `0x5653`, "VS".
pub const COOKIE_MODEL: u64 = 0x5653 << 48;
/// Mask selecting [`COOKIE_MODEL`]: `dump-flows cookie=0x5653000000000000/0xffff000000000000`.
pub const COOKIE_MODEL_MASK: u64 = 0xffff << 48;
/// Mask selecting the model and the kind: `cookie=0x5653020000000000/0xffffff0000000000`
/// lists every pod flow.
pub const COOKIE_KIND_MASK: u64 = 0xff_ffff << 40;

/// The prefix of [`default_vtep_mac`]: `02` (locally administered, unicast)
/// then `56` ("V").
const VTEP_MAC_PREFIX: [u8; 2] = [0x02, 0x56];

/// The VTEP MAC of a node whose config does not set one: `02:56:` followed
/// by the four bytes of `vtep_ip` (198.18.0.1 → `02:56:c6:12:00:01`).
///
/// It is stable (a function of the underlay address only, so every node
/// computes the same MAC for a peer without asking it), locally
/// administered and unicast (first octet `0x02`), and distinct for distinct
/// VTEP IPs.
pub fn default_vtep_mac(vtep_ip: Ipv4Addr) -> MacAddr {
    let [a, b, c, d] = vtep_ip.octets();
    MacAddr([VTEP_MAC_PREFIX[0], VTEP_MAC_PREFIX[1], a, b, c, d])
}

// ---- addresses ---------------------------------------------------------------

/// An IPv4 prefix such as `10.244.1.0/24`, always in canonical form (no host
/// bits set), serialized as that text.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ipv4Cidr {
    addr: Ipv4Addr,
    len: u8,
}

impl Ipv4Cidr {
    /// The prefix `addr/len`; refuses `len > 32` and host bits in `addr`.
    pub fn new(addr: Ipv4Addr, len: u8) -> Result<Ipv4Cidr, ModelError> {
        let bad = |reason: String| ModelError::BadCidr {
            text: format!("{addr}/{len}"),
            reason,
        };
        if len > 32 {
            return Err(bad("the prefix length must be 0-32".into()));
        }
        let c = Ipv4Cidr { addr, len };
        let net = Ipv4Addr::from(u32::from(addr) & c.mask());
        if net != addr {
            return Err(bad(format!(
                "host bits are set (the network is {net}/{len})"
            )));
        }
        Ok(c)
    }

    /// The network address.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The prefix length, 0-32.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// The netmask as a number (`/24` → `0xffffff00`).
    pub fn mask(&self) -> u32 {
        u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0)
    }

    /// Whether `ip` is inside the prefix.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr)
    }

    /// Whether the two prefixes share an address (one contains the other).
    pub fn overlaps(&self, other: &Ipv4Cidr) -> bool {
        self.contains(other.addr) || other.contains(self.addr)
    }

    /// The first host address (network + 1): where the node model puts a
    /// node's gateway, and the next hop of [`host_routes`].
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr).wrapping_add(1))
    }

    /// The last address of the prefix (the broadcast address for len ≤ 30).
    pub fn last(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl fmt::Debug for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Ipv4Cidr {
    type Err = ModelError;

    /// `A.B.C.D/N`; host bits must be clear (`10.244.1.5/24` is refused and
    /// the error names `10.244.1.0/24`).
    fn from_str(s: &str) -> Result<Ipv4Cidr, ModelError> {
        let bad = |reason: &str| ModelError::BadCidr {
            text: s.to_string(),
            reason: reason.to_string(),
        };
        let (a, l) = s
            .split_once('/')
            .ok_or_else(|| bad("expected ADDRESS/LENGTH like 10.244.2.0/24"))?;
        let addr: Ipv4Addr = a
            .parse()
            .map_err(|_| bad("the address is not an IPv4 address"))?;
        let len: u8 = match l.parse() {
            Ok(n) if n <= 32 && !l.starts_with('+') => n,
            _ => return Err(bad("the prefix length must be 0-32")),
        };
        Ipv4Cidr::new(addr, len).map_err(|e| match e {
            ModelError::BadCidr { reason, .. } => ModelError::BadCidr {
                text: s.to_string(),
                reason,
            },
            e => e,
        })
    }
}

impl TryFrom<String> for Ipv4Cidr {
    type Error = ModelError;
    fn try_from(s: String) -> Result<Ipv4Cidr, ModelError> {
        s.parse()
    }
}

impl From<Ipv4Cidr> for String {
    fn from(c: Ipv4Cidr) -> String {
        c.to_string()
    }
}

/// Whether `ip` can be a VTEP (underlay) address: not unspecified, loopback,
/// multicast, broadcast or link-local.
fn usable_unicast(ip: Ipv4Addr) -> bool {
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_link_local())
}

/// Whether `mac` can address one station: not zero, not a group address.
fn usable_mac(mac: MacAddr) -> bool {
    mac != MacAddr::ZERO && !mac.is_multicast()
}

// ---- errors ------------------------------------------------------------------

/// A model, or a value for one, that cannot be compiled. The message names
/// the object and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// Text that is not a canonical IPv4 prefix.
    #[error("invalid CIDR {text:?}: {reason}")]
    BadCidr {
        /// The text given.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Text that is not an IPv4 address.
    #[error("invalid {what} {text:?}: expected an IPv4 address like 198.18.0.2")]
    BadIp {
        /// Which address (`VTEP IP`).
        what: &'static str,
        /// The text given.
        text: String,
    },
    /// Text that is not a MAC address.
    #[error("invalid {what} {text:?}: expected a MAC address like aa:bb:cc:00:00:02")]
    BadMac {
        /// Which address (`VTEP MAC`).
        what: &'static str,
        /// The text given.
        text: String,
    },
    /// A node name that is not a Kubernetes node name (a DNS-1123 subdomain).
    #[error("invalid node name {name:?}: {reason}")]
    BadName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Something wrong with this node's own settings.
    #[error("node {node}: {reason}")]
    Node {
        /// The local node's name.
        node: String,
        /// What is wrong.
        reason: String,
    },
    /// Something wrong with a pod, named by its container id.
    #[error("pod {pod}: {reason}")]
    Pod {
        /// The pod's container id.
        pod: String,
        /// What is wrong.
        reason: String,
    },
    /// Something wrong with a remote node, named by its node name.
    #[error("remote node {node}: {reason}")]
    Remote {
        /// The remote node's name.
        node: String,
        /// What is wrong.
        reason: String,
    },
    /// Something wrong with a Service, named by its name.
    #[error("service {service}: {reason}")]
    Service {
        /// The Service's name.
        service: String,
        /// What is wrong.
        reason: String,
    },
}

// ---- the model ---------------------------------------------------------------

/// Everything the overlay's flows are compiled from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeModel {
    /// This node.
    pub node: LocalNode,
    /// Pods on this node, by CNI container id.
    #[serde(default)]
    pub pods: BTreeMap<String, PodEntry>,
    /// The other nodes of the overlay, by node name.
    #[serde(default)]
    pub remotes: BTreeMap<String, RemoteNode>,
    /// Services (virtual IPs load-balanced over endpoints), by name.
    #[serde(default)]
    pub services: BTreeMap<String, Service>,
}

/// The transport protocol of a Service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => IPPROTO_TCP,
            Proto::Udp => IPPROTO_UDP,
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

impl FromStr for Proto {
    type Err = String;
    /// `tcp` or `udp`, any case.
    fn from_str(s: &str) -> Result<Proto, String> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            _ => Err(format!("invalid protocol {s:?}: expected tcp or udp")),
        }
    }
}

/// A Service: connections to `vip:port/protocol` are spread over `endpoints`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// The virtual IP (a ClusterIP, typically inside 10.96.0.0/12).
    pub vip: Ipv4Addr,
    /// The Service port.
    pub port: u16,
    /// TCP or UDP.
    pub protocol: Proto,
    /// Backends (`pod IP:target port`), each once; none means new
    /// connections are dropped.
    #[serde(default)]
    pub endpoints: Vec<SocketAddrV4>,
}

/// This node's side of the overlay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalNode {
    /// Node name (config `node.name`).
    pub name: String,
    /// The pods' prefix on this node.
    pub pod_cidr: Ipv4Cidr,
    /// The pods' default gateway, held by the host port `vsw0`; inside `pod_cidr`.
    pub gateway_ip: Ipv4Addr,
    /// This node's underlay (VTEP) address.
    pub vtep_ip: Ipv4Addr,
    /// The VXLAN network identifier of the overlay.
    pub vni: u32,
    /// Inner source MAC of frames this node encapsulates, and the inner
    /// destination MAC the host's routes to remote pods use (config
    /// `node.vtep_mac`, or [`default_vtep_mac`]).
    pub vtep_mac: MacAddr,
    /// The host port's MAC: pods send routed traffic to it.
    pub gw_mac: MacAddr,
    /// MTU of the underlay; pods get `underlay_mtu - 50`.
    pub underlay_mtu: u32,
}

/// A pod attached to this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodEntry {
    /// The OpenFlow port of its host-side veth.
    pub ofport: u32,
    /// The MAC of its interface.
    pub mac: MacAddr,
    /// Its IPv4 address, inside the node's pod CIDR.
    pub ip: Ipv4Addr,
}

/// Another node of the overlay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteNode {
    /// Its pods' prefix.
    pub pod_cidr: Ipv4Cidr,
    /// Its underlay (VTEP) address.
    pub vtep_ip: Ipv4Addr,
    /// The inner destination MAC it expects (needed when it is a Linux vxlan
    /// device); [`default_vtep_mac`] of `vtep_ip` when absent.
    #[serde(default)]
    pub vtep_mac: Option<MacAddr>,
}

impl LocalNode {
    /// The MTU pods get: the underlay's less the VXLAN overhead.
    pub fn pod_mtu(&self) -> u32 {
        self.underlay_mtu.saturating_sub(VXLAN_OVERHEAD)
    }

    /// Checks the node on its own.
    pub fn validate(&self) -> Result<(), ModelError> {
        let err = |reason: String| ModelError::Node {
            node: self.name.clone(),
            reason,
        };
        check_node_name(&self.name)?;
        let cidr = self.pod_cidr;
        if cidr.prefix_len() > 30 {
            return Err(err(format!(
                "pod CIDR {cidr} is too small (at most /30: it holds a gateway and pods)"
            )));
        }
        if !cidr.contains(self.gateway_ip)
            || self.gateway_ip == cidr.addr()
            || self.gateway_ip == cidr.last()
        {
            return Err(err(format!(
                "gateway IP {} is not a host address of the pod CIDR {cidr}",
                self.gateway_ip
            )));
        }
        if !usable_unicast(self.vtep_ip) {
            return Err(err(format!(
                "VTEP IP {} is not a unicast address",
                self.vtep_ip
            )));
        }
        if cidr.contains(self.vtep_ip) {
            return Err(err(format!(
                "VTEP IP {} is inside the pod CIDR {cidr}",
                self.vtep_ip
            )));
        }
        if self.vni > MAX_VNI {
            return Err(err(format!("VNI {} is over {MAX_VNI}", self.vni)));
        }
        for (what, mac) in [("VTEP MAC", self.vtep_mac), ("gateway MAC", self.gw_mac)] {
            if !usable_mac(mac) {
                return Err(err(format!("{what} {mac} is not a unicast MAC")));
            }
        }
        let min = 68 + VXLAN_OVERHEAD;
        if !(min..=65535).contains(&self.underlay_mtu) {
            return Err(err(format!(
                "underlay MTU {} must be {min}-65535 (pods get it less {VXLAN_OVERHEAD})",
                self.underlay_mtu
            )));
        }
        Ok(())
    }
}

impl RemoteNode {
    /// A remote node from the text of a request (`add-node`), each field
    /// checked on its own: a canonical CIDR of at most /30, a unicast VTEP
    /// IP, a unicast VTEP MAC. Checks against the rest of the model are
    /// [`NodeModel::upsert_remote`]'s.
    pub fn parse(
        name: &str,
        pod_cidr: &str,
        vtep_ip: &str,
        vtep_mac: Option<&str>,
    ) -> Result<RemoteNode, ModelError> {
        check_node_name(name)?;
        let pod_cidr: Ipv4Cidr = pod_cidr.parse()?;
        let vtep_ip: Ipv4Addr = vtep_ip.parse().map_err(|_| ModelError::BadIp {
            what: "VTEP IP",
            text: vtep_ip.to_string(),
        })?;
        let vtep_mac = match vtep_mac {
            None => None,
            Some(t) => Some(t.parse::<MacAddr>().map_err(|_| ModelError::BadMac {
                what: "VTEP MAC",
                text: t.to_string(),
            })?),
        };
        let r = RemoteNode {
            pod_cidr,
            vtep_ip,
            vtep_mac,
        };
        r.validate(name)?;
        Ok(r)
    }

    /// The inner destination MAC of frames encapsulated toward this node.
    pub fn effective_vtep_mac(&self) -> MacAddr {
        self.vtep_mac
            .unwrap_or_else(|| default_vtep_mac(self.vtep_ip))
    }

    /// Checks the remote node `name` on its own.
    pub fn validate(&self, name: &str) -> Result<(), ModelError> {
        let err = |reason: String| ModelError::Remote {
            node: name.to_string(),
            reason,
        };
        check_node_name(name)?;
        let cidr = self.pod_cidr;
        if cidr.prefix_len() == 0 || cidr.prefix_len() > 30 {
            return Err(err(format!("pod CIDR {cidr} must be /1 to /30")));
        }
        if !usable_unicast(self.vtep_ip) {
            return Err(err(format!(
                "VTEP IP {} is not a unicast address",
                self.vtep_ip
            )));
        }
        if cidr.contains(self.vtep_ip) {
            return Err(err(format!(
                "VTEP IP {} is inside its pod CIDR {cidr}",
                self.vtep_ip
            )));
        }
        if let Some(mac) = self.vtep_mac {
            if !usable_mac(mac) {
                return Err(err(format!("VTEP MAC {mac} is not a unicast MAC")));
            }
        }
        Ok(())
    }
}

/// Checks that `name` is a Kubernetes node name: a DNS-1123 subdomain
/// (lowercase letters, digits, `-` and `.`, starting and ending with a letter
/// or digit, at most 253 characters).
pub fn check_node_name(name: &str) -> Result<(), ModelError> {
    let bad = |reason| {
        Err(ModelError::BadName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > 253 {
        return bad("longer than 253 characters");
    }
    let ok = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !name.bytes().all(|c| ok(c) || c == b'-' || c == b'.') {
        return bad("only lowercase letters, digits, '-' and '.' are allowed");
    }
    let b = name.as_bytes();
    if !ok(b[0]) || !ok(b[b.len() - 1]) {
        return bad("must start and end with a letter or digit");
    }
    Ok(())
}

impl Service {
    /// A Service from the text of a request (`add-service`): `vip` an IPv4
    /// address, `protocol` `tcp`/`udp`, each endpoint `IP:PORT`; then
    /// checked on its own ([`Service::validate`]).
    pub fn parse(
        name: &str,
        vip: &str,
        port: u16,
        protocol: &str,
        endpoints: &[String],
    ) -> Result<Service, ModelError> {
        let err = |reason: String| ModelError::Service {
            service: name.to_string(),
            reason,
        };
        check_service_name(name)?;
        let vip: Ipv4Addr = vip
            .parse()
            .map_err(|_| err(format!("VIP {vip:?} is not an IPv4 address")))?;
        let protocol: Proto = protocol.parse().map_err(err)?;
        let endpoints = endpoints
            .iter()
            .map(|e| {
                e.parse::<SocketAddrV4>().map_err(|_| {
                    err(format!(
                        "endpoint {e:?} is not IP:PORT like 10.244.1.5:8080"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let s = Service {
            vip,
            port,
            protocol,
            endpoints,
        };
        s.validate(name)?;
        Ok(s)
    }

    /// Checks the Service `name` on its own: a unicast VIP, a port, unicast
    /// endpoints with ports, each endpoint once.
    pub fn validate(&self, name: &str) -> Result<(), ModelError> {
        let err = |reason: String| ModelError::Service {
            service: name.to_string(),
            reason,
        };
        check_service_name(name)?;
        if !usable_unicast(self.vip) {
            return Err(err(format!("VIP {} is not a unicast address", self.vip)));
        }
        if self.port == 0 {
            return Err(err("port 0 is not usable (1-65535)".into()));
        }
        for (i, e) in self.endpoints.iter().enumerate() {
            if !usable_unicast(*e.ip()) {
                return Err(err(format!("endpoint {e} is not a unicast address")));
            }
            if e.port() == 0 {
                return Err(err(format!("endpoint {e} has port 0")));
            }
            if *e.ip() == self.vip {
                return Err(err(format!("endpoint {e} is the VIP itself")));
            }
            if self.endpoints[..i].contains(e) {
                return Err(err(format!("endpoint {e} is listed twice")));
            }
        }
        Ok(())
    }

    /// The `dump-services` row of Service `name`.
    pub fn row(&self, name: &str) -> ServiceRow {
        ServiceRow {
            name: name.to_string(),
            vip: self.vip.to_string(),
            port: self.port,
            protocol: self.protocol.to_string(),
            endpoints: self.endpoints.iter().map(|e| e.to_string()).collect(),
        }
    }
}

/// Checks that `name` can name a Service: `NAME` or `NAMESPACE/NAME`, each
/// part lowercase letters, digits, `-` and `.`, starting and ending with a
/// letter or digit; at most 253 characters in all.
pub fn check_service_name(name: &str) -> Result<(), ModelError> {
    let bad = |reason: &str| {
        Err(ModelError::Service {
            service: format!("{name:?}"),
            reason: reason.to_string(),
        })
    };
    if name.is_empty() {
        return bad("empty name");
    }
    if name.len() > 253 {
        return bad("name longer than 253 characters");
    }
    let ok = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let parts: Vec<&str> = name.split('/').collect();
    if parts.len() > 2 {
        return bad("expected NAME or NAMESPACE/NAME");
    }
    for p in parts {
        if !p.bytes().all(|c| ok(c) || c == b'-' || c == b'.') {
            return bad("only lowercase letters, digits, '-', '.' and one '/' are allowed");
        }
        let b = p.as_bytes();
        if b.is_empty() || !ok(b[0]) || !ok(b[b.len() - 1]) {
            return bad("each part must start and end with a letter or digit");
        }
    }
    Ok(())
}

/// The id of Service `name`'s group: the low 31 bits of the FNV-1a hash of
/// the name (stable across processes; [`NodeModel::upsert_service`] refuses
/// a second Service with the same id).
pub fn service_group_id(name: &str) -> u32 {
    (fnv1a(name) as u32) & SERVICE_GROUP_MASK
}

impl NodeModel {
    /// A model of `node` with no pods and no remote nodes.
    pub fn new(node: LocalNode) -> Result<NodeModel, ModelError> {
        node.validate()?;
        Ok(NodeModel {
            node,
            pods: BTreeMap::new(),
            remotes: BTreeMap::new(),
            services: BTreeMap::new(),
        })
    }

    /// Checks the whole model: the node; each pod (an ofport of its own, not
    /// the tunnel's; a unicast MAC of its own; an IP of its own inside the
    /// pod CIDR, not the gateway's, network or broadcast address); each
    /// remote node (a pod CIDR overlapping neither this node's nor another
    /// remote's, a VTEP IP of its own). The first error is returned.
    pub fn validate(&self) -> Result<(), ModelError> {
        self.node.validate()?;
        for (id, pod) in &self.pods {
            self.check_pod(id, pod)?;
        }
        for (name, r) in &self.remotes {
            self.check_remote(name, r)?;
        }
        for (name, svc) in &self.services {
            self.check_service(name, svc)?;
        }
        Ok(())
    }

    /// Adds the Service `name`, or replaces it (its endpoints, say); returns
    /// the old entry. The model is unchanged on error.
    pub fn upsert_service(
        &mut self,
        name: &str,
        service: Service,
    ) -> Result<Option<Service>, ModelError> {
        self.check_service(name, &service)?;
        Ok(self.services.insert(name.to_string(), service))
    }

    /// Removes the Service `name`; `None` if it was not there.
    pub fn remove_service(&mut self, name: &str) -> Option<Service> {
        self.services.remove(name)
    }

    /// Checks Service `name` against the node and the other Services: a VIP
    /// that is not the gateway's nor inside this node's pod CIDR, a
    /// `VIP:PORT/PROTO` of its own, a group id of its own.
    fn check_service(&self, name: &str, svc: &Service) -> Result<(), ModelError> {
        let err = |reason: String| ModelError::Service {
            service: name.to_string(),
            reason,
        };
        svc.validate(name)?;
        let cidr = self.node.pod_cidr;
        if cidr.contains(svc.vip) {
            return Err(err(format!(
                "VIP {} is inside this node's pod CIDR {cidr}",
                svc.vip
            )));
        }
        let gid = service_group_id(name);
        for (other, o) in self.services.iter().filter(|(o, _)| o.as_str() != name) {
            if (o.vip, o.port, o.protocol) == (svc.vip, svc.port, svc.protocol) {
                return Err(err(format!(
                    "{}:{}/{} is already service {other}'s",
                    svc.vip, svc.port, svc.protocol
                )));
            }
            if service_group_id(other) == gid {
                return Err(err(format!(
                    "its group id {gid} is already service {other}'s (a hash collision: rename it)"
                )));
            }
        }
        Ok(())
    }

    /// Adds the pod `id`, or replaces it; returns the old entry. The model is
    /// unchanged on error.
    pub fn upsert_pod(&mut self, id: &str, pod: PodEntry) -> Result<Option<PodEntry>, ModelError> {
        self.check_pod(id, &pod)?;
        Ok(self.pods.insert(id.to_string(), pod))
    }

    /// Removes the pod `id`; `None` if it was not there.
    pub fn remove_pod(&mut self, id: &str) -> Option<PodEntry> {
        self.pods.remove(id)
    }

    /// Adds the remote node `name`, or replaces it; returns the old entry.
    /// The model is unchanged on error.
    pub fn upsert_remote(
        &mut self,
        name: &str,
        remote: RemoteNode,
    ) -> Result<Option<RemoteNode>, ModelError> {
        self.check_remote(name, &remote)?;
        Ok(self.remotes.insert(name.to_string(), remote))
    }

    /// Removes the remote node `name`; `None` if it was not there.
    pub fn remove_remote(&mut self, name: &str) -> Option<RemoteNode> {
        self.remotes.remove(name)
    }

    /// Checks pod `id` against the node and the other pods.
    fn check_pod(&self, id: &str, pod: &PodEntry) -> Result<(), ModelError> {
        let err = |reason: String| ModelError::Pod {
            pod: id.to_string(),
            reason,
        };
        if id.is_empty() {
            return Err(err("empty container id".into()));
        }
        let cidr = self.node.pod_cidr;
        if pod.ofport == 0 || pod.ofport > PortNo::MAX.0 || pod.ofport == VXLAN_OFPORT {
            return Err(err(format!(
                "ofport {} is not usable (1-{}, not the tunnel's {VXLAN_OFPORT})",
                pod.ofport,
                PortNo::MAX.0
            )));
        }
        if !usable_mac(pod.mac) {
            return Err(err(format!("MAC {} is not a unicast MAC", pod.mac)));
        }
        if pod.mac == self.node.gw_mac || pod.mac == self.node.vtep_mac {
            return Err(err(format!(
                "MAC {} is the node's gateway or VTEP MAC",
                pod.mac
            )));
        }
        if !cidr.contains(pod.ip) {
            return Err(err(format!(
                "IP {} is outside the node's pod CIDR {cidr}",
                pod.ip
            )));
        }
        if pod.ip == cidr.addr() || pod.ip == cidr.last() {
            return Err(err(format!(
                "IP {} is the network or broadcast address of {cidr}",
                pod.ip
            )));
        }
        if pod.ip == self.node.gateway_ip {
            return Err(err(format!("IP {} is the node's gateway IP", pod.ip)));
        }
        for (other, p) in self.pods.iter().filter(|(o, _)| o.as_str() != id) {
            let clash = if p.ip == pod.ip {
                format!("IP {}", pod.ip)
            } else if p.ofport == pod.ofport {
                format!("ofport {}", pod.ofport)
            } else if p.mac == pod.mac {
                format!("MAC {}", pod.mac)
            } else {
                continue;
            };
            return Err(err(format!("{clash} is already pod {other}'s")));
        }
        Ok(())
    }

    /// Checks remote node `name` against the node and the other remotes.
    fn check_remote(&self, name: &str, r: &RemoteNode) -> Result<(), ModelError> {
        let err = |reason: String| ModelError::Remote {
            node: name.to_string(),
            reason,
        };
        r.validate(name)?;
        let node = &self.node;
        if name == node.name {
            return Err(err("has this node's own name".into()));
        }
        if r.pod_cidr.overlaps(&node.pod_cidr) {
            return Err(err(format!(
                "pod CIDR {} overlaps this node's pod CIDR {}",
                r.pod_cidr, node.pod_cidr
            )));
        }
        if r.vtep_ip == node.vtep_ip {
            return Err(err(format!("VTEP IP {} is this node's own", r.vtep_ip)));
        }
        if node.pod_cidr.contains(r.vtep_ip) {
            return Err(err(format!(
                "VTEP IP {} is inside this node's pod CIDR {}",
                r.vtep_ip, node.pod_cidr
            )));
        }
        for (other, o) in self.remotes.iter().filter(|(o, _)| o.as_str() != name) {
            if r.pod_cidr.overlaps(&o.pod_cidr) {
                return Err(err(format!(
                    "pod CIDR {} overlaps remote node {other}'s {}",
                    r.pod_cidr, o.pod_cidr
                )));
            }
            if r.vtep_ip == o.vtep_ip {
                return Err(err(format!(
                    "VTEP IP {} is already remote node {other}'s",
                    r.vtep_ip
                )));
            }
            if o.pod_cidr.contains(r.vtep_ip) {
                return Err(err(format!(
                    "VTEP IP {} is inside remote node {other}'s pod CIDR {}",
                    r.vtep_ip, o.pod_cidr
                )));
            }
        }
        Ok(())
    }
}

/// The `dump-nodes` rows of the model's remote nodes, by name, with the
/// effective VTEP MAC; `next_hop_mac` is left for the daemon to fill in.
pub fn node_rows(model: &NodeModel) -> Vec<NodeRow> {
    model
        .remotes
        .iter()
        .map(|(name, r)| NodeRow {
            name: name.clone(),
            pod_cidr: r.pod_cidr.to_string(),
            vtep_ip: r.vtep_ip.to_string(),
            vtep_mac: r.effective_vtep_mac().to_string(),
            next_hop_mac: None,
        })
        .collect()
}

/// The `dump-services` rows of the model's Services, by name.
pub fn service_rows(model: &NodeModel) -> Vec<ServiceRow> {
    model.services.iter().map(|(name, s)| s.row(name)).collect()
}

// ---- cookies -----------------------------------------------------------------

/// Which kind of model object a flow comes from: bits 47-40 of its cookie.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CookieKind {
    /// The local node itself (classification, gateway, defaults); keyed by node name.
    Node = 1,
    /// A pod; keyed by container id.
    Pod = 2,
    /// A remote node; keyed by node name.
    Remote = 3,
    /// A Service; keyed by Service name.
    Service = 4,
}

/// The cookie of the flows of object `key` of `kind`:
/// `0x5653 << 48 | kind << 40 | (FNV-1a 64 of key) & 0xff_ffff_ffff`.
///
/// FNV-1a rather than the standard library's hasher, whose output may change
/// between Rust releases: cookies outlive the process that computed them.
pub fn cookie(kind: CookieKind, key: &str) -> u64 {
    COOKIE_MODEL | ((kind as u64) << 40) | (fnv1a(key) & 0xff_ffff_ffff)
}

/// FNV-1a 64 of `key`.
fn fnv1a(key: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The kind of a model cookie; `None` for a cookie the model did not write.
pub fn cookie_kind(cookie: u64) -> Option<CookieKind> {
    if cookie & COOKIE_MODEL_MASK != COOKIE_MODEL {
        return None;
    }
    match (cookie >> 40) & 0xff {
        1 => Some(CookieKind::Node),
        2 => Some(CookieKind::Pod),
        3 => Some(CookieKind::Remote),
        4 => Some(CookieKind::Service),
        _ => None,
    }
}

// ---- compilation -------------------------------------------------------------

/// A flow with no timeouts.
fn flow(table: u8, priority: u16, cookie: u64, matches: Match, actions: Vec<Action>) -> Flow {
    Flow {
        table,
        priority,
        cookie,
        idle_timeout: 0,
        hard_timeout: 0,
        matches,
        actions,
    }
}

/// A match built from `(field, exact value)` pairs.
fn exact(fields: &[(Field, u64)]) -> Match {
    let mut m = Match::new();
    for &(f, v) in fields {
        m.set_exact(f, v);
    }
    m
}

fn set(field: Field, value: u64) -> Action {
    Action::SetField { field, value }
}

fn ip(a: Ipv4Addr) -> u64 {
    u64::from(u32::from(a))
}

/// The flows of `model`, table by table, each by descending priority.
///
/// The model should be valid ([`NodeModel::validate`]); an invalid one still
/// compiles (nothing here panics), but may give two flows one identity.
/// Flows of Services send new connections to the groups of
/// [`compile_groups`]: install those first ([`compile_all`], [`diff_all`]).
///
/// Table 0 (conntrack, non-IP classification):
/// - `priority=410,ip,nw_dst=GATEWAY_IP actions=ct(zone=2,nat,table=5)`:
///   replies of hairpin connections (masqueraded to the gateway IP) get
///   their destination back before zone 1 sees them; other packets to the
///   gateway IP are untracked in zone 2 (nothing is committed there but
///   hairpin connections) and only pass through.
/// - `priority=400,ip actions=ct(zone=1,nat,table=1)`: every IPv4 packet
///   through conntrack; established connections and their replies get the
///   NAT recorded when they were committed.
/// - `priority=300,in_port=65000 actions=goto_table:10`: non-IP from the
///   tunnel (dropped there).
/// - `priority=0 actions=NORMAL`: L2 within the node, ARP.
///
/// Table 5 (conntrack after the hairpin zone):
/// - `priority=0,ip actions=ct(zone=1,nat,table=1)`.
///
/// Table 1 (Service load balancing):
/// - per Service `priority=200,ct_state=+new+trk,tcp,nw_dst=VIP,tp_dst=PORT
///   actions=group:ID` (`udp` for UDP); `actions=drop` when it has no
///   endpoints.
/// - `priority=0 actions=goto_table:2`.
///
/// Table 2 (IP classification):
/// - `priority=300,in_port=65000 actions=goto_table:10`: from the tunnel.
/// - per pod `priority=250,ip,nw_src=IP,nw_dst=IP actions=ct(commit,
///   zone=2,nat(src=GATEWAY_IP),table=10)`: hairpin, a connection DNATed
///   to its own client (no pod sends to itself through its interface
///   otherwise).
/// - `priority=200,ip,dl_dst=GW_MAC actions=goto_table:10`: routed by a pod.
/// - `priority=200,ip,dl_dst=VTEP_MAC actions=goto_table:10`: from the host
///   to a remote pod (see [`host_routes`]); omitted if `vtep_mac == gw_mac`.
/// - `priority=0 actions=NORMAL`: L2 within the node.
///
/// Table 10 (L3 forwarding):
/// - `priority=200,ip,nw_dst=GATEWAY_IP actions=set_field:GW_MAC->eth_dst,LOCAL`.
/// - per pod `priority=210,ip,in_port=OFPORT,nw_dst=IP actions=
///   set_field:GW_MAC->eth_src,set_field:MAC->eth_dst,dec_ttl,IN_PORT`:
///   hairpin traffic goes back out of the port it came in on (`output` to
///   the ingress port is dropped, as in OpenFlow).
/// - per pod `priority=200,ip,nw_dst=IP actions=set_field:GW_MAC->eth_src,
///   set_field:MAC->eth_dst,dec_ttl,output:OFPORT`.
/// - `priority=150,in_port=65000 actions=drop`: the tunnel reaches only
///   local pods and the gateway (above).
/// - per remote node `priority=100,ip,nw_dst=CIDR actions=set_field:VTEP_MAC->eth_src,
///   set_field:REMOTE_VTEP_MAC->eth_dst,dec_ttl,set_field:VTEP_IP->tun_dst,
///   set_field:VNI->tun_id,output:65000`.
/// - `priority=0 actions=LOCAL`: anything else to the host, which routes it.
pub fn compile(model: &NodeModel) -> Vec<Flow> {
    let n = &model.node;
    let node_cookie = cookie(CookieKind::Node, &n.name);
    let tunnel = u64::from(VXLAN_OFPORT);
    let ip_type = (Field::DlType, u64::from(ETH_TYPE_IP));
    let to_l3 = || vec![Action::GotoTable(TABLE_L3)];
    let mut flows =
        Vec::with_capacity(14 + 3 * model.pods.len() + model.remotes.len() + model.services.len());

    let ct_zone1 = || {
        vec![Action::Ct(CtAction {
            zone: Some(CT_ZONE),
            nat: Some(Nat::Reverse),
            table: Some(TABLE_SERVICES),
            ..CtAction::default()
        })]
    };

    // Table 0: conntrack for IP (the hairpin zone first for packets to the
    // gateway IP), classification of the rest.
    flows.push(flow(
        TABLE_CLASSIFY,
        410,
        node_cookie,
        exact(&[ip_type, (Field::NwDst, ip(n.gateway_ip))]),
        vec![Action::Ct(CtAction {
            zone: Some(CT_ZONE_HAIRPIN),
            nat: Some(Nat::Reverse),
            table: Some(TABLE_CT),
            ..CtAction::default()
        })],
    ));
    flows.push(flow(
        TABLE_CLASSIFY,
        400,
        node_cookie,
        exact(&[ip_type]),
        ct_zone1(),
    ));
    flows.push(flow(
        TABLE_CLASSIFY,
        300,
        node_cookie,
        exact(&[(Field::InPort, tunnel)]),
        to_l3(),
    ));
    flows.push(flow(
        TABLE_CLASSIFY,
        0,
        node_cookie,
        Match::new(),
        vec![Action::Normal],
    ));

    // Table 5: zone 1 after the hairpin zone.
    flows.push(flow(
        TABLE_CT,
        0,
        node_cookie,
        exact(&[ip_type]),
        ct_zone1(),
    ));

    // Table 1: Service load balancing.
    for (name, svc) in &model.services {
        let mut m = exact(&[
            ip_type,
            (Field::NwProto, u64::from(svc.protocol.number())),
            (Field::NwDst, ip(svc.vip)),
            (Field::TpDst, u64::from(svc.port)),
        ]);
        let new_trk = ct_state::NEW | ct_state::TRK;
        m.set(Field::CtState, new_trk, new_trk);
        let actions = if svc.endpoints.is_empty() {
            Vec::new()
        } else {
            vec![Action::Group(service_group_id(name))]
        };
        flows.push(flow(
            TABLE_SERVICES,
            200,
            cookie(CookieKind::Service, name),
            m,
            actions,
        ));
    }
    flows.push(flow(
        TABLE_SERVICES,
        0,
        node_cookie,
        Match::new(),
        vec![Action::GotoTable(TABLE_IP_CLASSIFY)],
    ));

    // Table 2: IP classification.
    flows.push(flow(
        TABLE_IP_CLASSIFY,
        300,
        node_cookie,
        exact(&[(Field::InPort, tunnel)]),
        to_l3(),
    ));
    for (id, pod) in &model.pods {
        flows.push(flow(
            TABLE_IP_CLASSIFY,
            250,
            cookie(CookieKind::Pod, id),
            exact(&[
                ip_type,
                (Field::NwSrc, ip(pod.ip)),
                (Field::NwDst, ip(pod.ip)),
            ]),
            vec![Action::Ct(CtAction {
                commit: true,
                zone: Some(CT_ZONE_HAIRPIN),
                nat: Some(Nat::Src {
                    ip: n.gateway_ip,
                    port: None,
                }),
                table: Some(TABLE_L3),
                exec: Vec::new(),
            })],
        ));
    }
    flows.push(flow(
        TABLE_IP_CLASSIFY,
        200,
        node_cookie,
        exact(&[ip_type, (Field::DlDst, n.gw_mac.to_u64())]),
        to_l3(),
    ));
    if n.vtep_mac != n.gw_mac {
        flows.push(flow(
            TABLE_IP_CLASSIFY,
            200,
            node_cookie,
            exact(&[ip_type, (Field::DlDst, n.vtep_mac.to_u64())]),
            to_l3(),
        ));
    }
    flows.push(flow(
        TABLE_IP_CLASSIFY,
        0,
        node_cookie,
        Match::new(),
        vec![Action::Normal],
    ));

    // Table 10: L3 forwarding.
    flows.push(flow(
        TABLE_L3,
        200,
        node_cookie,
        exact(&[ip_type, (Field::NwDst, ip(n.gateway_ip))]),
        vec![set(Field::DlDst, n.gw_mac.to_u64()), Action::Local],
    ));
    for (id, pod) in &model.pods {
        let to_pod = |last: Action| {
            vec![
                set(Field::DlSrc, n.gw_mac.to_u64()),
                set(Field::DlDst, pod.mac.to_u64()),
                Action::DecTtl,
                last,
            ]
        };
        flows.push(flow(
            TABLE_L3,
            210,
            cookie(CookieKind::Pod, id),
            exact(&[
                ip_type,
                (Field::InPort, u64::from(pod.ofport)),
                (Field::NwDst, ip(pod.ip)),
            ]),
            to_pod(Action::InPort),
        ));
        flows.push(flow(
            TABLE_L3,
            200,
            cookie(CookieKind::Pod, id),
            exact(&[ip_type, (Field::NwDst, ip(pod.ip))]),
            to_pod(Action::Output(PortNo(pod.ofport))),
        ));
    }
    flows.push(flow(
        TABLE_L3,
        150,
        node_cookie,
        exact(&[(Field::InPort, tunnel)]),
        Vec::new(),
    ));
    for (name, r) in &model.remotes {
        let mut m = exact(&[ip_type]);
        m.set(
            Field::NwDst,
            ip(r.pod_cidr.addr()),
            u64::from(r.pod_cidr.mask()),
        );
        flows.push(flow(
            TABLE_L3,
            100,
            cookie(CookieKind::Remote, name),
            m,
            vec![
                set(Field::DlSrc, n.vtep_mac.to_u64()),
                set(Field::DlDst, r.effective_vtep_mac().to_u64()),
                Action::DecTtl,
                set(Field::TunDst, ip(r.vtep_ip)),
                set(Field::TunId, u64::from(n.vni)),
                Action::Output(PortNo(VXLAN_OFPORT)),
            ],
        ));
    }
    flows.push(flow(
        TABLE_L3,
        0,
        node_cookie,
        Match::new(),
        vec![Action::Local],
    ));
    flows
}

/// The groups of `model`: one `select` group per Service with endpoints,
/// id [`service_group_id`], one bucket per endpoint
/// `bucket=actions=ct(commit,zone=1,nat(dst=IP:PORT),table=2)`, in the
/// Service's endpoint order; by Service name.
pub fn compile_groups(model: &NodeModel) -> Vec<Group> {
    model
        .services
        .iter()
        .filter(|(_, s)| !s.endpoints.is_empty())
        .map(|(name, s)| Group {
            id: service_group_id(name),
            kind: GroupType::Select,
            buckets: s
                .endpoints
                .iter()
                .map(|e| Bucket {
                    weight: 1,
                    actions: vec![Action::Ct(CtAction {
                        commit: true,
                        zone: Some(CT_ZONE),
                        table: Some(TABLE_IP_CLASSIFY),
                        nat: Some(Nat::Dst {
                            ip: *e.ip(),
                            port: Some(e.port()),
                        }),
                        exec: Vec::new(),
                    })],
                })
                .collect(),
        })
        .collect()
}

/// A model compiled: its flows ([`compile`]) and groups ([`compile_groups`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Compiled {
    /// The flows.
    pub flows: Vec<Flow>,
    /// The groups the flows refer to.
    pub groups: Vec<Group>,
}

/// The flows and groups of `model`.
pub fn compile_all(model: &NodeModel) -> Compiled {
    Compiled {
        flows: compile(model),
        groups: compile_groups(model),
    }
}

// ---- differences ---------------------------------------------------------------

/// What identifies a flow in a table: `(table, priority, match)`.
type FlowId = (u8, u16, Vec<(Field, u64, u64)>);

fn flow_id(f: &Flow) -> FlowId {
    let m = f
        .matches
        .iter()
        .map(|m| (m.field, m.value, m.mask))
        .collect();
    (f.table, f.priority, m)
}

/// The changes that turn one flow set into another.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowDiff {
    /// Flows to add: new ones, and changed ones (an add replaces the flow of
    /// the same table, priority and match, as in OpenFlow).
    pub add: Vec<Flow>,
    /// Flows to delete strictly (same table, priority and match): those
    /// whose identity is gone.
    pub delete: Vec<Flow>,
}

impl FlowDiff {
    /// True when there is nothing to change.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.delete.is_empty()
    }

    /// The strict filters (`del-flows --strict`) that delete [`FlowDiff::delete`]:
    /// see [`strict_filter`].
    pub fn delete_filters(&self) -> Vec<FlowFilter> {
        self.delete.iter().map(strict_filter).collect()
    }
}

/// The filter that, applied with `--strict`, deletes exactly `flow`: its
/// table, priority and match, and its cookie exactly, so a user flow that
/// happens to have the same match (and another cookie) is left alone.
pub fn strict_filter(flow: &Flow) -> FlowFilter {
    FlowFilter {
        table: Some(flow.table),
        cookie: Some((flow.cookie, u64::MAX)),
        matches: flow.matches.clone(),
        out_port: None,
        priority: Some(flow.priority),
    }
}

/// The changes that turn the flows `old` into `new`.
///
/// A flow of `new` whose identity `(table, priority, match)` is not in `old`,
/// or is there with other actions, cookie or timeouts, is in `add`; a flow of
/// `old` whose identity is not in `new` is in `delete`; unchanged flows are in
/// neither. Applying `delete` (strictly) and `add` to `old`, in either order,
/// gives `new`. When a list holds one identity twice, the later flow counts,
/// as sequential OpenFlow adds would have it. Order: `add` follows `new`,
/// `delete` follows `old`.
pub fn diff(old: &[Flow], new: &[Flow]) -> FlowDiff {
    let last_of = |flows: &[Flow]| -> HashMap<FlowId, usize> {
        flows
            .iter()
            .enumerate()
            .map(|(i, f)| (flow_id(f), i))
            .collect()
    };
    let old_ids = last_of(old);
    let new_ids = last_of(new);
    let add = new
        .iter()
        .enumerate()
        .filter(|(i, f)| {
            let id = flow_id(f);
            new_ids[&id] == *i && old_ids.get(&id).is_none_or(|&j| old[j] != **f)
        })
        .map(|(_, f)| f.clone())
        .collect();
    let delete = old
        .iter()
        .enumerate()
        .filter(|(i, f)| {
            let id = flow_id(f);
            old_ids[&id] == *i && !new_ids.contains_key(&id)
        })
        .map(|(_, f)| f.clone())
        .collect();
    FlowDiff { add, delete }
}

/// The changes that turn one group set into another.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupDiff {
    /// Groups to add: new ones, and changed ones (an OpenFlow add-group
    /// replaces the group of the same id).
    pub add: Vec<Group>,
    /// Ids of groups to delete: those whose id is gone.
    pub delete: Vec<u32>,
}

impl GroupDiff {
    /// True when there is nothing to change.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.delete.is_empty()
    }
}

/// The changes that turn the groups `old` into `new` (identity: the id; a
/// later group of one id counts). Order: `add` follows `new`, `delete` `old`.
pub fn diff_groups(old: &[Group], new: &[Group]) -> GroupDiff {
    let old_by: HashMap<u32, &Group> = old.iter().map(|g| (g.id, g)).collect();
    let new_by: HashMap<u32, &Group> = new.iter().map(|g| (g.id, g)).collect();
    let mut seen = std::collections::HashSet::new();
    let add = new
        .iter()
        .rev()
        .filter(|g| seen.insert(g.id))
        .filter(|g| old_by.get(&g.id).is_none_or(|o| o != g))
        .cloned()
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let mut seen = std::collections::HashSet::new();
    let delete = old
        .iter()
        .filter(|g| !new_by.contains_key(&g.id) && seen.insert(g.id))
        .map(|g| g.id)
        .collect();
    GroupDiff { add, delete }
}

/// The changes that turn one compiled model into another.
///
/// Apply them in this order, so that no flow ever refers to a missing
/// group: `groups.add`, then `flows` (delete and add), then `groups.delete`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelDiff {
    /// Flow changes ([`diff`]).
    pub flows: FlowDiff,
    /// Group changes ([`diff_groups`]).
    pub groups: GroupDiff,
}

impl ModelDiff {
    /// True when there is nothing to change.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty() && self.groups.is_empty()
    }
}

/// The changes that turn `old` into `new`: a Service whose endpoints change
/// changes only its group (or, from or to none, its one flow too).
pub fn diff_all(old: &Compiled, new: &Compiled) -> ModelDiff {
    ModelDiff {
        flows: diff(&old.flows, &new.flows),
        groups: diff_groups(&old.groups, &new.groups),
    }
}

// ---- host routes ---------------------------------------------------------------

/// A route the daemon installs in its own namespace so that the host reaches
/// a remote node's pods through the switch:
///
/// ```text
/// ip route replace CIDR via VIA dev vsw0 onlink mtu MTU
/// ip neigh replace VIA lladdr LLADDR dev vsw0 nud permanent
/// ```
///
/// `via` is the remote's gateway (the first host of its pod CIDR); `lladdr`
/// is this node's VTEP MAC, so the host's packets enter the switch addressed
/// to it and table 0 sends them to routing. The permanent neighbor entry
/// means nobody has to answer ARP for `via`. `mtu` is the pods' MTU, so host
/// packets fit the underlay once encapsulated.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HostRoute {
    /// The remote node the route leads to.
    pub node: String,
    /// Its pod CIDR.
    pub cidr: Ipv4Cidr,
    /// The next hop: the first host of `cidr`.
    pub via: Ipv4Addr,
    /// The next hop's link-layer address: this node's VTEP MAC.
    pub lladdr: MacAddr,
    /// The route's MTU: the underlay's less VXLAN's overhead.
    pub mtu: u32,
}

impl HostRoute {
    /// Arguments of `ip` that install the route on `dev` (or update it).
    pub fn route_replace_args(&self, dev: &str) -> Vec<String> {
        let (cidr, via, mtu) = (
            self.cidr.to_string(),
            self.via.to_string(),
            self.mtu.to_string(),
        );
        args(&[
            "route", "replace", &cidr, "via", &via, "dev", dev, "onlink", "mtu", &mtu,
        ])
    }

    /// Arguments of `ip` that install the neighbor entry of `via` on `dev`.
    pub fn neigh_replace_args(&self, dev: &str) -> Vec<String> {
        let (via, mac) = (self.via.to_string(), self.lladdr.to_string());
        args(&[
            "neigh",
            "replace",
            &via,
            "lladdr",
            &mac,
            "dev",
            dev,
            "nud",
            "permanent",
        ])
    }

    /// Arguments of `ip` that remove the route from `dev`.
    pub fn route_del_args(&self, dev: &str) -> Vec<String> {
        args(&["route", "del", &self.cidr.to_string(), "dev", dev])
    }

    /// Arguments of `ip` that remove the neighbor entry from `dev`.
    pub fn neigh_del_args(&self, dev: &str) -> Vec<String> {
        args(&["neigh", "del", &self.via.to_string(), "dev", dev])
    }
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// The host routes of `model`: one per remote node, by node name.
pub fn host_routes(model: &NodeModel) -> Vec<HostRoute> {
    model
        .remotes
        .iter()
        .map(|(name, r)| HostRoute {
            node: name.clone(),
            cidr: r.pod_cidr,
            via: r.pod_cidr.first_host(),
            lladdr: model.node.vtep_mac,
            mtu: model.node.pod_mtu(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    //! Golden flows for a two-pod, two-remote model; validation errors by
    //! object; diff properties against a set-of-flows oracle; host routes.

    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;
    use crate::flow::{parse_filter, parse_flow, parse_flows, parse_group};

    fn mac(s: &str) -> MacAddr {
        s.parse().unwrap()
    }

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn cidr(s: &str) -> Ipv4Cidr {
        s.parse().unwrap()
    }

    fn node() -> LocalNode {
        LocalNode {
            name: "node-a".into(),
            pod_cidr: cidr("10.244.1.0/24"),
            gateway_ip: v4("10.244.1.1"),
            vtep_ip: v4("198.18.0.1"),
            vni: 1,
            vtep_mac: mac("aa:bb:cc:00:00:01"),
            gw_mac: mac("0a:00:00:00:00:01"),
            underlay_mtu: 1500,
        }
    }

    fn pod(ofport: u32, last: u8) -> PodEntry {
        PodEntry {
            ofport,
            mac: MacAddr([0x0a, 0x58, 10, 244, 1, last]),
            ip: Ipv4Addr::new(10, 244, 1, last),
        }
    }

    fn remote(third: u8, vtep_mac: Option<&str>) -> RemoteNode {
        RemoteNode {
            pod_cidr: Ipv4Cidr::new(Ipv4Addr::new(10, 244, third, 0), 24).unwrap(),
            vtep_ip: Ipv4Addr::new(198, 18, 0, third),
            vtep_mac: vtep_mac.map(mac),
        }
    }

    /// Two pods, two remote nodes (one with a configured VTEP MAC, one with the default).
    fn example() -> NodeModel {
        let mut m = NodeModel::new(node()).unwrap();
        m.upsert_pod("c0ffee01", pod(1, 5)).unwrap();
        m.upsert_pod("c0ffee02", pod(2, 6)).unwrap();
        m.upsert_remote("node-b", remote(2, Some("aa:bb:cc:00:00:02")))
            .unwrap();
        m.upsert_remote("node-c", remote(3, None)).unwrap();
        m
    }

    fn text(flows: &[Flow]) -> Vec<String> {
        flows.iter().map(Flow::to_string).collect()
    }

    #[test]
    fn compiles_the_example_to_golden_flows() {
        let m = example();
        let node = cookie(CookieKind::Node, "node-a");
        let p1 = cookie(CookieKind::Pod, "c0ffee01");
        let p2 = cookie(CookieKind::Pod, "c0ffee02");
        let b = cookie(CookieKind::Remote, "node-b");
        let c = cookie(CookieKind::Remote, "node-c");
        let want = [
            format!("cookie={node:#x}, priority=410,ip,nw_dst=10.244.1.1 actions=ct(table=5,zone=2,nat)"),
            format!("cookie={node:#x}, priority=400,ip actions=ct(table=1,zone=1,nat)"),
            format!("cookie={node:#x}, priority=300,in_port=65000 actions=goto_table:10"),
            format!("cookie={node:#x}, priority=0 actions=NORMAL"),
            format!("cookie={node:#x}, table=5, priority=0,ip actions=ct(table=1,zone=1,nat)"),
            format!("cookie={node:#x}, table=1, priority=0 actions=goto_table:2"),
            format!("cookie={node:#x}, table=2, priority=300,in_port=65000 actions=goto_table:10"),
            format!("cookie={p1:#x}, table=2, priority=250,ip,nw_src=10.244.1.5,nw_dst=10.244.1.5 actions=ct(commit,table=10,zone=2,nat(src=10.244.1.1))"),
            format!("cookie={p2:#x}, table=2, priority=250,ip,nw_src=10.244.1.6,nw_dst=10.244.1.6 actions=ct(commit,table=10,zone=2,nat(src=10.244.1.1))"),
            format!("cookie={node:#x}, table=2, priority=200,ip,dl_dst=0a:00:00:00:00:01 actions=goto_table:10"),
            format!("cookie={node:#x}, table=2, priority=200,ip,dl_dst=aa:bb:cc:00:00:01 actions=goto_table:10"),
            format!("cookie={node:#x}, table=2, priority=0 actions=NORMAL"),
            format!("cookie={node:#x}, table=10, priority=200,ip,nw_dst=10.244.1.1 actions=set_field:0a:00:00:00:00:01->eth_dst,LOCAL"),
            format!("cookie={p1:#x}, table=10, priority=210,ip,in_port=1,nw_dst=10.244.1.5 actions=set_field:0a:00:00:00:00:01->eth_src,set_field:0a:58:0a:f4:01:05->eth_dst,dec_ttl,IN_PORT"),
            format!("cookie={p1:#x}, table=10, priority=200,ip,nw_dst=10.244.1.5 actions=set_field:0a:00:00:00:00:01->eth_src,set_field:0a:58:0a:f4:01:05->eth_dst,dec_ttl,output:1"),
            format!("cookie={p2:#x}, table=10, priority=210,ip,in_port=2,nw_dst=10.244.1.6 actions=set_field:0a:00:00:00:00:01->eth_src,set_field:0a:58:0a:f4:01:06->eth_dst,dec_ttl,IN_PORT"),
            format!("cookie={p2:#x}, table=10, priority=200,ip,nw_dst=10.244.1.6 actions=set_field:0a:00:00:00:00:01->eth_src,set_field:0a:58:0a:f4:01:06->eth_dst,dec_ttl,output:2"),
            format!("cookie={node:#x}, table=10, priority=150,in_port=65000 actions=drop"),
            format!("cookie={b:#x}, table=10, priority=100,ip,nw_dst=10.244.2.0/24 actions=set_field:aa:bb:cc:00:00:01->eth_src,set_field:aa:bb:cc:00:00:02->eth_dst,dec_ttl,set_field:198.18.0.2->tun_dst,set_field:0x1->tun_id,output:65000"),
            format!("cookie={c:#x}, table=10, priority=100,ip,nw_dst=10.244.3.0/24 actions=set_field:aa:bb:cc:00:00:01->eth_src,set_field:02:56:c6:12:00:03->eth_dst,dec_ttl,set_field:198.18.0.3->tun_dst,set_field:0x1->tun_id,output:65000"),
            format!("cookie={node:#x}, table=10, priority=0 actions=LOCAL"),
        ];
        let got = text(&compile(&m));
        assert_eq!(got, want, "\n{}", got.join("\n"));
        // The cookies are pinned too: they outlive the process.
        assert_eq!(node >> 40, 0x56_5301);
        assert_eq!(p1 >> 40, 0x56_5302);
        assert_eq!(b >> 40, 0x56_5303);
        assert_eq!(cookie(CookieKind::Node, "node-a"), 0x5653_01c2_2078_cb53);
    }

    #[test]
    fn compiled_flows_round_trip_through_the_parser() {
        let flows = compile(&example());
        for f in &flows {
            let t = f.to_string();
            assert_eq!(parse_flow(&t).as_ref(), Ok(f), "{t}");
        }
        // As one add-flows file too.
        let file = text(&flows).join("\n");
        assert_eq!(parse_flows(&file).unwrap(), flows);
    }

    #[test]
    fn cookies_select_the_model_and_each_kind() {
        let flows = compile(&example());
        let all = parse_filter("cookie=0x5653000000000000/0xffff000000000000").unwrap();
        assert_eq!(all.cookie, Some((COOKIE_MODEL, COOKIE_MODEL_MASK)));
        let count = |kind| {
            flows
                .iter()
                .filter(|f| cookie_kind(f.cookie) == Some(kind))
                .count()
        };
        assert!(flows
            .iter()
            .all(|f| f.cookie & COOKIE_MODEL_MASK == COOKIE_MODEL));
        assert_eq!(
            (
                count(CookieKind::Node),
                count(CookieKind::Pod),
                count(CookieKind::Remote)
            ),
            (13, 6, 2)
        );
        assert_eq!(cookie_kind(0), None);
        assert_eq!(cookie_kind(COOKIE_MODEL), None);
        assert_eq!(
            cookie(CookieKind::Pod, "x") & COOKIE_KIND_MASK,
            0x56_5302 << 40
        );
        // Distinct objects get distinct cookies (no collision in practice).
        let ids: HashSet<u64> = (0..1000)
            .map(|i| cookie(CookieKind::Pod, &format!("{i:064x}")))
            .collect();
        assert_eq!(ids.len(), 1000);
    }

    #[test]
    fn identities_are_unique() {
        let flows = compile(&example());
        let ids: HashSet<FlowId> = flows.iter().map(flow_id).collect();
        assert_eq!(ids.len(), flows.len());
        // vtep_mac == gw_mac: one classify flow for both.
        let mut n = node();
        n.vtep_mac = n.gw_mac;
        let flows = compile(&NodeModel::new(n).unwrap());
        let ids: HashSet<FlowId> = flows.iter().map(flow_id).collect();
        assert_eq!(ids.len(), flows.len());
        assert_eq!(flows.len(), 12);
    }

    #[test]
    fn default_vtep_mac_is_stable_and_locally_administered() {
        let ip = v4("198.18.0.1");
        assert_eq!(default_vtep_mac(ip), mac("02:56:c6:12:00:01"));
        assert_eq!(default_vtep_mac(ip), default_vtep_mac(v4("198.18.0.1")));
        assert_ne!(default_vtep_mac(ip), default_vtep_mac(v4("198.18.0.2")));
        for ip in [v4("0.0.0.0"), v4("255.255.255.255"), v4("10.1.2.3")] {
            let m = default_vtep_mac(ip);
            assert_eq!(m.0[0] & 0x02, 0x02, "locally administered: {m}");
            assert!(!m.is_multicast(), "{m}");
        }
        assert_eq!(
            remote(3, None).effective_vtep_mac(),
            mac("02:56:c6:12:00:03")
        );
        assert_eq!(
            remote(3, Some("aa:00:00:00:00:03")).effective_vtep_mac(),
            mac("aa:00:00:00:00:03")
        );
    }

    #[test]
    fn cidrs_parse_canonical_only() {
        let c = cidr("10.244.2.0/24");
        assert_eq!(c.to_string(), "10.244.2.0/24");
        assert_eq!(
            (c.addr(), c.prefix_len(), c.mask()),
            (v4("10.244.2.0"), 24, 0xffff_ff00)
        );
        assert_eq!(c.first_host(), v4("10.244.2.1"));
        assert_eq!(c.last(), v4("10.244.2.255"));
        assert!(c.contains(v4("10.244.2.77")) && !c.contains(v4("10.244.3.0")));
        assert!(c.overlaps(&cidr("10.244.0.0/16")) && cidr("10.244.0.0/16").overlaps(&c));
        assert!(!c.overlaps(&cidr("10.244.3.0/24")));
        assert_eq!(cidr("0.0.0.0/0").mask(), 0);
        assert_eq!(cidr("10.0.0.1/32").mask(), u32::MAX);
        let e = "10.244.2.5/24".parse::<Ipv4Cidr>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid CIDR \"10.244.2.5/24\": host bits are set (the network is 10.244.2.0/24)"
        );
        for bad in [
            "10.244.2.0",
            "10.244.2.0/33",
            "10.244.2/24",
            "x/24",
            "10.0.0.0/+8",
            "10.0.0.0/",
        ] {
            assert!(bad.parse::<Ipv4Cidr>().is_err(), "{bad}");
        }
        let j = serde_json::to_string(&c).unwrap();
        assert_eq!(j, "\"10.244.2.0/24\"");
        assert_eq!(serde_json::from_str::<Ipv4Cidr>(&j).unwrap(), c);
        assert!(serde_json::from_str::<Ipv4Cidr>("\"10.244.2.1/24\"").is_err());
    }

    #[track_caller]
    fn rejects<T: fmt::Debug>(r: Result<T, ModelError>, want: &str) {
        match r {
            Ok(v) => panic!("accepted: {v:?}"),
            Err(e) => assert_eq!(e.to_string(), want),
        }
    }

    #[test]
    fn validation_names_the_object() {
        let mut m = example();
        rejects(
            m.upsert_remote("node-d", remote(1, None)),
            "remote node node-d: pod CIDR 10.244.1.0/24 overlaps this node's pod CIDR 10.244.1.0/24",
        );
        let mut wide = remote(9, None);
        wide.pod_cidr = cidr("10.244.0.0/16");
        rejects(
            m.upsert_remote("node-d", wide),
            "remote node node-d: pod CIDR 10.244.0.0/16 overlaps this node's pod CIDR 10.244.1.0/24",
        );
        let mut r = remote(4, None);
        r.pod_cidr = cidr("10.244.2.128/25");
        rejects(
            m.upsert_remote("node-d", r),
            "remote node node-d: pod CIDR 10.244.2.128/25 overlaps remote node node-b's 10.244.2.0/24",
        );
        let mut r = remote(4, None);
        r.vtep_ip = v4("198.18.0.3");
        rejects(
            m.upsert_remote("node-d", r),
            "remote node node-d: VTEP IP 198.18.0.3 is already remote node node-c's",
        );
        let mut r = remote(4, None);
        r.vtep_ip = v4("198.18.0.1");
        rejects(
            m.upsert_remote("node-d", r),
            "remote node node-d: VTEP IP 198.18.0.1 is this node's own",
        );
        rejects(
            m.upsert_remote("node-a", remote(4, None)),
            "remote node node-a: has this node's own name",
        );
        rejects(
            m.upsert_remote("node-d", remote(4, Some("01:00:5e:00:00:01"))),
            "remote node node-d: VTEP MAC 01:00:5e:00:00:01 is not a unicast MAC",
        );
        rejects(
            m.upsert_remote("Node_D", remote(4, None)),
            "invalid node name \"Node_D\": only lowercase letters, digits, '-' and '.' are allowed",
        );
        // Replacing a remote with itself (or a changed self) is no conflict.
        let mut b = remote(2, None);
        b.vtep_mac = None;
        assert!(m.upsert_remote("node-b", b).unwrap().is_some());

        rejects(
            m.upsert_pod("c0ffee03", pod(3, 5)),
            "pod c0ffee03: IP 10.244.1.5 is already pod c0ffee01's",
        );
        rejects(
            m.upsert_pod("c0ffee03", pod(2, 7)),
            "pod c0ffee03: ofport 2 is already pod c0ffee02's",
        );
        let mut p = pod(3, 7);
        p.ip = v4("10.244.2.7");
        rejects(
            m.upsert_pod("c0ffee03", p),
            "pod c0ffee03: IP 10.244.2.7 is outside the node's pod CIDR 10.244.1.0/24",
        );
        rejects(
            m.upsert_pod("c0ffee03", pod(3, 1)),
            "pod c0ffee03: IP 10.244.1.1 is the node's gateway IP",
        );
        rejects(
            m.upsert_pod("c0ffee03", pod(3, 255)),
            "pod c0ffee03: IP 10.244.1.255 is the network or broadcast address of 10.244.1.0/24",
        );
        rejects(
            m.upsert_pod("c0ffee03", pod(VXLAN_OFPORT, 7)),
            "pod c0ffee03: ofport 65000 is not usable (1-4294967040, not the tunnel's 65000)",
        );
        let before = m.clone();
        assert!(m.upsert_pod("c0ffee03", pod(3, 7)).unwrap().is_none());
        assert_ne!(m, before);
        m.validate().unwrap();

        // Whole-model validation (a model read back from disk, say).
        let mut bad = example();
        bad.pods.insert("c0ffee09".into(), pod(9, 5));
        rejects(
            bad.validate(),
            "pod c0ffee01: IP 10.244.1.5 is already pod c0ffee09's",
        );

        let mut n = node();
        n.gateway_ip = v4("10.244.2.1");
        rejects(
            NodeModel::new(n),
            "node node-a: gateway IP 10.244.2.1 is not a host address of the pod CIDR 10.244.1.0/24",
        );
        let mut n = node();
        n.vni = 1 << 24;
        rejects(
            NodeModel::new(n),
            "node node-a: VNI 16777216 is over 16777215",
        );
        let mut n = node();
        n.vtep_ip = v4("10.244.1.200");
        rejects(
            NodeModel::new(n),
            "node node-a: VTEP IP 10.244.1.200 is inside the pod CIDR 10.244.1.0/24",
        );
        let mut n = node();
        n.underlay_mtu = 100;
        rejects(
            NodeModel::new(n),
            "node node-a: underlay MTU 100 must be 118-65535 (pods get it less 50)",
        );
    }

    #[test]
    fn remote_nodes_parse_from_request_text() {
        let r = RemoteNode::parse("node-b", "10.244.2.0/24", "198.18.0.2", None).unwrap();
        assert_eq!(r, remote(2, None));
        let r = RemoteNode::parse(
            "node-b",
            "10.244.2.0/24",
            "198.18.0.2",
            Some("AA:BB:CC:00:00:02"),
        )
        .unwrap();
        assert_eq!(r.vtep_mac, Some(mac("aa:bb:cc:00:00:02")));
        rejects(
            RemoteNode::parse("node-b", "10.244.2.0/24", "198.18.0", None),
            "invalid VTEP IP \"198.18.0\": expected an IPv4 address like 198.18.0.2",
        );
        rejects(
            RemoteNode::parse("node-b", "10.244.2.0/24", "198.18.0.2", Some("aa:bb")),
            "invalid VTEP MAC \"aa:bb\": expected a MAC address like aa:bb:cc:00:00:02",
        );
        rejects(
            RemoteNode::parse("node-b", "10.244.2.0/31", "198.18.0.2", None),
            "remote node node-b: pod CIDR 10.244.2.0/31 must be /1 to /30",
        );
        rejects(
            RemoteNode::parse("node-b", "10.244.2.0/24", "224.0.0.1", None),
            "remote node node-b: VTEP IP 224.0.0.1 is not a unicast address",
        );
        rejects(
            RemoteNode::parse("-b", "10.244.2.0/24", "198.18.0.2", None),
            "invalid node name \"-b\": must start and end with a letter or digit",
        );
        rejects(
            RemoteNode::parse("", "10.244.2.0/24", "198.18.0.2", None),
            "invalid node name \"\": empty",
        );
    }

    #[test]
    fn model_serializes_readably_and_round_trips() {
        let m = example();
        let j = serde_json::to_value(&m).unwrap();
        assert_eq!(j["node"]["pod_cidr"], "10.244.1.0/24");
        assert_eq!(j["remotes"]["node-b"]["vtep_mac"], "aa:bb:cc:00:00:02");
        assert_eq!(j["remotes"]["node-c"]["vtep_mac"], serde_json::Value::Null);
        assert_eq!(j["pods"]["c0ffee01"]["ofport"], 1);
        let back: NodeModel = serde_json::from_value(j.clone()).unwrap();
        assert_eq!(back, m);
        let mut extra = j;
        extra["node"]["color"] = "red".into();
        assert!(serde_json::from_value::<NodeModel>(extra).is_err());
    }

    #[test]
    fn one_object_changes_only_its_own_flows() {
        let old_model = example();
        let old = compile(&old_model);
        assert!(diff(&old, &old).is_empty());

        let mut m = old_model.clone();
        m.upsert_remote("node-d", remote(4, None)).unwrap();
        let d = diff(&old, &compile(&m));
        let node_d = cookie(CookieKind::Remote, "node-d");
        let want: Vec<Flow> = compile(&m)
            .into_iter()
            .filter(|f| f.cookie == node_d)
            .collect();
        assert_eq!(want.len(), 1);
        assert_eq!(text(&d.add), text(&want));
        assert!(d.add[0].cookie == cookie(CookieKind::Remote, "node-d"));
        assert!(d.delete.is_empty());

        let mut m = old_model.clone();
        m.remove_pod("c0ffee01").unwrap();
        let d = diff(&old, &compile(&m));
        assert!(d.add.is_empty());
        let p1 = cookie(CookieKind::Pod, "c0ffee01");
        let p1_flows: Vec<Flow> = old.iter().filter(|f| f.cookie == p1).cloned().collect();
        assert_eq!(p1_flows.len(), 3, "hairpin, hairpin return, route");
        assert_eq!(d.delete, p1_flows);
        assert_eq!(
            d.delete_filters()[2].to_string(),
            format!("table=10,cookie={p1:#x}/0xffffffffffffffff,priority=200,ip,nw_dst=10.244.1.5")
        );

        // A changed VTEP MAC is a changed action set: an add, no delete.
        let mut m = old_model.clone();
        m.upsert_remote("node-b", remote(2, None)).unwrap();
        let d = diff(&old, &compile(&m));
        let node_b = old
            .iter()
            .position(|f| f.cookie == cookie(CookieKind::Remote, "node-b"))
            .unwrap();
        assert_eq!(d.add.len(), 1);
        assert_eq!(flow_id(&d.add[0]), flow_id(&old[node_b]));
        assert!(d.delete.is_empty());

        // A moved pod CIDR is a new identity: one add, one delete.
        let mut m = old_model.clone();
        let mut r = remote(2, Some("aa:bb:cc:00:00:02"));
        r.pod_cidr = cidr("10.244.20.0/24");
        m.upsert_remote("node-b", r).unwrap();
        let d = diff(&old, &compile(&m));
        assert_eq!((d.add.len(), d.delete.len()), (1, 1));
        assert_eq!(d.delete[0], old[node_b]);

        // A pod that moves to another port: its route is replaced, its
        // hairpin return flow (matching in_port) moves, its hairpin flow
        // (addresses only) stays.
        let mut m = old_model.clone();
        m.upsert_pod("c0ffee02", pod(7, 6)).unwrap();
        let d = diff(&old, &compile(&m));
        assert_eq!((d.add.len(), d.delete.len()), (2, 1));
        assert_eq!(d.add[0].actions.last(), Some(&Action::InPort));
        assert_eq!(d.add[1].actions.last(), Some(&Action::Output(PortNo(7))));
        assert_eq!(d.delete[0].actions.last(), Some(&Action::InPort));
    }

    #[test]
    fn host_routes_point_remote_cidrs_at_the_vtep_mac() {
        let routes = host_routes(&example());
        assert_eq!(
            routes,
            vec![
                HostRoute {
                    node: "node-b".into(),
                    cidr: cidr("10.244.2.0/24"),
                    via: v4("10.244.2.1"),
                    lladdr: mac("aa:bb:cc:00:00:01"),
                    mtu: 1450,
                },
                HostRoute {
                    node: "node-c".into(),
                    cidr: cidr("10.244.3.0/24"),
                    via: v4("10.244.3.1"),
                    lladdr: mac("aa:bb:cc:00:00:01"),
                    mtu: 1450,
                },
            ]
        );
        let r = &routes[0];
        assert_eq!(
            r.route_replace_args("vsw0").join(" "),
            "route replace 10.244.2.0/24 via 10.244.2.1 dev vsw0 onlink mtu 1450"
        );
        assert_eq!(
            r.neigh_replace_args("vsw0").join(" "),
            "neigh replace 10.244.2.1 lladdr aa:bb:cc:00:00:01 dev vsw0 nud permanent"
        );
        assert_eq!(
            r.route_del_args("vsw0").join(" "),
            "route del 10.244.2.0/24 dev vsw0"
        );
        assert_eq!(
            r.neigh_del_args("vsw0").join(" "),
            "neigh del 10.244.2.1 dev vsw0"
        );
        assert!(host_routes(&NodeModel::new(node()).unwrap()).is_empty());
    }

    #[test]
    fn node_rows_show_the_effective_vtep_mac() {
        let rows = node_rows(&example());
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (
                rows[0].name.as_str(),
                rows[0].pod_cidr.as_str(),
                rows[0].vtep_ip.as_str()
            ),
            ("node-b", "10.244.2.0/24", "198.18.0.2")
        );
        assert_eq!(rows[0].vtep_mac, "aa:bb:cc:00:00:02");
        assert_eq!(rows[1].vtep_mac, "02:56:c6:12:00:03");
        assert_eq!(rows[1].next_hop_mac, None);
    }

    fn service(slot: u8, eps: &[&str]) -> Service {
        Service {
            vip: Ipv4Addr::new(10, 96, 0, 10 + slot),
            port: 80,
            protocol: Proto::Tcp,
            endpoints: eps.iter().map(|e| e.parse().unwrap()).collect(),
        }
    }

    fn with_web() -> NodeModel {
        let mut m = example();
        m.upsert_service(
            "default/web",
            service(0, &["10.244.1.5:8080", "10.244.2.7:8080"]),
        )
        .unwrap();
        let mut dns = service(1, &[]);
        dns.port = 53;
        dns.protocol = Proto::Udp;
        m.upsert_service("kube-system/dns", dns).unwrap();
        m
    }

    #[test]
    fn services_compile_to_golden_flows_and_groups() {
        let m = with_web();
        let web = cookie(CookieKind::Service, "default/web");
        let dns = cookie(CookieKind::Service, "kube-system/dns");
        let gid = service_group_id("default/web");
        assert_eq!(gid, 0x24d6_34bb, "pinned: {gid:#x}");
        let c = compile_all(&m);
        let t1: Vec<String> = c
            .flows
            .iter()
            .filter(|f| f.table == TABLE_SERVICES)
            .map(Flow::to_string)
            .collect();
        let node = cookie(CookieKind::Node, "node-a");
        assert_eq!(
            t1,
            [
                format!("cookie={web:#x}, table=1, priority=200,ct_state=+new+trk,tcp,nw_dst=10.96.0.10,tp_dst=80 actions=group:{gid}"),
                format!("cookie={dns:#x}, table=1, priority=200,ct_state=+new+trk,udp,nw_dst=10.96.0.11,tp_dst=53 actions=drop"),
                format!("cookie={node:#x}, table=1, priority=0 actions=goto_table:2"),
            ]
        );
        let groups: Vec<String> = c.groups.iter().map(Group::to_string).collect();
        assert_eq!(
            groups,
            [format!("group_id={gid},type=select,bucket=actions=ct(commit,table=2,zone=1,nat(dst=10.244.1.5:8080)),bucket=actions=ct(commit,table=2,zone=1,nat(dst=10.244.2.7:8080))")]
        );
        assert_eq!(web >> 40, 0x56_5304);
        assert_eq!(cookie_kind(web), Some(CookieKind::Service));
        // Everything parses back from its text.
        for f in &c.flows {
            assert_eq!(parse_flow(&f.to_string()).as_ref(), Ok(f));
        }
        for g in &c.groups {
            assert_eq!(parse_group(&g.to_string()).as_ref(), Ok(g));
        }
        // The rest of the tables is unchanged by Services.
        let others = |c: &Compiled| -> Vec<Flow> {
            c.flows
                .iter()
                .filter(|f| f.table != TABLE_SERVICES)
                .cloned()
                .collect()
        };
        assert_eq!(others(&c), others(&compile_all(&example())));
        assert_eq!(
            service_rows(&m)[0].endpoints,
            ["10.244.1.5:8080", "10.244.2.7:8080"]
        );
        assert_eq!(service_rows(&m)[1].protocol, "udp");
    }

    #[test]
    fn service_changes_touch_only_their_flow_and_group() {
        let base = with_web();
        let old = compile_all(&base);
        assert!(diff_all(&old, &old).is_empty());
        let gid = service_group_id("default/web");

        // New endpoints: only the group is re-added.
        let mut m = base.clone();
        let prev = m
            .upsert_service("default/web", service(0, &["10.244.3.9:8080"]))
            .unwrap();
        assert!(prev.is_some());
        let d = diff_all(&old, &compile_all(&m));
        assert!(d.flows.is_empty());
        assert_eq!(d.groups.add.len(), 1);
        assert_eq!(d.groups.add[0].id, gid);
        assert_eq!(d.groups.add[0].buckets.len(), 1);
        assert!(d.groups.delete.is_empty());

        // No endpoints left: the flow becomes a drop, the group goes.
        let mut m = base.clone();
        m.upsert_service("default/web", service(0, &[])).unwrap();
        let d = diff_all(&old, &compile_all(&m));
        assert_eq!(d.flows.add.len(), 1);
        assert!(d.flows.add[0].actions.is_empty());
        assert!(d.flows.delete.is_empty());
        assert_eq!(d.groups.delete, vec![gid]);
        assert!(d.groups.add.is_empty());

        // Removed: its flow and group are deleted.
        let mut m = base.clone();
        assert!(m.remove_service("default/web").is_some());
        let d = diff_all(&old, &compile_all(&m));
        assert!(d.flows.add.is_empty());
        assert_eq!(d.flows.delete.len(), 1);
        assert_eq!(
            d.flows.delete[0].cookie,
            cookie(CookieKind::Service, "default/web")
        );
        assert_eq!(d.groups.delete, vec![gid]);

        // Added to an empty model: one flow, one group.
        let d = diff_all(&compile_all(&example()), &old);
        assert_eq!(d.flows.add.len(), 2);
        assert_eq!(d.groups.add.len(), 1);
    }

    #[test]
    fn service_validation_names_the_service() {
        let mut m = with_web();
        rejects(
            m.upsert_service("other", service(0, &[])),
            "service other: 10.96.0.10:80/tcp is already service default/web's",
        );
        // Same VIP and port, other protocol: fine.
        let mut s = service(0, &[]);
        s.protocol = Proto::Udp;
        m.upsert_service("web-udp", s).unwrap();
        rejects(
            m.upsert_service("x", service(0, &["10.244.1.5:80", "10.244.1.5:80"])),
            "service x: endpoint 10.244.1.5:80 is listed twice",
        );
        rejects(
            m.upsert_service("x", service(5, &["10.244.1.5:0"])),
            "service x: endpoint 10.244.1.5:0 has port 0",
        );
        rejects(
            m.upsert_service("x", service(5, &["224.0.0.1:80"])),
            "service x: endpoint 224.0.0.1:80 is not a unicast address",
        );
        let mut s = service(5, &[]);
        s.vip = v4("10.244.1.77");
        rejects(
            m.upsert_service("x", s),
            "service x: VIP 10.244.1.77 is inside this node's pod CIDR 10.244.1.0/24",
        );
        let mut s = service(5, &[]);
        s.vip = v4("255.255.255.255");
        rejects(
            m.upsert_service("x", s),
            "service x: VIP 255.255.255.255 is not a unicast address",
        );
        let mut s = service(5, &[]);
        s.port = 0;
        rejects(
            m.upsert_service("x", s),
            "service x: port 0 is not usable (1-65535)",
        );
        rejects(
            m.upsert_service("Web", service(5, &[])),
            "service \"Web\": only lowercase letters, digits, '-', '.' and one '/' are allowed",
        );
        rejects(
            m.upsert_service("a/b/c", service(5, &[])),
            "service \"a/b/c\": expected NAME or NAMESPACE/NAME",
        );
        rejects(
            m.upsert_service("a/", service(5, &[])),
            "service \"a/\": each part must start and end with a letter or digit",
        );
        // A group-id collision is refused: find two names whose 31-bit
        // ids collide (a birthday search, some 10^5 names).
        let mut seen: HashMap<u32, String> = HashMap::new();
        let (a, b) = (0u64..)
            .find_map(|i| {
                let n = format!("s{i}");
                seen.insert(service_group_id(&n), n.clone()).map(|o| (o, n))
            })
            .unwrap();
        let mut m = example();
        m.upsert_service(&a, service(1, &[])).unwrap();
        rejects(
            m.upsert_service(&b, service(2, &[])),
            &format!(
                "service {b}: its group id {} is already service {a}'s (a hash collision: rename it)",
                service_group_id(&b)
            ),
        );
        // Whole-model validation sees Services too.
        let mut bad = with_web();
        bad.services.insert("dup".into(), service(0, &[]));
        assert!(bad.validate().is_err());
        with_web().validate().unwrap();
    }

    #[test]
    fn services_parse_from_request_text() {
        let eps = vec!["10.244.1.5:8080".to_string()];
        let s = Service::parse("default/web", "10.96.0.10", 80, "TCP", &eps).unwrap();
        assert_eq!(s, service(0, &["10.244.1.5:8080"]));
        rejects(
            Service::parse("web", "10.96.0", 80, "tcp", &eps),
            "service web: VIP \"10.96.0\" is not an IPv4 address",
        );
        rejects(
            Service::parse("web", "10.96.0.10", 80, "sctp", &eps),
            "service web: invalid protocol \"sctp\": expected tcp or udp",
        );
        rejects(
            Service::parse("web", "10.96.0.10", 80, "tcp", &["10.244.1.5".into()]),
            "service web: endpoint \"10.244.1.5\" is not IP:PORT like 10.244.1.5:8080",
        );
    }

    #[test]
    fn services_serialize_and_default_to_none() {
        let m = with_web();
        let j = serde_json::to_value(&m).unwrap();
        assert_eq!(j["services"]["default/web"]["vip"], "10.96.0.10");
        assert_eq!(j["services"]["default/web"]["protocol"], "tcp");
        assert_eq!(
            j["services"]["default/web"]["endpoints"][0],
            "10.244.1.5:8080"
        );
        let back: NodeModel = serde_json::from_value(j.clone()).unwrap();
        assert_eq!(back, m);
        // A model saved before Services existed still loads.
        let mut old = serde_json::to_value(example()).unwrap();
        old.as_object_mut().unwrap().remove("services");
        let back: NodeModel = serde_json::from_value(old).unwrap();
        assert!(back.services.is_empty());
    }

    // ---- properties ------------------------------------------------------------

    /// The oracle: a flow table as a map from identity to flow, where an add
    /// replaces and a strict delete removes.
    fn table(flows: &[Flow]) -> HashMap<FlowId, Flow> {
        flows.iter().map(|f| (flow_id(f), f.clone())).collect()
    }

    fn apply(old: &[Flow], d: &FlowDiff) -> HashMap<FlowId, Flow> {
        let mut t = table(old);
        for f in &d.delete {
            assert!(
                t.remove(&flow_id(f)).is_some(),
                "deleting a missing flow {f}"
            );
        }
        for f in &d.add {
            t.insert(flow_id(f), f.clone());
        }
        t
    }

    /// Small models: pods and remotes drawn from fixed slots so that
    /// random models are valid and overlap often between old and new.
    fn arb_model() -> impl Strategy<Value = NodeModel> {
        let pods = proptest::collection::btree_map(0u8..12, (1u32..4, 2u8..40), 0..8);
        let remotes = proptest::collection::btree_map(2u8..10, proptest::option::of(0u8..3), 0..6);
        let services = proptest::collection::btree_map(
            0u8..6,
            (
                any::<bool>(),
                0u8..2,
                proptest::collection::btree_set(0u8..6, 0..4),
            ),
            0..4,
        );
        (pods, remotes, any::<bool>(), services).prop_map(|(pods, remotes, alt_vni, services)| {
            let mut n = node();
            if alt_vni {
                n.vni = 7;
            }
            let mut m = NodeModel::new(n).unwrap();
            for (slot, (port_off, host)) in pods {
                // Unique per slot: ofport and IP derive from it.
                let mut p = pod(u32::from(slot) * 4 + port_off, slot * 20 + 2 + host % 18);
                p.mac.0[5] = slot;
                m.upsert_pod(&format!("pod{slot}"), p).unwrap();
            }
            for (third, mac_choice) in remotes {
                let vtep_mac = mac_choice.map(|i| format!("aa:bb:cc:00:01:0{i}"));
                m.upsert_remote(&format!("node-{third}"), remote(third, vtep_mac.as_deref()))
                    .unwrap();
            }
            for (slot, (udp, port_off, eps)) in services {
                let mut svc = service(slot, &[]);
                svc.protocol = if udp { Proto::Udp } else { Proto::Tcp };
                svc.port += u16::from(port_off);
                svc.endpoints = eps
                    .iter()
                    .map(|e| SocketAddrV4::new(Ipv4Addr::new(10, 244, 2, e + 2), 8080))
                    .collect();
                m.upsert_service(&format!("svc-{slot}"), svc).unwrap();
            }
            m
        })
    }

    fn arb_flow() -> impl Strategy<Value = Flow> {
        // A tiny identity space (so old and new share identities) and a
        // tiny action space (so shared identities sometimes differ).
        (0u8..2, 0u16..3, 0u64..4, 0u32..3, 0u64..2).prop_map(|(t, p, dst, out, ck)| {
            let mut m = Match::new();
            if dst > 0 {
                m.set_exact(Field::DlType, u64::from(ETH_TYPE_IP));
                m.set_exact(Field::NwDst, dst);
            }
            let actions = if out == 0 {
                Vec::new()
            } else {
                vec![Action::Output(PortNo(out))]
            };
            flow(t, p, ck, m, actions)
        })
    }

    proptest! {
        #[test]
        fn diff_of_arbitrary_flow_lists_applies_to_new(
            old in proptest::collection::vec(arb_flow(), 0..12),
            new in proptest::collection::vec(arb_flow(), 0..12),
        ) {
            let d = diff(&old, &new);
            prop_assert_eq!(apply(&old, &d), table(&new));
            // Minimal: nothing unchanged is touched, nothing twice.
            let (o, n) = (table(&old), table(&new));
            for f in &d.add {
                prop_assert_ne!(o.get(&flow_id(f)), Some(f));
            }
            for f in &d.delete {
                prop_assert!(!n.contains_key(&flow_id(f)));
            }
            let add_ids: HashSet<FlowId> = d.add.iter().map(flow_id).collect();
            let del_ids: HashSet<FlowId> = d.delete.iter().map(flow_id).collect();
            prop_assert_eq!(add_ids.len(), d.add.len());
            prop_assert_eq!(del_ids.len(), d.delete.len());
            prop_assert!(add_ids.is_disjoint(&del_ids));
        }

        #[test]
        fn diff_of_compiled_models_applies_and_touches_only_changed_objects(
            a in arb_model(),
            b in arb_model(),
        ) {
            let (old, new) = (compile(&a), compile(&b));
            let d = diff(&old, &new);
            prop_assert_eq!(apply(&old, &d), table(&new));
            // Every flow in the diff belongs to an object that changed.
            // (Pod and remote flows also carry node settings: MACs, the VNI.)
            let changed = |kind, key: &str| a.node != b.node || match kind {
                CookieKind::Node => false,
                CookieKind::Pod => a.pods.get(key) != b.pods.get(key),
                CookieKind::Remote => a.remotes.get(key) != b.remotes.get(key),
                CookieKind::Service => a.services.get(key) != b.services.get(key),
            };
            let keys: Vec<(u64, CookieKind, String)> = a.pods.keys().chain(b.pods.keys())
                .map(|k| (cookie(CookieKind::Pod, k), CookieKind::Pod, k.clone()))
                .chain(a.remotes.keys().chain(b.remotes.keys())
                    .map(|k| (cookie(CookieKind::Remote, k), CookieKind::Remote, k.clone())))
                .chain(a.services.keys().chain(b.services.keys())
                    .map(|k| (cookie(CookieKind::Service, k), CookieKind::Service, k.clone())))
                .chain([(cookie(CookieKind::Node, "node-a"), CookieKind::Node, "node-a".into())])
                .collect();
            for f in d.add.iter().chain(&d.delete) {
                let (_, kind, key) = keys.iter().find(|(c, _, _)| *c == f.cookie).unwrap();
                prop_assert!(changed(*kind, key), "{} changed for unchanged {:?} {}", f, kind, key);
            }
            // Groups: the diff applies, and touches only changed Services.
            let (og, ng) = (compile_groups(&a), compile_groups(&b));
            let gd = diff_groups(&og, &ng);
            let mut gt: BTreeMap<u32, Group> = og.iter().map(|g| (g.id, g.clone())).collect();
            for id in &gd.delete {
                prop_assert!(gt.remove(id).is_some());
            }
            for g in &gd.add {
                gt.insert(g.id, g.clone());
            }
            let want: BTreeMap<u32, Group> = ng.iter().map(|g| (g.id, g.clone())).collect();
            prop_assert_eq!(gt, want);
            for g in &gd.add {
                let (name, _) = b.services.iter().find(|(n, _)| service_group_id(n) == g.id).unwrap();
                prop_assert_ne!(a.services.get(name), b.services.get(name));
            }
            // Every flow's group exists.
            for f in &new {
                for act in &f.actions {
                    if let Action::Group(id) = act {
                        prop_assert!(ng.iter().any(|g| g.id == *id));
                    }
                }
            }
            // Every compiled flow parses back from its text.
            for f in &new {
                let back = parse_flow(&f.to_string());
                prop_assert_eq!(back.as_ref(), Ok(f));
            }
        }
    }
}
