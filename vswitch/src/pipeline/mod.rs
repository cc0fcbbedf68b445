//! The packet pipeline: parse, classify, act — on batches.
//!
//! ```text
//! rx burst ─▶ Batch ─▶ [uplink only: VXLAN decap] ─▶ parse (extract FlowKey)
//!                     ─▶ classify table 0 (EMC, then classifier)
//!                     ─▶ actions (set-field, dec_ttl, vlan, group, resubmit/goto → more lookups;
//!                        output to the tunnel port → VXLAN encap, staged on the uplink)
//!                     ─▶ per-port tx staging ─▶ tx burst (the caller flushes)
//! ```
//!
//! Table 0 is looked up for the whole batch, and so is the table named by
//! a flow whose only action is `goto_table` (a dispatch flow); the actions
//! then run packet by packet.
//!
//! Every packet ends in exactly one of: transmitted on one or more ports, or
//! dropped with a [`DropReason`] that is counted. Stages run over the whole
//! batch before the next starts, so each stage's code and data stay hot.
//!
//! Shared state and who touches it:
//! - [`Snapshot`] (flow tables, groups, port map, tunnel): built by the control
//!   thread and published whole through an `ArcSwap` (RCU style). Workers
//!   load it once per batch and never block; a publish bumps the generation,
//!   which invalidates every worker's exact-match cache entry at once.
//! - [`Fdb`]: sharded, see its own thread-safety note.
//! - counters: per worker ([`WorkerStats`]), single writer, summed on read.
//!
//! Per-packet code allocates nothing: descriptors, keys and tx staging live in
//! the [`WorkerCtx`], sized when the worker starts.

mod actions;
pub mod control_ops;
mod ct;
pub mod drop;
pub mod extract;
pub mod flows;
mod stats;
pub mod trace;
pub mod tunnel;

#[cfg(test)]
mod ct_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tunnel_tests;

use std::sync::Arc;

use arc_swap::ArcSwap;
use hashbrown::HashMap;

pub use control_ops::{ControlError, FlowDump};
pub use drop::DropReason;
pub use extract::Offsets;
pub use flows::{DpAction, DpFlow, DpGroup};
pub use stats::{PortStats, WorkerStats, MAX_PORT_SLOTS};
pub use tunnel::{TunnelConfig, TunnelSnap, VXLAN_OFPORT, VXLAN_OVERHEAD};

use crate::key::{self, FlowKey};
use crate::port::{Desc, PacketPool};
use crate::tables::conntrack::{Conntrack, CtConfig};
use crate::tables::{Classifier, Emc, Fdb};

/// Packets per batch: big enough to amortise per-batch work, small enough
/// that a batch's keys stay in L1.
pub const BATCH: usize = 64;

/// A burst of packets from one ingress port.
#[derive(Debug)]
pub struct Batch {
    descs: [Desc; BATCH],
    len: usize,
    /// The ingress port (OpenFlow number) of every packet in the batch.
    pub in_port: u32,
}

impl Batch {
    /// An empty batch for packets from `in_port`.
    pub fn new(in_port: u32) -> Batch {
        Batch {
            descs: [Desc::default(); BATCH],
            len: 0,
            in_port,
        }
    }

    /// Free slots.
    #[inline]
    pub fn room(&self) -> usize {
        BATCH - self.len
    }

    /// Number of packets.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends a packet. Panics when full (callers check [`Batch::room`]).
    #[inline]
    pub fn push(&mut self, d: Desc) {
        self.descs[self.len] = d;
        self.len += 1;
    }

    /// The packets.
    #[inline]
    pub fn descs(&self) -> &[Desc] {
        &self.descs[..self.len]
    }

    /// Empties the batch (the descriptors must have been consumed).
    #[inline]
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

/// One flow table in a snapshot: the classifier maps to indices into `flows`.
#[derive(Debug, Default)]
pub struct TableSnap {
    /// Tuple-space classifier; data is an index into `flows`.
    pub cls: Classifier<u32>,
    /// The flows of the table.
    pub flows: Vec<Arc<DpFlow>>,
}

/// Everything the workers read, published whole.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Bumped on every publish; exact-match cache entries carry it.
    pub generation: u64,
    /// Tables by id; `None` for tables with no flows.
    pub tables: Vec<Option<TableSnap>>,
    /// Groups by id.
    pub groups: HashMap<u32, Arc<DpGroup>>,
    /// OpenFlow port numbers in ascending order (for flood/all).
    pub ports: Vec<u32>,
    /// OpenFlow port number to the worker's tx slot.
    pub slot_of: PortMap,
    /// The port `local` outputs to, if any.
    pub local_port: Option<u32>,
    /// The VXLAN tunnel, if configured.
    pub tunnel: Option<TunnelSnap>,
    /// True when some flow is a dispatch flow (only `goto_table`).
    pub dispatch: bool,
}

