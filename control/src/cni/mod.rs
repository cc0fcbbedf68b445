//! `vswitch-cni`: the CNI plugin (spec 1.0.0 and 1.1.0, results also in
//! 0.3.x/0.4.0 shape) that attaches pods to vswitchd.
//!
//! [`run`] is the whole plugin: it takes the `CNI_*` variables and stdin and
//! returns what to print on stdout and the exit status; the binary
//! (`src/bin/vswitch-cni.rs`) only wires it to the process. A pod gets a veth
//! pair: the host end (`vsw` + 8 hex digits, see [`host_iface_name`]) stays
//! in the root namespace for vswitchd to attach, the other end becomes
//! `CNI_IFNAME` in the pod's netns with an address from the IPAM plugin, the
//! network's MTU (default 1450 = 1500 - 50 for VXLAN), a default route via
//! the gateway, and tx checksum offload off (required for TCP/UDP through
//! AF_XDP on veth, notes/afxdp-veth.md §3). vswitchd learns of the pod by an
//! `add-pod` request (port, MAC, IP).
//!
//! Files: `conf` (environment and netconf), `result` (result JSON per
//! version), `error` (codes and error JSON), `ipam` (delegation), `sys`
//! (ip/ethtool/nsenter), `state` (names, aliases, records), `daemon`
//! (vswitchd requests), and one file per command: `add`, `del`, `check`,
//! `gc`; VERSION and STATUS are here.
//!
//! It does not create the gateway port or install flows (vswitchd does, on
//! `add-pod`), does not do IPv6 yet, and uses none of the `CNI_ARGS` keys.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;

use serde_json::{json, Value};

mod add;
mod check;
pub mod conf;
mod daemon;
mod del;
pub mod error;
mod gc;
mod ipam;
pub mod result;
pub mod state;
mod sys;

#[cfg(test)]
mod tests;

pub use conf::{
    CniEnv, Command, NetConf, SpecVersion, DEFAULT_MTU, DEFAULT_STATE_DIR, SUPPORTED_VERSIONS,
};
pub use error::{CniError, ErrorCode};
pub use state::host_iface_name;

use crate::api::Request;
use conf::LATEST_VERSION;

/// What the plugin prints and how it exits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Everything for stdout: a result, a version result, an error result,
    /// or nothing.
    pub stdout: String,
    /// 0 on success, 1 with an error result.
    pub exit_code: i32,
}

/// Runs one CNI invocation.
pub fn run(vars: &HashMap<String, String>, stdin: &mut dyn Read) -> Outcome {
    let mut input = Vec::new();
    let result = match stdin.read_to_end(&mut input) {
        Ok(_) => dispatch(vars, &input),
        Err(e) => Err(CniError::new(
            ErrorCode::IO_FAILURE,
            "failed to read the network configuration",
            format!("stdin: {e}"),
        )),
    };
    match result {
        Ok(Some(out)) => Outcome {
            stdout: out + "\n",
            exit_code: 0,
        },
        Ok(None) => Outcome {
            stdout: String::new(),
            exit_code: 0,
        },
        Err(e) => Outcome {
            stdout: e.to_json(&error_version(&input)) + "\n",
            exit_code: 1,
        },
    }
}

/// The version to write in an error result: the input's when usable.
fn error_version(input: &[u8]) -> String {
    conf::decode(input)
        .and_then(|v| conf::version_of(&v))
        .map_or_else(|_| LATEST_VERSION.to_string(), |v| v.to_string())
}

fn dispatch(vars: &HashMap<String, String>, input: &[u8]) -> Result<Option<String>, CniError> {
    let env = CniEnv::from_vars(vars)?;
    if env.command == Command::Version {
        return version(input).map(Some);
    }
    let conf = NetConf::parse(input)?;
    match env.command {
        Command::Add => add::add(&env, &conf).map(Some),
        Command::Del => del::del(&env, &conf).map(|()| None),
        Command::Check => check::check(&env, &conf).map(|()| None),
        Command::Gc => gc::gc(&env, &conf).map(|()| None),
        Command::Status => status(&env, &conf).map(|()| None),
        Command::Version => unreachable!("handled above"),
    }
}

/// VERSION: the supported versions, with the input's `cniVersion` echoed
/// (the newest when stdin is empty or names none).
fn version(input: &[u8]) -> Result<String, CniError> {
    let asked = if input.iter().all(u8::is_ascii_whitespace) {
        LATEST_VERSION.to_string()
    } else {
        match conf::decode(input)?.get("cniVersion") {
            None | Some(Value::Null) => LATEST_VERSION.to_string(),
            Some(Value::String(s)) if s.parse::<SpecVersion>().is_ok() => s.clone(),
            Some(other) => {
                return Err(CniError::new(
                    ErrorCode::DECODE_FAILURE,
                    "failed to decode cniVersion",
                    format!("cniVersion {other} is not a version like \"1.0.0\""),
                ))
            }
        }
    };
    Ok(json!({"cniVersion": asked, "supportedVersions": SUPPORTED_VERSIONS}).to_string())
}

/// STATUS (1.1.0): ready when vswitchd answers and the IPAM plugin (if it
/// speaks 1.1.0) reports ready.
fn status(env: &CniEnv, conf: &NetConf) -> Result<(), CniError> {
    conf.require_version(SpecVersion::V1_1_0, Command::Status)?;
    daemon::call(&conf.socket, "reach vswitchd", Request::Show {}).map_err(|e| {
        CniError::new(
            ErrorCode::NOT_AVAILABLE,
            "vswitchd is not available",
            e.details,
        )
    })?;
    if env.path.is_empty() {
        // Without CNI_PATH the IPAM plugin cannot be found, nor asked.
        return Ok(());
    }
    let ipam = ipam::Ipam::find(env, conf).map_err(|e| {
        CniError::new(
            ErrorCode::NOT_AVAILABLE,
            "IPAM plugin is not available",
            e.to_string(),
        )
    })?;
    ipam.forward_1_1("STATUS").map(drop)
}

/// One line on stderr, where runtimes collect plugin logs.
fn log(msg: fmt::Arguments<'_>) {
    eprintln!("vswitch-cni: {msg}");
}
