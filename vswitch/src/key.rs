//! The flow key: every match field of a packet in a fixed-size array of words.
//!
//! Extraction (`pipeline::extract`) fills a [`FlowKey`] from a frame without
//! allocating; the classifier and the exact-match cache compare keys under a
//! mask of the same shape, word by word, the way OVS's miniflow does. Field
//! positions are data ([`Field`]), so the control plane's matches compile into
//! a (value, mask) pair of keys once, when a flow is installed.
//!
//! Layout (bit 63 is the most significant bit of a word):
//!
//! | word | bits 63..32 | bits 31..0 |
//! |---|---|---|
//! | 0 | `dl_dst` (48 bits, 63..16) | `dl_type` (15..0) |
//! | 1 | `dl_src` (48 bits, 63..16) | `vlan_tci` (15..0; `0x1000` = tag present) |
//! | 2 | `nw_src` / `arp_spa` | `nw_dst` / `arp_tpa` |
//! | 3 | `nw_proto`/`arp_op` (63..56), `nw_ttl`, `nw_tos`, `nw_frag` (39..32) | `tp_src` (31..16), `tp_dst` (15..0); ICMP type/code |
//! | 4 | `in_port` | `ct_zone` (31..16), `ct_state` (15..0) |
//! | 5 | `tun_id` (64 bits) | |
//! | 6 | `tun_src` | `tun_dst` |
//! | 7 | `ct_mark` | reserved (zero) |
//! | 8..11 | `reg0`, `reg2`, `reg4`, `reg6` | `reg1`, `reg3`, `reg5`, `reg7` |
//!
//! As in OVS, ARP reuses the IPv4 fields (opcode in `nw_proto`, SPA/TPA in
//! `nw_src`/`nw_dst`) and ICMP puts type and code in `tp_src`/`tp_dst`.

use std::fmt;

/// Number of 64-bit words in a key.
pub const KEY_WORDS: usize = 12;

/// A packet's match fields, or a mask over them (a set bit means "compare").
#[derive(Clone, Copy, Eq, Default)]
#[repr(C, align(32))]
pub struct FlowKey {
    /// The raw words; use [`FlowKey::get`] and [`FlowKey::set`] with a [`Field`].
    pub w: [u64; KEY_WORDS],
}

impl PartialEq for FlowKey {
    /// Word by word without early exit (no `memcmp` call; vectorizes).
    #[inline(always)]
    fn eq(&self, other: &FlowKey) -> bool {
        let mut diff = 0u64;
        for i in 0..KEY_WORDS {
            diff |= self.w[i] ^ other.w[i];
        }
        diff == 0
    }
}

impl std::hash::Hash for FlowKey {
    /// The words, as the derived `Hash` would (consistent with `eq`).
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.w.hash(state);
    }
}

const _: () = assert!(
    KEY_WORDS.is_multiple_of(4),
    "hash_words takes the words four at a time"
);

/// The hash of [`FlowKey::hash64`] over the words `word(0..KEY_WORDS)`.
#[inline(always)]
fn hash_words(word: impl Fn(usize) -> u64) -> u64 {
    const M: u64 = 0x517c_c1b7_2722_0a95;
    let mut lane = [
        0x9e37_79b9_7f4a_7c15u64,
        0xc2b2_ae3d_27d4_eb4f,
        0x1656_67b1_9e37_79f9,
        0x27d4_eb2f_1656_67c5,
    ];
    for i in (0..KEY_WORDS).step_by(4) {
        for (j, l) in lane.iter_mut().enumerate() {
            *l = (*l ^ word(i + j)).wrapping_mul(M);
        }
    }
    let h = lane[0] ^ lane[1].rotate_left(16) ^ lane[2].rotate_left(32) ^ lane[3].rotate_left(48);
    let h = (h ^ (h >> 29)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 32)
}

/// Where a field lives in a [`FlowKey`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Field {
    /// Index of the word.
    pub word: u8,
    /// Position of the field's least significant bit in the word.
    pub shift: u8,
    /// Width in bits (1..=64).
    pub bits: u8,
}

impl Field {
    const fn new(word: u8, shift: u8, bits: u8) -> Field {
        Field { word, shift, bits }
    }

