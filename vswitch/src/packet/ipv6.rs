//! IPv6 headers (RFC 8200) and a bounded walk over extension headers.
//!
//! [`Ipv6Packet`] reads and writes the 40-byte fixed header; the payload ends
//! at the payload length, so link padding is not payload.
//! [`Ipv6Packet::upper_layer`] walks at most [`MAX_EXT_HEADERS`] extension
//! headers (hop-by-hop, routing, fragment, destination options, and AH, whose
//! length unit differs) to the upper-layer protocol, recognising the fragment
//! header on the way; a non-first fragment stops the walk, since what follows
//! is fragment data. What it deliberately does not do: interpret options or
//! routing types, reassemble, enforce header order, handle jumbograms (a
//! payload length of 0 means an empty payload here), or walk past ESP.

use super::{array, be16, be32, ip_proto, put16, Error, Result};

/// Byte ranges of the fixed header.
pub mod field {
    /// A byte range in the header.
    pub type Field = core::ops::Range<usize>;
    /// Version (4 bits), traffic class (8 bits), flow label (20 bits).
    pub const VER_TC_FLOW: Field = 0..4;
    /// Payload length (extension headers included).
    pub const LENGTH: Field = 4..6;
    /// Next header.
    pub const NXT_HDR: usize = 6;
    /// Hop limit.
    pub const HOP_LIMIT: usize = 7;
    /// Source address.
    pub const SRC_ADDR: Field = 8..24;
    /// Destination address.
    pub const DST_ADDR: Field = 24..40;
}

/// Most extension headers [`Ipv6Packet::upper_layer`] walks before giving up.
pub const MAX_EXT_HEADERS: usize = 8;

/// What a fragment header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv6Fragment {
    /// Fragment offset in bytes.
    pub offset: u16,
    /// The M ("more fragments") flag.
    pub more_frags: bool,
    /// Identification.
    pub ident: u32,
}

/// Where the extension-header walk ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UpperLayer {
    /// The last next-header value: the upper-layer protocol (or, for a
    /// non-first fragment, the protocol of the fragmented data).
    pub protocol: u8,
    /// Offset of the upper-layer header from the start of the IPv6 header.
    /// For a non-first fragment, the bytes there are fragment data.
    pub offset: usize,
    /// Number of extension headers walked.
    pub ext_headers: u8,
    /// The fragment header, if one was walked.
    pub fragment: Option<Ipv6Fragment>,
}

