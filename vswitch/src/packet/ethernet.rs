//! Ethernet II frames, with up to two 802.1Q / 802.1ad VLAN tags.
//!
//! [`EthernetFrame`] reads the addresses, the outer ethertype (a TPID when the
//! frame is tagged), the tags and the inner ethertype that names the payload.
//! The tag walk is bounded: `new_checked` accepts at most [`MAX_VLAN_TAGS`]
//! tags (802.1ad outer + 802.1Q inner, as OVS does) and refuses a third with
//! [`Error::TooManyHeaders`], so the hot path never loops on attacker-chosen
//! input. [`EthernetFrame::tags`] does that walk once and returns what it
//! found, for the per-packet parser. TPIDs recognised are 0x8100 and 0x88a8;
//! the legacy 0x9100 is not.
//! What it deliberately does not do: 802.3 length/LLC/SNAP frames (an
//! ethertype below 0x0600 is reported as is), FCS, or pushing/popping tags
//! (that is an action, which moves bytes).

use super::{array, be16, put16, Error, Result};

/// Ethertypes the switch knows by name.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
    /// 802.1Q customer VLAN tag (C-TAG) TPID.
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service VLAN tag (S-TAG, "QinQ") TPID.
    pub const QINQ: u16 = 0x88a8;
}

/// Most tags the walk accepts (802.1ad S-TAG + 802.1Q C-TAG).
pub const MAX_VLAN_TAGS: usize = 2;

/// Byte ranges of the untagged header; a tag inserts [`field::TAG_LEN`] bytes
/// (TPID, TCI) at [`field::ETHERTYPE`], pushing the real ethertype back.
pub mod field {
    /// A byte range in the frame.
    pub type Field = core::ops::Range<usize>;
    /// Destination MAC address.
    pub const DESTINATION: Field = 0..6;
    /// Source MAC address.
    pub const SOURCE: Field = 6..12;
    /// Outer ethertype, or the TPID of the first tag.
    pub const ETHERTYPE: Field = 12..14;
    /// Start of the payload of an untagged frame.
    pub const PAYLOAD: usize = 14;
    /// Length of one VLAN tag (TPID + TCI).
    pub const TAG_LEN: usize = 4;
}

/// True for the ethertypes that announce a VLAN tag.
#[inline(always)]
pub const fn is_tpid(ethertype: u16) -> bool {
    matches!(ethertype, ethertype::VLAN | ethertype::QINQ)
}

/// One VLAN tag as it sits on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VlanTag {
    /// Tag protocol identifier: 0x8100 or 0x88a8.
    pub tpid: u16,
    /// Tag control information: PCP (3 bits), DEI (1 bit), VID (12 bits).
    pub tci: u16,
}

impl VlanTag {
    /// The VLAN id (low 12 bits of the TCI).
    #[inline]
    pub const fn vid(self) -> u16 {
        self.tci & 0x0fff
    }

    /// The priority code point (top 3 bits of the TCI).
    #[inline]
    pub const fn pcp(self) -> u8 {
        (self.tci >> 13) as u8
    }

    /// The drop-eligible indicator (formerly CFI).
    #[inline]
    pub const fn dei(self) -> bool {
        self.tci & 0x1000 != 0
    }
}

/// What one walk over a frame's tags found ([`EthernetFrame::tags`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TagWalk {
    /// Number of tags, at most [`MAX_VLAN_TAGS`].
    pub count: u8,
    /// The outer tag, if any.
    pub outer: Option<VlanTag>,
    /// The ethertype after the tags: what the payload is.
    pub ethertype: u16,
}

impl TagWalk {
    /// Length of the Ethernet header including the tags.
    #[inline]
    pub const fn header_len(&self) -> usize {
        field::PAYLOAD + self.count as usize * field::TAG_LEN
    }
}

