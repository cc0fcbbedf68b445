//! ICMP for IPv6 (RFC 4443).
//!
//! [`Icmpv6Packet`] reads and writes type, code, checksum and the 4 bytes
//! every defined message carries after them (echo identifier and sequence
//! number for echo). The checksum covers an IPv6 pseudo header, so verifying
//! and filling take the addresses; the buffer must be exactly the message.
//! What it deliberately does not do: parse neighbor discovery options or MLD
//! (the switch floods NDP like ARP for now), or build messages (no `Repr`).

use super::{be16, checksum, ip_proto, put16, Error, Result};

/// Byte ranges of the header.
pub mod field {
    /// A byte range in the header.
    pub type Field = core::ops::Range<usize>;
    /// Message type.
    pub const TYPE: usize = 0;
    /// Message code.
    pub const CODE: usize = 1;
    /// Checksum (with the IPv6 pseudo header).
    pub const CHECKSUM: Field = 2..4;
    /// Echo identifier.
    pub const ECHO_IDENT: Field = 4..6;
    /// Echo sequence number.
    pub const ECHO_SEQNO: Field = 6..8;
}

/// Message types the switch knows by name.
pub mod msg_type {
    /// Destination unreachable.
    pub const DST_UNREACHABLE: u8 = 1;
    /// Packet too big.
    pub const PKT_TOO_BIG: u8 = 2;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 3;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 129;
    /// Router solicitation.
    pub const ROUTER_SOLICIT: u8 = 133;
    /// Router advertisement.
    pub const ROUTER_ADVERT: u8 = 134;
    /// Neighbor solicitation.
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    /// Neighbor advertisement.
    pub const NEIGHBOR_ADVERT: u8 = 136;
}

/// A read/write view of an ICMPv6 message.
#[derive(Debug, Clone)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    /// Length of the header: type, code, checksum and 4 message bytes (the
    /// shortest defined message).
    pub const HEADER_LEN: usize = field::ECHO_SEQNO.end;

    /// Wraps a buffer without checking it (see the module contract).
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv6Packet { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the 8-byte header fits.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < Self::HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Returns the underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Message type (see [`msg_type`]).
    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// Message code.
    #[inline]
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// Echo identifier (meaningful for echo request/reply).
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ECHO_IDENT.start)
    }

    /// Echo sequence number (meaningful for echo request/reply).
    #[inline]
    pub fn echo_seq_no(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ECHO_SEQNO.start)
    }

    fn sum(&self, src: [u8; 16], dst: [u8; 16]) -> u16 {
        let b = self.buffer.as_ref();
        let pseudo = checksum::pseudo_header_v6(src, dst, ip_proto::ICMPV6, b.len() as u32);
        checksum::combine(&[pseudo, checksum::data(b)])
    }

    /// True when the checksum verifies over IPv6 `src`/`dst`.
    pub fn verify_checksum(&self, src: [u8; 16], dst: [u8; 16]) -> bool {
        self.sum(src, dst) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Icmpv6Packet<&'a T> {
    /// The data after the 8-byte header.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        let data: &'a [u8] = self.buffer.as_ref();
        &data[Self::HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    /// Sets the message type.
    #[inline]
    pub fn set_msg_type(&mut self, value: u8) {
        self.buffer.as_mut()[field::TYPE] = value;
    }

    /// Sets the message code.
    #[inline]
    pub fn set_msg_code(&mut self, value: u8) {
        self.buffer.as_mut()[field::CODE] = value;
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, csum: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM.start, csum);
    }

    /// Sets the echo identifier.
    #[inline]
    pub fn set_echo_ident(&mut self, ident: u16) {
        put16(self.buffer.as_mut(), field::ECHO_IDENT.start, ident);
    }

    /// Sets the echo sequence number.
    #[inline]
    pub fn set_echo_seq_no(&mut self, seq: u16) {
        put16(self.buffer.as_mut(), field::ECHO_SEQNO.start, seq);
    }

    /// Computes and writes the checksum over IPv6 `src`/`dst`.
    pub fn fill_checksum(&mut self, src: [u8; 16], dst: [u8; 16]) {
        self.set_checksum(0);
        let c = !self.sum(src, dst);
        self.set_checksum(c);
    }

    /// The data after the 8-byte header, mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[Self::HEADER_LEN..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: [u8; 16] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const DST: [u8; 16] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

    #[test]
    fn golden_echo() {
        let mut m = [128, 0, 0, 0, 0xab, 0xcd, 0, 7, 1, 2];
        let mut p = Icmpv6Packet::new_checked(&mut m[..]).unwrap();
        assert_eq!((p.msg_type(), p.msg_code()), (msg_type::ECHO_REQUEST, 0));
        assert_eq!((p.echo_ident(), p.echo_seq_no()), (0xabcd, 7));
        assert_eq!(p.payload_mut(), &[1, 2]);
        p.fill_checksum(SRC, DST);
        assert!(p.verify_checksum(SRC, DST));
        assert!(!p.verify_checksum(DST, [0; 16]));
        p.set_msg_type(msg_type::ECHO_REPLY);
        p.set_msg_code(0);
        p.set_echo_ident(1);
        p.set_echo_seq_no(2);
        p.payload_mut()[0] = 0;
        p.fill_checksum(SRC, DST);
        assert!(p.verify_checksum(SRC, DST));
        let csum = p.checksum();
        assert_eq!(m[..8], [129, 0, (csum >> 8) as u8, csum as u8, 0, 1, 0, 2]);
    }

    #[test]
    fn rejects_truncated() {
        assert_eq!(
            Icmpv6Packet::new_checked(&[0u8; 7][..]).unwrap_err(),
            Error::Truncated
        );
    }
}