    /// All-ones value of the field's width.
    #[inline]
    pub const fn max(self) -> u64 {
        if self.bits == 64 {
            u64::MAX
        } else {
            (1u64 << self.bits) - 1
        }
    }
}

/// The fields, by OVS name.
pub mod field {
    use super::Field;
    pub const DL_DST: Field = Field::new(0, 16, 48);
    pub const DL_TYPE: Field = Field::new(0, 0, 16);
    pub const DL_SRC: Field = Field::new(1, 16, 48);
    pub const VLAN_TCI: Field = Field::new(1, 0, 16);
    pub const NW_SRC: Field = Field::new(2, 32, 32);
    pub const NW_DST: Field = Field::new(2, 0, 32);
    pub const NW_PROTO: Field = Field::new(3, 56, 8);
    pub const NW_TTL: Field = Field::new(3, 48, 8);
    pub const NW_TOS: Field = Field::new(3, 40, 8);
    pub const NW_FRAG: Field = Field::new(3, 32, 8);
    pub const TP_SRC: Field = Field::new(3, 16, 16);
    pub const TP_DST: Field = Field::new(3, 0, 16);
    pub const IN_PORT: Field = Field::new(4, 32, 32);
    pub const CT_ZONE: Field = Field::new(4, 16, 16);
    pub const CT_STATE: Field = Field::new(4, 0, 16);
    pub const TUN_ID: Field = Field::new(5, 0, 64);
    pub const TUN_SRC: Field = Field::new(6, 32, 32);
    pub const TUN_DST: Field = Field::new(6, 0, 32);
    pub const CT_MARK: Field = Field::new(7, 32, 32);
    /// `reg0`..`reg7`.
    pub const REGS: [Field; 8] = [
        Field::new(8, 32, 32),
        Field::new(8, 0, 32),
        Field::new(9, 32, 32),
        Field::new(9, 0, 32),
        Field::new(10, 32, 32),
        Field::new(10, 0, 32),
        Field::new(11, 32, 32),
        Field::new(11, 0, 32),
    ];
    /// ARP aliases (OVS semantics).
    pub const ARP_OP: Field = NW_PROTO;
    pub const ARP_SPA: Field = NW_SRC;
    pub const ARP_TPA: Field = NW_DST;
    /// ICMP aliases (OVS semantics).
    pub const ICMP_TYPE: Field = TP_SRC;
    pub const ICMP_CODE: Field = TP_DST;
}

/// `vlan_tci` bit that marks "an 802.1Q tag is present" (OVS's CFI convention).
pub const VLAN_PRESENT: u16 = 0x1000;
/// `vlan_tci` bits of the VLAN id.
pub const VLAN_VID_MASK: u16 = 0x0fff;

/// `nw_frag` bits, as in OVS.
pub mod frag {
    /// The packet is a fragment (first or later).
    pub const ANY: u8 = 0x01;
    /// The packet is a non-first fragment: no L4 header.
    pub const LATER: u8 = 0x02;
}

/// `ct_state` flag bits, with OVS's values.
pub mod ct_state {
    pub const NEW: u16 = 0x01;
    pub const EST: u16 = 0x02;
    pub const REL: u16 = 0x04;
    pub const RPL: u16 = 0x08;
    pub const INV: u16 = 0x10;
    pub const TRK: u16 = 0x20;
    pub const SNAT: u16 = 0x40;
    pub const DNAT: u16 = 0x80;
}

impl FlowKey {
    /// The key with every bit set: as a mask, "match all fields exactly".
    pub const EXACT: FlowKey = FlowKey {
        w: [u64::MAX; KEY_WORDS],
    };

    /// Reads a field (right-aligned).
    #[inline(always)]
    pub fn get(&self, f: Field) -> u64 {
        (self.w[f.word as usize] >> f.shift) & f.max()
    }

    /// Writes a field; bits of `v` above the field's width are ignored.
    #[inline(always)]
    pub fn set(&mut self, f: Field, v: u64) {
        let m = f.max() << f.shift;
        let w = &mut self.w[f.word as usize];
        *w = (*w & !m) | ((v << f.shift) & m);
    }