/// A read/write view of an Ethernet II frame.
#[derive(Debug, Clone)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Length of the untagged header.
    pub const HEADER_LEN: usize = field::PAYLOAD;

    /// Wraps a buffer without checking it (see the module contract).
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// Checks the header and every tag are complete and there are at most
    /// [`MAX_VLAN_TAGS`] tags.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        self.tags().map(|_| ())
    }

    /// Walks the tags once and returns what it found, checking the frame
    /// exactly as [`check_len`](Self::check_len) does. `new_unchecked`
    /// followed by `tags()` is the one-pass form of `new_checked` followed by
    /// the tag getters, for the per-packet parser.
    #[inline]
    pub fn tags(&self) -> Result<TagWalk> {
        // Unrolled for two tags: straight-line code, no loop to predict.
        const _: () = assert!(MAX_VLAN_TAGS == 2);
        const T: usize = field::TAG_LEN;
        let b = self.buffer.as_ref();
        if b.len() < Self::HEADER_LEN {
            return Err(Error::Truncated);
        }
        let ethertype = be16(b, field::ETHERTYPE.start);
        if !is_tpid(ethertype) {
            return Ok(TagWalk {
                count: 0,
                outer: None,
                ethertype,
            });
        }
        if b.len() < Self::HEADER_LEN + T {
            return Err(Error::Truncated);
        }
        let outer = Some(VlanTag {
            tpid: ethertype,
            tci: be16(b, field::PAYLOAD),
        });
        let ethertype = be16(b, field::ETHERTYPE.start + T);
        if !is_tpid(ethertype) {
            return Ok(TagWalk {
                count: 1,
                outer,
                ethertype,
            });
        }
        if b.len() < Self::HEADER_LEN + 2 * T {
            return Err(Error::Truncated);
        }
        let ethertype = be16(b, field::ETHERTYPE.start + 2 * T);
        if is_tpid(ethertype) {
            return Err(Error::TooManyHeaders);
        }
        Ok(TagWalk {
            count: 2,
            outer,
            ethertype,
        })
    }

    /// Returns the underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Destination MAC address.
    #[inline]
    pub fn dst_addr(&self) -> [u8; 6] {
        array(self.buffer.as_ref(), field::DESTINATION.start)
    }

    /// Source MAC address.
    #[inline]
    pub fn src_addr(&self) -> [u8; 6] {
        array(self.buffer.as_ref(), field::SOURCE.start)
    }

    /// The ethertype field right after the addresses: the TPID of the first
    /// tag on a tagged frame. See [`inner_ethertype`](Self::inner_ethertype).
    #[inline]
    pub fn ethertype(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ETHERTYPE.start)
    }

    /// Number of complete VLAN tags (a TPID, a TCI and the next ethertype
    /// all inside the buffer), at most [`MAX_VLAN_TAGS`].
    #[inline]
    pub fn vlan_count(&self) -> usize {
        // Unrolled for two tags (MAX_VLAN_TAGS, asserted in `tags`).
        let b = self.buffer.as_ref();
        let tag = |n: usize| {
            b.len() >= Self::HEADER_LEN + (n + 1) * field::TAG_LEN
                && is_tpid(be16(b, field::ETHERTYPE.start + n * field::TAG_LEN))
        };
        if !tag(0) {
            0
        } else if !tag(1) {
            1
        } else {
            2
        }
    }

    /// The `i`-th tag from the outside (0 is the outer tag), if present.
    #[inline]
    pub fn vlan_tag(&self, i: usize) -> Option<VlanTag> {
        if i >= self.vlan_count() {
            return None;
        }
        let b = self.buffer.as_ref();
        let at = field::ETHERTYPE.start + i * field::TAG_LEN;
        Some(VlanTag {
            tpid: be16(b, at),
            tci: be16(b, at + 2),
        })
    }

    /// The ethertype after the tags: what the payload is.
    #[inline]
    pub fn inner_ethertype(&self) -> u16 {
        be16(
            self.buffer.as_ref(),
            field::ETHERTYPE.start + self.vlan_count() * field::TAG_LEN,
        )
    }

    /// Length of the header including the tags.
    #[inline]
    pub fn header_len(&self) -> usize {
        Self::HEADER_LEN + self.vlan_count() * field::TAG_LEN
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> EthernetFrame<&'a T> {
    /// The bytes after the header and tags.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        let data: &'a [u8] = self.buffer.as_ref();
        &data[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination MAC address.
    #[inline]
    pub fn set_dst_addr(&mut self, addr: [u8; 6]) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&addr);
    }

    /// Sets the source MAC address.
    #[inline]
    pub fn set_src_addr(&mut self, addr: [u8; 6]) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&addr);
    }

    /// Sets the ethertype right after the addresses (a TPID makes a tag).
    #[inline]
    pub fn set_ethertype(&mut self, value: u16) {
        put16(self.buffer.as_mut(), field::ETHERTYPE.start, value);
    }

    /// Sets the ethertype after the existing tags.
    #[inline]
    pub fn set_inner_ethertype(&mut self, value: u16) {
        let at = field::ETHERTYPE.start + self.vlan_count() * field::TAG_LEN;
        put16(self.buffer.as_mut(), at, value);
    }

    /// Rewrites the TCI of the `i`-th existing tag; returns false if absent.
    #[inline]
    pub fn set_vlan_tci(&mut self, i: usize, tci: u16) -> bool {
        if i >= self.vlan_count() {
            return false;
        }
        let at = field::ETHERTYPE.start + i * field::TAG_LEN + 2;
        put16(self.buffer.as_mut(), at, tci);
        true
    }

    /// The bytes after the header and tags, mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let at = self.header_len();
        &mut self.buffer.as_mut()[at..]
    }
}

/// A parsed Ethernet header with its tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EthernetRepr {
    /// Destination MAC address.
    pub dst_addr: [u8; 6],
    /// Source MAC address.
    pub src_addr: [u8; 6],
    /// The outer tag, if any.
    pub vlan: Option<VlanTag>,
    /// The inner tag; ignored (neither emitted nor counted) unless `vlan` is set.
    pub inner_vlan: Option<VlanTag>,
    /// The ethertype of the payload (after the tags).
    pub ethertype: u16,
}