/// OpenFlow port number → port slot: an array for the small numbers pods
/// get (one load per output), a hash map for the rest (`LOCAL`, tunnels).
#[derive(Debug, Clone)]
pub struct PortMap {
    direct: Box<[u16]>,
    other: HashMap<u32, u16>,
}

/// Port numbers below this are looked up in an array.
const DIRECT_PORTS: usize = 4096;
const NO_SLOT: u16 = u16::MAX;

impl Default for PortMap {
    fn default() -> Self {
        PortMap {
            direct: vec![NO_SLOT; DIRECT_PORTS].into_boxed_slice(),
            other: HashMap::new(),
        }
    }
}

impl PortMap {
    /// The slot of `port`, if attached.
    #[inline(always)]
    pub fn get(&self, port: u32) -> Option<u16> {
        match self.direct.get(port as usize) {
            Some(&NO_SLOT) => None,
            Some(&s) => Some(s),
            None => self.other.get(&port).copied(),
        }
    }

    /// True if `port` is attached.
    #[inline]
    pub fn contains(&self, port: u32) -> bool {
        self.get(port).is_some()
    }
}

impl FromIterator<(u32, u16)> for PortMap {
    fn from_iter<I: IntoIterator<Item = (u32, u16)>>(it: I) -> Self {
        let mut m = PortMap::default();
        for (port, slot) in it {
            match m.direct.get_mut(port as usize) {
                Some(d) => *d = slot,
                None => {
                    m.other.insert(port, slot);
                }
            }
        }
        m
    }
}

impl Snapshot {
    /// The table with this id, if it has flows.
    #[inline]
    pub fn table(&self, id: u8) -> Option<&TableSnap> {
        self.tables.get(id as usize).and_then(|t| t.as_ref())
    }

    /// True if `port` is the logical tunnel port: the configured one, or
    /// [`VXLAN_OFPORT`] while no tunnel is configured (output to it then
    /// drops with `tunnel-unsupported`).
    #[inline]
    pub fn is_tunnel_port(&self, port: u32) -> bool {
        match &self.tunnel {
            Some(t) => port == t.ofport,
            None => port == VXLAN_OFPORT,
        }
    }
}

/// The datapath's shared state: published tables, the FDB, worker counters.
#[derive(Debug)]
pub struct Pipeline {
    snap: ArcSwap<Snapshot>,
    /// MAC learning table of the `normal` action.
    pub fdb: Fdb,
    /// Connection tracking of the `ct` action.
    ct: Conntrack,
    workers: Vec<Arc<WorkerStats>>,
    master: parking_lot::Mutex<control_ops::Master>,
}

/// A worker's private state: its exact-match cache, per-batch scratch, tx
/// staging and counters.
#[derive(Debug)]
pub struct WorkerCtx {
    /// Worker index (selects flow statistics slots).
    pub id: usize,
    emc: Emc,
    keys: Box<[FlowKey; BATCH]>,
    offs: [Offsets; BATCH],
    hit: [u32; BATCH],
    /// Table of each packet's `hit`, and the `goto_table`s followed to it.
    table: [u8; BATCH],
    depth: [u8; BATCH],
    tx: Vec<Vec<Desc>>,
    pending: Vec<u16>,
    l2: L2Cache,
    /// Outer source address of each decapsulated packet of the batch.
    tun_src: [u32; BATCH],
    /// One-entry neighbour cache of encapsulation, valid for one batch:
    /// `(tun_dst, next-hop MAC)`.
    tun_nb: Option<(u32, [u8; 6])>,
    /// This worker's counters.
    pub stats: Arc<WorkerStats>,
}

/// VPP-style one-entry caches in front of the FDB for the `normal` action,
/// valid for one batch: consecutive packets of a burst usually share their
/// source (already learned: skip the learn) and destination (reuse the
/// lookup). Cleared at every batch, and the lookup entry also whenever a
/// learn changes the table, so an answer is never older than the batch.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct L2Cache {
    /// `(mac, vlan, port)` learned in this batch.
    pub learned: Option<([u8; 6], u16, u32)>,
    /// `(mac, vlan) -> port` looked up in this batch.
    pub lookup: Option<([u8; 6], u16, Option<u32>)>,
}

