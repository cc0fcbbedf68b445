//! Action execution: what happens to one packet after a flow matched.
//!
//! OpenFlow "apply-actions" semantics, as OVS implements them: actions run in
//! order on the packet as it is at that point; each output emits the packet
//! in its current state; `resubmit` looks up another table and runs that
//! flow's actions, then continues; `goto_table` continues in another table
//! and ends this list. Header rewrites keep the key in step, so later tables
//! match on the rewritten packet.
//!
//! Zero copy where it is safe: the action that ends the whole action chain
//! (the *final* one) sends the original buffer; any earlier output sends a
//! copy, because later actions may still change the packet.

use control::flow::GroupType;

use super::flows::{DpAction, DpFlow, MAX_DEPTH};
use super::{lookup, DropReason, Offsets, Pipeline, Snapshot, WorkerCtx, MISS};
use crate::key::{field, FlowKey, VLAN_PRESENT};
use crate::packet::checksum::{update16, update32};
use crate::port::{Desc, PacketPool};
use crate::tables::Learn;

const ETH_IPV4: u64 = 0x0800;
const ETH_IPV6: u64 = 0x86dd;
const TPID_8021Q: u16 = 0x8100;
/// Most VLAN tags a frame may carry after `push_vlan` (the parser walks two).
const MAX_VLAN_TAGS: u8 = 2;

/// A packet in flight through the actions.
#[derive(Debug)]
pub(super) struct Pkt {
    pub desc: Desc,
    pub key: FlowKey,
    pub offs: Offsets,
    /// The port the packet arrived on (never changed by resubmit; the
    /// tunnel port for a decapsulated packet).
    pub in_port: u32,
    /// Position in the batch (its parsed key is `ctx.keys[idx]`).
    pub idx: usize,
    /// The original buffer has been handed to a port.
    pub consumed: bool,
    /// Copies or originals sent so far.
    pub outputs: u32,
    /// Why the packet would be dropped if nothing is sent.
    pub last_drop: DropReason,
}

/// Stop processing this packet's actions, for this reason.
type Stop = DropReason;

pub(super) struct Exec<'a> {
    pub pipe: &'a Pipeline,
    pub snap: &'a Snapshot,
    pub ctx: &'a mut WorkerCtx,
    pub pool: &'a mut PacketPool,
    pub now: u64,
    /// Slot of the port the batch was received on (the uplink for a
    /// decapsulated batch), for its rx-dropped counter.
    pub in_slot: Option<u16>,
}

