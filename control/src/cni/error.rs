//! CNI error results: the spec's well-known codes, this plugin's own codes
//! (100 and up), and the error JSON printed on stdout.

use std::fmt;

use serde::Serialize;

/// A CNI error code (SPEC.md, section 5 "Error").
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ErrorCode(pub u32);

impl ErrorCode {
    /// 1: the netconf's `cniVersion` is not one this plugin (or a delegate) speaks.
    pub const INCOMPATIBLE_VERSION: ErrorCode = ErrorCode(1);
    /// 2: a netconf field this plugin does not support.
    pub const UNSUPPORTED_FIELD: ErrorCode = ErrorCode(2);
    /// 3: the container (its network namespace) does not exist.
    pub const UNKNOWN_CONTAINER: ErrorCode = ErrorCode(3);
    /// 4: a `CNI_*` environment variable is missing or invalid.
    pub const INVALID_ENV: ErrorCode = ErrorCode(4);
    /// 5: reading stdin or writing state failed.
    pub const IO_FAILURE: ErrorCode = ErrorCode(5);
    /// 6: stdin (or a delegate's output) is not decodable JSON.
    pub const DECODE_FAILURE: ErrorCode = ErrorCode(6);
    /// 7: the netconf is well-formed but invalid.
    pub const INVALID_NETCONF: ErrorCode = ErrorCode(7);
    /// 11: a transient condition (vswitchd not answering); retry later.
    pub const TRY_AGAIN: ErrorCode = ErrorCode(11);
    /// 50: STATUS: the plugin cannot service ADD requests.
    pub const NOT_AVAILABLE: ErrorCode = ErrorCode(50);

    /// 100: a system command (`ip`, `ethtool`, `nsenter`) failed.
    pub const SYSTEM: ErrorCode = ErrorCode(100);
    /// 101: vswitchd refused a request, or answered garbage.
    pub const DAEMON: ErrorCode = ErrorCode(101);
    /// 102: ADD: the interface already exists (in the netns, or the host end).
    pub const INTERFACE_EXISTS: ErrorCode = ErrorCode(102);
    /// 103: CHECK: the attachment is not as ADD left it.
    pub const CHECK_FAILED: ErrorCode = ErrorCode(103);
    /// 104: a delegated (IPAM) plugin failed without a usable error result.
    pub const DELEGATE: ErrorCode = ErrorCode(104);
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A failed CNI operation: what the plugin prints as its error result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{msg}{}{details}", if .details.is_empty() { "" } else { ": " })]
pub struct CniError {
    /// The spec's or this plugin's code.
    pub code: ErrorCode,
    /// A short message characterizing the error.
    pub msg: String,
    /// A longer message: what exactly failed (command, stderr, values).
    pub details: String,
}

impl CniError {
    /// An error with a code, a short message and details.
    pub fn new(code: ErrorCode, msg: impl Into<String>, details: impl Into<String>) -> CniError {
        CniError {
            code,
            msg: msg.into(),
            details: details.into(),
        }
    }

    /// Code 4 naming the variables that are missing or invalid.
    pub fn env(details: impl Into<String>) -> CniError {
        CniError::new(
            ErrorCode::INVALID_ENV,
            "invalid environment variables",
            details,
        )
    }

    /// Code 7 with details.
    pub fn netconf(details: impl Into<String>) -> CniError {
        CniError::new(
            ErrorCode::INVALID_NETCONF,
            "invalid network configuration",
            details,
        )
    }

    /// The error result JSON for protocol version `cni_version`.
    pub fn to_json(&self, cni_version: &str) -> String {
        #[derive(Serialize)]
        struct Out<'a> {
            #[serde(rename = "cniVersion")]
            cni_version: &'a str,
            code: ErrorCode,
            msg: &'a str,
            details: &'a str,
        }
        let out = Out {
            cni_version,
            code: self.code,
            msg: &self.msg,
            details: &self.details,
        };
        serde_json::to_string(&out).expect("error result always serializes")
    }
}