/// Rounds of the dispatch stage: how many pure `goto_table` flows in a row
/// are followed batch-wise (any further one runs as an action).
const GOTO_STAGES: u8 = 4;

/// The classifier result "no flow".
const MISS: u32 = u32::MAX;
/// A packet that was dropped while parsing.
const DEAD: u32 = u32::MAX - 1;

impl WorkerCtx {
    /// Hands the frames staged for each port slot to `f`, which must drain
    /// them; `f` also gets this worker's counters to count what it sent.
    pub fn flush(&mut self, mut f: impl FnMut(u16, &mut Vec<Desc>, &WorkerStats)) {
        for slot in self.pending.drain(..) {
            let q = &mut self.tx[slot as usize];
            if !q.is_empty() {
                f(slot, q, &self.stats);
                debug_assert!(q.is_empty(), "flush callback must drain the queue");
            }
        }
    }

    /// Number of frames staged for transmission.
    pub fn staged(&self) -> usize {
        self.tx.iter().map(Vec::len).sum()
    }

    #[inline]
    fn stage(&mut self, slot: u16, d: Desc) {
        let q = &mut self.tx[slot as usize];
        if q.is_empty() {
            self.pending.push(slot);
        }
        q.push(d);
    }
}

impl Pipeline {
    /// A pipeline for up to `workers` workers, with `fdb` as its MAC table.
    /// It starts with no flows and no ports, and a conntrack table with
    /// the default configuration ([`CtConfig::default`]).
    pub fn new(workers: usize, fdb: Fdb) -> Pipeline {
        Pipeline::with_conntrack(workers, fdb, CtConfig::default())
    }

    /// Like [`Pipeline::new`], with a conntrack table sized and timed by
    /// `ct` (`ct_max`, timeouts).
    pub fn with_conntrack(workers: usize, fdb: Fdb, ct: CtConfig) -> Pipeline {
        let workers = workers.max(1);
        Pipeline {
            snap: ArcSwap::from_pointee(Snapshot::default()),
            fdb,
            ct: Conntrack::new(ct),
            workers: (0..workers)
                .map(|_| Arc::new(WorkerStats::default()))
                .collect(),
            master: parking_lot::Mutex::new(control_ops::Master::new(workers)),
        }
    }

    /// The private state of worker `id` (< the `workers` given to `new`).
    pub fn worker(&self, id: usize) -> WorkerCtx {
        WorkerCtx {
            id,
            emc: Emc::new(),
            keys: Box::new([FlowKey::default(); BATCH]),
            offs: [Offsets::default(); BATCH],
            hit: [MISS; BATCH],
            table: [0; BATCH],
            depth: [0; BATCH],
            tx: (0..MAX_PORT_SLOTS)
                .map(|_| Vec::with_capacity(BATCH * 2))
                .collect(),
            pending: Vec::with_capacity(MAX_PORT_SLOTS),
            l2: L2Cache::default(),
            tun_src: [0; BATCH],
            tun_nb: None,
            stats: Arc::clone(&self.workers[id]),
        }
    }

    /// The connection-tracking table of the `ct` action (for dumps,
    /// flushes, statistics, zone limits and the housekeeping `gc`).
    pub fn conntrack(&self) -> &Conntrack {
        &self.ct
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.snap.load()
    }

    /// Drop counters summed over workers, by reason.
    pub fn drops(&self) -> Vec<(DropReason, u64)> {
        DropReason::ALL
            .iter()
            .map(|r| (*r, self.workers.iter().map(|w| w.drop_count(*r)).sum()))
            .collect()
    }

    /// Port counters of tx/rx slot `slot`, summed over workers.
    pub fn port_stats(&self, slot: u16) -> PortStats {
        let mut s = PortStats::default();
        for w in &self.workers {
            s.add(&w.port(slot));
        }
        s
    }

