//! The VXLAN tunnel (RFC 7348): its configuration, encapsulation (what
//! `output` to the tunnel port does) and decapsulation (a stage before parse
//! for batches received on the uplink).
//!
//! The tunnel port is a logical OpenFlow port ([`VXLAN_OFPORT`], 65000) with
//! no slot of its own: frames output to it get outer headers pushed into
//! their headroom and are staged on the **uplink**, an ordinary attached
//! port. Frames received on the uplink are all expected to be VXLAN to our
//! VTEP (the XDP program hands nothing else to AF_XDP; with AF_PACKET the
//! kernel gets its own copy of everything); they are validated, stripped of
//! their outer 50 bytes and continue as packets from the tunnel port, with
//! `tun_id`/`tun_src`/`tun_dst` set in the key as OVS does.
//!
//! Decisions, recorded once:
//! - **VNI.** Encapsulation uses the low 24 bits of `tun_id` (as OVS does);
//!   when those are 0 (no `set_field:N->tun_id`) it uses the configured VNI,
//!   so flows may leave `tun_id` out. Decapsulation accepts the configured
//!   VNI only (`unknown-vni`).
//! - **Outer headers.** Ethernet from the uplink MAC to the neighbour MAC of
//!   `tun_dst` (`no-neighbor` when unknown; an entry for 0.0.0.0 is the
//!   default next hop); IPv4 with TTL 64, DF set, identification 0, TOS 0,
//!   a full header checksum; UDP to 4789 from `49152 + hash % 16384`, the
//!   hash of the inner 5-tuple (of the MACs and ethertype for non-IP frames),
//!   so underlay ECMP spreads flows but keeps each one on one path; UDP
//!   checksum 0, which RFC 7348 allows over IPv4. A received non-zero UDP
//!   checksum is not verified (the RFC's "MAY").
//! - **MTU.** The outer packet is never fragmented (DF): a frame whose outer
//!   IPv4 packet would exceed `underlay_mtu` is dropped (`mtu-exceeded`), and
//!   an inner IPv4 packet with DF set is answered with ICMP "fragmentation
//!   needed" (next-hop MTU `underlay_mtu - 50`) out of its ingress port, so
//!   the pod's path-MTU discovery converges.
//! - **Strict decapsulation.** Flags must be exactly the I bit and every
//!   reserved bit zero (`bad-vxlan`; the RFC says "ignored on receipt", but
//!   bits we would ignore belong to GBP/GPE extensions we do not implement);
//!   outer fragments are not reassembled (`bad-vxlan`); the outer IPv4
//!   header checksum is verified (`bad-ipv4`); with `vtep_mac` configured the
//!   inner destination MAC must be it (`not-our-mac`).
//!
//! Thread-safety: [`TunnelConfig`] and the neighbour map live in the control
//! side's master copy; every publish compiles them into a [`TunnelSnap`]
//! inside the immutable [`Snapshot`](super::Snapshot), so workers read them
//! lock-free and see a change at their next batch.
//!
//! What it deliberately does not do: IPv6 underlay, more than one VNI per
//! tunnel, flood to remote VTEPs (`flood`/`all`/`normal` never reach the
//! tunnel port, and skip the uplink while a tunnel is configured), ARP for
//! the underlay (the control plane fills the neighbour map), or rate-limit
//! the ICMP errors it sends.

use std::collections::{HashMap as StdHashMap, HashSet as StdHashSet};
use std::net::Ipv4Addr;

use hashbrown::{HashMap, HashSet};

use super::actions::{flow_hash, mix, Exec, Pkt};
use super::{Batch, DropReason, PortMap, WorkerCtx};
use crate::key::{field, FlowKey};
use crate::packet::ethernet::ethertype;
use crate::packet::vxlan::{self, FLAG_VNI, VXLAN_PORT};
use crate::packet::{checksum, ip_proto, EthernetFrame, Ipv4Packet, UdpPacket, VxlanPacket};
use crate::port::PacketPool;

