//! What a CNI invocation is given: the `CNI_*` environment and the network
//! configuration on stdin, parsed and validated into [`CniEnv`] and
//! [`NetConf`].
//!
//! Design decisions:
//! - Stdin that is not JSON is code 6; JSON that is not a valid netconf
//!   (wrong types; missing `cniVersion`, `name` or `ipam.type`; bad `mtu`)
//!   is code 7; a `cniVersion` that is not `X.Y.Z` is code 6 and one this
//!   plugin does not speak is code 1.
//! - Unknown netconf keys are kept (in [`NetConf::raw`]): the runtime adds
//!   `runtimeConfig`, `prevResult` and others, and delegates get the whole
//!   configuration unchanged.
//! - The MTU is not capped at what native-mode XDP accepts (3506 on veth,
//!   notes/afxdp-veth.md §5): AF_PACKET ports take more. A larger MTU is
//!   logged on stderr instead.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{CniError, ErrorCode};
use crate::api::DEFAULT_SOCKET;

/// The protocol versions this plugin speaks, oldest first.
pub const SUPPORTED_VERSIONS: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// The newest version; used for error results when the input names none.
pub const LATEST_VERSION: &str = "1.1.0";

/// Pod MTU when the netconf sets none: a 1500-byte underlay less the 50 bytes
/// of VXLAN encapsulation (outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8).
pub const DEFAULT_MTU: u32 = 1450;

/// Largest pod MTU that native-mode XDP on the host veth accepts.
pub const XDP_NATIVE_MAX_MTU: u32 = 3506;

/// Where per-attachment state lives when the netconf sets no `stateDir`.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/vswitch/cni";

/// A CNI spec version, `major.minor.patch`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpecVersion(pub u16, pub u16, pub u16);

impl SpecVersion {
    /// 0.4.0: CHECK appeared.
    pub const V0_4_0: SpecVersion = SpecVersion(0, 4, 0);
    /// 1.0.0: `ips[].version` disappeared.
    pub const V1_0_0: SpecVersion = SpecVersion(1, 0, 0);
    /// 1.1.0: GC, STATUS, `interfaces[].mtu`.
    pub const V1_1_0: SpecVersion = SpecVersion(1, 1, 0);

    /// True when this plugin speaks this version.
    pub fn is_supported(self) -> bool {
        SUPPORTED_VERSIONS.iter().any(|v| v.parse() == Ok(self))
    }
}

impl FromStr for SpecVersion {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.split('.').map(|p| {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                Err(())
            } else {
                p.parse::<u16>().map_err(|_| ())
            }
        });
        let v = SpecVersion(
            parts.next().ok_or(())??,
            parts.next().ok_or(())??,
            parts.next().ok_or(())??,
        );
        match parts.next() {
            None => Ok(v),
            Some(_) => Err(()),
        }
    }
}

impl fmt::Display for SpecVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