    /// Runs a batch through the pipeline. Every descriptor in `batch` is
    /// either staged for transmission in `ctx` or freed (and its drop
    /// counted); the batch is empty afterwards. `now` is monotonic
    /// nanoseconds (FDB aging, flow last-used).
    pub fn process(&self, ctx: &mut WorkerCtx, pool: &mut PacketPool, batch: &mut Batch, now: u64) {
        let snap = self.snap.load();
        ctx.l2 = L2Cache::default();
        ctx.tun_nb = None;
        let mut in_port = batch.in_port;
        let in_slot = snap.slot_of.get(in_port);
        if let Some(s) = in_slot {
            let bytes = batch.descs().iter().map(|d| u64::from(d.len)).sum();
            ctx.stats.rx(s, batch.len() as u64, bytes);
        }

        // Stage 0: VXLAN decapsulation of what the uplink received; the
        // inner frames continue as packets from the tunnel port.
        let tunnel = snap.tunnel.as_ref().filter(|t| t.uplink == in_port);
        if let Some(t) = tunnel {
            tunnel::decap(t, ctx, pool, batch, in_slot);
            in_port = t.ofport;
        }
        let n = batch.len();

        // Stage 1: parse.
        for i in 0..n {
            let d = batch.descs[i];
            match extract::extract(pool.data(d), in_port, &mut ctx.keys[i]) {
                Ok(o) => {
                    ctx.offs[i] = o;
                    ctx.hit[i] = MISS;
                }
                Err(r) => {
                    ctx.stats.count_drop(r);
                    if let Some(s) = in_slot {
                        ctx.stats.rx_dropped(s);
                    }
                    pool.free(d);
                    ctx.hit[i] = DEAD;
                }
            }
        }
        if let Some(t) = tunnel {
            for i in 0..n {
                let k = &mut ctx.keys[i];
                k.set(key::field::TUN_ID, u64::from(t.vni));
                k.set(key::field::TUN_SRC, u64::from(ctx.tun_src[i]));
                k.set(key::field::TUN_DST, u64::from(t.local_ip));
            }
        }

        // Stage 2: classify in table 0 (exact-match cache first).
        ctx.table[..n].fill(0);
        ctx.depth[..n].fill(0);
        if let Some(t0) = snap.table(0) {
            for i in 0..n {
                if ctx.hit[i] == DEAD {
                    continue;
                }
                ctx.hit[i] = lookup(&mut ctx.emc, t0, &ctx.keys[i], 0, snap.generation);
            }
        }

        // Stage 2b: dispatch. A flow whose only action is `goto_table:T`
        // (`in_port=N actions=goto_table:T`: how the control plane sorts
        // traffic by where it came from) does nothing but the next lookup,
        // so that lookup runs here for the whole batch, like table 0's,
        // instead of packet by packet inside the actions.
        let rounds = if snap.dispatch { GOTO_STAGES } else { 0 };
        for round in 0..rounds {
            let mut more = false;
            for i in 0..n {
                let hit = ctx.hit[i];
                if hit == DEAD || hit == MISS || ctx.depth[i] != round {
                    continue;
                }
                let Some(table) = snap.table(ctx.table[i]) else {
                    continue;
                };
                let flow = &table.flows[hit as usize];
                let Some(next) = flow.dispatch else {
                    continue;
                };
                flow.stats(ctx.id).hit(u64::from(batch.descs[i].len));
                ctx.table[i] = next;
                ctx.depth[i] = round + 1;
                ctx.hit[i] = match snap.table(next) {
                    Some(t) => lookup(&mut ctx.emc, t, &ctx.keys[i], next, snap.generation),
                    None => MISS,
                };
                more = true;
            }
            if !more {
                break;
            }
        }

        // Stage 3: actions.
        for i in 0..n {
            if ctx.hit[i] == DEAD {
                continue;
            }
            let mut p = actions::Pkt {
                desc: batch.descs[i],
                key: ctx.keys[i],
                offs: ctx.offs[i],
                in_port,
                idx: i,
                consumed: false,
                outputs: 0,
                last_drop: DropReason::NoMatch,
            };
            let hit = ctx.hit[i];
            let mut ex = actions::Exec {
                pipe: self,
                snap: &snap,
                ctx,
                pool,
                now,
                in_slot,
            };
            if hit != MISS {
                let (table, depth) = (ex.ctx.table[i], ex.ctx.depth[i]);
                let flow = &snap.table(table).expect("hit in a table").flows[hit as usize];
                ex.run_flow(&mut p, flow, table, depth, true);
            }
            ex.finish(&mut p);
        }
        batch.clear();
    }
}

/// Looks `key` up in `table` (id `table_id`): EMC, then the classifier.
#[inline]
fn lookup(emc: &mut Emc, table: &TableSnap, key: &FlowKey, table_id: u8, gen: u64) -> u32 {
    let h = key.hash64() ^ u64::from(table_id);
    if let Some(idx) = emc.lookup(key, h, table_id, gen) {
        return idx;
    }
    match table.cls.lookup(key) {
        Some(rule) => {
            let idx = rule.data;
            emc.insert(key, h, table_id, gen, idx);
            idx
        }
        None => MISS,
    }
}