/// A read/write view of an IPv6 packet.
#[derive(Debug, Clone)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Length of the fixed header.
    pub const HEADER_LEN: usize = field::DST_ADDR.end;

    /// Wraps a buffer without checking it (see the module contract).
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks version 6 and that the header and payload length fit the buffer.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < Self::HEADER_LEN {
            Err(Error::Truncated)
        } else if self.version() != 6 {
            Err(Error::Malformed)
        } else if Self::HEADER_LEN + usize::from(self.payload_len()) > len {
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

    /// IP version (6 on a checked packet).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }

    /// Traffic class (DSCP and ECN, like IPv4's TOS byte).
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (be16(self.buffer.as_ref(), 0) >> 4) as u8
    }

    /// Flow label (20 bits).
    #[inline]
    pub fn flow_label(&self) -> u32 {
        be32(self.buffer.as_ref(), 0) & 0x000f_ffff
    }

    /// Payload length (extension headers included).
    #[inline]
    pub fn payload_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH.start)
    }

    /// Next header of the fixed header.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NXT_HDR]
    }

    /// Hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> [u8; 16] {
        array(self.buffer.as_ref(), field::SRC_ADDR.start)
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> [u8; 16] {
        array(self.buffer.as_ref(), field::DST_ADDR.start)
    }

    /// Walks the extension headers to the upper layer. Fails with
    /// [`Error::Truncated`] when a header runs past the payload and with
    /// [`Error::TooManyHeaders`] past [`MAX_EXT_HEADERS`]. Never panics, even
    /// on an unchecked packet (the walk stays inside the buffer).
    #[inline]
    pub fn upper_layer(&self) -> Result<UpperLayer> {
        let b = self.buffer.as_ref();
        let end = (Self::HEADER_LEN + usize::from(self.payload_len())).min(b.len());
        let mut nh = self.next_header();
        let mut off = Self::HEADER_LEN;
        let mut fragment = None;
        let mut walked = 0u8;
        loop {
            let len = match nh {
                ip_proto::HOPOPT | ip_proto::IPV6_ROUTE | ip_proto::IPV6_OPTS => {
                    let Some(&units) = b.get(off + 1).filter(|_| off + 2 <= end) else {
                        return Err(Error::Truncated);
                    };
                    (usize::from(units) + 1) * 8
                }
                ip_proto::AH => {
                    let Some(&units) = b.get(off + 1).filter(|_| off + 2 <= end) else {
                        return Err(Error::Truncated);
                    };
                    (usize::from(units) + 2) * 4
                }
                ip_proto::IPV6_FRAG => 8,
                _ => {
                    return Ok(UpperLayer {
                        protocol: nh,
                        offset: off,
                        ext_headers: walked,
                        fragment,
                    })
                }
            };
            if usize::from(walked) == MAX_EXT_HEADERS {
                return Err(Error::TooManyHeaders);
            }
            if off + len > end {
                return Err(Error::Truncated);
            }
            let next = b[off];
            walked += 1;
            if nh == ip_proto::IPV6_FRAG {
                let offlg = be16(b, off + 2);
                let frag = Ipv6Fragment {
                    offset: offlg & 0xfff8,
                    more_frags: offlg & 1 != 0,
                    ident: be32(b, off + 4),
                };
                fragment = Some(frag);
                if frag.offset != 0 {
                    return Ok(UpperLayer {
                        protocol: next,
                        offset: off + len,
                        ext_headers: walked,
                        fragment,
                    });
                }
            }
            nh = next;
            off += len;
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv6Packet<&'a T> {
    /// The payload (extension headers and upper layer) up to the payload length.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        let data: &'a [u8] = self.buffer.as_ref();
        let end = Self::HEADER_LEN + usize::from(self.payload_len());
        &data[Self::HEADER_LEN..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Sets the version nibble.
    #[inline]
    pub fn set_version(&mut self, version: u8) {
        let b = &mut self.buffer.as_mut()[0];
        *b = (*b & 0x0f) | (version << 4);
    }

    /// Sets the traffic class.
    #[inline]
    pub fn set_traffic_class(&mut self, tc: u8) {
        let b = self.buffer.as_mut();
        b[0] = (b[0] & 0xf0) | (tc >> 4);
        b[1] = (b[1] & 0x0f) | (tc << 4);
    }

    /// Sets the flow label (low 20 bits of `label`).
    #[inline]
    pub fn set_flow_label(&mut self, label: u32) {
        let b = self.buffer.as_mut();
        b[1] = (b[1] & 0xf0) | ((label >> 16) as u8 & 0x0f);
        put16(b, 2, label as u16);
    }

    /// Sets the payload length.
    #[inline]
    pub fn set_payload_len(&mut self, len: u16) {
        put16(self.buffer.as_mut(), field::LENGTH.start, len);
    }

    /// Sets the next header of the fixed header.
    #[inline]
    pub fn set_next_header(&mut self, nh: u8) {
        self.buffer.as_mut()[field::NXT_HDR] = nh;
    }

    /// Sets the hop limit.
    #[inline]
    pub fn set_hop_limit(&mut self, hops: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = hops;
    }

    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, addr: [u8; 16]) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&addr);
    }

    /// Sets the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, addr: [u8; 16]) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&addr);
    }

    /// The payload, mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = Self::HEADER_LEN + usize::from(self.payload_len());
        &mut self.buffer.as_mut()[Self::HEADER_LEN..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fixed header: tc 0xb8, flow 0x12345, `payload` after it.
    fn packet(next: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0x6b, 0x81, 0x23, 0x45];
        v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        v.extend_from_slice(&[next, 64]);
        v.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        v.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn golden_fixed_header() {
        let v = packet(ip_proto::UDP, &[0; 8]);
        let p = Ipv6Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0xb8);
        assert_eq!(p.flow_label(), 0x12345);
        assert_eq!(p.payload_len(), 8);
        assert_eq!(p.next_header(), ip_proto::UDP);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src_addr()[15], 1);
        assert_eq!(p.dst_addr()[15], 2);
        let up = p.upper_layer().unwrap();
        assert_eq!(
            (up.protocol, up.offset, up.ext_headers, up.fragment),
            (ip_proto::UDP, 40, 0, None)
        );
    }

    #[test]
    fn rejects_malformed() {
        let v = packet(ip_proto::UDP, &[0; 8]);
        assert_eq!(
            Ipv6Packet::new_checked(&v[..39]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Ipv6Packet::new_checked(&v[..47]).unwrap_err(),
            Error::Truncated
        );
        let mut bad = v.clone();
        bad[0] = 0x4b;
        assert_eq!(
            Ipv6Packet::new_checked(&bad[..]).unwrap_err(),
            Error::Malformed
        );
    }

    #[test]
    fn walks_extension_headers() {
        // Hop-by-hop (8 bytes) -> dest opts (16 bytes) -> fragment (first) -> TCP.
        let mut pl = vec![ip_proto::IPV6_OPTS, 0, 0, 0, 0, 0, 0, 0];
        pl.extend_from_slice(&[ip_proto::IPV6_FRAG, 1]);
        pl.extend_from_slice(&[0; 14]);
        pl.extend_from_slice(&[ip_proto::TCP, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef]);
        pl.extend_from_slice(&[0; 20]);
        let v = packet(ip_proto::HOPOPT, &pl);
        let up = Ipv6Packet::new_checked(&v[..])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert_eq!(up.protocol, ip_proto::TCP);
        assert_eq!(up.offset, 40 + 8 + 16 + 8);
        assert_eq!(up.ext_headers, 3);
        let frag = Ipv6Fragment {
            offset: 0,
            more_frags: true,
            ident: 0xdead_beef,
        };
        assert_eq!(up.fragment, Some(frag));
    }

    #[test]
    fn later_fragment_stops_the_walk() {
        let mut pl = vec![ip_proto::UDP, 0, 0x05, 0xa8, 0, 0, 0, 7];
        pl.extend_from_slice(&[ip_proto::HOPOPT; 16]);
        let v = packet(ip_proto::IPV6_FRAG, &pl);
        let up = Ipv6Packet::new_checked(&v[..])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert_eq!((up.protocol, up.offset), (ip_proto::UDP, 48));
        assert_eq!(up.fragment.unwrap().offset, 0x5a8);
        assert!(!up.fragment.unwrap().more_frags);
    }

    #[test]
    fn walk_limits() {
        // Nine destination-options headers: one too many.
        let mut pl = Vec::new();
        for _ in 0..9 {
            pl.extend_from_slice(&[ip_proto::IPV6_OPTS, 0, 0, 0, 0, 0, 0, 0]);
        }
        let v = packet(ip_proto::IPV6_OPTS, &pl);
        let p = Ipv6Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.upper_layer().unwrap_err(), Error::TooManyHeaders);
        // Eight are fine (the last one's next header is "dest opts" again, so
        // set it to "no next header").
        let mut pl8 = pl[..64].to_vec();
        pl8[56] = ip_proto::IPV6_NONXT;
        let v = packet(ip_proto::IPV6_OPTS, &pl8);
        let up = Ipv6Packet::new_checked(&v[..])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert_eq!(
            (up.protocol, up.ext_headers, up.offset),
            (ip_proto::IPV6_NONXT, 8, 104)
        );
        // A header longer than the payload.
        let v = packet(ip_proto::HOPOPT, &[ip_proto::TCP, 1, 0, 0, 0, 0, 0, 0]);
        let p = Ipv6Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.upper_layer().unwrap_err(), Error::Truncated);
        // An extension header with no room for its first two bytes.
        let v = packet(ip_proto::HOPOPT, &[ip_proto::TCP]);
        let p = Ipv6Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.upper_layer().unwrap_err(), Error::Truncated);
        // AH counts 4-byte units plus 2: length field 1 means 12 bytes.
        let mut pl = vec![ip_proto::UDP, 1];
        pl.extend_from_slice(&[0; 10]);
        pl.extend_from_slice(&[0; 8]);
        let v = packet(ip_proto::AH, &pl);
        let up = Ipv6Packet::new_checked(&v[..])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert_eq!((up.protocol, up.offset), (ip_proto::UDP, 52));
    }

    #[test]
    fn setters() {
        let mut v = packet(ip_proto::UDP, &[0; 8]);
        let mut p = Ipv6Packet::new_checked(&mut v[..]).unwrap();
        p.set_traffic_class(0x2d);
        p.set_flow_label(0xfedcb);
        p.set_hop_limit(1);
        p.set_next_header(ip_proto::TCP);
        p.set_src_addr([3; 16]);
        p.set_dst_addr([4; 16]);
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0x2d);
        assert_eq!(p.flow_label(), 0xfedcb);
        assert_eq!((p.hop_limit(), p.next_header()), (1, ip_proto::TCP));
        assert_eq!((p.src_addr(), p.dst_addr()), ([3; 16], [4; 16]));
        p.set_payload_len(4);
        assert_eq!(p.payload_mut().len(), 4);
    }
}
