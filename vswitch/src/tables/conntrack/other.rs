//! Pseudo-state of protocols conntrack does not understand (GRE, SCTP,
//! ...): keyed by addresses and protocol only, `UNREPLIED` until a packet
//! travels back, then `REPLIED` (assured); Linux's generic tracker, with
//! its single 600 s timeout.

use super::conn::{Tmo, Update};

/// State of a connection of another protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OtherConn {
    replied: bool,
}

impl OtherConn {
    pub(crate) fn new() -> OtherConn {
        OtherConn { replied: false }
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
        Tmo::Other
    }

    pub(crate) fn name(&self) -> &'static str {
        if self.replied {
            "REPLIED"
        } else {
            "UNREPLIED"
        }
    }
}
