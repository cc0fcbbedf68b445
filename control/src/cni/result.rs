//! The CNI success result (interfaces, ips, routes, dns): parsed from an IPAM
//! plugin's abbreviated result or a `prevResult`, and printed in the shape of
//! the protocol version asked for.
//!
//! One model serves every version: 0.3.x/0.4.0 results differ from 1.x only
//! by `ips[].version`, which is dropped on input and written on output for
//! versions before 1.0.0; 1.1.0 adds `interfaces[].mtu`, written only from
//! 1.1.0 on. Fields this plugin does not know are kept and passed through.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::conf::SpecVersion;
use super::error::{CniError, ErrorCode};

/// One interface of a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interface {
    /// Interface name.
    pub name: String,
    /// Hardware address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// MTU (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// The netns path for container interfaces; absent for host ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    /// Fields passed through.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One address of a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IpConfig {
    /// Address with prefix length (`10.244.1.5/24`).
    pub address: String,
    /// The subnet's gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// Index into `interfaces` (absent in IPAM results).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
    /// Fields passed through.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One route of a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Route {
    /// Destination in CIDR notation.
    pub dst: String,
    /// Next hop; the address's gateway when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<String>,
    /// Fields passed through (`mtu`, `priority`, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A success result, version-neutral.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CniResult {
    /// Interfaces created.
    #[serde(default)]
    pub interfaces: Vec<Interface>,
    /// Addresses assigned.
    #[serde(default)]
    pub ips: Vec<IpConfig>,
    /// Routes created.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// DNS settings, as IPAM gave them.
    #[serde(default)]
    pub dns: Map<String, Value>,
}

impl CniResult {
    /// Parses a result of any supported version (an IPAM result or a
    /// `prevResult`); `what` names it in errors.
    pub fn from_value(v: &Value, what: &str) -> Result<CniResult, CniError> {
        let mut r: CniResult = serde_json::from_value(v.clone()).map_err(|e| {
            CniError::new(
                ErrorCode::DECODE_FAILURE,
                format!("failed to decode {what}"),
                e.to_string(),
            )
        })?;
        for ip in &mut r.ips {
            ip.extra.remove("version");
        }
        r.interfaces.iter_mut().for_each(|i| {
            if i.sandbox.as_deref() == Some("") {
                i.sandbox = None;
            }
        });
        Ok(r)
    }

    /// The result as version `version` prints it.
    pub fn to_value(&self, version: SpecVersion) -> Value {
        let mut out = Map::new();
        out.insert("cniVersion".into(), Value::String(version.to_string()));
        let interfaces = self
            .interfaces
            .iter()
            .map(|i| {
                let mut i = i.clone();
                if version < SpecVersion::V1_1_0 {
                    i.mtu = None;
                }
                serde_json::to_value(i).expect("interface serializes")
            })
            .collect();
        out.insert("interfaces".into(), Value::Array(interfaces));
        let ips = self
            .ips
            .iter()
            .map(|ip| {
                let mut v = serde_json::to_value(ip).expect("ip serializes");
                if version < SpecVersion::V1_0_0 {
                    let family = if ip.address.contains(':') { "6" } else { "4" };
                    v["version"] = Value::String(family.into());
                }
                v
            })
            .collect();
        out.insert("ips".into(), Value::Array(ips));
        out.insert(
            "routes".into(),
            serde_json::to_value(&self.routes).expect("routes serialize"),
        );
        out.insert("dns".into(), Value::Object(self.dns.clone()));
        Value::Object(out)
    }
}

/// An IPv4 address with its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Cidr {
    /// The address (host bits kept).
    pub addr: Ipv4Addr,
    /// Prefix length, 0-32.
    pub prefix: u8,
}

impl Ipv4Cidr {
    /// Parses `a.b.c.d/n`; `None` for anything else (IPv6 included).
    pub fn parse(s: &str) -> Option<Ipv4Cidr> {
        let (a, p) = s.split_once('/')?;
        let addr: Ipv4Addr = a.parse().ok()?;
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let prefix: u8 = p.parse().ok()?;
        (prefix <= 32).then_some(Ipv4Cidr { addr, prefix })
    }

    /// True when `other` lies inside this prefix.
    pub fn contains(&self, other: Ipv4Addr) -> bool {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0);
        u32::from(self.addr) & mask == u32::from(other) & mask
    }
}

impl std::fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}
