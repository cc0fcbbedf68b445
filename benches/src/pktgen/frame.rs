//! The probe frame: its layout, a precomputed template, the per-frame
//! patch, and the parser the sink uses.
//!
//! A probe is Ethernet/IPv4/UDP, optionally wrapped in
//! Ethernet/IPv4/UDP(4789)/VXLAN. The UDP payload starts with an 18-byte
//! probe header, all fields big-endian:
//!
//! ```text
//!  0  magic   u16   0xC6A5
//!  2  flow    u32   flow id (0..flows)
//!  6  seq     u64   sequence number within the flow, from 0
//! 14  ts      u32   low 32 bits of CLOCK_MONOTONIC in ns at transmit
//! ```
//!
//! 18 bytes is all a 60-byte frame (the minimum Ethernet frame without FCS)
//! has after its 42 bytes of headers, so the magic is 16 bits and the
//! timestamp keeps its low 32 bits: latencies are computed modulo 2^32 ns
//! (4.29 s), far above anything a switch adds. Every field starts at an even
//! offset from the UDP header, so each adds whole 16-bit words to the UDP
//! checksum.
//!
//! [`Template`] builds the whole frame once with every per-frame field zero
//! (source port, source address, flow, seq, timestamp) and keeps the partial
//! one's-complement sums of the IPv4 header and of the UDP pseudo-header,
//! header and payload. [`Template::patch`] then writes only those fields and
//! finishes both checksums by adding their words to the stored sums
//! (RFC 1624 incremental update from a zero field): a few dozen
//! instructions per frame whatever the frame size.
//!
//! Flows: flow `f` uses UDP source port `1024 + f % 64512` and source
//! address `src_ip + f / 64512`, so every flow is a distinct 5-tuple. The
//! destination can vary too (`--dst-ports P`, `--dst-ips D`): port
//! `dst_port + f % P` and address `dst_ip + (f / P) % D`; the template then
//! leaves them zero and the patch writes them like the source fields. With
//! VXLAN the outer UDP source port also varies (`49152 + f % 16384`) as a
//! VTEP's flow-hash port would. Outer UDP checksums are zero (RFC 7348).

use std::net::Ipv4Addr;

use super::MacAddr;

/// Probe header magic.
pub const MAGIC: u16 = 0xC6A5;
/// Bytes of the probe header at the start of the UDP payload.
pub const PROBE_LEN: usize = 18;
/// Ethernet + IPv4 + UDP header bytes.
pub const HEADERS: usize = 14 + 20 + 8;
/// Smallest frame (bytes, without FCS): Ethernet minimum, fits the probe.
pub const MIN_SIZE: usize = 60;
/// Largest frame (bytes, without FCS): a 1500-byte MTU.
pub const MAX_SIZE: usize = 1514;
/// Bytes VXLAN encapsulation adds (outer Ethernet, IPv4, UDP, VXLAN).
pub const VXLAN_OVERHEAD: usize = 50;
/// Smallest VXLAN frame: the outer headers around a minimum inner frame.
pub const MIN_VXLAN_SIZE: usize = VXLAN_OVERHEAD + MIN_SIZE;
/// VXLAN UDP port.
pub const VXLAN_PORT: u16 = 4789;
/// Most flows: the sink keeps per-flow state in a table of this many slots.
pub const MAX_FLOWS: u32 = 1 << 20;
/// First UDP source port of the flow range.
pub const SPORT_BASE: u16 = 1024;
/// Source ports per source address (1024..=65535).
pub const PORTS_PER_IP: u32 = 65536 - SPORT_BASE as u32;
/// Inner source MAC of VXLAN probes (locally administered).
pub const INNER_SRC_MAC: MacAddr = MacAddr([0x02, 0x70, 0x67, 0x00, 0x00, 0x01]);
/// Inner destination MAC of VXLAN probes (locally administered).
pub const INNER_DST_MAC: MacAddr = MacAddr([0x02, 0x70, 0x67, 0x00, 0x00, 0x02]);

const ETH_IPV4: u16 = 0x0800;
const OUTER_SPORT_BASE: u16 = 49152;
const OUTER_SPORTS: u32 = 16384;

