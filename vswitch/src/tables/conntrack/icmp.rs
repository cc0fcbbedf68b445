//! ICMP: echo request/reply pseudo-state, and which messages are errors
//! that quote another connection's packet (`+rel`).
//!
//! An echo request opens a connection keyed by (source, destination,
//! identifier); its reply is that connection's reply direction, after
//! which it is `REPLIED` (assured). A reply in the original direction or a
//! request in the reply one is `+inv`. Errors (destination unreachable,
//! source quench, redirect, time exceeded, parameter problem) never open a
//! connection: the table looks up the quoted header instead. Any other
//! message (timestamp, router advertisement, ...) is `+inv`, as in OVS.

use crate::packet::icmp::msg_type;

use super::conn::{Tmo, Update};

/// Source quench (deprecated by RFC 6633, still an error message).
const SOURCE_QUENCH: u8 = 4;

/// True for the ICMP types that quote the packet they are about.
pub(crate) fn is_error(icmp_type: u8) -> bool {
    matches!(
        icmp_type,
        msg_type::DST_UNREACHABLE
            | SOURCE_QUENCH
            | msg_type::REDIRECT
            | msg_type::TIME_EXCEEDED
            | msg_type::PARAM_PROBLEM
    )
}

/// ICMP echo state of one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IcmpConn {
    replied: bool,
}

impl IcmpConn {
    /// Only an echo request opens a connection.
    pub(crate) fn new(reply: bool) -> Option<IcmpConn> {
        (!reply).then_some(IcmpConn { replied: false })
    }

    pub(crate) fn update(&mut self, dir: usize, reply: bool) -> Update {
        match (dir, reply) {
            (0, false) => Update::Valid,
            (1, true) => {
                self.replied = true;
                Update::Valid
            }
            _ => Update::Invalid,
        }
    }

    pub(crate) fn assured(&self) -> bool {
        self.replied
    }

    pub(crate) fn timeout(&self) -> Tmo {
        Tmo::Icmp
    }

    pub(crate) fn name(&self) -> &'static str {
        if self.replied {
            "REPLIED"
        } else {
            "UNREPLIED"
        }
    }
}
