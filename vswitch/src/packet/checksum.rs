//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! [`data`] folds the ones'-complement sum of a byte slice, [`combine`] adds
//! partial sums, and the pseudo-header helpers give the extra sum TCP, UDP and
//! ICMPv6 checksums cover. A checksum field holds the complement of the total:
//! `!combine(&[pseudo, data(segment)])`.
//!
//! NAT and TTL rewrites use the incremental helpers instead of summing the
//! packet again: [`update16`] and [`update32`] implement RFC 1624 equation 3,
//! `HC' = ~(~HC + ~m + m')`, which never yields the wrong zero that equation 2
//! can. The UDP variants keep UDP's special case: a checksum field of 0 means
//! "no checksum" and stays 0, and a computed 0 is sent as 0xffff.
//!
//! What it deliberately does not do: hardware offload or SIMD summing; the
//! packets this switch sums in full are small (headers, ICMP errors).

use super::ip_proto;

/// Folds a 32-bit accumulator into 16 bits with end-around carry.
#[inline(always)]
const fn fold(mut sum: u32) -> u16 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// The folded ones'-complement sum of `data` (not complemented); an odd
/// trailing byte is padded with a zero byte, as RFC 1071 says.
pub fn data(data: &[u8]) -> u16 {
    // A u64 accumulator cannot overflow for any slice that fits in memory
    // with 16-bit words (2^48 words).
    let mut sum: u64 = 0;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        sum += (w >> 48) + ((w >> 32) & 0xffff) + ((w >> 16) & 0xffff) + (w & 0xffff);
    }
    let mut words = chunks.remainder().chunks_exact(2);
    for c in &mut words {
        sum += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = words.remainder() {
        sum += u64::from(*last) << 8;
    }
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    fold(sum as u32)
}

/// Adds partial sums (ones' complement).
pub fn combine(sums: &[u16]) -> u16 {
    fold(sums.iter().map(|s| u32::from(*s)).sum())
}

/// The complemented checksum of `data` alone (what an IPv4 header or ICMPv4
/// message carries).
#[inline]
pub fn compute(bytes: &[u8]) -> u16 {
    !data(bytes)
}

/// The sum of the IPv4 pseudo header (RFC 793 / 768): addresses, protocol
/// and the upper-layer length.
pub fn pseudo_header_v4(src: [u8; 4], dst: [u8; 4], protocol: u8, len: u16) -> u16 {
    let words = [
        u16::from_be_bytes([src[0], src[1]]),
        u16::from_be_bytes([src[2], src[3]]),
        u16::from_be_bytes([dst[0], dst[1]]),
        u16::from_be_bytes([dst[2], dst[3]]),
        u16::from(protocol),
        len,
    ];
    combine(&words)
}

/// The sum of the IPv6 pseudo header (RFC 8200 §8.1).
pub fn pseudo_header_v6(src: [u8; 16], dst: [u8; 16], next_header: u8, len: u32) -> u16 {
    combine(&[data(&src), data(&dst), fold(len), u16::from(next_header)])
}

/// RFC 1624 eqn. 3: the checksum after one 16-bit word of the covered data
/// changed from `old` to `new`.
#[inline]
pub const fn update16(csum: u16, old: u16, new: u16) -> u16 {
    !fold(!csum as u32 + !old as u32 + new as u32)
}

/// [`update16`] for a 32-bit field (an IPv4 address), both halves at once.
#[inline]
pub const fn update32(csum: u16, old: u32, new: u32) -> u16 {
    let sum = !csum as u32
        + !(old >> 16) as u16 as u32
        + !(old as u16) as u32
        + (new >> 16)
        + (new & 0xffff);
    !fold(sum)
}

/// UDP's rule on top of an update: 0 ("no checksum") stays 0; a result of 0
/// is sent as 0xffff.
#[inline]
const fn udp_rule(csum: u16, updated: u16) -> u16 {
    if csum == 0 {
        0
    } else if updated == 0 {
        0xffff
    } else {
        updated
    }
}

/// [`update16`] for a UDP checksum (a port rewrite).
#[inline]
pub const fn update16_udp(csum: u16, old: u16, new: u16) -> u16 {
    udp_rule(csum, update16(csum, old, new))
}

/// [`update32`] for a UDP checksum.
#[inline]
pub const fn update32_udp(csum: u16, old: u32, new: u32) -> u16 {
    udp_rule(csum, update32(csum, old, new))
}