impl fmt::Debug for SpecVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `CNI_COMMAND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Attach a container.
    Add,
    /// Detach a container (idempotent).
    Del,
    /// Verify an attachment.
    Check,
    /// Report supported versions.
    Version,
    /// Remove resources of attachments that are no longer valid.
    Gc,
    /// Report readiness.
    Status,
}

impl Command {
    /// The `CNI_COMMAND` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Version => "VERSION",
            Command::Gc => "GC",
            Command::Status => "STATUS",
        }
    }
}

/// The `CNI_*` variables of one invocation. Empty values count as unset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniEnv {
    /// `CNI_COMMAND`.
    pub command: Command,
    /// `CNI_CONTAINERID`.
    pub container_id: Option<String>,
    /// `CNI_NETNS`: a path to the network namespace.
    pub netns: Option<String>,
    /// `CNI_IFNAME`.
    pub ifname: Option<String>,
    /// `CNI_ARGS`, unparsed (this plugin uses none of its keys).
    pub args: Option<String>,
    /// `CNI_PATH`, split on `:`.
    pub path: Vec<PathBuf>,
    /// `CNI_PATH` as given, passed on to delegates.
    pub path_raw: Option<String>,
}

/// The attachment parameters ADD, DEL and CHECK work on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment<'a> {
    /// `CNI_CONTAINERID`.
    pub container_id: &'a str,
    /// `CNI_IFNAME`.
    pub ifname: &'a str,
    /// `CNI_NETNS`; optional for DEL.
    pub netns: Option<&'a str>,
}

impl CniEnv {
    /// Reads the variables from a map (the process environment in the binary).
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<CniEnv, CniError> {
        let get = |k: &str| vars.get(k).filter(|v| !v.is_empty()).cloned();
        let command = match get("CNI_COMMAND").as_deref() {
            Some("ADD") => Command::Add,
            Some("DEL") => Command::Del,
            Some("CHECK") => Command::Check,
            Some("VERSION") => Command::Version,
            Some("GC") => Command::Gc,
            Some("STATUS") => Command::Status,
            Some(other) => {
                return Err(CniError::env(format!(
                    "CNI_COMMAND {other:?} is not one of ADD, DEL, CHECK, VERSION, GC, STATUS"
                )))
            }
            None => return Err(CniError::env("CNI_COMMAND is not set")),
        };
        let path_raw = get("CNI_PATH");
        let path = path_raw
            .as_deref()
            .unwrap_or("")
            .split(':')
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .collect();
        Ok(CniEnv {
            command,
            container_id: get("CNI_CONTAINERID"),
            netns: get("CNI_NETNS"),
            ifname: get("CNI_IFNAME"),
            args: get("CNI_ARGS"),
            path,
            path_raw,
        })
    }

    /// The attachment of an ADD, DEL or CHECK, with the variables the spec
    /// requires for it checked; every missing or invalid one is named.
    pub fn attachment(&self, need_netns: bool) -> Result<Attachment<'_>, CniError> {
        let mut problems = Vec::new();
        match self.container_id.as_deref() {
            None => problems.push("CNI_CONTAINERID is not set".to_string()),
            Some(id) if !valid_container_id(id) => problems.push(format!(
                "CNI_CONTAINERID {id:?} is invalid: it must start with a letter or digit \
                 and hold only letters, digits, '_', '.' and '-'"
            )),
            Some(_) => {}
        }
        if need_netns && self.netns.is_none() {
            problems.push("CNI_NETNS is not set".to_string());
        }
        match self.ifname.as_deref() {
            None => problems.push("CNI_IFNAME is not set".to_string()),
            Some(name) if !valid_ifname(name) => problems.push(format!(
                "CNI_IFNAME {name:?} is invalid: it must be 1-15 bytes, not \".\" or \"..\", \
                 without '/', ':' or whitespace"
            )),
            Some(_) => {}
        }
        if !problems.is_empty() {
            return Err(CniError::env(problems.join("; ")));
        }
        Ok(Attachment {
            container_id: self.container_id.as_deref().unwrap_or_default(),
            ifname: self.ifname.as_deref().unwrap_or_default(),
            netns: self.netns.as_deref(),
        })
    }
}

/// The spec's rule for container ids: an alphanumeric, then alphanumerics,
/// `_`, `.` or `-`.
pub fn valid_container_id(id: &str) -> bool {
    let mut bytes = id.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The spec's (and Linux's) rule for interface names.
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace())
}

/// One element of `cni.dev/valid-attachments` (GC).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ValidAttachment {
    /// `CNI_CONTAINERID` of the attachment's ADD.
    #[serde(rename = "containerID")]
    pub container_id: String,
    /// `CNI_IFNAME` of the attachment's ADD.
    pub ifname: String,
}

/// The typed view of the keys this plugin reads; everything else stays in
/// [`NetConf::raw`].
#[derive(Deserialize)]
struct Keys {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    socket: Option<String>,
    #[serde(default)]
    mtu: Option<u32>,
    #[serde(default, rename = "stateDir")]
    state_dir: Option<String>,
    #[serde(default)]
    ipam: Option<IpamKeys>,
    #[serde(default, rename = "prevResult")]
    prev_result: Option<Value>,
    #[serde(default, rename = "cni.dev/valid-attachments")]
    valid_attachments: Option<Vec<ValidAttachment>>,
}

#[derive(Deserialize)]
struct IpamKeys {
    #[serde(default, rename = "type")]
    plugin: Option<String>,
}

/// A validated network configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct NetConf {
    /// `cniVersion`.
    pub version: SpecVersion,
    /// `name`: the network.
    pub name: String,
    /// `socket`: vswitchd's control socket.
    pub socket: PathBuf,
    /// `mtu`: of the pod interface and the host end.
    pub mtu: u32,
    /// `stateDir`: where attachment records are kept.
    pub state_dir: PathBuf,
    /// `ipam.type`: the IPAM plugin's executable name.
    pub ipam_type: String,
    /// `prevResult`, when given.
    pub prev_result: Option<Value>,
    /// `cni.dev/valid-attachments`, when given (GC).
    pub valid_attachments: Option<Vec<ValidAttachment>>,
    /// The whole configuration as received.
    pub raw: Value,
    /// The exact bytes received, handed to delegates unchanged when possible.
    pub raw_bytes: Vec<u8>,
}

/// Decodes stdin as a JSON object (code 6 otherwise).
pub fn decode(stdin: &[u8]) -> Result<Value, CniError> {
    let v: Value = serde_json::from_slice(stdin).map_err(|e| {
        CniError::new(
            ErrorCode::DECODE_FAILURE,
            "failed to decode network configuration",
            format!("stdin is not JSON: {e}"),
        )
    })?;
    if !v.is_object() {
        return Err(CniError::new(
            ErrorCode::DECODE_FAILURE,
            "failed to decode network configuration",
            "stdin is not a JSON object",
        ));
    }
    Ok(v)
}

/// The `cniVersion` of a decoded configuration: code 7 when absent, 6 when
/// not `X.Y.Z`, 1 when not spoken here.
pub fn version_of(v: &Value) -> Result<SpecVersion, CniError> {
    let s = match v.get("cniVersion") {
        None | Some(Value::Null) => {
            return Err(CniError::netconf("cniVersion is missing"));
        }
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(CniError::new(
                ErrorCode::DECODE_FAILURE,
                "failed to decode cniVersion",
                format!("cniVersion {other} is not a string"),
            ))
        }
    };
    let version: SpecVersion = s.parse().map_err(|()| {
        CniError::new(
            ErrorCode::DECODE_FAILURE,
            "failed to decode cniVersion",
            format!("cniVersion {s:?} is not a version like \"1.0.0\""),
        )
    })?;
    if !version.is_supported() {
        return Err(incompatible(version, SUPPORTED_VERSIONS));
    }
    Ok(version)
}

/// Code 1: `version` is not among `supported`.
pub fn incompatible(version: SpecVersion, supported: &[&str]) -> CniError {
    CniError::new(
        ErrorCode::INCOMPATIBLE_VERSION,
        "incompatible CNI version",
        format!(
            "config is {:?}, vswitch-cni supports {}",
            version.to_string(),
            supported.join(", ")
        ),
    )
}

impl NetConf {
    /// Parses and validates the configuration on stdin for a command other
    /// than VERSION.
    pub fn parse(stdin: &[u8]) -> Result<NetConf, CniError> {
        let raw = decode(stdin)?;
        let version = version_of(&raw)?;
        let keys: Keys = serde_json::from_value(raw.clone())
            .map_err(|e| CniError::netconf(format!("bad field: {e}")))?;
        let name = match keys.name {
            Some(n) if valid_network_name(&n) => n,
            Some(n) => {
                return Err(CniError::netconf(format!(
                    "name {n:?} is invalid: it must start with a letter or digit and hold \
                     only letters, digits, '_', '.' and '-'"
                )))
            }
            None => return Err(CniError::netconf("name is missing")),
        };
        let ipam_type = match keys.ipam.and_then(|i| i.plugin) {
            Some(t) if !t.is_empty() && !t.contains('/') && t != "." && t != ".." => t,
            Some(t) => {
                return Err(CniError::netconf(format!(
                    "ipam.type {t:?} is not a plugin name"
                )))
            }
            None => {
                return Err(CniError::netconf(
                    "ipam.type is missing: vswitch-cni delegates addressing to an IPAM plugin \
                     (e.g. \"host-local\")",
                ))
            }
        };
        let mtu = keys.mtu.unwrap_or(DEFAULT_MTU);
        if !(68..=65535).contains(&mtu) {
            return Err(CniError::netconf(format!(
                "mtu {mtu} is out of range (68-65535)"
            )));
        }
        Ok(NetConf {
            version,
            name,
            socket: PathBuf::from(keys.socket.unwrap_or_else(|| DEFAULT_SOCKET.to_string())),
            mtu,
            state_dir: PathBuf::from(
                keys.state_dir
                    .unwrap_or_else(|| DEFAULT_STATE_DIR.to_string()),
            ),
            ipam_type,
            prev_result: keys.prev_result.filter(|p| !p.is_null()),
            valid_attachments: keys.valid_attachments,
            raw,
            raw_bytes: stdin.to_vec(),
        })
    }

    /// Code 1 unless this configuration's version is at least `min`.
    pub fn require_version(&self, min: SpecVersion, command: Command) -> Result<(), CniError> {
        if self.version >= min {
            return Ok(());
        }
        Err(CniError::new(
            ErrorCode::INCOMPATIBLE_VERSION,
            "incompatible CNI version",
            format!(
                "{} needs cniVersion {min} or later, config is {}",
                command.as_str(),
                self.version
            ),
        ))
    }
}

/// The spec's rule for network names (same as container ids).
pub fn valid_network_name(name: &str) -> bool {
    valid_container_id(name)
}
