//! Talking to vswitchd: one connection per request through
//! [`crate::client::Client`], with a 10 s timeout so a wedged daemon fails
//! the CNI call instead of hanging the kubelet.
//!
//! A daemon that cannot be reached or does not answer in time is code 11
//! ("try again"): it may be starting or restarting, and the runtime retries
//! ADD. A daemon that answers with a refusal (or garbage) is code 101.

use std::path::Path;
use std::time::Duration;

use super::error::{CniError, ErrorCode};
use crate::api::{Reply, Request};
use crate::client::{Client, ClientError};

/// Timeout of each read and write on the daemon socket.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Sends one request; `what` names it in errors (`"register the pod with
/// vswitchd"`).
pub fn call(socket: &Path, what: &str, req: Request) -> Result<Reply, CniError> {
    let result = Client::connect_with_timeout(socket, Some(TIMEOUT)).and_then(|mut c| c.call(req));
    result.map_err(|e| {
        let code = match e {
            ClientError::Connect { .. } | ClientError::Timeout { .. } => ErrorCode::TRY_AGAIN,
            _ => ErrorCode::DAEMON,
        };
        CniError::new(code, format!("failed to {what}"), e.to_string())
    })
}
