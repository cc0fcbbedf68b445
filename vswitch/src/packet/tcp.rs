//! TCP segment headers (RFC 9293).
//!
//! [`TcpPacket`] reads and writes ports, sequence numbers, flags, window and
//! checksum; options are skipped through the data offset. The buffer given to
//! a view must be exactly the segment (an IP payload), because the checksum
//! covers all of it. What it deliberately does not do: parse options (MSS,
//! window scale, SACK), track state (conntrack's TCP module does), or keep a
//! `Repr` (the switch rewrites TCP headers in place, it never builds them).

use super::{be16, be32, checksum, ip_proto, put16, put32, Error, Result};

/// Byte ranges of the fixed header.
pub mod field {
    /// A byte range in the header.
    pub type Field = core::ops::Range<usize>;
    /// Source port.
    pub const SRC_PORT: Field = 0..2;
    /// Destination port.
    pub const DST_PORT: Field = 2..4;
    /// Sequence number.
    pub const SEQ_NUM: Field = 4..8;
    /// Acknowledgment number.
    pub const ACK_NUM: Field = 8..12;
    /// Data offset (4 bits), reserved bits and the flags.
    pub const FLAGS: Field = 12..14;
    /// Window size.
    pub const WIN_SIZE: Field = 14..16;
    /// Checksum.
    pub const CHECKSUM: Field = 16..18;
    /// Urgent pointer.
    pub const URGENT: Field = 18..20;
}

/// Flag bits of [`TcpPacket::flags`].
pub mod flags {
    /// No more data from sender.
    pub const FIN: u16 = 0x001;
    /// Synchronize sequence numbers.
    pub const SYN: u16 = 0x002;
    /// Reset the connection.
    pub const RST: u16 = 0x004;
    /// Push.
    pub const PSH: u16 = 0x008;
    /// Acknowledgment field significant.
    pub const ACK: u16 = 0x010;
    /// Urgent pointer field significant.
    pub const URG: u16 = 0x020;
    /// ECN echo.
    pub const ECE: u16 = 0x040;
    /// Congestion window reduced.
    pub const CWR: u16 = 0x080;
    /// ECN nonce (historic, RFC 3540).
    pub const NS: u16 = 0x100;
}

