//! Opening kernel-backed ports by backend name, and the error they share.
//!
//! [`open_port`] is what `vswitchd` calls for every interface it is told to
//! attach: [`Backend::Afxdp`] and [`Backend::Afpacket`] insist on one
//! backend, [`Backend::Auto`] tries AF_XDP and falls back to AF_PACKET
//! (logging why), so a node whose kernel or driver cannot do AF_XDP still
//! forwards. Which backend won is the returned port's [`Port::backend`].
//!
//! Every failure is a [`PortError`] that names the backend, the interface,
//! the queue and the step that failed; nothing here panics on a missing or
//! unusable interface.

use std::fmt;
use std::io;
use std::str::FromStr;

use super::afpacket::AfPacketPort;
use super::afxdp::{AfXdpOptions, AfXdpPort};
use super::Port;

/// Why a port could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// `<backend> <iface>[ queue <q>]: <step> failed: <reason> (errno <n>)`
    #[error("{backend} {iface}{}: {step} failed: {}", QueueLabel(*queue), OsReason(source))]
    Step {
        /// `afxdp` or `afpacket`.
        backend: &'static str,
        /// The interface name as given.
        iface: String,
        /// The queue, for backends that bind one.
        queue: Option<u32>,
        /// What was being done (`lookup interface`, `bind`, ...).
        step: String,
        /// The system error (or an `InvalidInput` error for bad options).
        #[source]
        source: io::Error,
    },
    /// `auto <iface>: no usable backend: <afxdp error>; <afpacket error>`
    #[error("auto {iface}: no usable backend: {afxdp}; {afpacket}")]
    NoBackend {
        /// The interface name as given.
        iface: String,
        /// Why AF_XDP could not be used.
        afxdp: Box<PortError>,
        /// Why AF_PACKET could not be used either.
        afpacket: Box<PortError>,
    },
}

impl PortError {
    /// An error of `backend` on `iface` at `step`.
    pub(crate) fn step(
        backend: &'static str,
        iface: &str,
        queue: Option<u32>,
        step: impl Into<String>,
        source: io::Error,
    ) -> PortError {
        PortError::Step {
            backend,
            iface: iface.to_string(),
            queue,
            step: step.into(),
            source,
        }
    }

    /// The interface the error is about.
    pub fn iface(&self) -> &str {
        match self {
            PortError::Step { iface, .. } | PortError::NoBackend { iface, .. } => iface,
        }
    }

    /// The OS error number, where the failure was a system call.
    pub fn errno(&self) -> Option<i32> {
        match self {
            PortError::Step { source, .. } => source.raw_os_error(),
            PortError::NoBackend { afpacket, .. } => afpacket.errno(),
        }
    }
}

struct QueueLabel(Option<u32>);

impl fmt::Display for QueueLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(q) => write!(f, " queue {q}"),
            None => Ok(()),
        }
    }
}

/// `Operation not supported (errno 95)` rather than std's `(os error 95)`.
struct OsReason<'a>(&'a io::Error);

impl fmt::Display for OsReason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&os_reason(self.0))
    }
}

/// The C library's text for an OS error plus `(errno N)`; other errors as
/// they display.
pub(crate) fn os_reason(e: &io::Error) -> String {
    let text = e.to_string();
    match e.raw_os_error() {
        Some(n) => {
            let msg = text
                .strip_suffix(&format!(" (os error {n})"))
                .unwrap_or(&text);
            format!("{msg} (errno {n})")
        }
        None => text,
    }
}

/// Which kernel backend a port uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// AF_XDP only (fails if the interface or kernel cannot do it).
    Afxdp,
    /// AF_PACKET only (works on any kernel).
    Afpacket,
    /// AF_XDP, falling back to AF_PACKET.
    #[default]
    Auto,
}

impl Backend {
    /// The name as written in configuration: `afxdp`, `afpacket`, `auto`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Afxdp => "afxdp",
            Backend::Afpacket => "afpacket",
            Backend::Auto => "auto",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A backend name that is none of `afxdp`, `afpacket`, `auto`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown port backend {0:?} (expected afxdp, afpacket or auto)")]
pub struct UnknownBackend(pub String);

impl FromStr for Backend {
    type Err = UnknownBackend;

    fn from_str(s: &str) -> Result<Backend, UnknownBackend> {
        match s {
            "afxdp" => Ok(Backend::Afxdp),
            "afpacket" => Ok(Backend::Afpacket),
            "auto" => Ok(Backend::Auto),
            other => Err(UnknownBackend(other.to_string())),
        }
    }
}

/// Opens `iface` (queue `queue`) with `backend` and default options.
///
/// With [`Backend::Auto`] an AF_XDP failure is logged (`warn`) with its
/// reason and AF_PACKET is tried; the returned port's
/// [`Port::backend`] says which one is in use. AF_PACKET has no queues:
/// it sees the whole interface, so `queue` must be 0 for it to be chosen
/// by `Auto` (a worker per queue would otherwise receive every frame twice).
pub fn open_port(iface: &str, queue: u32, backend: Backend) -> Result<Box<dyn Port>, PortError> {
    match backend {
        Backend::Afxdp => Ok(Box::new(AfXdpPort::open(
            iface,
            queue,
            &AfXdpOptions::default(),
        )?)),
        Backend::Afpacket => Ok(Box::new(AfPacketPort::open(iface)?)),
        Backend::Auto => match AfXdpPort::open(iface, queue, &AfXdpOptions::default()) {
            Ok(p) => Ok(Box::new(p)),
            Err(xdp_err) => {
                if queue != 0 {
                    return Err(xdp_err);
                }
                tracing::warn!(
                    iface,
                    reason = %xdp_err,
                    "AF_XDP unavailable, falling back to AF_PACKET"
                );
                match AfPacketPort::open(iface) {
                    Ok(p) => {
                        tracing::info!(iface, "port opened with the afpacket backend");
                        Ok(Box::new(p))
                    }
                    Err(pkt_err) => Err(PortError::NoBackend {
                        iface: iface.to_string(),
                        afxdp: Box::new(xdp_err),
                        afpacket: Box::new(pkt_err),
                    }),
                }
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_names_round_trip_and_bad_names_are_named() {
        for b in [Backend::Afxdp, Backend::Afpacket, Backend::Auto] {
            assert_eq!(b.as_str().parse::<Backend>(), Ok(b));
        }
        let err = "af_xdp".parse::<Backend>().unwrap_err();
        assert!(err.to_string().contains("\"af_xdp\""), "{err}");
    }

    #[test]
    fn error_message_names_backend_iface_queue_step_and_errno() {
        let e = PortError::step(
            "afxdp",
            "vsw1",
            Some(0),
            "bind",
            io::Error::from_raw_os_error(95),
        );
        assert_eq!(
            e.to_string(),
            "afxdp vsw1 queue 0: bind failed: Operation not supported (errno 95)"
        );
        assert_eq!(e.iface(), "vsw1");
        assert_eq!(e.errno(), Some(95));
        let e = PortError::step(
            "afpacket",
            "vsw2",
            None,
            "lookup interface",
            io::Error::new(io::ErrorKind::InvalidInput, "bad"),
        );
        assert_eq!(e.to_string(), "afpacket vsw2: lookup interface failed: bad");
    }
}
