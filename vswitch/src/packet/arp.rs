//! ARP packets (RFC 826) for Ethernet and IPv4, the only kind a Kubernetes
//! node network carries.
//!
//! [`ArpPacket`] reads and writes the 28-byte Ethernet/IPv4 form; `new_checked`
//! refuses any other hardware or protocol type ([`Error::Unsupported`]), so the
//! fixed offsets of the address getters are always right. [`ArpRepr`] parses
//! and builds requests and replies (the gateway answering for its IP, tests).
//! What it deliberately does not do: other hardware/protocol types, RARP or
//! InARP opcodes beyond carrying the number, or caching (that is a table).

use super::{array, be16, put16, Error, Result};

/// Byte ranges of the Ethernet/IPv4 packet.
pub mod field {
    /// A byte range in the packet.
    pub type Field = core::ops::Range<usize>;
    /// Hardware type (1: Ethernet).
    pub const HTYPE: Field = 0..2;
    /// Protocol type (0x0800: IPv4).
    pub const PTYPE: Field = 2..4;
    /// Hardware address length (6).
    pub const HLEN: usize = 4;
    /// Protocol address length (4).
    pub const PLEN: usize = 5;
    /// Operation.
    pub const OPER: Field = 6..8;
    /// Sender hardware address.
    pub const SHA: Field = 8..14;
    /// Sender protocol address.
    pub const SPA: Field = 14..18;
    /// Target hardware address.
    pub const THA: Field = 18..24;
    /// Target protocol address.
    pub const TPA: Field = 24..28;
}

/// ARP operations.
pub mod operation {
    /// Request.
    pub const REQUEST: u16 = 1;
    /// Reply.
    pub const REPLY: u16 = 2;
}

/// Hardware type of Ethernet.
pub const HTYPE_ETHERNET: u16 = 1;

/// A read/write view of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Length of an Ethernet/IPv4 ARP packet.
    pub const LEN: usize = field::TPA.end;

    /// Wraps a buffer without checking it (see the module contract).
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        ArpPacket { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the 28 bytes fit and the packet is Ethernet/IPv4.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < Self::LEN {
            Err(Error::Truncated)
        } else if self.hardware_type() != HTYPE_ETHERNET
            || self.protocol_type() != super::ethernet::ethertype::IPV4
            || self.hardware_len() != 6
            || self.protocol_len() != 4
        {
            Err(Error::Unsupported)
        } else {
            Ok(())
        }
    }

    /// Returns the underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Hardware type.
    #[inline]
    pub fn hardware_type(&self) -> u16 {
        be16(self.buffer.as_ref(), field::HTYPE.start)
    }

    /// Protocol type (an ethertype).
    #[inline]
    pub fn protocol_type(&self) -> u16 {
        be16(self.buffer.as_ref(), field::PTYPE.start)
    }

    /// Hardware address length.
    #[inline]
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// Protocol address length.
    #[inline]
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// Operation (see [`operation`]).
    #[inline]
    pub fn operation(&self) -> u16 {
        be16(self.buffer.as_ref(), field::OPER.start)
    }

    /// Sender hardware address.
    #[inline]
    pub fn source_hardware_addr(&self) -> [u8; 6] {
        array(self.buffer.as_ref(), field::SHA.start)
    }

    /// Sender protocol address.
    #[inline]
    pub fn source_protocol_addr(&self) -> [u8; 4] {
        array(self.buffer.as_ref(), field::SPA.start)
    }

    /// Target hardware address.
    #[inline]
    pub fn target_hardware_addr(&self) -> [u8; 6] {
        array(self.buffer.as_ref(), field::THA.start)
    }

    /// Target protocol address.
    #[inline]
    pub fn target_protocol_addr(&self) -> [u8; 4] {
        array(self.buffer.as_ref(), field::TPA.start)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Sets the hardware type.
    #[inline]
    pub fn set_hardware_type(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::HTYPE.start, value);
    }

    /// Sets the protocol type.
    #[inline]
    pub fn set_protocol_type(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::PTYPE.start, value);
    }

    /// Sets the hardware address length.
    #[inline]
    pub fn set_hardware_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::HLEN] = value;
    }

    /// Sets the protocol address length.
    #[inline]
    pub fn set_protocol_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::PLEN] = value;
    }

    /// Sets the operation.
    #[inline]
    pub fn set_operation(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::OPER.start, value);
    }

    /// Sets the sender hardware address.
    #[inline]
    pub fn set_source_hardware_addr(&mut self, addr: [u8; 6]) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(&addr);
    }

    /// Sets the sender protocol address.
    #[inline]
    pub fn set_source_protocol_addr(&mut self, addr: [u8; 4]) {
        self.buffer.as_mut()[field::SPA].copy_from_slice(&addr);
    }

    /// Sets the target hardware address.
    #[inline]
    pub fn set_target_hardware_addr(&mut self, addr: [u8; 6]) {
        self.buffer.as_mut()[field::THA].copy_from_slice(&addr);
    }

    /// Sets the target protocol address.
    #[inline]
    pub fn set_target_protocol_addr(&mut self, addr: [u8; 4]) {
        self.buffer.as_mut()[field::TPA].copy_from_slice(&addr);
    }
}