/// VXLAN encapsulation of every probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vxlan {
    /// VXLAN network identifier (24 bits).
    pub vni: u32,
    /// Outer source address (the sending VTEP).
    pub outer_src: Ipv4Addr,
    /// Outer destination address (the receiving VTEP).
    pub outer_dst: Ipv4Addr,
}

/// What the probes look like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameSpec {
    /// Ethernet source (the outer one with VXLAN).
    pub src_mac: MacAddr,
    /// Ethernet destination (the outer one with VXLAN).
    pub dst_mac: MacAddr,
    /// IPv4 source of flow 0 (of the inner packet with VXLAN).
    pub src_ip: Ipv4Addr,
    /// IPv4 destination (of the inner packet with VXLAN).
    pub dst_ip: Ipv4Addr,
    /// UDP destination port (of the inner packet with VXLAN).
    pub dst_port: u16,
    /// Frame size in bytes without FCS, as transmitted (outer frame with VXLAN).
    pub size: usize,
    /// Number of flows (distinct 5-tuples), 1..=[`MAX_FLOWS`].
    pub flows: u32,
    /// Destination ports flows spread over (`dst_port..dst_port + n`), >= 1.
    pub dst_ports: u32,
    /// Destination addresses flows spread over (`dst_ip..dst_ip + n`), >= 1.
    pub dst_ips: u32,
    /// Optional VXLAN encapsulation.
    pub vxlan: Option<Vxlan>,
}

#[cfg(test)]
impl FrameSpec {
    /// The spec the unit tests use: 198.18.0.1 -> 198.18.0.2:9, MACs
    /// 02:00:00:00:00:01 -> :02, no destination spreading.
    pub(crate) fn example(size: usize, flows: u32, vxlan: Option<Vxlan>) -> FrameSpec {
        FrameSpec {
            src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            dst_mac: MacAddr([2, 0, 0, 0, 0, 2]),
            src_ip: Ipv4Addr::new(198, 18, 0, 1),
            dst_ip: Ipv4Addr::new(198, 18, 0, 2),
            dst_port: 9,
            size,
            flows,
            dst_ports: 1,
            dst_ips: 1,
            vxlan,
        }
    }
}

/// Why a [`FrameSpec`] cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// `--size N`: must be within 60..=1514
    #[error("--size {0}: must be within {MIN_SIZE}..={MAX_SIZE}")]
    Size(usize),
    /// `--size N` too small for VXLAN
    #[error("--size {0}: VXLAN frames need at least {MIN_VXLAN_SIZE} bytes (50 of encapsulation around a 60-byte frame)")]
    VxlanSize(usize),
    /// `--flows N` out of range
    #[error("--flows {0}: must be within 1..={MAX_FLOWS}")]
    Flows(u32),
    /// `--dst-ports N` out of range
    #[error("--dst-ports {0}: must be at least 1 and keep the last port (--dst-port + N - 1) within 65535")]
    DstPorts(u32),
    /// `--dst-ips N` out of range
    #[error("--dst-ips {0}: must be at least 1 and keep the last address (--dst-ip + N - 1) within 255.255.255.255")]
    DstIps(u32),
    /// VNI wider than 24 bits
    #[error("VXLAN VNI {0} does not fit 24 bits")]
    Vni(u32),
}

/// The fields patched into each frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stamp {
    /// Flow id, `0..flows`.
    pub flow: u32,
    /// Sequence number within the flow.
    pub seq: u64,
    /// Low 32 bits of the CLOCK_MONOTONIC transmit time in ns.
    pub ts: u32,
}

/// What the sink reads back from a probe.
pub type Probe = Stamp;

