//! The `ct(...)` action in the datapath: the packet goes through the
//! [`Conntrack`](crate::tables::conntrack::Conntrack) table, its key gets
//! `ct_state`/`ct_zone`/`ct_mark`, and with `nat` its headers are
//! translated.
//!
//! Semantics (OVS's, with the choices noted):
//! - The packet handed to conntrack is built from the frame without
//!   allocating: IPv4 TCP (flags, sequence numbers, window, the SYN's
//!   window scale, payload length), UDP, ICMP echo (identifier), ICMP
//!   errors with the tuple of the header they quote, other ICMP messages
//!   (`+inv`, as in OVS), other IP protocols (addresses only).
//! - Not tracked, `+trk+inv` without consulting the table: non-IPv4
//!   packets (ARP, IPv6: the table is IPv4 only; OVS's userspace conntrack
//!   gives a packet it cannot extract a key from `+inv` too, and OVS does
//!   not even accept `ct` on a flow that does not match IP), IPv4
//!   fragments (no reassembly here), and truncated L4 headers.
//! - `ct_state` always has `+trk`; `ct_zone` is the action's zone;
//!   `ct_mark` the connection's (after an `exec(set_field:V->ct_mark)` on
//!   commit, `V`).
//! - With `nat` (any form), a rewrite in the verdict is applied to the
//!   IPv4 addresses and TCP/UDP ports with incremental checksum updates;
//!   for a `+rel` ICMP error also to the quoted header (inner addresses,
//!   ports, inner IP checksum, inner TCP/UDP checksum when quoted), and
//!   the ICMP checksum is recomputed.
//! - With `nat`, a `+inv` packet of a NATed connection (and any IPv4
//!   fragment) is dropped with `ct-invalid`: it is never forwarded
//!   untranslated. A `+inv` packet of no NATed connection continues with
//!   `+trk+inv` and the flows decide.
//! - A commit the table refuses (full with nothing to evict, or a NAT
//!   collision; counted in the table's `refused`) leaves the packet
//!   `+trk+new`, untranslated; it continues and the flows decide.
//! - `ct(table=T)` continues in table T with the updated key
//!   (recirculation); the rest of the current action list is not run
//!   (OVS forks an untracked copy that runs it, which no real flow set
//!   uses). Without `table`, the next action runs with the updated key.

use std::net::Ipv4Addr;

use super::actions::{update_l4_csum, Exec, Pkt};
use super::{DropReason, Offsets};
use crate::key::{ct_state, field, FlowKey};
use crate::packet::checksum::{self, update16, update32};
use crate::packet::ip_proto;
use crate::packet::tcp::flags as tcp_flags;
use crate::tables::conntrack::{CtPacket, CtTuple, CtVerdict, L4Info, NatSpec, Rewrite, TcpSeg};

const ETH_IPV4: u64 = 0x0800;

/// ICMP types that quote the packet they are about (as conntrack's list).
#[inline]
fn icmp_is_error(t: u8) -> bool {
    matches!(t, 3 | 4 | 5 | 11 | 12)
}

/// True when the key is of an IPv4 packet.
#[inline]
pub(super) fn is_ipv4(key: &FlowKey) -> bool {
    key.get(field::DL_TYPE) == ETH_IPV4
}

