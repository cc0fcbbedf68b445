//! Connection tuples, the packets conntrack is given, and the packed keys
//! its index is hashed on.
//!
//! A [`CtTuple`] is one direction of a connection as its packets carry it:
//! (source, destination, source port, destination port, protocol). TCP and
//! UDP use their ports; ICMP echo uses the echo identifier as the source
//! "port" and 0 as the destination one, so a request and its reply are the
//! two directions of one connection; other protocols have both ports 0.
//! IPv4 only for now: the key layout has room for 32-bit addresses.
//!
//! [`CtKey`] packs a tuple and its zone into 120 bits, so the index compares
//! and hashes two words instead of a struct. What this file deliberately
//! does not do: parse packets (the pipeline fills a [`CtPacket`] from the
//! views in `packet/`) or judge them (the per-protocol modules do).

use std::fmt;
use std::net::Ipv4Addr;

use crate::packet::ip_proto;

/// One direction of a connection: addresses, ports and protocol. IPv4 only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CtTuple {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// TCP/UDP source port; ICMP echo: the identifier; otherwise 0.
    pub src_port: u16,
    /// TCP/UDP destination port; otherwise 0.
    pub dst_port: u16,
    /// IP protocol number.
    pub proto: u8,
}

impl CtTuple {
    /// A TCP tuple.
    pub const fn tcp(src: Ipv4Addr, src_port: u16, dst: Ipv4Addr, dst_port: u16) -> CtTuple {
        CtTuple {
            src,
            dst,
            src_port,
            dst_port,
            proto: ip_proto::TCP,
        }
    }

    /// A UDP tuple.
    pub const fn udp(src: Ipv4Addr, src_port: u16, dst: Ipv4Addr, dst_port: u16) -> CtTuple {
        CtTuple {
            src,
            dst,
            src_port,
            dst_port,
            proto: ip_proto::UDP,
        }
    }

    /// An ICMP echo (request or reply) tuple: the identifier takes the
    /// source port's place.
    pub const fn icmp_echo(src: Ipv4Addr, dst: Ipv4Addr, id: u16) -> CtTuple {
        CtTuple {
            src,
            dst,
            src_port: id,
            dst_port: 0,
            proto: ip_proto::ICMP,
        }
    }

    /// A tuple of a protocol without ports (also the outer tuple of an
    /// ICMP error).
    pub const fn other(src: Ipv4Addr, dst: Ipv4Addr, proto: u8) -> CtTuple {
        CtTuple {
            src,
            dst,
            src_port: 0,
            dst_port: 0,
            proto,
        }
    }

    /// The tuple of the other direction: addresses and ports swapped,
    /// except for ICMP, where the identifier stays in the source port.
    #[inline]
    pub const fn reverse(&self) -> CtTuple {
        if self.proto == ip_proto::ICMP {
            CtTuple {
                src: self.dst,
                dst: self.src,
                ..*self
            }
        } else {
            CtTuple {
                src: self.dst,
                dst: self.src,
                src_port: self.dst_port,
                dst_port: self.src_port,
                proto: self.proto,
            }
        }
    }

    /// True for the protocols whose ports NAT may rewrite (TCP, UDP).
    #[inline]
    pub const fn has_ports(&self) -> bool {
        self.proto == ip_proto::TCP || self.proto == ip_proto::UDP
    }
}

impl fmt::Display for CtTuple {
    /// `src=A,dst=B,sport=P,dport=Q` (`id=I` for ICMP), as `dump-conntrack`
    /// prints inside `orig=(...)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "src={},dst={}", self.src, self.dst)?;
        match self.proto {
            ip_proto::ICMP => write!(f, ",id={}", self.src_port),
            _ if self.has_ports() => {
                write!(f, ",sport={},dport={}", self.src_port, self.dst_port)
            }
            _ => Ok(()),
        }
    }
}

/// What state tracking needs from a TCP segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpSeg {
    /// Header flags ([`crate::packet::tcp::flags`]).
    pub flags: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (meaningful with ACK set).
    pub ack: u32,
    /// Window field, unscaled.
    pub window: u16,
    /// The window scale option's shift, if this is a SYN that carries one.
    pub wscale: Option<u8>,
    /// Bytes of payload after the TCP header.
    pub payload_len: u32,
}