impl EthernetRepr {
    /// Parses a frame (checking it first).
    pub fn parse<T: AsRef<[u8]>>(frame: &EthernetFrame<T>) -> Result<EthernetRepr> {
        frame.check_len()?;
        Ok(EthernetRepr {
            dst_addr: frame.dst_addr(),
            src_addr: frame.src_addr(),
            vlan: frame.vlan_tag(0),
            inner_vlan: frame.vlan_tag(1),
            ethertype: frame.inner_ethertype(),
        })
    }

    fn tags(&self) -> impl Iterator<Item = VlanTag> {
        let inner = self.vlan.and(self.inner_vlan);
        self.vlan.into_iter().chain(inner)
    }

    /// Bytes [`emit`](Self::emit) writes: the header and tags.
    pub fn buffer_len(&self) -> usize {
        EthernetFrame::<&[u8]>::HEADER_LEN + self.tags().count() * field::TAG_LEN
    }

    /// Writes the header and tags; panics if the buffer is shorter than
    /// [`buffer_len`](Self::buffer_len).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut EthernetFrame<T>) {
        frame.set_dst_addr(self.dst_addr);
        frame.set_src_addr(self.src_addr);
        let b = frame.buffer.as_mut();
        let mut at = field::ETHERTYPE.start;
        for tag in self.tags() {
            put16(b, at, tag.tpid);
            put16(b, at + 2, tag.tci);
            at += field::TAG_LEN;
        }
        put16(b, at, self.ethertype);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // dst ff:ff:ff:ff:ff:ff, src 02:00:00:00:00:01, ARP, 2 bytes of payload.
    const UNTAGGED: [u8; 16] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0xaa,
        0xbb,
    ];
    // 802.1ad S-TAG vid 100 pcp 5, 802.1Q C-TAG vid 200, IPv4.
    const QINQ: [u8; 22] = [
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x88, 0xa8, 0xa0, 0x64, 0x81, 0x00, 0x00, 0xc8,
        0x08, 0x00,
    ];

    #[test]
    fn untagged_golden() {
        let f = EthernetFrame::new_checked(&UNTAGGED[..]).unwrap();
        assert_eq!(f.dst_addr(), [0xff; 6]);
        assert_eq!(f.src_addr(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(f.ethertype(), ethertype::ARP);
        assert_eq!(f.inner_ethertype(), ethertype::ARP);
        assert_eq!(f.vlan_count(), 0);
        assert_eq!(f.vlan_tag(0), None);
        assert_eq!(f.header_len(), 14);
        assert_eq!(f.payload(), &[0xaa, 0xbb]);
    }

    #[test]
    fn qinq_golden() {
        let f = EthernetFrame::new_checked(&QINQ[..]).unwrap();
        assert_eq!(f.vlan_count(), 2);
        let outer = f.vlan_tag(0).unwrap();
        assert_eq!(
            (outer.tpid, outer.vid(), outer.pcp(), outer.dei()),
            (0x88a8, 100, 5, false)
        );
        assert_eq!(f.vlan_tag(1).unwrap().vid(), 200);
        assert_eq!(f.inner_ethertype(), ethertype::IPV4);
        assert_eq!(f.header_len(), 22);
        assert!(f.payload().is_empty());
        let walk = f.tags().unwrap();
        assert_eq!(
            (walk.count, walk.outer, walk.ethertype),
            (2, Some(outer), ethertype::IPV4)
        );
        assert_eq!(walk.header_len(), 22);
        let r = EthernetRepr::parse(&f).unwrap();
        let mut out = [0u8; 22];
        assert_eq!(r.buffer_len(), 22);
        r.emit(&mut EthernetFrame::new_unchecked(&mut out[..]));
        assert_eq!(out, QINQ);
    }

    #[test]
    fn tag_walk_is_bounded_and_checked() {
        assert_eq!(
            EthernetFrame::new_checked(&UNTAGGED[..13]).unwrap_err(),
            Error::Truncated
        );
        // A tag without its inner ethertype.
        assert_eq!(
            EthernetFrame::new_checked(&QINQ[..21]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            EthernetFrame::new_checked(&QINQ[..17]).unwrap_err(),
            Error::Truncated
        );
        // A third tag.
        let mut three = QINQ;
        three[20..22].copy_from_slice(&0x8100u16.to_be_bytes());
        assert_eq!(
            EthernetFrame::new_checked(&three[..]).unwrap_err(),
            Error::TooManyHeaders
        );
    }

    #[test]
    fn setters() {
        let mut buf = QINQ;
        let mut f = EthernetFrame::new_checked(&mut buf[..]).unwrap();
        f.set_dst_addr([9; 6]);
        f.set_src_addr([8; 6]);
        assert!(f.set_vlan_tci(1, 0x0fff));
        assert!(!f.set_vlan_tci(2, 1));
        f.set_inner_ethertype(ethertype::IPV6);
        assert_eq!(f.dst_addr(), [9; 6]);
        assert_eq!(f.src_addr(), [8; 6]);
        assert_eq!(f.vlan_tag(1).unwrap().vid(), 0xfff);
        assert_eq!(f.inner_ethertype(), ethertype::IPV6);
        f.set_ethertype(ethertype::IPV4);
        assert_eq!(f.vlan_count(), 0);
        assert_eq!(f.payload_mut().len(), 8);
    }
}