impl Exec<'_> {
    /// Runs a matched flow: counts it, then its actions.
    #[inline]
    pub fn run_flow(&mut self, p: &mut Pkt, flow: &DpFlow, table: u8, depth: u8, tail_final: bool) {
        if let Err(r) = self.apply_flow(p, flow, table, depth, tail_final) {
            p.last_drop = r;
        }
    }

    /// Counts a matched flow and runs its actions (none: `drop-action`).
    #[inline]
    fn apply_flow(
        &mut self,
        p: &mut Pkt,
        flow: &DpFlow,
        table: u8,
        depth: u8,
        fin: bool,
    ) -> Result<(), Stop> {
        flow.stats(self.ctx.id).hit(u64::from(p.desc.len));
        if flow.actions.is_empty() {
            p.last_drop = DropReason::Action;
            return Ok(());
        }
        self.run(p, &flow.actions, table, depth, fin)
    }

    /// Frees the original if no port took it and counts a drop if nothing was sent.
    pub fn finish(&mut self, p: &mut Pkt) {
        if !p.consumed {
            self.pool.free(p.desc);
        }
        if p.outputs == 0 {
            self.ctx.stats.count_drop(p.last_drop);
            if let Some(s) = self.in_slot {
                self.ctx.stats.rx_dropped(s);
            }
        }
    }

    fn run(
        &mut self,
        p: &mut Pkt,
        acts: &[DpAction],
        table: u8,
        depth: u8,
        tail_final: bool,
    ) -> Result<(), Stop> {
        let last = acts.len().saturating_sub(1);
        for (i, a) in acts.iter().enumerate() {
            let fin = tail_final && i == last;
            match a {
                DpAction::Output(port) => self.output(p, *port, fin),
                DpAction::InPort => self.output_any(p, p.in_port, fin),
                DpAction::Local => match self.snap.local_port {
                    Some(port) => self.output_any(p, port, fin),
                    None => p.last_drop = DropReason::NoSuchPort,
                },
                DpAction::Normal => self.normal(p, fin),
                DpAction::Flood | DpAction::All => self.flood(p, fin),
                DpAction::Resubmit { in_port, table: t } => {
                    self.resubmit(p, *in_port, t.unwrap_or(table), depth, fin)?
                }
                DpAction::GotoTable(t) => {
                    self.resubmit(p, None, *t, depth, tail_final)?;
                    return Ok(());
                }
                DpAction::SetDlSrc(m) => self.set_mac(p, 6, *m),
                DpAction::SetDlDst(m) => self.set_mac(p, 0, *m),
                DpAction::SetNwSrc(a) => self.set_nw_addr(p, 12, *a)?,
                DpAction::SetNwDst(a) => self.set_nw_addr(p, 16, *a)?,
                DpAction::SetTpSrc(v) => self.set_tp_port(p, 0, *v)?,
                DpAction::SetTpDst(v) => self.set_tp_port(p, 2, *v)?,
                DpAction::SetNwTtl(t) => self.set_ttl(p, *t)?,
                DpAction::SetNwTos(t) => self.set_tos(p, *t)?,
                DpAction::SetMeta(f, v) => p.key.set(*f, *v),
                DpAction::DecTtl => self.dec_ttl(p)?,
                DpAction::PushVlan(tpid) => self.push_vlan(p, *tpid)?,
                DpAction::PopVlan => self.pop_vlan(p),
                DpAction::SetVlanVid(vid) => self.set_vlan_vid(p, *vid)?,
                DpAction::Group(g) => self.group(p, *g, table, depth, fin)?,
                DpAction::Ct {
                    zone,
                    commit,
                    table: t,
                    nat,
                    mark,
                } => {
                    self.ct(p, *zone, *commit, nat.as_ref(), *mark)?;
                    if let Some(t) = t {
                        // Recirculation: the rest of this list is not run.
                        self.resubmit(p, None, *t, depth, tail_final)?;
                        return Ok(());
                    }
                }
                DpAction::CtClear => {
                    p.key.set(field::CT_STATE, 0);
                    p.key.set(field::CT_ZONE, 0);
                    p.key.set(field::CT_MARK, 0);
                }
                DpAction::Unsupported(r) => return Err(*r),
            }
        }
        Ok(())
    }

    /// Output to an OpenFlow port, refusing the ingress port (OpenFlow rule).
    #[inline]
    fn output(&mut self, p: &mut Pkt, port: u32, fin: bool) {
        if port == p.in_port {
            p.last_drop = DropReason::OutputToInPort;
            return;
        }
        self.output_any(p, port, fin);
    }

    #[inline]
    fn output_any(&mut self, p: &mut Pkt, port: u32, fin: bool) {
        // The tunnel port first: it has no slot, and its number is beyond
        // the port map's array (a hash probe to find nothing).
        if self.snap.is_tunnel_port(port) {
            return self.encap(p, fin);
        }
        match self.snap.slot_of.get(port) {
            Some(slot) => self.emit(p, slot, fin),
            None => p.last_drop = DropReason::NoSuchPort,
        }
    }

    /// Stages the packet for `slot`: the original if this is the final
    /// action, else a copy.
    #[inline]
    fn emit(&mut self, p: &mut Pkt, slot: u16, fin: bool) {
        if fin && !p.consumed {
            p.consumed = true;
            self.ctx.stage(slot, p.desc);
            p.outputs += 1;
            return;
        }
        match self.pool.clone_packet(p.desc) {
            Some(c) => {
                self.ctx.stage(slot, c);
                p.outputs += 1;
            }
            None => p.last_drop = DropReason::NoBuffer,
        }
    }

    fn flood(&mut self, p: &mut Pkt, fin: bool) {
        let snap = self.snap;
        let in_port = p.in_port;
        let mut targets = snap.ports.iter().filter(|&&q| q != in_port).peekable();
        if targets.peek().is_none() {
            p.last_drop = DropReason::Action;
        }
        while let Some(&port) = targets.next() {
            let last = targets.peek().is_none();
            self.output_any(p, port, fin && last);
        }
    }

    /// The L2 learning switch (`normal`): learn the source, forward to the
    /// learned port of the destination, flood when unknown or multicast.
    fn normal(&mut self, p: &mut Pkt, fin: bool) {
        let tci = p.key.get(field::VLAN_TCI) as u16;
        let vlan = if tci & VLAN_PRESENT != 0 {
            tci & 0x0fff
        } else {
            0
        };
        let src = p.key.mac(field::DL_SRC);
        if src[0] & 1 == 0 && self.ctx.l2.learned != Some((src, vlan, p.in_port)) {
            let l = self.pipe.fdb.learn(src, vlan, p.in_port, self.now);
            if matches!(l, Learn::New | Learn::Moved { .. }) {
                self.ctx.l2.lookup = None;
            }
            self.ctx.l2.learned = Some((src, vlan, p.in_port));
        }
        let dst = p.key.mac(field::DL_DST);
        if dst[0] & 1 == 1 {
            return self.flood(p, fin);
        }
        let port = match self.ctx.l2.lookup {
            Some((m, v, port)) if m == dst && v == vlan => port,
            _ => {
                let port = self.pipe.fdb.lookup(dst, vlan, self.now);
                self.ctx.l2.lookup = Some((dst, vlan, port));
                port
            }
        };
        match port {
            Some(port) if port == p.in_port => p.last_drop = DropReason::OutputToInPort,
            Some(port) => self.output_any(p, port, fin),
            None => self.flood(p, fin),
        }
    }

    fn resubmit(
        &mut self,
        p: &mut Pkt,
        in_port: Option<u32>,
        table: u8,
        depth: u8,
        fin: bool,
    ) -> Result<(), Stop> {
        if depth + 1 >= MAX_DEPTH {
            return Err(DropReason::ResubmitLimit);
        }
        let snap = self.snap;
        let Some(t) = snap.table(table) else {
            p.last_drop = DropReason::NoMatch;
            return Ok(());
        };
        let saved = p.key.get(field::IN_PORT);
        if let Some(ip) = in_port {
            p.key.set(field::IN_PORT, u64::from(ip));
        }
        let hit = lookup(&mut self.ctx.emc, t, &p.key, table, snap.generation);
        if hit == MISS {
            p.last_drop = DropReason::NoMatch;
        } else {
            self.apply_flow(p, &t.flows[hit as usize], table, depth + 1, fin)?;
        }
        p.key.set(field::IN_PORT, saved);
        Ok(())
    }

    fn group(&mut self, p: &mut Pkt, id: u32, table: u8, depth: u8, fin: bool) -> Result<(), Stop> {
        if depth + 1 >= MAX_DEPTH {
            return Err(DropReason::ResubmitLimit);
        }
        let snap = self.snap;
        let Some(g) = snap.groups.get(&id) else {
            return Err(DropReason::NoSuchGroup);
        };
        match g.kind {
            GroupType::Select => {
                let Some(b) = select_bucket(&g.buckets, flow_hash(&p.key)) else {
                    return Err(DropReason::NoSuchGroup);
                };
                self.run(p, &g.buckets[b].1, table, depth + 1, fin)
            }
            GroupType::All | GroupType::Indirect => {
                let n = g.buckets.len();
                for (i, (_, acts)) in g.buckets.iter().enumerate() {
                    if i + 1 == n {
                        return self.run(p, acts, table, depth + 1, fin);
                    }
                    // Each bucket acts on its own copy of the packet.
                    let Some(copy) = self.pool.clone_packet(p.desc) else {
                        p.last_drop = DropReason::NoBuffer;
                        continue;
                    };
                    let mut q = Pkt {
                        desc: copy,
                        key: p.key,
                        offs: p.offs,
                        in_port: p.in_port,
                        idx: p.idx,
                        consumed: false,
                        outputs: 0,
                        last_drop: DropReason::Action,
                    };
                    let r = self.run(&mut q, acts, table, depth + 1, true);
                    if !q.consumed {
                        self.pool.free(q.desc);
                    }
                    p.outputs += q.outputs;
                    if let Err(r) = r {
                        p.last_drop = r;
                    }
                }
                Ok(())
            }
        }
    }

    fn set_mac(&mut self, p: &mut Pkt, at: usize, m: [u8; 6]) {
        self.pool.data_mut(p.desc)[at..at + 6].copy_from_slice(&m);
        p.key.set_mac(
            if at == 0 {
                field::DL_DST
            } else {
                field::DL_SRC
            },
            m,
        );
    }

    /// IPv4 header start, or `MissingHeader`.
    #[inline]
    fn ipv4(&self, p: &Pkt) -> Result<usize, Stop> {
        if p.key.get(field::DL_TYPE) != ETH_IPV4 {
            return Err(DropReason::MissingHeader);
        }
        Ok(p.offs.l3 as usize)
    }

    pub(super) fn set_nw_addr(&mut self, p: &mut Pkt, at: usize, addr: u32) -> Result<(), Stop> {
        let l3 = self.ipv4(p)?;
        let l4 = p.offs.l4 as usize;
        let proto = p.key.get(field::NW_PROTO) as u8;
        let d = self.pool.data_mut(p.desc);
        let old = u32::from_be_bytes(d[l3 + at..l3 + at + 4].try_into().expect("4 bytes"));
        d[l3 + at..l3 + at + 4].copy_from_slice(&addr.to_be_bytes());
        let c = u16::from_be_bytes([d[l3 + 10], d[l3 + 11]]);
        d[l3 + 10..l3 + 12].copy_from_slice(&update32(c, old, addr).to_be_bytes());
        if l4 != 0 {
            update_l4_csum(d, l4, proto, |c| update32(c, old, addr));
        }
        p.key.set(
            if at == 12 {
                field::NW_SRC
            } else {
                field::NW_DST
            },
            u64::from(addr),
        );
        Ok(())
    }

    pub(super) fn set_tp_port(&mut self, p: &mut Pkt, at: usize, port: u16) -> Result<(), Stop> {
        let proto = p.key.get(field::NW_PROTO) as u8;
        let l4 = p.offs.l4 as usize;
        let dl = p.key.get(field::DL_TYPE);
        if l4 == 0 || !(proto == 6 || proto == 17) || !(dl == ETH_IPV4 || dl == ETH_IPV6) {
            return Err(DropReason::MissingHeader);
        }
        let d = self.pool.data_mut(p.desc);
        let old = u16::from_be_bytes([d[l4 + at], d[l4 + at + 1]]);
        d[l4 + at..l4 + at + 2].copy_from_slice(&port.to_be_bytes());
        update_l4_csum(d, l4, proto, |c| update16(c, old, port));
        p.key.set(
            if at == 0 {
                field::TP_SRC
            } else {
                field::TP_DST
            },
            u64::from(port),
        );
        Ok(())
    }

    fn set_ttl(&mut self, p: &mut Pkt, ttl: u8) -> Result<(), Stop> {
        let l3 = p.offs.l3 as usize;
        let d = self.pool.data_mut(p.desc);
        match p.key.get(field::DL_TYPE) {
            ETH_IPV4 => {
                let old = u16::from_be_bytes([d[l3 + 8], d[l3 + 9]]);
                let new = (u16::from(ttl) << 8) | (old & 0xff);
                d[l3 + 8] = ttl;
                let c = u16::from_be_bytes([d[l3 + 10], d[l3 + 11]]);
                d[l3 + 10..l3 + 12].copy_from_slice(&update16(c, old, new).to_be_bytes());
            }
            ETH_IPV6 => d[l3 + 7] = ttl,
            _ => return Err(DropReason::MissingHeader),
        }
        p.key.set(field::NW_TTL, u64::from(ttl));
        Ok(())
    }

    fn dec_ttl(&mut self, p: &mut Pkt) -> Result<(), Stop> {
        let ttl = p.key.get(field::NW_TTL) as u8;
        let dl = p.key.get(field::DL_TYPE);
        if dl != ETH_IPV4 && dl != ETH_IPV6 {
            return Err(DropReason::MissingHeader);
        }
        if ttl <= 1 {
            return Err(DropReason::TtlExpired);
        }
        self.set_ttl(p, ttl - 1)
    }

    fn set_tos(&mut self, p: &mut Pkt, tos: u8) -> Result<(), Stop> {
        let l3 = self.ipv4(p)?;
        let d = self.pool.data_mut(p.desc);
        let old = u16::from_be_bytes([d[l3], d[l3 + 1]]);
        let new = (old & 0xff00) | u16::from(tos);
        d[l3 + 1] = tos;
        let c = u16::from_be_bytes([d[l3 + 10], d[l3 + 11]]);
        d[l3 + 10..l3 + 12].copy_from_slice(&update16(c, old, new).to_be_bytes());
        p.key.set(field::NW_TOS, u64::from(tos));
        Ok(())
    }

    fn push_vlan(&mut self, p: &mut Pkt, tpid: u16) -> Result<(), Stop> {
        if p.offs.vlan_tags >= MAX_VLAN_TAGS {
            return Err(DropReason::VlanStackFull);
        }
        // OpenFlow 1.1+: the new tag copies VID and PCP of the current outer tag.
        let tci = if p.offs.vlan_tags > 0 {
            let d = self.pool.data(p.desc);
            u16::from_be_bytes([d[14], d[15]])
        } else {
            0
        };
        if !self.pool.push_front(&mut p.desc, 4) {
            return Err(DropReason::NoBuffer);
        }
        let d = self.pool.data_mut(p.desc);
        d.copy_within(4..16, 0);
        d[12..14].copy_from_slice(&tpid.to_be_bytes());
        d[14..16].copy_from_slice(&tci.to_be_bytes());
        p.offs.vlan_tags += 1;
        p.offs.l3 += 4;
        if p.offs.l4 != 0 {
            p.offs.l4 += 4;
        }
        p.key.set(field::VLAN_TCI, u64::from(tci | VLAN_PRESENT));
        Ok(())
    }

    fn pop_vlan(&mut self, p: &mut Pkt) {
        if p.offs.vlan_tags == 0 {
            return;
        }
        let d = self.pool.data_mut(p.desc);
        d.copy_within(0..12, 4);
        self.pool.pull_front(&mut p.desc, 4);
        p.offs.vlan_tags -= 1;
        p.offs.l3 -= 4;
        if p.offs.l4 != 0 {
            p.offs.l4 -= 4;
        }
        let tci = if p.offs.vlan_tags > 0 {
            let d = self.pool.data(p.desc);
            u16::from_be_bytes([d[14], d[15]]) | VLAN_PRESENT
        } else {
            0
        };
        p.key.set(field::VLAN_TCI, u64::from(tci));
    }

    fn set_vlan_vid(&mut self, p: &mut Pkt, vid: u16) -> Result<(), Stop> {
        if p.offs.vlan_tags == 0 {
            self.push_vlan(p, TPID_8021Q)?;
        }
        let d = self.pool.data_mut(p.desc);
        let tci = (u16::from_be_bytes([d[14], d[15]]) & 0xf000) | (vid & 0x0fff);
        d[14..16].copy_from_slice(&tci.to_be_bytes());
        p.key.set(field::VLAN_TCI, u64::from(tci | VLAN_PRESENT));
        Ok(())
    }
}