/// The L4 details of a [`CtPacket`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L4Info {
    /// A TCP segment (`tuple.proto` 6).
    Tcp(TcpSeg),
    /// A UDP datagram (`tuple.proto` 17).
    Udp,
    /// ICMP echo request (`reply == false`) or reply; the tuple's source
    /// port is the identifier.
    IcmpEcho {
        /// Echo reply (type 0) rather than request (type 8).
        reply: bool,
    },
    /// An ICMP error (destination unreachable, source quench, redirect,
    /// time exceeded, parameter problem) quoting a packet.
    IcmpError {
        /// ICMP type.
        icmp_type: u8,
        /// ICMP code.
        code: u8,
        /// The tuple of the quoted (embedded) header, as it appears there.
        inner: CtTuple,
    },
    /// Any other ICMP message: never tracked (`+inv`).
    IcmpOther {
        /// ICMP type.
        icmp_type: u8,
        /// ICMP code.
        code: u8,
    },
    /// A protocol without L4 tracking (keyed by addresses and protocol).
    Other,
}

/// A packet as conntrack sees it: its tuple, the L4 details state tracking
/// needs, and its length for the counters. Built by the pipeline from the
/// parsed headers; plain data, so building one allocates nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CtPacket {
    /// The packet's own tuple (for an ICMP error, the outer header's).
    pub tuple: CtTuple,
    /// L4 details.
    pub l4: L4Info,
    /// Bytes counted for the connection (the IP total length).
    pub len: u32,
}

impl CtPacket {
    /// A TCP segment from `src` to `dst`.
    pub fn tcp(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), seg: TcpSeg, len: u32) -> CtPacket {
        CtPacket {
            tuple: CtTuple::tcp(src.0, src.1, dst.0, dst.1),
            l4: L4Info::Tcp(seg),
            len,
        }
    }

    /// A UDP datagram from `src` to `dst`.
    pub fn udp(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), len: u32) -> CtPacket {
        CtPacket {
            tuple: CtTuple::udp(src.0, src.1, dst.0, dst.1),
            l4: L4Info::Udp,
            len,
        }
    }

    /// An ICMP echo request or reply with identifier `id`.
    pub fn icmp_echo(src: Ipv4Addr, dst: Ipv4Addr, id: u16, reply: bool, len: u32) -> CtPacket {
        CtPacket {
            tuple: CtTuple::icmp_echo(src, dst, id),
            l4: L4Info::IcmpEcho { reply },
            len,
        }
    }

    /// An ICMP error from `src` to `dst` quoting a packet whose tuple is
    /// `inner`.
    pub fn icmp_error(
        src: Ipv4Addr,
        dst: Ipv4Addr,
        icmp_type: u8,
        code: u8,
        inner: CtTuple,
        len: u32,
    ) -> CtPacket {
        CtPacket {
            tuple: CtTuple::other(src, dst, ip_proto::ICMP),
            l4: L4Info::IcmpError {
                icmp_type,
                code,
                inner,
            },
            len,
        }
    }

    /// A packet of a protocol conntrack tracks by addresses only.
    pub fn other(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: u32) -> CtPacket {
        CtPacket {
            tuple: CtTuple::other(src, dst, proto),
            l4: L4Info::Other,
            len,
        }
    }

    /// True when the L4 details agree with the tuple's protocol.
    pub(crate) fn consistent(&self) -> bool {
        let p = self.tuple.proto;
        match self.l4 {
            L4Info::Tcp(_) => p == ip_proto::TCP,
            L4Info::Udp => p == ip_proto::UDP,
            L4Info::IcmpEcho { .. } => p == ip_proto::ICMP && self.tuple.dst_port == 0,
            L4Info::IcmpError { .. } | L4Info::IcmpOther { .. } => p == ip_proto::ICMP,
            L4Info::Other => p != ip_proto::TCP && p != ip_proto::UDP && p != ip_proto::ICMP,
        }
    }
}

/// A tuple and its zone packed into 120 bits (two words, so the index
/// entry needs no 16-byte alignment): word 0 holds the addresses, word 1
/// the ports, protocol and zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct CtKey([u64; 2]);

impl CtKey {
    #[inline]
    pub(crate) fn new(t: &CtTuple, zone: u16) -> CtKey {
        let addrs = (u64::from(u32::from(t.src)) << 32) | u64::from(u32::from(t.dst));
        let rest = (u64::from(t.src_port) << 48)
            | (u64::from(t.dst_port) << 32)
            | (u64::from(t.proto) << 16)
            | u64::from(zone);
        CtKey([addrs, rest])
    }

    #[inline]
    pub(crate) fn words(&self) -> [u64; 2] {
        self.0
    }

    #[inline]
    pub(crate) fn tuple(&self) -> CtTuple {
        let [a, r] = self.0;
        CtTuple {
            src: Ipv4Addr::from((a >> 32) as u32),
            dst: Ipv4Addr::from(a as u32),
            src_port: (r >> 48) as u16,
            dst_port: (r >> 32) as u16,
            proto: (r >> 16) as u8,
        }
    }

    #[inline]
    pub(crate) fn zone(&self) -> u16 {
        self.0[1] as u16
    }
}