/// OpenFlow number of the logical VXLAN port (`control::model` exports the
/// same constant; a test keeps them equal).
pub const VXLAN_OFPORT: u32 = 65000;

/// Bytes VXLAN adds in front of the inner frame: outer Ethernet (14), IPv4
/// (20), UDP (8), VXLAN (8).
pub const VXLAN_OVERHEAD: usize = 50;

/// Bytes of the outer IPv4 packet around the inner frame: IPv4, UDP, VXLAN.
const OUTER_IP_OVERHEAD: u16 = 36;

/// First UDP source port of the entropy range (the IANA dynamic ports,
/// 49152..=65535, as RFC 7348 recommends).
pub const ENTROPY_PORT_BASE: u16 = 49152;

/// Outer TTL (Linux's and OVS's default for tunnels).
const OUTER_TTL: u8 = 64;

/// The tunnel as the control plane configures it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunnelConfig {
    /// OpenFlow number of the logical tunnel port ([`VXLAN_OFPORT`]).
    pub ofport: u32,
    /// OpenFlow number of the attached port that carries the underlay.
    pub uplink_ofport: u32,
    /// VXLAN network identifier: accepted on decapsulation, and used on
    /// encapsulation when a flow leaves `tun_id` 0.
    pub vni: u32,
    /// Our VTEP address: outer source, and the only outer destination accepted.
    pub local_ip: Ipv4Addr,
    /// The uplink's MAC: outer source.
    pub local_mac: [u8; 6],
    /// If set, the only inner destination MAC accepted on decapsulation.
    pub vtep_mac: Option<[u8; 6]>,
    /// If set, the only outer sources (remote VTEPs) accepted; `None`: any.
    pub allowed_sources: Option<StdHashSet<Ipv4Addr>>,
    /// MTU of the underlay: the largest outer IPv4 packet sent.
    pub underlay_mtu: u16,
}

impl TunnelConfig {
    /// A tunnel on [`VXLAN_OFPORT`] with VNI 1, a 1500-byte underlay, any
    /// source VTEP and any inner destination MAC.
    pub fn new(local_ip: Ipv4Addr, local_mac: [u8; 6], uplink_ofport: u32) -> TunnelConfig {
        TunnelConfig {
            ofport: VXLAN_OFPORT,
            uplink_ofport,
            vni: 1,
            local_ip,
            local_mac,
            vtep_mac: None,
            allowed_sources: None,
            underlay_mtu: 1500,
        }
    }

    /// The largest inner IPv4 packet (pod MTU) this tunnel carries.
    pub fn inner_mtu(&self) -> u16 {
        self.underlay_mtu.saturating_sub(VXLAN_OVERHEAD as u16)
    }

    /// Why this configuration cannot be used, if it cannot.
    pub(super) fn check(&self) -> Result<(), &'static str> {
        if self.ofport == 0 || self.ofport > control::PortNo::MAX.0 {
            return Err("tunnel port number out of range");
        }
        if self.ofport == self.uplink_ofport {
            return Err("the tunnel port and the uplink must differ");
        }
        if self.vni > vxlan::MAX_VNI {
            return Err("VNI is not a 24-bit number");
        }
        if self.local_ip.is_unspecified() || self.local_ip.is_multicast() {
            return Err("local VTEP address must be a unicast address");
        }
        // The pod MTU must still be a legal IPv4 MTU (RFC 791: 68).
        if self.underlay_mtu < 68 + VXLAN_OVERHEAD as u16 {
            return Err("underlay MTU below 118 (68 + VXLAN overhead)");
        }
        Ok(())
    }
}