/// Applies `f` to the TCP or UDP checksum at `l4` (UDP's "no checksum" 0 stays 0).
#[inline]
pub(super) fn update_l4_csum(d: &mut [u8], l4: usize, proto: u8, f: impl Fn(u16) -> u16) {
    let at = match proto {
        6 => l4 + 16,
        17 => l4 + 6,
        _ => return,
    };
    if at + 2 > d.len() {
        return;
    }
    let c = u16::from_be_bytes([d[at], d[at + 1]]);
    if proto == 17 && c == 0 {
        return;
    }
    let mut n = f(c);
    if proto == 17 && n == 0 {
        n = 0xffff;
    }
    d[at..at + 2].copy_from_slice(&n.to_be_bytes());
}

/// The 5-tuple hash a select group balances on (symmetric parts not needed:
/// each direction of a connection is its own flow here).
#[inline]
pub(super) fn flow_hash(k: &FlowKey) -> u64 {
    let mut h = k.get(field::NW_SRC) << 32 | k.get(field::NW_DST);
    h ^= (k.get(field::NW_PROTO) << 32 | k.get(field::TP_SRC) << 16 | k.get(field::TP_DST))
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    mix(h)
}

#[inline]
pub(super) fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// Weighted rendezvous (highest random weight) hashing: each bucket scores
/// `-weight / ln(u)` with `u` uniform from (hash, bucket index); the highest
/// score wins. Removing a bucket moves only the flows that were on it.
pub(super) fn select_bucket(buckets: &[(u16, Box<[DpAction]>)], hash: u64) -> Option<usize> {
    let mut best = None;
    let mut best_score = f64::NEG_INFINITY;
    for (i, (w, _)) in buckets.iter().enumerate() {
        if *w == 0 {
            continue;
        }
        let r = mix(hash ^ mix(i as u64 + 1));
        // u in (0, 1): never 0, so ln(u) < 0 and finite.
        let u = ((r >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let score = -f64::from(*w) / u.ln();
        if score > best_score {
            best_score = score;
            best = Some(i);
        }
    }
    best
}
