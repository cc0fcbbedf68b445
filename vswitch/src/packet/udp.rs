//! UDP datagram headers (RFC 768).
//!
//! [`UdpPacket`] reads and writes ports, length and checksum; the payload ends
//! at the length field, which `new_checked` requires to be at least 8 and to
//! fit the buffer. Checksums follow UDP's rule: over IPv4 a field of 0 means
//! "none" (it verifies, and the incremental helpers keep it 0), and a computed
//! 0 is sent as 0xffff. [`UdpRepr`] builds headers (VXLAN encapsulation).
//! What it deliberately does not do: UDP-Lite, or a checksum over IPv6 of 0
//! (RFC 6935 tunnels): over IPv6 a zero checksum does not verify.

use super::{be16, checksum, ip_proto, put16, Error, Result};

/// Byte ranges of the header.
pub mod field {
    /// A byte range in the header.
    pub type Field = core::ops::Range<usize>;
    /// Source port.
    pub const SRC_PORT: Field = 0..2;
    /// Destination port.
    pub const DST_PORT: Field = 2..4;
    /// Length of the datagram, header included.
    pub const LENGTH: Field = 4..6;
    /// Checksum (0: none, IPv4 only).
    pub const CHECKSUM: Field = 6..8;
}

/// A read/write view of a UDP datagram.
#[derive(Debug, Clone)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Length of the header.
    pub const HEADER_LEN: usize = field::CHECKSUM.end;

    /// Wraps a buffer without checking it (see the module contract).
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the header fits and the length field is within 8..=buffer length.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < Self::HEADER_LEN {
            Err(Error::Truncated)
        } else if usize::from(self.len()) < Self::HEADER_LEN {
            Err(Error::Malformed)
        } else if usize::from(self.len()) > len {
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

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SRC_PORT.start)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DST_PORT.start)
    }

    /// The length field: header plus payload.
    #[inline]
    #[expect(
        clippy::len_without_is_empty,
        reason = "a header field, not a container"
    )]
    pub fn len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH.start)
    }

    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    fn sum(&self, pseudo: u16) -> u16 {
        let datagram = &self.buffer.as_ref()[..usize::from(self.len())];
        checksum::combine(&[pseudo, checksum::data(datagram)])
    }

    /// True when the checksum verifies over IPv4 `src`/`dst`, or is 0 (none).
    pub fn verify_checksum_v4(&self, src: [u8; 4], dst: [u8; 4]) -> bool {
        self.checksum() == 0
            || self.sum(checksum::pseudo_header_v4(
                src,
                dst,
                ip_proto::UDP,
                self.len(),
            )) == 0xffff
    }

    /// True when the checksum verifies over IPv6 `src`/`dst` (0 never does).
    pub fn verify_checksum_v6(&self, src: [u8; 16], dst: [u8; 16]) -> bool {
        let pseudo = checksum::pseudo_header_v6(src, dst, ip_proto::UDP, u32::from(self.len()));
        self.checksum() != 0 && self.sum(pseudo) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> UdpPacket<&'a T> {
    /// The payload, up to the length field.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        let data: &'a [u8] = self.buffer.as_ref();
        &data[Self::HEADER_LEN..usize::from(self.len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Sets the source port (the checksum is not updated).
    #[inline]
    pub fn set_src_port(&mut self, port: u16) {
        put16(self.buffer.as_mut(), field::SRC_PORT.start, port);
    }

    /// Sets the destination port (the checksum is not updated).
    #[inline]
    pub fn set_dst_port(&mut self, port: u16) {
        put16(self.buffer.as_mut(), field::DST_PORT.start, port);
    }

    /// Sets the length field.
    #[inline]
    pub fn set_len(&mut self, len: u16) {
        put16(self.buffer.as_mut(), field::LENGTH.start, len);
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, csum: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM.start, csum);
    }

    fn fill(&mut self, pseudo: u16) {
        self.set_checksum(0);
        let c = !self.sum(pseudo);
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }

    /// Computes and writes the checksum over IPv4 `src`/`dst` (0 becomes 0xffff).
    pub fn fill_checksum_v4(&mut self, src: [u8; 4], dst: [u8; 4]) {
        self.fill(checksum::pseudo_header_v4(
            src,
            dst,
            ip_proto::UDP,
            self.len(),
        ));
    }

    /// Computes and writes the checksum over IPv6 `src`/`dst` (0 becomes 0xffff).
    pub fn fill_checksum_v6(&mut self, src: [u8; 16], dst: [u8; 16]) {
        self.fill(checksum::pseudo_header_v6(
            src,
            dst,
            ip_proto::UDP,
            u32::from(self.len()),
        ));
    }

    /// The payload, mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        &mut self.buffer.as_mut()[Self::HEADER_LEN..end]
    }
}

