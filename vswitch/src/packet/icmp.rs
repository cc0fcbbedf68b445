//! ICMP for IPv4 (RFC 792).
//!
//! [`Icmpv4Packet`] reads and writes the 8-byte header: type, code, checksum
//! and the 4 "rest of header" bytes, with echo identifier and sequence number
//! accessors for echo messages. The checksum covers the whole message (no
//! pseudo header), so the buffer must be exactly the message (an IP payload).
//! What it deliberately does not do: interpret the quoted datagram of error
//! messages (conntrack's ICMP module does) or build messages (no `Repr`).

use super::{be16, checksum, put16, Error, Result};

/// Byte ranges of the header.
pub mod field {
    /// A byte range in the header.
    pub type Field = core::ops::Range<usize>;
    /// Message type.
    pub const TYPE: usize = 0;
    /// Message code.
    pub const CODE: usize = 1;
    /// Checksum over the whole message.
    pub const CHECKSUM: Field = 2..4;
    /// Type-specific 4 bytes (echo: identifier and sequence number).
    pub const REST: Field = 4..8;
    /// Echo identifier.
    pub const ECHO_IDENT: Field = 4..6;
    /// Echo sequence number.
    pub const ECHO_SEQNO: Field = 6..8;
}

/// Message types the switch knows by name.
pub mod msg_type {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable.
    pub const DST_UNREACHABLE: u8 = 3;
    /// Redirect.
    pub const REDIRECT: u8 = 5;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter problem.
    pub const PARAM_PROBLEM: u8 = 12;
}

/// A read/write view of an ICMPv4 message.
#[derive(Debug, Clone)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Length of the header.
    pub const HEADER_LEN: usize = field::REST.end;

    /// Wraps a buffer without checking it (see the module contract).
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv4Packet { buffer }
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

    /// The type-specific 4 bytes after the checksum.
    #[inline]
    pub fn rest_of_header(&self) -> [u8; 4] {
        super::array(self.buffer.as_ref(), field::REST.start)
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

    /// True when the checksum over the whole message verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::data(self.buffer.as_ref()) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Icmpv4Packet<&'a T> {
    /// The data after the header.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        let data: &'a [u8] = self.buffer.as_ref();
        &data[Self::HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
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

    /// Computes and writes the checksum over the whole message.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::compute(self.buffer.as_ref());
        self.set_checksum(c);
    }

    /// The data after the header, mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[Self::HEADER_LEN..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Echo request, id 0x1234, seq 1, "abcd", checksum not yet filled.
    const ECHO: [u8; 12] = [8, 0, 0, 0, 0x12, 0x34, 0x00, 0x01, b'a', b'b', b'c', b'd'];

    #[test]
    fn golden_echo() {
        let mut m = ECHO;
        let mut p = Icmpv4Packet::new_checked(&mut m[..]).unwrap();
        assert_eq!((p.msg_type(), p.msg_code()), (msg_type::ECHO_REQUEST, 0));
        assert_eq!((p.echo_ident(), p.echo_seq_no()), (0x1234, 1));
        assert_eq!(p.rest_of_header(), [0x12, 0x34, 0, 1]);
        assert_eq!(p.payload_mut(), b"abcd");
        p.fill_checksum();
        // 0x0800 + 0x1234 + 0x0001 + 0x6162 + 0x6364 = 0xdefb -> !0xdefb.
        assert_eq!(p.checksum(), 0x2104);
        assert!(p.verify_checksum());
        p.set_msg_type(msg_type::ECHO_REPLY);
        p.set_checksum(checksum::update16(0x2104, 0x0800, 0x0000));
        assert!(p.verify_checksum());
        p.set_msg_code(1);
        p.set_echo_ident(2);
        p.set_echo_seq_no(3);
        assert_eq!((p.msg_code(), p.echo_ident(), p.echo_seq_no()), (1, 2, 3));
        assert_eq!(p.payload_mut().len(), 4);
    }

    #[test]
    fn rejects_truncated() {
        assert_eq!(
            Icmpv4Packet::new_checked(&ECHO[..7]).unwrap_err(),
            Error::Truncated
        );
        assert!(Icmpv4Packet::new_checked(&ECHO[..8]).is_ok());
    }
}
