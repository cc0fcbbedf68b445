//! UDP pseudo-state: a connection is `UNREPLIED` until a datagram travels
//! back, then `REPLIED` (assured) and kept under the longer "stream"
//! timeout, as Linux's `nf_conntrack_proto_udp` does. Nothing in a UDP
//! datagram can be invalid for conntrack once the tuple is known.

use super::conn::{Tmo, Update};

/// UDP state of one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct UdpConn {
    replied: bool,
}

impl UdpConn {
    pub(crate) fn new() -> UdpConn {
        UdpConn { replied: false }
    }

    pub(crate) fn update(&mut self, dir: usize) -> Update {
        if dir == 1 {
            self.replied = true;
        }
        Update::Valid
    }

    pub(crate) fn assured(&self) -> bool {
        self.replied
    }

    pub(crate) fn timeout(&self) -> Tmo {
        if self.replied {
            Tmo::UdpStream
        } else {
            Tmo::UdpFirst
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        if self.replied {
            "REPLIED"
        } else {
            "UNREPLIED"
        }
    }
}