/// A read/write view of a TCP segment.
#[derive(Debug, Clone)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Length of the header without options.
    pub const HEADER_LEN: usize = field::URGENT.end;

    /// Wraps a buffer without checking it (see the module contract).
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the fixed header fits, the data offset is at least 5, and the
    /// header with its options fits.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < Self::HEADER_LEN {
            Err(Error::Truncated)
        } else if self.header_len() < Self::HEADER_LEN {
            Err(Error::Malformed)
        } else if self.header_len() > len {
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

    /// Sequence number.
    #[inline]
    pub fn seq_number(&self) -> u32 {
        be32(self.buffer.as_ref(), field::SEQ_NUM.start)
    }

    /// Acknowledgment number.
    #[inline]
    pub fn ack_number(&self) -> u32 {
        be32(self.buffer.as_ref(), field::ACK_NUM.start)
    }

    /// Header length in bytes (data offset * 4), options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::FLAGS.start] >> 4) * 4
    }

    /// The nine flag bits (see [`flags`]).
    #[inline]
    pub fn flags(&self) -> u16 {
        be16(self.buffer.as_ref(), field::FLAGS.start) & 0x01ff
    }

    /// The FIN flag.
    #[inline]
    pub fn fin(&self) -> bool {
        self.flags() & flags::FIN != 0
    }

    /// The SYN flag.
    #[inline]
    pub fn syn(&self) -> bool {
        self.flags() & flags::SYN != 0
    }

    /// The RST flag.
    #[inline]
    pub fn rst(&self) -> bool {
        self.flags() & flags::RST != 0
    }

    /// The PSH flag.
    #[inline]
    pub fn psh(&self) -> bool {
        self.flags() & flags::PSH != 0
    }

    /// The ACK flag.
    #[inline]
    pub fn ack(&self) -> bool {
        self.flags() & flags::ACK != 0
    }

    /// The URG flag.
    #[inline]
    pub fn urg(&self) -> bool {
        self.flags() & flags::URG != 0
    }

    /// The ECE flag.
    #[inline]
    pub fn ece(&self) -> bool {
        self.flags() & flags::ECE != 0
    }

    /// The CWR flag.
    #[inline]
    pub fn cwr(&self) -> bool {
        self.flags() & flags::CWR != 0
    }

    /// Window size.
    #[inline]
    pub fn window_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::WIN_SIZE.start)
    }

    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// Urgent pointer.
    #[inline]
    pub fn urgent_at(&self) -> u16 {
        be16(self.buffer.as_ref(), field::URGENT.start)
    }

    /// The option bytes.
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[Self::HEADER_LEN..self.header_len()]
    }

    fn sum(&self, pseudo: u16) -> u16 {
        checksum::combine(&[pseudo, checksum::data(self.buffer.as_ref())])
    }

    /// True when the checksum verifies over IPv4 `src`/`dst`.
    pub fn verify_checksum_v4(&self, src: [u8; 4], dst: [u8; 4]) -> bool {
        let len = self.buffer.as_ref().len() as u16;
        self.sum(checksum::pseudo_header_v4(src, dst, ip_proto::TCP, len)) == 0xffff
    }

    /// True when the checksum verifies over IPv6 `src`/`dst`.
    pub fn verify_checksum_v6(&self, src: [u8; 16], dst: [u8; 16]) -> bool {
        let len = self.buffer.as_ref().len() as u32;
        self.sum(checksum::pseudo_header_v6(src, dst, ip_proto::TCP, len)) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> TcpPacket<&'a T> {
    /// The data after the header.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        let data: &'a [u8] = self.buffer.as_ref();
        &data[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
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

    /// Sets the sequence number.
    #[inline]
    pub fn set_seq_number(&mut self, seq: u32) {
        put32(self.buffer.as_mut(), field::SEQ_NUM.start, seq);
    }

    /// Sets the acknowledgment number.
    #[inline]
    pub fn set_ack_number(&mut self, ack: u32) {
        put32(self.buffer.as_mut(), field::ACK_NUM.start, ack);
    }

    /// Sets the header length in bytes (a multiple of 4, 20..=60).
    #[inline]
    pub fn set_header_len(&mut self, len: usize) {
        let b = &mut self.buffer.as_mut()[field::FLAGS.start];
        *b = (*b & 0x0f) | (((len / 4) as u8) << 4);
    }

    /// Sets the nine flag bits.
    #[inline]
    pub fn set_flags(&mut self, value: u16) {
        let raw = be16(self.buffer.as_ref(), field::FLAGS.start);
        put16(
            self.buffer.as_mut(),
            field::FLAGS.start,
            (raw & !0x01ff) | (value & 0x01ff),
        );
    }

    /// Sets the window size.
    #[inline]
    pub fn set_window_len(&mut self, win: u16) {
        put16(self.buffer.as_mut(), field::WIN_SIZE.start, win);
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, csum: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM.start, csum);
    }

    /// Sets the urgent pointer.
    #[inline]
    pub fn set_urgent_at(&mut self, at: u16) {
        put16(self.buffer.as_mut(), field::URGENT.start, at);
    }

    /// Computes and writes the checksum over IPv4 `src`/`dst`.
    pub fn fill_checksum_v4(&mut self, src: [u8; 4], dst: [u8; 4]) {
        self.set_checksum(0);
        let len = self.buffer.as_ref().len() as u16;
        let c = !self.sum(checksum::pseudo_header_v4(src, dst, ip_proto::TCP, len));
        self.set_checksum(c);
    }

    /// Computes and writes the checksum over IPv6 `src`/`dst`.
    pub fn fill_checksum_v6(&mut self, src: [u8; 16], dst: [u8; 16]) {
        self.set_checksum(0);
        let len = self.buffer.as_ref().len() as u32;
        let c = !self.sum(checksum::pseudo_header_v6(src, dst, ip_proto::TCP, len));
        self.set_checksum(c);
    }

    /// The data after the header, mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let at = self.header_len();
        &mut self.buffer.as_mut()[at..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 10.0.0.1:49152 -> 10.0.0.2:80 SYN, seq 1, window 64240, MSS option.
    const SYN: [u8; 24] = [
        0xc0, 0x00, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x60, 0x02, 0xfa,
        0xf0, 0x00, 0x00, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4,
    ];
    const SRC: [u8; 4] = [10, 0, 0, 1];
    const DST: [u8; 4] = [10, 0, 0, 2];

    #[test]
    fn golden_syn() {
        let p = TcpPacket::new_checked(&SYN[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (49152, 80));
        assert_eq!((p.seq_number(), p.ack_number()), (1, 0));
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.flags(), flags::SYN);
        assert!(p.syn() && !p.ack() && !p.fin() && !p.rst());
        assert_eq!(p.window_len(), 64240);
        assert_eq!(p.urgent_at(), 0);
        assert_eq!(p.options(), &[2, 4, 5, 0xb4]);
        assert!(p.payload().is_empty());
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(
            TcpPacket::new_checked(&SYN[..19]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            TcpPacket::new_checked(&SYN[..23]).unwrap_err(),
            Error::Truncated
        );
        let mut bad = SYN;
        bad[12] = 0x40;
        assert_eq!(
            TcpPacket::new_checked(&bad[..]).unwrap_err(),
            Error::Malformed
        );
    }

    #[test]
    fn checksum_and_setters() {
        let mut seg = SYN;
        let mut p = TcpPacket::new_checked(&mut seg[..]).unwrap();
        p.fill_checksum_v4(SRC, DST);
        assert!(p.verify_checksum_v4(SRC, DST));
        assert!(!p.verify_checksum_v4(SRC, [10, 0, 0, 3]));
        // A port rewrite with an incremental update still verifies.
        let before = p.checksum();
        p.set_dst_port(8080);
        p.set_checksum(checksum::update16(before, 80, 8080));
        assert!(p.verify_checksum_v4(SRC, DST));
        p.set_flags(flags::SYN | flags::ACK);
        p.set_ack_number(7);
        p.set_seq_number(9);
        p.set_window_len(1);
        p.set_urgent_at(2);
        p.set_src_port(1);
        assert!(p.syn() && p.ack());
        assert_eq!(
            (
                p.seq_number(),
                p.ack_number(),
                p.window_len(),
                p.urgent_at()
            ),
            (9, 7, 1, 2)
        );
        assert_eq!(p.header_len(), 24);
        p.set_header_len(20);
        assert_eq!(p.payload_mut().len(), 4);
        p.fill_checksum_v6([1; 16], [2; 16]);
        assert!(p.verify_checksum_v6([1; 16], [2; 16]));
    }
}