/// A frame with every per-frame field zero, plus what patching needs.
#[derive(Clone, Debug)]
pub struct Template {
    bytes: Vec<u8>,
    /// Offset of the (inner) IPv4 header.
    ip: usize,
    /// Offset of the (inner) UDP header.
    udp: usize,
    /// Offset of the outer UDP header (VXLAN only).
    outer_udp: Option<usize>,
    /// Partial sum of the IPv4 header with source address and checksum zero.
    ip_sum: u32,
    /// Partial sum of pseudo-header, UDP header and payload with every
    /// per-frame field (and the checksum) zero.
    udp_sum: u32,
    src_ip: u32,
    flows: u32,
    /// Destination port and address of flow 0, and how many of each the
    /// flows spread over; with `vary_dst`, both are patched per frame.
    dst_port: u16,
    dst_ip: u32,
    dst_ports: u32,
    dst_ips: u32,
    vary_dst: bool,
}

/// Adds the big-endian 16-bit words of `b` (even length) to `sum`.
fn add_words(mut sum: u32, b: &[u8]) -> u32 {
    let mut chunks = b.chunks_exact(2);
    for w in &mut chunks {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    // Fold now so long payloads never overflow.
    fold(sum)
}

/// Folds a one's-complement sum to 16 bits.
#[inline]
fn fold(mut sum: u32) -> u32 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum
}

#[inline]
fn words32(v: u32) -> u32 {
    (v >> 16) + (v & 0xffff)
}

#[inline]
fn words64(v: u64) -> u32 {
    words32((v >> 32) as u32) + words32(v as u32)
}