/// The conntrack view of the packet in `d`, or `None` when it cannot be
/// tracked (not IPv4, a fragment, a truncated header).
pub(super) fn ct_packet(d: &[u8], key: &FlowKey, offs: &Offsets) -> Option<CtPacket> {
    if !is_ipv4(key) || key.get(field::NW_FRAG) != 0 {
        return None;
    }
    let l3 = offs.l3 as usize;
    let total = usize::from(u16::from_be_bytes([*d.get(l3 + 2)?, *d.get(l3 + 3)?]));
    let end = (l3 + total).min(d.len());
    let d = &d[..end];
    let len = total as u32;
    let src = Ipv4Addr::from(key.get(field::NW_SRC) as u32);
    let dst = Ipv4Addr::from(key.get(field::NW_DST) as u32);
    let proto = key.get(field::NW_PROTO) as u8;
    let l4 = offs.l4 as usize;
    let sport = key.get(field::TP_SRC) as u16;
    let dport = key.get(field::TP_DST) as u16;
    match proto {
        ip_proto::TCP | ip_proto::UDP | ip_proto::ICMP if l4 == 0 => None,
        ip_proto::TCP => {
            let h = d.get(l4..l4 + 20)?;
            let hlen = usize::from(h[12] >> 4) * 4;
            let flags = u16::from_be_bytes([h[12], h[13]]) & 0x01ff;
            let seq = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
            let ack = u32::from_be_bytes([h[8], h[9], h[10], h[11]]);
            let window = u16::from_be_bytes([h[14], h[15]]);
            let wscale = if flags & tcp_flags::SYN != 0 {
                window_scale(d.get(l4 + 20..l4 + hlen.max(20))?)
            } else {
                None
            };
            let seg = TcpSeg {
                flags,
                seq,
                ack,
                window,
                wscale,
                payload_len: end.saturating_sub(l4 + hlen) as u32,
            };
            Some(CtPacket::tcp((src, sport), (dst, dport), seg, len))
        }
        ip_proto::UDP => Some(CtPacket::udp((src, sport), (dst, dport), len)),
        ip_proto::ICMP => {
            let (icmp_type, code) = (sport as u8, dport as u8);
            let other = CtPacket {
                tuple: CtTuple::other(src, dst, ip_proto::ICMP),
                l4: L4Info::IcmpOther { icmp_type, code },
                len,
            };
            Some(match icmp_type {
                0 | 8 => {
                    let id = d.get(l4 + 4..l4 + 6)?;
                    let id = u16::from_be_bytes([id[0], id[1]]);
                    CtPacket::icmp_echo(src, dst, id, icmp_type == 0, len)
                }
                t if icmp_is_error(t) => match quoted(d, l4 + 8) {
                    Some(q) => CtPacket::icmp_error(src, dst, t, code, q.tuple, len),
                    None => other,
                },
                _ => other,
            })
        }
        _ => Some(CtPacket::other(src, dst, proto, len)),
    }
}

/// The window scale option of a SYN's options, if present.
fn window_scale(mut opts: &[u8]) -> Option<u8> {
    while let Some(&kind) = opts.first() {
        match kind {
            0 => return None,
            1 => opts = &opts[1..],
            _ => {
                let l = usize::from(*opts.get(1)?);
                if l < 2 || l > opts.len() {
                    return None;
                }
                if kind == 3 && l == 3 {
                    return Some(opts[2]);
                }
                opts = &opts[l..];
            }
        }
    }
    None
}

/// The header an ICMP error quotes.
struct Quoted {
    tuple: CtTuple,
    /// Start of the quoted IP header.
    l3: usize,
    /// Start of the quoted L4 header.
    l4: usize,
}

/// Parses the IPv4 header quoted at `at` (and its first L4 bytes); `d`
/// ends where the outer IP packet ends.
fn quoted(d: &[u8], at: usize) -> Option<Quoted> {
    let ih = d.get(at..at + 20)?;
    let ihl = usize::from(ih[0] & 0x0f) * 4;
    if ih[0] >> 4 != 4 || ihl < 20 {
        return None;
    }
    let proto = ih[9];
    let src = Ipv4Addr::new(ih[12], ih[13], ih[14], ih[15]);
    let dst = Ipv4Addr::new(ih[16], ih[17], ih[18], ih[19]);
    let l4 = at + ihl;
    let tuple = match proto {
        ip_proto::TCP | ip_proto::UDP => {
            let p = d.get(l4..l4 + 4)?;
            CtTuple {
                src,
                dst,
                src_port: u16::from_be_bytes([p[0], p[1]]),
                dst_port: u16::from_be_bytes([p[2], p[3]]),
                proto,
            }
        }
        ip_proto::ICMP => {
            let h = d.get(l4..l4 + 8)?;
            if h[0] != 0 && h[0] != 8 {
                return None;
            }
            CtTuple::icmp_echo(src, dst, u16::from_be_bytes([h[4], h[5]]))
        }
        _ => CtTuple::other(src, dst, proto),
    };
    Some(Quoted { tuple, l3: at, l4 })
}