/// The tunnel as workers read it: the configuration and neighbours in wire
/// form, and the outer header template.
#[derive(Debug)]
pub struct TunnelSnap {
    /// The logical tunnel port.
    pub ofport: u32,
    /// The uplink's OpenFlow number.
    pub uplink: u32,
    /// The uplink's slot, `None` while it is not attached.
    pub uplink_slot: Option<u16>,
    /// The configured VNI.
    pub vni: u32,
    /// Our VTEP address, host order.
    pub local_ip: u32,
    /// The underlay MTU.
    pub underlay_mtu: u16,
    /// Largest inner frame that fits: `underlay_mtu - 36`.
    max_inner: u16,
    vtep_mac: Option<[u8; 6]>,
    allowed: Option<HashSet<u32>>,
    neighbors: HashMap<u32, [u8; 6]>,
    default_nh: Option<[u8; 6]>,
    /// Outer headers with every constant field filled in.
    template: [u8; VXLAN_OVERHEAD],
    /// Ones'-complement sum of the constant IPv4 header words.
    csum_base: u32,
}

impl TunnelSnap {
    /// Compiles `cfg` and `neighbors` against the port map of the snapshot.
    pub(super) fn new(
        cfg: &TunnelConfig,
        neighbors: &StdHashMap<Ipv4Addr, [u8; 6]>,
        ports: &PortMap,
    ) -> TunnelSnap {
        let local_ip = u32::from(cfg.local_ip);
        let mut t = [0u8; VXLAN_OVERHEAD];
        // Ethernet: destination filled per packet.
        t[6..12].copy_from_slice(&cfg.local_mac);
        t[12..14].copy_from_slice(&ethertype::IPV4.to_be_bytes());
        // IPv4 at 14: total length, checksum and destination per packet.
        t[14] = 0x45;
        t[20] = 0x40; // DF, fragment offset 0; identification (18..20) 0
        t[22] = OUTER_TTL;
        t[23] = ip_proto::UDP;
        t[26..30].copy_from_slice(&local_ip.to_be_bytes());
        // UDP at 34: source port and length per packet, checksum 0.
        t[36..38].copy_from_slice(&VXLAN_PORT.to_be_bytes());
        // VXLAN at 42: I flag, VNI per packet.
        t[42] = FLAG_VNI;
        let csum_base = 0x4500
            + 0x4000
            + (u32::from(OUTER_TTL) << 8 | u32::from(ip_proto::UDP))
            + (local_ip >> 16)
            + (local_ip & 0xffff);
        let default_nh = neighbors.get(&Ipv4Addr::UNSPECIFIED).copied();
        TunnelSnap {
            ofport: cfg.ofport,
            uplink: cfg.uplink_ofport,
            uplink_slot: ports.get(cfg.uplink_ofport),
            vni: cfg.vni,
            local_ip,
            underlay_mtu: cfg.underlay_mtu,
            max_inner: cfg.underlay_mtu - OUTER_IP_OVERHEAD,
            vtep_mac: cfg.vtep_mac,
            allowed: cfg
                .allowed_sources
                .as_ref()
                .map(|s| s.iter().map(|a| u32::from(*a)).collect()),
            neighbors: neighbors
                .iter()
                .map(|(ip, mac)| (u32::from(*ip), *mac))
                .collect(),
            default_nh,
            template: t,
            csum_base,
        }
    }

    /// The outer destination MAC for `dst`: its own entry, else the default
    /// next hop (the entry for 0.0.0.0).
    #[inline]
    pub fn neighbor(&self, dst: u32) -> Option<[u8; 6]> {
        self.neighbors.get(&dst).copied().or(self.default_nh)
    }

    /// The VNI to send for a packet with this `tun_id`.
    #[inline]
    pub fn vni_for(&self, tun_id: u64) -> u32 {
        match tun_id as u32 & vxlan::MAX_VNI {
            0 => self.vni,
            v => v,
        }
    }