    /// This key with every bit outside `mask` cleared.
    #[inline(always)]
    pub fn masked(&self, mask: &FlowKey) -> FlowKey {
        let mut out = FlowKey::default();
        for i in 0..KEY_WORDS {
            out.w[i] = self.w[i] & mask.w[i];
        }
        out
    }

    /// True when `self` equals `value` on every bit of `mask`
    /// (`value` is expected to be pre-masked).
    #[inline(always)]
    pub fn matches(&self, value: &FlowKey, mask: &FlowKey) -> bool {
        let mut diff = 0u64;
        for i in 0..KEY_WORDS {
            diff |= (self.w[i] & mask.w[i]) ^ value.w[i];
        }
        diff == 0
    }

    /// A fast, non-cryptographic hash of the key (for caches and subtables).
    ///
    /// Four independent multiply lanes over the words (word `i` in lane
    /// `i % 4`), then one mixing round: the dependency chain is four
    /// multiplies instead of twelve, which matters because every table
    /// lookup (exact-match cache, each classifier subtable) starts with it.
    #[inline(always)]
    pub fn hash64(&self) -> u64 {
        hash_words(|i| self.w[i])
    }

    /// The hash of `self` under `mask`, equal to `self.masked(mask).hash64()`.
    #[inline(always)]
    pub fn hash_masked(&self, mask: &FlowKey) -> u64 {
        hash_words(|i| self.w[i] & mask.w[i])
    }

    /// True when no bit is set (as a mask: matches everything).
    pub fn is_zero(&self) -> bool {
        self.w.iter().all(|w| *w == 0)
    }

    /// Number of set bits (as a mask: how specific it is).
    pub fn count_ones(&self) -> u32 {
        self.w.iter().map(|w| w.count_ones()).sum()
    }

    /// Returns the 6 bytes of a 48-bit MAC field.
    #[inline]
    pub fn mac(&self, f: Field) -> [u8; 6] {
        let b = self.get(f).to_be_bytes();
        [b[2], b[3], b[4], b[5], b[6], b[7]]
    }

    /// Writes a 48-bit MAC field from 6 bytes.
    #[inline]
    pub fn set_mac(&mut self, f: Field, mac: [u8; 6]) {
        let v = u64::from_be_bytes([0, 0, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]]);
        self.set(f, v);
    }
}

impl fmt::Debug for FlowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FlowKey[")?;
        for (i, w) in self.w.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{w:016x}")?;
        }
        f.write_str("]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_do_not_overlap_and_round_trip() {
        let all = [
            field::DL_DST,
            field::DL_TYPE,
            field::DL_SRC,
            field::VLAN_TCI,
            field::NW_SRC,
            field::NW_DST,
            field::NW_PROTO,
            field::NW_TTL,
            field::NW_TOS,
            field::NW_FRAG,
            field::TP_SRC,
            field::TP_DST,
            field::IN_PORT,
            field::CT_ZONE,
            field::CT_STATE,
            field::TUN_ID,
            field::TUN_SRC,
            field::TUN_DST,
            field::CT_MARK,
        ]
        .into_iter()
        .chain(field::REGS);
        let mut seen = FlowKey::default();
        for f in all {
            let mut k = FlowKey::default();
            k.set(f, u64::MAX);
            assert_eq!(k.get(f), f.max());
            assert_eq!(k.count_ones(), u32::from(f.bits));
            assert!(k.masked(&seen).is_zero(), "{f:?} overlaps another field");
            for i in 0..KEY_WORDS {
                seen.w[i] |= k.w[i];
            }
        }
    }

    #[test]
    fn mask_and_hash_agree() {
        let mut k = FlowKey::default();
        k.set_mac(field::DL_DST, [1, 2, 3, 4, 5, 6]);
        k.set(field::NW_DST, 0x0a00_0001);
        let mut m = FlowKey::default();
        m.set(field::NW_DST, 0xffff_ff00);
        assert_eq!(k.hash_masked(&m), k.masked(&m).hash64());
        assert!(k.matches(&k.masked(&m), &m));
        assert_eq!(k.mac(field::DL_DST), [1, 2, 3, 4, 5, 6]);
    }
}