/// The TCP or UDP checksum (`protocol` from the IPv4 header) after an IPv4
/// source or destination address changed, through the pseudo header. Any
/// other protocol's checksum (ICMP has no pseudo header) is returned as is.
#[inline]
pub const fn update_l4_for_ipv4_addr(protocol: u8, csum: u16, old: [u8; 4], new: [u8; 4]) -> u16 {
    let (old, new) = (u32::from_be_bytes(old), u32::from_be_bytes(new));
    match protocol {
        ip_proto::TCP => update32(csum, old, new),
        ip_proto::UDP => update32_udp(csum, old, new),
        _ => csum,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The RFC 1071 reference: one word at a time, u32, fold at the end.
    fn reference(bytes: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        for c in bytes.chunks(2) {
            let w = if c.len() == 2 {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from(c[0]) << 8
            };
            sum += u32::from(w);
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2.
        assert_eq!(
            data(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0xddf2
        );
        assert_eq!(
            compute(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
        assert_eq!(data(&[]), 0);
        assert_eq!(data(&[0xab]), 0xab00);
    }

    #[test]
    fn ipv4_header_golden() {
        // A real IPv4 header whose checksum is 0xb861.
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(compute(&h), 0xb861);
        h[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert_eq!(data(&h), 0xffff);
    }

    #[test]
    fn udp_zero_rules() {
        assert_eq!(update16_udp(0, 1234, 80), 0);
        assert_eq!(update32_udp(0, 1, 2), 0);
        // ~0x1234 + ~0 + 0x1234 folds to 0xffff: the plain update gives 0,
        // which UDP sends as 0xffff.
        assert_eq!(update16(0x1234, 0, 0x1234), 0);
        assert_eq!(update16_udp(0x1234, 0, 0x1234), 0xffff);
        assert_eq!(
            update_l4_for_ipv4_addr(ip_proto::ICMP, 7, [1; 4], [2; 4]),
            7
        );
    }

    proptest! {
        #[test]
        fn fast_sum_matches_reference(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert_eq!(data(&bytes), reference(&bytes));
        }

        /// Changing one word and updating equals summing again (the data is
        /// never all zeros: word 0 is forced non-zero, as every real header is).
        #[test]
        fn update16_equals_recompute(
            mut bytes in proptest::collection::vec(any::<u8>(), 2..64),
            idx in any::<prop::sample::Index>(),
            new in any::<u16>(),
        ) {
            let n = bytes.len() / 2;
            bytes[0] |= 1;
            let i = idx.index(n);
            let old = u16::from_be_bytes([bytes[2 * i], bytes[2 * i + 1]]);
            let before = compute(&bytes);
            let new = if i == 0 { new | 0x100 } else { new };
            bytes[2 * i..2 * i + 2].copy_from_slice(&new.to_be_bytes());
            prop_assert_eq!(update16(before, old, new), compute(&bytes));
        }

        #[test]
        fn update32_equals_recompute(
            mut bytes in proptest::collection::vec(any::<u8>(), 8..64),
            new in any::<u32>(),
        ) {
            bytes[0] |= 1;
            let old = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
            let before = compute(&bytes);
            bytes[4..8].copy_from_slice(&new.to_be_bytes());
            prop_assert_eq!(update32(before, old, new), compute(&bytes));
        }

        /// A UDP segment's checksum after a NAT of the source address, updated
        /// incrementally, equals the full computation with UDP's 0 -> 0xffff rule.
        #[test]
        fn udp_addr_update_equals_recompute(
            src in any::<[u8; 4]>(),
            dst in any::<[u8; 4]>(),
            new_src in any::<[u8; 4]>(),
            payload in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let full = |src: [u8; 4], payload: &[u8]| {
                let len = (8 + payload.len()) as u16;
                let mut seg = vec![0x12, 0x34, 0x00, 0x35];
                seg.extend_from_slice(&len.to_be_bytes());
                seg.extend_from_slice(&[0, 0]);
                seg.extend_from_slice(payload);
                let c = !combine(&[pseudo_header_v4(src, dst, ip_proto::UDP, len), data(&seg)]);
                if c == 0 { 0xffff } else { c }
            };
            let before = full(src, &payload);
            let after = update_l4_for_ipv4_addr(ip_proto::UDP, before, src, new_src);
            prop_assert_eq!(after, full(new_src, &payload));
            prop_assert_eq!(update_l4_for_ipv4_addr(ip_proto::UDP, 0, src, new_src), 0);
        }

        #[test]
        fn tcp_addr_update_equals_recompute(
            src in any::<[u8; 4]>(),
            dst in any::<[u8; 4]>(),
            new_dst in any::<[u8; 4]>(),
            seg in proptest::collection::vec(any::<u8>(), 20..60),
        ) {
            let full = |dst: [u8; 4]| {
                let len = seg.len() as u16;
                !combine(&[pseudo_header_v4(src, dst, ip_proto::TCP, len), data(&seg)])
            };
            let after = update_l4_for_ipv4_addr(ip_proto::TCP, full(dst), dst, new_dst);
            prop_assert_eq!(after, full(new_dst));
        }
    }
}