    /// Writes the outer headers for an inner frame of `inner_len` bytes.
    #[inline]
    fn write_outer(
        &self,
        out: &mut [u8],
        nh: [u8; 6],
        dst: u32,
        sport: u16,
        vni: u32,
        inner_len: u16,
    ) {
        let out: &mut [u8; VXLAN_OVERHEAD] =
            (&mut out[..VXLAN_OVERHEAD]).try_into().expect("50 bytes");
        *out = self.template;
        out[0..6].copy_from_slice(&nh);
        let total = inner_len + OUTER_IP_OVERHEAD;
        out[16..18].copy_from_slice(&total.to_be_bytes());
        out[30..34].copy_from_slice(&dst.to_be_bytes());
        let mut sum = self.csum_base + u32::from(total) + (dst >> 16) + (dst & 0xffff);
        sum = (sum & 0xffff) + (sum >> 16);
        sum = (sum & 0xffff) + (sum >> 16);
        out[24..26].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        out[34..36].copy_from_slice(&sport.to_be_bytes());
        out[38..40].copy_from_slice(&(total - 20).to_be_bytes());
        out[46..49].copy_from_slice(&vni.to_be_bytes()[1..4]);
    }
}

/// The UDP source port for an inner packet with key `k`.
#[inline]
pub fn source_port(k: &FlowKey) -> u16 {
    let dl = k.get(field::DL_TYPE);
    let h = if dl == u64::from(ethertype::IPV4) || dl == u64::from(ethertype::IPV6) {
        flow_hash(k)
    } else {
        mix(k.w[field::DL_DST.word as usize] ^ k.w[field::DL_SRC.word as usize].rotate_left(29))
    };
    ENTROPY_PORT_BASE | (h as u16 & 0x3fff)
}

/// Stage 0 for a batch received on the uplink: validates and strips the
/// outer headers of every frame, drops (frees and counts) the rest, and
/// compacts the batch to the survivors, whose outer source addresses are
/// left in `ctx.tun_src`.
pub(super) fn decap(
    t: &TunnelSnap,
    ctx: &mut WorkerCtx,
    pool: &mut PacketPool,
    batch: &mut Batch,
    in_slot: Option<u16>,
) {
    let n = batch.len;
    let mut kept = 0;
    // One-entry cache of the allow-list: a burst usually comes from one VTEP.
    let mut allowed_src = None;
    for i in 0..n {
        let mut d = batch.descs[i];
        match check(t, pool.data(d), &mut allowed_src) {
            Ok((outer, inner, src)) => {
                pool.pull_front(&mut d, outer);
                d.len = inner;
                batch.descs[kept] = d;
                ctx.tun_src[kept] = src;
                kept += 1;
            }
            Err(r) => {
                ctx.stats.count_drop(r);
                if let Some(s) = in_slot {
                    ctx.stats.rx_dropped(s);
                }
                pool.free(d);
            }
        }
    }
    batch.len = kept;
}