impl Exec<'_> {
    /// Runs the `ct` action on `p` (not its `table=` part).
    pub(super) fn ct(
        &mut self,
        p: &mut Pkt,
        zone: u16,
        commit: bool,
        nat: Option<&NatSpec>,
        mark: Option<u32>,
    ) -> Result<(), DropReason> {
        let ct = self.pipe.conntrack();
        let pkt = ct_packet(self.pool.data(p.desc), &p.key, &p.offs);
        let v = match &pkt {
            Some(pkt) => ct.process(pkt, zone, commit, nat, mark.filter(|_| commit), self.now),
            None => CtVerdict {
                state: ct_state::TRK | ct_state::INV,
                mark: 0,
                zone,
                rewrite: None,
                inner_rewrite: None,
            },
        };
        if nat.is_some() && v.state & ct_state::INV != 0 {
            let nated = match &pkt {
                Some(pkt) => ct
                    .get(&pkt.tuple, zone, self.now)
                    .is_some_and(|e| e.snat || e.dnat),
                // An IPv4 fragment may be of a NATed connection: it cannot
                // be translated, so it must not leave as it is.
                None => is_ipv4(&p.key),
            };
            if nated {
                return Err(DropReason::CtInvalid);
            }
        }
        p.key.set(field::CT_STATE, u64::from(v.state));
        p.key.set(field::CT_ZONE, u64::from(v.zone));
        p.key.set(field::CT_MARK, u64::from(v.mark));
        if nat.is_some() {
            if let Some(r) = v.rewrite {
                self.apply_rewrite(p, &r)?;
            }
            if let Some(r) = v.inner_rewrite {
                self.rewrite_quoted(p, &r);
            }
        }
        Ok(())
    }

    /// Rewrites the packet's addresses (and TCP/UDP ports) as `r` says.
    fn apply_rewrite(&mut self, p: &mut Pkt, r: &Rewrite) -> Result<(), DropReason> {
        let proto = p.key.get(field::NW_PROTO) as u8;
        let ports = proto == ip_proto::TCP || proto == ip_proto::UDP;
        for (ends, at, port_at, nw, tp) in [
            (r.src, 12, 0, field::NW_SRC, field::TP_SRC),
            (r.dst, 16, 2, field::NW_DST, field::TP_DST),
        ] {
            let Some((ip, port)) = ends else {
                continue;
            };
            let ip = u32::from(ip);
            if u64::from(ip) != p.key.get(nw) {
                self.set_nw_addr(p, at, ip)?;
            }
            if ports && u64::from(port) != p.key.get(tp) {
                self.set_tp_port(p, port_at, port)?;
            }
        }
        Ok(())
    }

    /// Rewrites the header quoted by an ICMP error as `r` says, then
    /// recomputes the ICMP checksum. A quoted header too short to hold
    /// what changes is left alone.
    fn rewrite_quoted(&mut self, p: &mut Pkt, r: &Rewrite) {
        let l3 = p.offs.l3 as usize;
        let l4 = p.offs.l4 as usize;
        let d = self.pool.data_mut(p.desc);
        let Some(total) = d.get(l3 + 2..l3 + 4) else {
            return;
        };
        let end = (l3 + usize::from(u16::from_be_bytes([total[0], total[1]]))).min(d.len());
        let d = &mut d[..end];
        let Some(q) = quoted(d, l4 + 8) else {
            return;
        };
        let proto = q.tuple.proto;
        let ports = q.tuple.has_ports();
        for (ends, at, port_at) in [(r.src, 12, 0), (r.dst, 16, 2)] {
            let Some((ip, port)) = ends else {
                continue;
            };
            let a = q.l3 + at;
            let old = u32::from_be_bytes([d[a], d[a + 1], d[a + 2], d[a + 3]]);
            let new = u32::from(ip);
            if old != new {
                d[a..a + 4].copy_from_slice(&new.to_be_bytes());
                let c = u16::from_be_bytes([d[q.l3 + 10], d[q.l3 + 11]]);
                d[q.l3 + 10..q.l3 + 12].copy_from_slice(&update32(c, old, new).to_be_bytes());
                update_l4_csum(d, q.l4, proto, |c| update32(c, old, new));
            }
            let a = q.l4 + port_at;
            if ports {
                let old = u16::from_be_bytes([d[a], d[a + 1]]);
                if old != port {
                    d[a..a + 2].copy_from_slice(&port.to_be_bytes());
                    update_l4_csum(d, q.l4, proto, |c| update16(c, old, port));
                }
            }
        }
        d[l4 + 2..l4 + 4].fill(0);
        let c = checksum::compute(&d[l4..]);
        d[l4 + 2..l4 + 4].copy_from_slice(&c.to_be_bytes());
    }
}