/// A UDP header. The length comes from the payload length given to
/// [`emit`](UdpRepr::emit); the checksum is left 0 ("none", as RFC 7348
/// recommends for VXLAN over IPv4): call `fill_checksum_v4` afterwards for one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UdpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
}

impl UdpRepr {
    /// Parses a datagram (checking it first; the checksum is not verified,
    /// since that needs the IP addresses: use `verify_checksum_v4`).
    pub fn parse<T: AsRef<[u8]>>(packet: &UdpPacket<T>) -> Result<UdpRepr> {
        packet.check_len()?;
        Ok(UdpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
        })
    }

    /// Bytes [`emit`](Self::emit) writes: the 8-byte header.
    pub const fn buffer_len(&self) -> usize {
        UdpPacket::<&[u8]>::HEADER_LEN
    }

    /// Writes the header for a payload of `payload_len` bytes, checksum 0.
    /// Panics if the buffer is shorter than 8 bytes or the length overflows.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut UdpPacket<T>, payload_len: u16) {
        let len = payload_len
            .checked_add(self.buffer_len() as u16)
            .expect("UDP payload too long");
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_len(len);
        packet.set_checksum(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 192.168.0.1:1024 -> 192.168.0.2:53, 4 bytes of payload.
    const DGRAM: [u8; 12] = [0x04, 0x00, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00, 1, 2, 3, 4];
    const SRC: [u8; 4] = [192, 168, 0, 1];
    const DST: [u8; 4] = [192, 168, 0, 2];

    #[test]
    fn golden() {
        let p = UdpPacket::new_checked(&DGRAM[..]).unwrap();
        assert_eq!(
            (p.src_port(), p.dst_port(), p.len(), p.checksum()),
            (1024, 53, 12, 0)
        );
        assert_eq!(p.payload(), &[1, 2, 3, 4]);
        assert!(p.verify_checksum_v4(SRC, DST), "0 means no checksum");
        assert!(!p.verify_checksum_v6([0; 16], [0; 16]));
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(
            UdpPacket::new_checked(&DGRAM[..7]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            UdpPacket::new_checked(&DGRAM[..11]).unwrap_err(),
            Error::Truncated
        );
        let mut bad = DGRAM;
        bad[5] = 7;
        assert_eq!(
            UdpPacket::new_checked(&bad[..]).unwrap_err(),
            Error::Malformed
        );
        // A longer buffer is fine: the payload stops at the length field.
        let mut long = DGRAM.to_vec();
        long.push(9);
        assert_eq!(
            UdpPacket::new_checked(&long[..]).unwrap().payload(),
            &[1, 2, 3, 4]
        );
    }

    #[test]
    fn checksum_rules() {
        let mut d = DGRAM;
        let mut p = UdpPacket::new_checked(&mut d[..]).unwrap();
        p.fill_checksum_v4(SRC, DST);
        assert_ne!(p.checksum(), 0);
        assert!(p.verify_checksum_v4(SRC, DST));
        assert!(!p.verify_checksum_v4(SRC, [1, 1, 1, 1]));
        p.fill_checksum_v6([1; 16], [2; 16]);
        assert!(p.verify_checksum_v6([1; 16], [2; 16]));
        // Payload chosen so the computed checksum is 0: sent as 0xffff.
        let mut z = [0u8; 10];
        let mut p = UdpPacket::new_unchecked(&mut z[..]);
        p.set_len(10);
        let pseudo = checksum::pseudo_header_v4([0; 4], [0; 4], ip_proto::UDP, 10);
        let partial = checksum::combine(&[pseudo, checksum::data(&[0, 0, 0, 0, 0, 10, 0, 0])]);
        p.payload_mut().copy_from_slice(&(!partial).to_be_bytes());
        p.fill_checksum_v4([0; 4], [0; 4]);
        assert_eq!(p.checksum(), 0xffff);
        assert!(p.verify_checksum_v4([0; 4], [0; 4]));
    }

    #[test]
    fn repr_round_trip() {
        let r = UdpRepr {
            src_port: 55555,
            dst_port: 4789,
        };
        let mut buf = [0u8; 20];
        let mut p = UdpPacket::new_unchecked(&mut buf[..]);
        r.emit(&mut p, 12);
        assert_eq!(p.len(), 20);
        assert_eq!(UdpRepr::parse(&p), Ok(r));
        p.set_src_port(1);
        p.set_dst_port(2);
        assert_eq!((p.src_port(), p.dst_port()), (1, 2));
    }
}
