//! Zero-copy packet views and header representations, one file per protocol.
//!
//! Each protocol has a *view* over a byte buffer (`EthernetFrame<T>`,
//! `Ipv4Packet<T>`, ...) with byte-range `field` constants, getters named after
//! the header fields and `set_` setters, and, where the control plane or the
//! tests build packets, a *representation* (`Ipv4Repr`, ...) with `parse`,
//! `emit` and `buffer_len`. Views are what the per-packet path uses; `Repr`s
//! are for building frames (encapsulation, tests) and never sit on the hot path
//! of a received packet. Views never allocate and nothing here is `unsafe`.
//!
//! # The length and panic contract
//!
//! `new_unchecked` wraps any buffer; a getter or setter on a buffer too short
//! for the field it touches panics. `new_checked` (which calls `check_len`)
//! returns an [`Error`] unless every getter of the view, `payload()` included,
//! stays inside the buffer and the header's own length fields are coherent
//! (an IHL of at least 5, a TCP data offset of at least 5, a UDP or IPv4 length
//! that fits the buffer, at most [`ethernet::MAX_VLAN_TAGS`] VLAN tags). So
//! untrusted bytes go through `new_checked` only, and then no getter panics on
//! any input. Walks that can fail (the IPv6 extension-header chain) are methods
//! that return a `Result` instead of panicking. Setters may be used after
//! `new_checked` on a mutable buffer with the same guarantee; a setter that
//! changes a length field (for example `set_header_len`) makes the view
//! unchecked again. As in smoltcp, `payload()` lives on views over a borrowed
//! buffer (`Ipv4Packet<&'a T>`) and returns a `&'a [u8]` that outlives the
//! view, so headers chain (`Ipv4Packet::new_checked(frame.payload())`);
//! views over a mutable buffer use `payload_mut()`.
//!
//! What this module deliberately does not do: reassemble fragments, verify
//! checksums implicitly (only `verify_checksum` and `Repr::parse` do), parse
//! IPv4 or TCP options (they are skipped as opaque bytes), or know about IPv6
//! addresses beyond carrying them as `[u8; 16]`.

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmp;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod udp;
pub mod vxlan;

#[cfg(test)]
pub(crate) mod testgen;
#[cfg(test)]
mod tests;

pub use arp::{ArpPacket, ArpRepr};
pub use ethernet::{EthernetFrame, EthernetRepr, TagWalk, VlanTag};
pub use icmp::Icmpv4Packet;
pub use icmpv6::Icmpv6Packet;
pub use ipv4::{Ipv4Packet, Ipv4Repr};
pub use ipv6::{Ipv6Fragment, Ipv6Packet, UpperLayer};
pub use tcp::TcpPacket;
pub use udp::{UdpPacket, UdpRepr};
pub use vxlan::{VxlanPacket, VxlanRepr};

/// Why a buffer was refused by a view or a `Repr`. `Copy` and allocation-free,
/// so a per-packet caller can map it to a counted drop reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Error {
    /// The buffer is shorter than the header, or than a length field says.
    #[error("buffer truncated")]
    Truncated,
    /// A field holds an impossible value (version, header length, length field).
    #[error("malformed header")]
    Malformed,
    /// A bounded walk (VLAN tags, IPv6 extension headers) reached its limit.
    #[error("too many headers")]
    TooManyHeaders,
    /// A checksum did not verify (`Repr::parse` only).
    #[error("bad checksum")]
    Checksum,
    /// Well-formed, but not what this view or `Repr` handles (an ARP packet
    /// that is not Ethernet/IPv4, a VXLAN header without the I flag).
    #[error("unsupported header")]
    Unsupported,
}

/// The result type of this module's fallible operations.
pub type Result<T> = core::result::Result<T, Error>;

/// IP protocol numbers (IPv4 `protocol`, IPv6 `next_header`) used by the views.
pub mod ip_proto {
    /// IPv6 hop-by-hop options extension header.
    pub const HOPOPT: u8 = 0;
    /// Internet Control Message Protocol (IPv4).
    pub const ICMP: u8 = 1;
    /// Transmission Control Protocol.
    pub const TCP: u8 = 6;
    /// User Datagram Protocol.
    pub const UDP: u8 = 17;
    /// IPv6 routing extension header.
    pub const IPV6_ROUTE: u8 = 43;
    /// IPv6 fragment extension header.
    pub const IPV6_FRAG: u8 = 44;
    /// Encapsulating Security Payload (opaque: ends the IPv6 walk).
    pub const ESP: u8 = 50;
    /// Authentication Header.
    pub const AH: u8 = 51;
    /// ICMP for IPv6.
    pub const ICMPV6: u8 = 58;
    /// IPv6 "no next header".
    pub const IPV6_NONXT: u8 = 59;
    /// IPv6 destination options extension header.
    pub const IPV6_OPTS: u8 = 60;
}

/// Reads a big-endian `u16` at `at`. Panics when out of bounds (callers check).
#[inline(always)]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Reads a big-endian `u32` at `at`. Panics when out of bounds (callers check).
#[inline(always)]
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Writes a big-endian `u16` at `at`.
#[inline(always)]
fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Writes a big-endian `u32` at `at`.
#[inline(always)]
fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// Copies `N` bytes starting at `at` into an array.
#[inline(always)]
fn array<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&b[at..at + N]);
    out
}
