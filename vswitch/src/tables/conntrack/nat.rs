//! NAT of tracked connections: what a `ct(commit,nat(...))` asks for, and
//! the per-packet rewrite that results.
//!
//! A NATed connection stores its original tuple and its reply tuple *after*
//! translation (the tuple the reply packets really carry), as OVS's
//! `conn_key` pair and Linux's `tuplehash[2]` do. Both translations follow
//! from that pair and nothing else: an original-direction packet is
//! rewritten to look like the reverse of the reply tuple, a reply to look
//! like the reverse of the original one. Translating and then reversing is
//! thus the identity by construction (property-tested).
//!
//! Ports are translated for TCP and UDP only; for ICMP echo and other
//! protocols a requested port is ignored and only addresses change. A
//! fixed mapping is used as given; what this module deliberately does not
//! do is address or port *ranges* (`nat(src=A-B:P-Q)`): the table only
//! searches other source ports when `nat(src=IP)` without a port collides
//! (see [`super::Conntrack`]).

use std::net::Ipv4Addr;

use super::key::CtTuple;

/// The NAT a `ct` action asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NatSpec {
    /// `nat(src=IP[:PORT])`: source NAT, decided when a new connection is
    /// committed; without a port the original source port is kept if free.
    Src {
        /// New source address.
        ip: Ipv4Addr,
        /// New source port (TCP/UDP), or keep the original.
        port: Option<u16>,
    },
    /// `nat(dst=IP[:PORT])`: destination NAT (a Service VIP to a backend),
    /// decided when a new connection is committed.
    Dst {
        /// New destination address.
        ip: Ipv4Addr,
        /// New destination port (TCP/UDP), or keep the original.
        port: Option<u16>,
    },
    /// Plain `nat`: apply the mapping the connection already has, in
    /// whichever direction the packet travels; create none.
    Reverse,
}

/// `Conn::nat` bit: the connection's source is translated.
pub(crate) const NAT_SRC: u8 = 1;
/// `Conn::nat` bit: the connection's destination is translated.
pub(crate) const NAT_DST: u8 = 2;

/// Header fields to overwrite in one packet. A `None` field is left as is.
/// The port is the L4 port (for ICMP echo the identifier, which NAT never
/// changes); for the outer header of an ICMP error the port is 0 and
/// meaningless.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rewrite {
    /// New source address and port.
    pub src: Option<(Ipv4Addr, u16)>,
    /// New destination address and port.
    pub dst: Option<(Ipv4Addr, u16)>,
}

impl Rewrite {
    /// The rewrite that turns `from` into `to` (which differ at most in
    /// addresses and ports); `None` when they are equal.
    #[inline]
    pub(crate) fn between(from: &CtTuple, to: &CtTuple) -> Option<Rewrite> {
        let src =
            ((from.src, from.src_port) != (to.src, to.src_port)).then_some((to.src, to.src_port));
        let dst =
            ((from.dst, from.dst_port) != (to.dst, to.dst_port)).then_some((to.dst, to.dst_port));
        (src.is_some() || dst.is_some()).then_some(Rewrite { src, dst })
    }

    /// The same rewrite for a header whose source and destination are the
    /// other way round (the header quoted in an ICMP error).
    #[inline]
    pub(crate) fn swapped(self) -> Rewrite {
        Rewrite {
            src: self.dst,
            dst: self.src,
        }
    }

    /// The address part only, ports set to 0 (for an ICMP error's outer
    /// header); `None` when no address changes.
    #[inline]
    pub(crate) fn addresses(self) -> Option<Rewrite> {
        let src = self.src.map(|(a, _)| (a, 0));
        let dst = self.dst.map(|(a, _)| (a, 0));
        (src.is_some() || dst.is_some()).then_some(Rewrite { src, dst })
    }

    /// `t` with this rewrite applied (ports only where the protocol has
    /// them, so ICMP identifiers never change).
    pub fn apply(&self, t: &CtTuple) -> CtTuple {
        let mut out = *t;
        let ports = t.has_ports();
        if let Some((ip, port)) = self.src {
            out.src = ip;
            if ports {
                out.src_port = port;
            }
        }
        if let Some((ip, port)) = self.dst {
            out.dst = ip;
            if ports {
                out.dst_port = port;
            }
        }
        out
    }
}

/// The original tuple `t` as translated by `spec`, with `alt_port`
/// replacing the source port of a source NAT that has none; and the
/// connection's NAT bits. For `Reverse`, `t` itself and no bits.
pub(crate) fn translate(t: &CtTuple, spec: &NatSpec, alt_port: Option<u16>) -> (CtTuple, u8) {
    let ports = t.has_ports();
    match *spec {
        NatSpec::Src { ip, port } => {
            let mut out = *t;
            out.src = ip;
            if ports {
                out.src_port = port.or(alt_port).unwrap_or(t.src_port);
            }
            (out, NAT_SRC)
        }
        NatSpec::Dst { ip, port } => {
            let mut out = *t;
            out.dst = ip;
            if ports {
                out.dst_port = port.unwrap_or(t.dst_port);
            }
            (out, NAT_DST)
        }
        NatSpec::Reverse => (*t, 0),
    }
}