/// Writes Ethernet/IPv4/UDP headers at `at` for a datagram of `udp_len`
/// bytes, with source address, source port and both checksums zero.
/// Returns the IPv4 header's partial sum.
fn write_headers(
    b: &mut [u8],
    at: usize,
    macs: (MacAddr, MacAddr),
    dst_ip: Ipv4Addr,
    dst_port: u16,
    udp_len: usize,
) -> u32 {
    let (src, dst) = macs;
    b[at..at + 6].copy_from_slice(&dst.0);
    b[at + 6..at + 12].copy_from_slice(&src.0);
    b[at + 12..at + 14].copy_from_slice(&ETH_IPV4.to_be_bytes());
    let ip = at + 14;
    let h = &mut b[ip..ip + 20];
    h[0] = 0x45;
    h[1] = 0;
    h[2..4].copy_from_slice(&((20 + udp_len) as u16).to_be_bytes());
    h[4..6].copy_from_slice(&[0, 0]); // id
    h[6..8].copy_from_slice(&0x4000u16.to_be_bytes()); // DF
    h[8] = 64; // TTL
    h[9] = 17; // UDP
    h[10..12].copy_from_slice(&[0, 0]);
    h[12..16].copy_from_slice(&[0; 4]);
    h[16..20].copy_from_slice(&dst_ip.octets());
    let ip_sum = add_words(0, h);
    let udp = ip + 20;
    b[udp..udp + 2].copy_from_slice(&[0, 0]);
    b[udp + 2..udp + 4].copy_from_slice(&dst_port.to_be_bytes());
    b[udp + 4..udp + 6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    b[udp + 6..udp + 8].copy_from_slice(&[0, 0]);
    ip_sum
}

impl Template {
    /// Builds the template for `spec`.
    pub fn new(spec: &FrameSpec) -> Result<Template, SpecError> {
        if !(MIN_SIZE..=MAX_SIZE).contains(&spec.size) {
            return Err(SpecError::Size(spec.size));
        }
        if !(1..=MAX_FLOWS).contains(&spec.flows) {
            return Err(SpecError::Flows(spec.flows));
        }
        if spec.dst_ports == 0 || u32::from(spec.dst_port) + (spec.dst_ports - 1) > 0xffff {
            return Err(SpecError::DstPorts(spec.dst_ports));
        }
        if spec.dst_ips == 0
            || u32::from(spec.dst_ip)
                .checked_add(spec.dst_ips - 1)
                .is_none()
        {
            return Err(SpecError::DstIps(spec.dst_ips));
        }
        let vary_dst = spec.dst_ports > 1 || spec.dst_ips > 1;
        // Varying destinations are patched per frame: zero in the template.
        let (t_dst_ip, t_dst_port) = if vary_dst {
            (Ipv4Addr::UNSPECIFIED, 0)
        } else {
            (spec.dst_ip, spec.dst_port)
        };
        let mut b = vec![0u8; spec.size];
        let (inner_at, outer_udp) = match &spec.vxlan {
            None => (0, None),
            Some(vx) => {
                if spec.size < MIN_VXLAN_SIZE {
                    return Err(SpecError::VxlanSize(spec.size));
                }
                if vx.vni >= 1 << 24 {
                    return Err(SpecError::Vni(vx.vni));
                }
                let udp_len = spec.size - 14 - 20;
                let ip_sum = write_headers(
                    &mut b,
                    0,
                    (spec.src_mac, spec.dst_mac),
                    vx.outer_dst,
                    VXLAN_PORT,
                    udp_len,
                );
                // The outer header is constant: finish it here.
                b[26..30].copy_from_slice(&vx.outer_src.octets());
                let sum = fold(ip_sum + words32(u32::from(vx.outer_src)));
                b[24..26].copy_from_slice(&(!(sum as u16)).to_be_bytes());
                b[42] = 0x08; // VXLAN flags: VNI valid
                b[46..49].copy_from_slice(&vx.vni.to_be_bytes()[1..]);
                (VXLAN_OVERHEAD, Some(34))
            }
        };
        let macs = match spec.vxlan {
            None => (spec.src_mac, spec.dst_mac),
            Some(_) => (INNER_SRC_MAC, INNER_DST_MAC),
        };
        let udp_len = spec.size - inner_at - 14 - 20;
        let ip_sum = write_headers(&mut b, inner_at, macs, t_dst_ip, t_dst_port, udp_len);
        let ip = inner_at + 14;
        let udp = ip + 20;
        b[udp + 8..udp + 10].copy_from_slice(&MAGIC.to_be_bytes());
        // Pseudo-header (source address zero) + UDP header + payload.
        let mut udp_sum = add_words(0, &t_dst_ip.octets());
        udp_sum += 17 + udp_len as u32;
        let udp_sum = add_words(udp_sum, &b[udp..]);
        Ok(Template {
            bytes: b,
            ip,
            udp,
            outer_udp,
            ip_sum,
            udp_sum,
            src_ip: u32::from(spec.src_ip),
            flows: spec.flows,
            dst_port: spec.dst_port,
            dst_ip: u32::from(spec.dst_ip),
            dst_ports: spec.dst_ports,
            dst_ips: spec.dst_ips,
            vary_dst,
        })
    }

    /// Frame length in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Never true: a frame has at least [`MIN_SIZE`] bytes.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Number of flows.
    pub fn flows(&self) -> u32 {
        self.flows
    }

    /// The template bytes (per-frame fields zero, checksums unfinished).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Copies the template into `buf` (exactly [`Template::len`] bytes).
    #[inline]
    pub fn write(&self, buf: &mut [u8]) {
        buf.copy_from_slice(&self.bytes);
    }

    /// Writes the per-frame fields of `s` into `buf`, which holds the
    /// template (from [`Template::write`], possibly patched before), and
    /// finishes the IPv4 and UDP checksums.
    #[inline]
    pub fn patch(&self, buf: &mut [u8], s: Stamp) {
        debug_assert_eq!(buf.len(), self.bytes.len());
        let sport = SPORT_BASE + (s.flow % PORTS_PER_IP) as u16;
        let sip = self.src_ip.wrapping_add(s.flow / PORTS_PER_IP);
        let (ip, udp) = (self.ip, self.udp);
        buf[ip + 12..ip + 16].copy_from_slice(&sip.to_be_bytes());
        let ip_csum = !(fold(self.ip_sum + words32(sip)) as u16);
        buf[ip + 10..ip + 12].copy_from_slice(&ip_csum.to_be_bytes());
        buf[udp..udp + 2].copy_from_slice(&sport.to_be_bytes());
        let p = udp + 8;
        buf[p + 2..p + 6].copy_from_slice(&s.flow.to_be_bytes());
        buf[p + 6..p + 14].copy_from_slice(&s.seq.to_be_bytes());
        buf[p + 14..p + 18].copy_from_slice(&s.ts.to_be_bytes());
        let mut sum = self.udp_sum
            + words32(sip)
            + u32::from(sport)
            + words32(s.flow)
            + words64(s.seq)
            + words32(s.ts);
        if self.vary_dst {
            let (dport, dip) = self.dst_of(s.flow);
            buf[ip + 16..ip + 20].copy_from_slice(&dip.to_be_bytes());
            buf[udp + 2..udp + 4].copy_from_slice(&dport.to_be_bytes());
            let ip_csum = !(fold(self.ip_sum + words32(sip) + words32(dip)) as u16);
            buf[ip + 10..ip + 12].copy_from_slice(&ip_csum.to_be_bytes());
            sum += words32(dip) + u32::from(dport);
        }
        let mut csum = !(fold(sum) as u16);
        if csum == 0 {
            // Zero means "no checksum" in UDP over IPv4.
            csum = 0xffff;
        }
        buf[udp + 6..udp + 8].copy_from_slice(&csum.to_be_bytes());
        if let Some(o) = self.outer_udp {
            let osport = OUTER_SPORT_BASE + (s.flow % OUTER_SPORTS) as u16;
            buf[o..o + 2].copy_from_slice(&osport.to_be_bytes());
        }
    }

    /// Whether the destination varies per flow (`--dst-ports`/`--dst-ips`).
    pub fn varies_dst(&self) -> bool {
        self.vary_dst
    }

    /// Destination port and address of flow `f`.
    #[inline]
    pub fn dst_of(&self, f: u32) -> (u16, u32) {
        let port = self.dst_port + (f % self.dst_ports) as u16;
        let ip = self.dst_ip + (f / self.dst_ports) % self.dst_ips;
        (port, ip)
    }

    /// A complete frame for `s` (tests and one-off use).
    pub fn build(&self, s: Stamp) -> Vec<u8> {
        let mut v = self.bytes.clone();
        self.patch(&mut v, s);
        v
    }
}

#[inline]
fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// Reads the probe header of a received frame: Ethernet (one optional VLAN
/// tag), IPv4, UDP, probe; a VXLAN frame (UDP port 4789) is looked into
/// once. `None` for anything else (a foreign frame).
pub fn parse_probe(frame: &[u8]) -> Option<Probe> {
    parse_at(frame, true)
}

fn parse_at(b: &[u8], may_decap: bool) -> Option<Probe> {
    let mut l3 = 14;
    let mut ethertype = be16(b, 12)?;
    if ethertype == 0x8100 || ethertype == 0x88a8 {
        ethertype = be16(b, 16)?;
        l3 = 18;
    }
    if ethertype != ETH_IPV4 {
        return None;
    }
    let vihl = *b.get(l3)?;
    let ihl = usize::from(vihl & 0x0f) * 4;
    if vihl >> 4 != 4 || ihl < 20 || *b.get(l3 + 9)? != 17 {
        return None;
    }
    // A fragment other than the first has no UDP header.
    if be16(b, l3 + 6)? & 0x1fff != 0 {
        return None;
    }
    let udp = l3 + ihl;
    let udp_len = usize::from(be16(b, udp + 4)?);
    let end = (udp + udp_len).min(b.len());
    let payload = b.get(udp + 8..end)?;
    if may_decap && be16(b, udp + 2)? == VXLAN_PORT && payload.len() >= 8 && payload[0] & 0x08 != 0
    {
        if let Some(p) = parse_at(&payload[8..], false) {
            return Some(p);
        }
    }
    if payload.len() < PROBE_LEN || be16(payload, 0)? != MAGIC {
        return None;
    }
    Some(Probe {
        flow: u32::from_be_bytes(payload[2..6].try_into().ok()?),
        seq: u64::from_be_bytes(payload[6..14].try_into().ok()?),
        ts: u32::from_be_bytes(payload[14..18].try_into().ok()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    fn spec(size: usize, flows: u32, vxlan: Option<Vxlan>) -> FrameSpec {
        FrameSpec::example(size, flows, vxlan)
    }

    #[test]
    fn destinations_vary_over_their_ranges_with_valid_checksums() {
        let mut sp = spec(60, 1000, None);
        (sp.dst_ports, sp.dst_ips) = (3, 2);
        let t = Template::new(&sp).unwrap();
        assert!(t.varies_dst());
        let mut buf = vec![0u8; 60];
        t.write(&mut buf);
        let mut seen = std::collections::HashSet::new();
        for flow in 0..12u32 {
            let s = Stamp {
                flow,
                seq: 5,
                ts: 9,
            };
            t.patch(&mut buf, s);
            assert_eq!(buf, t.build(s));
            check_inner(&buf);
            let p = SlicedPacket::from_ethernet(&buf).unwrap();
            let Some(NetSlice::Ipv4(ip)) = p.net else {
                panic!()
            };
            let Some(TransportSlice::Udp(udp)) = p.transport else {
                panic!()
            };
            let (dip, dport) = (
                Ipv4Addr::from(ip.header().destination()),
                udp.destination_port(),
            );
            assert_eq!(dport, 9 + (flow % 3) as u16);
            assert_eq!(u32::from(dip), 0xc612_0002 + (flow / 3) % 2);
            seen.insert((dip, dport));
            assert_eq!(parse_probe(&buf), Some(s));
        }
        assert_eq!(seen.len(), 6, "3 ports x 2 addresses");
        // Without spreading, the template is what it always was.
        assert!(!Template::new(&spec(60, 10, None)).unwrap().varies_dst());
        let mut bad = spec(60, 10, None);
        bad.dst_ports = 0;
        assert_eq!(Template::new(&bad).unwrap_err(), SpecError::DstPorts(0));
        (bad.dst_ports, bad.dst_port) = (2, 65535);
        assert_eq!(Template::new(&bad).unwrap_err(), SpecError::DstPorts(2));
        (bad.dst_ports, bad.dst_ips, bad.dst_ip) = (1, 2, Ipv4Addr::BROADCAST);
        assert_eq!(Template::new(&bad).unwrap_err(), SpecError::DstIps(2));
    }

    /// (IPv4 checksum ok, UDP checksum ok, source, source port, payload)
    fn check_inner(frame: &[u8]) -> (Ipv4Addr, u16, Vec<u8>) {
        let p = SlicedPacket::from_ethernet(frame).expect("parses");
        let Some(NetSlice::Ipv4(ip)) = p.net else {
            panic!("not IPv4")
        };
        let h = ip.header().to_header();
        assert_eq!(
            h.header_checksum,
            h.calc_header_checksum(),
            "IPv4 header checksum"
        );
        let Some(TransportSlice::Udp(udp)) = p.transport else {
            panic!("not UDP")
        };
        let uh = udp.to_header();
        let want = uh
            .calc_checksum_ipv4(&h, udp.payload())
            .expect("checksum computes");
        assert_eq!(uh.checksum, want, "UDP checksum");
        assert_ne!(uh.checksum, 0);
        (
            Ipv4Addr::from(h.source),
            uh.source_port,
            udp.payload().to_vec(),
        )
    }

    #[test]
    fn frames_have_valid_checksums_and_the_probe_reads_back() {
        for size in [60, 61, 64, 128, 1000, 1514] {
            let t = Template::new(&spec(size, 100_000, None)).unwrap();
            let mut buf = vec![0u8; size];
            t.write(&mut buf);
            for (flow, seq, ts) in [
                (0u32, 0u64, 0u32),
                (1, 1, 1),
                (64_511, u64::MAX, u32::MAX),
                (64_512, 0x0123_4567_89ab_cdef, 0xdead_beef),
                (99_999, 42, 7),
            ] {
                let s = Stamp { flow, seq, ts };
                // Patched in place over an earlier frame, as the sender does.
                t.patch(&mut buf, s);
                assert_eq!(buf, t.build(s));
                assert_eq!(buf.len(), size);
                let (src, sport, payload) = check_inner(&buf);
                assert_eq!(sport, 1024 + (flow % 64_512) as u16);
                assert_eq!(u32::from(src), 0xc612_0001 + flow / 64_512);
                assert_eq!(payload.len(), size - 42);
                assert_eq!(parse_probe(&buf), Some(s));
            }
        }
    }

    #[test]
    fn vxlan_wraps_the_inner_probe() {
        let vx = Vxlan {
            vni: 0x12_3456,
            outer_src: Ipv4Addr::new(198, 18, 1, 1),
            outer_dst: Ipv4Addr::new(198, 18, 1, 2),
        };
        let t = Template::new(&spec(200, 8, Some(vx))).unwrap();
        let s = Stamp {
            flow: 5,
            seq: 77,
            ts: 123,
        };
        let f = t.build(s);
        assert_eq!(f.len(), 200);
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(etherparse::LinkSlice::Ethernet2(eth)) = p.link else {
            panic!("no Ethernet")
        };
        assert_eq!(eth.source(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(eth.destination(), [2, 0, 0, 0, 0, 2]);
        let Some(NetSlice::Ipv4(ip)) = p.net else {
            panic!("outer not IPv4")
        };
        let h = ip.header().to_header();
        assert_eq!(h.header_checksum, h.calc_header_checksum());
        assert_eq!(h.source, [198, 18, 1, 1]);
        assert_eq!(h.destination, [198, 18, 1, 2]);
        let Some(TransportSlice::Udp(udp)) = p.transport else {
            panic!("outer not UDP")
        };
        assert_eq!(udp.destination_port(), 4789);
        assert_eq!(udp.source_port(), 49152 + 5);
        assert_eq!(udp.checksum(), 0);
        let vxh = udp.payload();
        assert_eq!(vxh[0], 0x08);
        assert_eq!(&vxh[4..7], &[0x12, 0x34, 0x56]);
        let inner = &vxh[8..];
        assert_eq!(inner.len(), 150);
        assert_eq!(&inner[..6], &INNER_DST_MAC.0);
        assert_eq!(&inner[6..12], &INNER_SRC_MAC.0);
        let (src, sport, _) = check_inner(inner);
        assert_eq!(src, Ipv4Addr::new(198, 18, 0, 1));
        assert_eq!(sport, 1029);
        // The sink reads the inner probe, decapsulated or not.
        assert_eq!(parse_probe(&f), Some(s));
        assert_eq!(parse_probe(inner), Some(s));
    }

    #[test]
    fn bad_specs_are_refused() {
        assert_eq!(
            Template::new(&spec(59, 1, None)).unwrap_err(),
            SpecError::Size(59)
        );
        assert_eq!(
            Template::new(&spec(1515, 1, None)).unwrap_err(),
            SpecError::Size(1515)
        );
        assert_eq!(
            Template::new(&spec(60, 0, None)).unwrap_err(),
            SpecError::Flows(0)
        );
        let vx = Vxlan {
            vni: 1,
            outer_src: Ipv4Addr::new(198, 18, 1, 1),
            outer_dst: Ipv4Addr::new(198, 18, 1, 2),
        };
        assert_eq!(
            Template::new(&spec(109, 1, Some(vx))).unwrap_err(),
            SpecError::VxlanSize(109)
        );
        assert!(Template::new(&spec(110, 1, Some(vx))).is_ok());
        let big = Vxlan { vni: 1 << 24, ..vx };
        assert_eq!(
            Template::new(&spec(200, 1, Some(big))).unwrap_err(),
            SpecError::Vni(1 << 24)
        );
    }

    #[test]
    fn foreign_frames_are_not_probes() {
        let t = Template::new(&spec(60, 1, None)).unwrap();
        let good = t.build(Stamp::default());
        assert!(parse_probe(&good).is_some());
        let mut f = good.clone();
        f[42] ^= 0xff; // magic
        assert!(parse_probe(&f).is_none());
        let mut f = good.clone();
        f[23] = 6; // TCP
        assert!(parse_probe(&f).is_none());
        let mut f = good.clone();
        f[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
        assert!(parse_probe(&f).is_none());
        assert!(parse_probe(&good[..59]).is_none(), "truncated probe");
        assert!(parse_probe(&[]).is_none());
        assert!(parse_probe(&good[..20]).is_none());
        // A VLAN tag is looked through.
        let mut tagged = good[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0, 0, 7]);
        tagged.extend_from_slice(&good[12..]);
        assert_eq!(parse_probe(&tagged), Some(Stamp::default()));
    }
}