/// Validates one frame from the uplink. Returns the length of its outer
/// headers, the length of the inner frame and the outer source address.
/// `allowed_src` caches the last source found in the allow-list.
#[inline(always)]
fn check(
    t: &TunnelSnap,
    frame: &[u8],
    allowed_src: &mut Option<u32>,
) -> Result<(u16, u16, u32), DropReason> {
    let eth = EthernetFrame::new_checked(frame).map_err(|_| {
        if frame.len() < EthernetFrame::<&[u8]>::HEADER_LEN {
            DropReason::TooShort
        } else {
            DropReason::NotOurVtep
        }
    })?;
    if eth.ethertype() != ethertype::IPV4 {
        return Err(DropReason::NotOurVtep);
    }
    let l3 = eth.payload();
    let ip = Ipv4Packet::new_checked(l3).map_err(|_| DropReason::BadIpv4)?;
    if u32::from_be_bytes(ip.dst_addr()) != t.local_ip || ip.protocol() != ip_proto::UDP {
        return Err(DropReason::NotOurVtep);
    }
    if !header_checksum_ok(l3, &ip) {
        return Err(DropReason::BadIpv4);
    }
    let udp = UdpPacket::new_checked(ip.payload()).map_err(|_| DropReason::BadL4)?;
    if udp.dst_port() != VXLAN_PORT {
        return Err(DropReason::NotOurVtep);
    }
    if ip.is_fragment() {
        return Err(DropReason::BadVxlan);
    }
    let vx = VxlanPacket::new_checked(udp.payload()).map_err(|_| DropReason::BadVxlan)?;
    let h = udp.payload();
    if vx.flags() != FLAG_VNI
        || h[vxlan::field::RESERVED1] != [0, 0, 0]
        || h[vxlan::field::RESERVED2] != 0
    {
        return Err(DropReason::BadVxlan);
    }
    if vx.vni() != t.vni {
        return Err(DropReason::UnknownVni);
    }
    let src = u32::from_be_bytes(ip.src_addr());
    if let Some(set) = &t.allowed {
        if *allowed_src != Some(src) {
            if !set.contains(&src) {
                return Err(DropReason::UnknownSourceVtep);
            }
            *allowed_src = Some(src);
        }
    }
    let inner = vx.payload();
    if inner.len() < EthernetFrame::<&[u8]>::HEADER_LEN {
        return Err(DropReason::BadVxlan);
    }
    if t.vtep_mac.is_some_and(|m| inner[..6] != m) {
        return Err(DropReason::NotOurMac);
    }
    let outer = EthernetFrame::<&[u8]>::HEADER_LEN
        + ip.header_len()
        + UdpPacket::<&[u8]>::HEADER_LEN
        + VxlanPacket::<&[u8]>::HEADER_LEN;
    // Both fit a u16: they are within a frame of at most 64 KiB.
    Ok((outer as u16, inner.len() as u16, src))
}