/// An Ethernet/IPv4 ARP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ArpRepr {
    /// Operation (see [`operation`]).
    pub operation: u16,
    /// Sender hardware address.
    pub source_hardware_addr: [u8; 6],
    /// Sender protocol address.
    pub source_protocol_addr: [u8; 4],
    /// Target hardware address.
    pub target_hardware_addr: [u8; 6],
    /// Target protocol address.
    pub target_protocol_addr: [u8; 4],
}

impl ArpRepr {
    /// Parses a packet (checking it first).
    pub fn parse<T: AsRef<[u8]>>(packet: &ArpPacket<T>) -> Result<ArpRepr> {
        packet.check_len()?;
        Ok(ArpRepr {
            operation: packet.operation(),
            source_hardware_addr: packet.source_hardware_addr(),
            source_protocol_addr: packet.source_protocol_addr(),
            target_hardware_addr: packet.target_hardware_addr(),
            target_protocol_addr: packet.target_protocol_addr(),
        })
    }

    /// Bytes [`emit`](Self::emit) writes: 28.
    pub const fn buffer_len(&self) -> usize {
        ArpPacket::<&[u8]>::LEN
    }

    /// Writes the packet. Panics if the buffer is shorter than 28 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut ArpPacket<T>) {
        packet.set_hardware_type(HTYPE_ETHERNET);
        packet.set_protocol_type(super::ethernet::ethertype::IPV4);
        packet.set_hardware_len(6);
        packet.set_protocol_len(4);
        packet.set_operation(self.operation);
        packet.set_source_hardware_addr(self.source_hardware_addr);
        packet.set_source_protocol_addr(self.source_protocol_addr);
        packet.set_target_hardware_addr(self.target_hardware_addr);
        packet.set_target_protocol_addr(self.target_protocol_addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Who has 10.244.1.1? Tell 10.244.1.5 (02:00:00:00:00:05).
    const REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x05, 10,
        244, 1, 5, 0, 0, 0, 0, 0, 0, 10, 244, 1, 1,
    ];

    #[test]
    fn golden_request() {
        let p = ArpPacket::new_checked(&REQUEST[..]).unwrap();
        let r = ArpRepr::parse(&p).unwrap();
        assert_eq!(
            r,
            ArpRepr {
                operation: operation::REQUEST,
                source_hardware_addr: [2, 0, 0, 0, 0, 5],
                source_protocol_addr: [10, 244, 1, 5],
                target_hardware_addr: [0; 6],
                target_protocol_addr: [10, 244, 1, 1],
            }
        );
        let mut out = [0u8; 28];
        r.emit(&mut ArpPacket::new_unchecked(&mut out[..]));
        assert_eq!(out, REQUEST);
    }

    #[test]
    fn rejects() {
        assert_eq!(
            ArpPacket::new_checked(&REQUEST[..27]).unwrap_err(),
            Error::Truncated
        );
        for (i, v) in [(1, 6u8), (3, 0xdd), (4, 8), (5, 16)] {
            let mut bad = REQUEST;
            bad[i] = v;
            assert_eq!(
                ArpPacket::new_checked(&bad[..]).unwrap_err(),
                Error::Unsupported,
                "{i}"
            );
        }
    }
}