/// True when the IPv4 header at the start of `l3` (checked as `ip`)
/// verifies. The usual 20-byte header is summed inline: the generic
/// `checksum::data` call was 5% of a decapsulation in `vxlan/decap/64`.
#[inline(always)]
fn header_checksum_ok(l3: &[u8], ip: &Ipv4Packet<&[u8]>) -> bool {
    let Some(h) = l3.first_chunk::<20>().filter(|_| ip.header_len() == 20) else {
        return ip.verify_checksum();
    };
    let mut sum: u32 = 0;
    for w in h.chunks_exact(2) {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum == 0xffff
}

impl Exec<'_> {
    /// Output to the tunnel port: encapsulates the packet (the original if
    /// this is the final action, else a copy) and stages it on the uplink.
    pub(super) fn encap(&mut self, p: &mut Pkt, fin: bool) {
        let snap = self.snap;
        let Some(t) = snap.tunnel.as_ref() else {
            p.last_drop = DropReason::TunnelUnsupported;
            return;
        };
        let dst = p.key.get(field::TUN_DST) as u32;
        if dst == 0 {
            p.last_drop = DropReason::TunnelNoDestination;
            return;
        }
        let Some(slot) = t.uplink_slot else {
            p.last_drop = DropReason::NoSuchPort;
            return;
        };
        let nh = match self.ctx.tun_nb {
            Some((ip, mac)) if ip == dst => mac,
            _ => match t.neighbor(dst) {
                Some(mac) => {
                    self.ctx.tun_nb = Some((dst, mac));
                    mac
                }
                None => {
                    p.last_drop = DropReason::NoNeighbor;
                    return;
                }
            },
        };
        if p.desc.len > t.max_inner {
            p.last_drop = DropReason::MtuExceeded;
            self.frag_needed(p, t);
            return;
        }
        if usize::from(p.desc.off) < VXLAN_OVERHEAD {
            // Headroom used up by earlier pushes (VLAN tags): nowhere to put
            // the outer headers without a copy.
            p.last_drop = DropReason::NoBuffer;
            return;
        }
        let mut d = if fin && !p.consumed {
            p.consumed = true;
            p.desc
        } else {
            match self.pool.clone_packet(p.desc) {
                Some(c) => c,
                None => {
                    p.last_drop = DropReason::NoBuffer;
                    return;
                }
            }
        };
        let inner_len = d.len;
        let pushed = self.pool.push_front(&mut d, VXLAN_OVERHEAD as u16);
        debug_assert!(pushed, "headroom checked above");
        t.write_outer(
            self.pool.data_mut(d),
            nh,
            dst,
            source_port(&p.key),
            t.vni_for(p.key.get(field::TUN_ID)),
            inner_len,
        );
        self.ctx.stage(slot, d);
        p.outputs += 1;
    }

    /// Answers an inner IPv4 packet with DF set that is too big for the
    /// tunnel with ICMP "fragmentation needed" out of its ingress port.
    /// Nothing is sent for packets from the tunnel itself, fragments other
    /// than the first, ICMP errors, or when no buffer is free. The reply is
    /// not an output of the packet: it is still counted as `mtu-exceeded`.
    #[cold]
    fn frag_needed(&mut self, p: &Pkt, t: &TunnelSnap) {
        if p.key.get(field::DL_TYPE) != u64::from(ethertype::IPV4)
            || p.in_port == t.ofport
            || p.key.get(field::NW_FRAG) & u64::from(crate::key::frag::LATER) != 0
        {
            return;
        }
        let Some(slot) = self.in_slot else { return };
        let proto = p.key.get(field::NW_PROTO) as u8;
        let icmp_type = p.key.get(field::ICMP_TYPE);
        if proto == ip_proto::ICMP && icmp_type != 0 && icmp_type != 8 {
            return;
        }
        let l3 = usize::from(p.offs.l3);
        let frame = self.pool.data(p.desc);
        let ip = Ipv4Packet::new_unchecked(&frame[l3..]);
        if !ip.dont_frag() {
            return;
        }
        // RFC 792: the IP header and the first 8 bytes of its payload.
        let quoted = (ip.header_len() + 8).min(frame.len() - l3);
        let Some(mut d) = self.pool.alloc() else {
            return;
        };
        let orig = &self.ctx.keys[p.idx];
        let (pod_mac, gw_mac) = (orig.mac(field::DL_SRC), orig.mac(field::DL_DST));
        let reply_to = (p.key.get(field::NW_SRC) as u32).to_be_bytes();
        let icmp_len = 8 + quoted;
        let total = 20 + icmp_len;
        d.len = (14 + total) as u16;
        let (src_frame, dst_frame) = (p.desc, d);
        // Copy the quoted bytes first (two frames of the same pool).
        let mut q = [0u8; 68];
        q[..quoted].copy_from_slice(&self.pool.data(src_frame)[l3..l3 + quoted]);
        let out = self.pool.data_mut(dst_frame);
        out[0..6].copy_from_slice(&pod_mac);
        out[6..12].copy_from_slice(&gw_mac);
        out[12..14].copy_from_slice(&ethertype::IPV4.to_be_bytes());
        let ip = &mut out[14..34];
        ip.copy_from_slice(&[
            0x45,
            0xc0,
            0,
            0,
            0,
            0,
            0,
            0,
            OUTER_TTL,
            ip_proto::ICMP,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        ]);
        ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        ip[12..16].copy_from_slice(&t.local_ip.to_be_bytes());
        ip[16..20].copy_from_slice(&reply_to);
        let c = checksum::compute(ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let icmp = &mut out[34..34 + icmp_len];
        icmp[0] = 3; // destination unreachable
        icmp[1] = 4; // fragmentation needed and DF set
        icmp[2..6].fill(0);
        icmp[6..8].copy_from_slice(&(t.underlay_mtu - VXLAN_OVERHEAD as u16).to_be_bytes());
        icmp[8..].copy_from_slice(&q[..quoted]);
        let c = checksum::compute(icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        self.ctx.stage(slot, d);
    }
}
