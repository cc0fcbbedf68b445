//! Control-side operations on the pipeline: install, delete and dump flows,
//! groups and ports, then publish a new [`Snapshot`].
//!
//! One writer at a time: the master copy sits behind a mutex that only
//! control operations take (never a worker). Each change compiles what it
//! adds *before* touching the master copy, so a rejected flow or file leaves
//! the tables exactly as they were (`add-flows`/`replace-flows` are atomic),
//! then rebuilds the affected snapshot and publishes it with one pointer
//! swap. Workers keep using the old snapshot until their next batch.
//!
//! The tunnel configuration and the neighbour map are part of the master
//! copy too: [`Pipeline::set_tunnel`] and [`Pipeline::set_neighbors`]
//! republish the snapshot, and workers see the change at their next batch.
//!
//! Rebuilding a table's classifier costs O(flows in the snapshot); that is
//! fine for the flow counts and change rates of a node (≈ 10 ms for 100k
//! flows) and keeps every published structure immutable.

use std::collections::{BTreeMap, HashMap as StdHashMap};
use std::net::Ipv4Addr;
use std::sync::Arc;

use hashbrown::HashMap;

use control::flow::{Action, Flow, FlowFilter, FlowStats, Group};
use control::PortNo;

use super::flows::{compile_flow, compile_group, compile_match, CompileError, DpFlow, DpGroup};
use super::tunnel::{TunnelConfig, TunnelSnap};
use super::{Pipeline, PortMap, Snapshot, TableSnap, MAX_PORT_SLOTS};
use crate::key::FlowKey;
use crate::tables::Classifier;

/// A flow's identity: OpenFlow replaces a flow with the same table,
/// priority and match.
type FlowId = (u8, u16, FlowKey, FlowKey);

/// The control plane's master copy of everything in a snapshot.
#[derive(Debug)]
pub struct Master {
    workers: usize,
    flows: HashMap<FlowId, Arc<DpFlow>>,
    groups: BTreeMap<u32, Arc<DpGroup>>,
    ports: BTreeMap<u32, u16>,
    local_port: Option<u32>,
    tunnel: Option<TunnelConfig>,
    neighbors: StdHashMap<Ipv4Addr, [u8; 6]>,
    generation: u64,
}

/// Why a control operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// A flow could not be compiled (index in the request, 0-based).
    #[error("flow {index}: {err}")]
    Flow {
        /// Position of the flow in the request.
        index: usize,
        /// What was wrong.
        err: CompileError,
    },
    /// A group could not be compiled.
    #[error("group {id}: {err}")]
    Group {
        /// The group id.
        id: u32,
        /// What was wrong.
        err: CompileError,
    },
    /// The port number is already attached.
    #[error("port {0} already exists")]
    PortExists(u32),
    /// No such port.
    #[error("no port {0}")]
    NoSuchPort(u32),
    /// Every port slot is in use.
    #[error("too many ports (limit {MAX_PORT_SLOTS})")]
    TooManyPorts,
    /// The tunnel configuration cannot be used.
    #[error("tunnel: {0}")]
    Tunnel(&'static str),
}

impl Master {
    pub(super) fn new(workers: usize) -> Master {
        Master {
            workers,
            flows: HashMap::new(),
            groups: BTreeMap::new(),
            ports: BTreeMap::new(),
            local_port: None,
            tunnel: None,
            neighbors: StdHashMap::new(),
            generation: 0,
        }
    }

    fn compile_all(&self, flows: Vec<Flow>) -> Result<Vec<Arc<DpFlow>>, ControlError> {
        flows
            .into_iter()
            .enumerate()
            .map(|(index, f)| {
                compile_flow(f, self.workers)
                    .map(Arc::new)
                    .map_err(|err| ControlError::Flow { index, err })
            })
            .collect()
    }

    fn insert(&mut self, f: Arc<DpFlow>) {
        let id = (f.spec.table, f.spec.priority, f.value, f.mask);
        self.flows.insert(id, f);
    }

    fn snapshot(&mut self) -> Snapshot {
        self.generation += 1;
        let mut by_table: BTreeMap<u8, Vec<Arc<DpFlow>>> = BTreeMap::new();
        for f in self.flows.values() {
            by_table
                .entry(f.spec.table)
                .or_default()
                .push(Arc::clone(f));
        }
        let max = by_table.keys().next_back().map_or(0, |t| *t as usize + 1);
        let mut tables: Vec<Option<TableSnap>> = (0..max).map(|_| None).collect();
        for (t, mut flows) in by_table {
            // Deterministic order: priority, then installation time.
            flows.sort_by(|a, b| {
                b.spec
                    .priority
                    .cmp(&a.spec.priority)
                    .then(a.created.cmp(&b.created))
            });
            let mut cls = Classifier::new();
            for (i, f) in flows.iter().enumerate() {
                cls.insert(f.value, f.mask, f.spec.priority, i as u32);
            }
            tables[t as usize] = Some(TableSnap { cls, flows });
        }
        let slot_of: PortMap = self.ports.iter().map(|(k, v)| (*k, *v)).collect();
        let tunnel = self
            .tunnel
            .as_ref()
            .map(|t| TunnelSnap::new(t, &self.neighbors, &slot_of));
        // While a tunnel is configured the uplink carries only the underlay:
        // flood (and normal's flooding) never sends pod frames out of it.
        let uplink = self.tunnel.as_ref().map(|t| t.uplink_ofport);
        let dispatch = self.flows.values().any(|f| f.dispatch.is_some());
        Snapshot {
            generation: self.generation,
            tables,
            groups: self
                .groups
                .iter()
                .map(|(k, v)| (*k, Arc::clone(v)))
                .collect(),
            ports: self
                .ports
                .keys()
                .copied()
                .filter(|p| Some(*p) != uplink)
                .collect(),
            slot_of,
            local_port: self.local_port,
            tunnel,
            dispatch,
        }
    }
}

/// One flow as `dump-flows` reports it.
#[derive(Debug, Clone)]
pub struct FlowDump {
    /// The flow.
    pub flow: Flow,
    /// Its counters.
    pub stats: FlowStats,
}

impl Pipeline {
    fn publish(&self, m: &mut Master) {
        self.snap.store(Arc::new(m.snapshot()));
    }

    /// Adds (or replaces, same table+priority+match) one flow.
    pub fn add_flow(&self, flow: Flow) -> Result<(), ControlError> {
        self.add_flows(vec![flow])
    }

    /// Adds flows atomically: all or none.
    pub fn add_flows(&self, flows: Vec<Flow>) -> Result<(), ControlError> {
        let mut m = self.master.lock();
        let compiled = m.compile_all(flows)?;
        for f in compiled {
            m.insert(f);
        }
        self.publish(&mut m);
        Ok(())
    }

    /// Replaces every flow with `flows`, atomically.
    pub fn replace_flows(&self, flows: Vec<Flow>) -> Result<(), ControlError> {
        let mut m = self.master.lock();
        let compiled = m.compile_all(flows)?;
        m.flows.clear();
        for f in compiled {
            m.insert(f);
        }
        self.publish(&mut m);
        Ok(())
    }

    /// Deletes the flows `filter` selects (OVS non-strict semantics: every
    /// flow at least as specific as the filter), or with `strict`, the one
    /// flow with exactly that match and priority. Returns how many.
    pub fn del_flows(&self, filter: &FlowFilter, strict: bool) -> Result<usize, ControlError> {
        let mut m = self.master.lock();
        let sel = Selector::new(filter, strict)?;
        let before = m.flows.len();
        m.flows.retain(|_, f| !sel.selects(f));
        let n = before - m.flows.len();
        if n > 0 {
            self.publish(&mut m);
        }
        Ok(n)
    }

    /// The flows `filter` selects, by table then descending priority, with counters.
    pub fn dump_flows(&self, filter: &FlowFilter) -> Result<Vec<FlowDump>, ControlError> {
        let m = self.master.lock();
        let sel = Selector::new(filter, false)?;
        let mut out: Vec<&Arc<DpFlow>> = m.flows.values().filter(|f| sel.selects(f)).collect();
        out.sort_by(|a, b| {
            (a.spec.table, std::cmp::Reverse(a.spec.priority), a.created).cmp(&(
                b.spec.table,
                std::cmp::Reverse(b.spec.priority),
                b.created,
            ))
        });
        Ok(out
            .into_iter()
            .map(|f| {
                let (n_packets, n_bytes) = f.totals();
                FlowDump {
                    flow: f.spec.clone(),
                    stats: FlowStats {
                        n_packets,
                        n_bytes,
                        duration: f.created.elapsed(),
                        ..FlowStats::default()
                    },
                }
            })
            .collect())
    }

    /// Number of installed flows.
    pub fn flow_count(&self) -> usize {
        self.master.lock().flows.len()
    }

    /// Adds or replaces a group.
    pub fn add_group(&self, group: Group) -> Result<(), ControlError> {
        let id = group.id;
        let g = compile_group(group).map_err(|err| ControlError::Group { id, err })?;
        let mut m = self.master.lock();
        m.groups.insert(id, Arc::new(g));
        self.publish(&mut m);
        Ok(())
    }

    /// Deletes one group, or all with `None`. Returns how many.
    pub fn del_groups(&self, id: Option<u32>) -> usize {
        let mut m = self.master.lock();
        let n = match id {
            Some(id) => usize::from(m.groups.remove(&id).is_some()),
            None => std::mem::take(&mut m.groups).len(),
        };
        self.publish(&mut m);
        n
    }

    /// Every group, by id.
    pub fn dump_groups(&self) -> Vec<Group> {
        self.master
            .lock()
            .groups
            .values()
            .map(|g| g.spec.clone())
            .collect()
    }

    /// Attaches OpenFlow port `ofport` and returns its slot (counters zeroed).
    pub fn add_port(&self, ofport: u32) -> Result<u16, ControlError> {
        let mut m = self.master.lock();
        if m.ports.contains_key(&ofport) || m.tunnel.as_ref().is_some_and(|t| t.ofport == ofport) {
            return Err(ControlError::PortExists(ofport));
        }
        let used: Vec<u16> = m.ports.values().copied().collect();
        let slot = (0..MAX_PORT_SLOTS as u16)
            .find(|s| !used.contains(s))
            .ok_or(ControlError::TooManyPorts)?;
        for w in &self.workers {
            w.reset_port(slot);
        }
        m.ports.insert(ofport, slot);
        self.publish(&mut m);
        Ok(slot)
    }

    /// Detaches a port: flood stops using it, its learned MACs are flushed.
    pub fn del_port(&self, ofport: u32) -> Result<u16, ControlError> {
        let mut m = self.master.lock();
        let slot = m
            .ports
            .remove(&ofport)
            .ok_or(ControlError::NoSuchPort(ofport))?;
        if m.local_port == Some(ofport) {
            m.local_port = None;
        }
        self.publish(&mut m);
        drop(m);
        self.fdb.flush_port(ofport);
        Ok(slot)
    }

    /// Makes `ofport` the target of the `local` action.
    pub fn set_local_port(&self, ofport: Option<u32>) {
        let mut m = self.master.lock();
        m.local_port = ofport;
        self.publish(&mut m);
    }

    /// Configures the VXLAN tunnel (`Some`) or removes it (`None`: output
    /// to the tunnel port then drops with `tunnel-unsupported`, and the
    /// uplink is an ordinary port again). Refused when the configuration is
    /// invalid or its tunnel port number is an attached port.
    pub fn set_tunnel(&self, tunnel: Option<TunnelConfig>) -> Result<(), ControlError> {
        let mut m = self.master.lock();
        if let Some(t) = &tunnel {
            t.check().map_err(ControlError::Tunnel)?;
            if m.ports.contains_key(&t.ofport) {
                return Err(ControlError::PortExists(t.ofport));
            }
        }
        m.tunnel = tunnel;
        self.publish(&mut m);
        Ok(())
    }

    /// Replaces the neighbour map: remote VTEP (or next hop) address →
    /// outer destination MAC; an entry for 0.0.0.0 is the default next hop.
    pub fn set_neighbors(&self, neighbors: StdHashMap<Ipv4Addr, [u8; 6]>) {
        let mut m = self.master.lock();
        m.neighbors = neighbors;
        self.publish(&mut m);
    }

    /// The tunnel configuration, if any.
    pub fn tunnel(&self) -> Option<TunnelConfig> {
        self.master.lock().tunnel.clone()
    }

    /// The neighbour map.
    pub fn neighbors(&self) -> StdHashMap<Ipv4Addr, [u8; 6]> {
        self.master.lock().neighbors.clone()
    }

    /// Attached ports and their slots.
    pub fn ports(&self) -> Vec<(u32, u16)> {
        self.master
            .lock()
            .ports
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect()
    }
}

/// A compiled [`FlowFilter`].
struct Selector<'a> {
    filter: &'a FlowFilter,
    value: FlowKey,
    mask: FlowKey,
    strict: bool,
}

impl<'a> Selector<'a> {
    fn new(filter: &'a FlowFilter, strict: bool) -> Result<Selector<'a>, ControlError> {
        let probe = Flow {
            matches: filter.matches.clone(),
            ..Flow::default()
        };
        let (value, mask) =
            compile_match(&probe).map_err(|err| ControlError::Flow { index: 0, err })?;
        Ok(Selector {
            filter,
            value,
            mask,
            strict,
        })
    }

    fn selects(&self, f: &DpFlow) -> bool {
        if self.filter.table.is_some_and(|t| t != f.spec.table) {
            return false;
        }
        if let Some((v, m)) = self.filter.cookie {
            if f.spec.cookie & m != v & m {
                return false;
            }
        }
        if let Some(p) = self.filter.out_port {
            let outputs = f.spec.actions.iter().any(|a| match a {
                Action::Output(q) => *q == p,
                Action::Local => p == PortNo::LOCAL,
                Action::InPort => p == PortNo::IN_PORT,
                _ => false,
            });
            if !outputs {
                return false;
            }
        }
        if self.strict {
            return f.mask == self.mask
                && f.value == self.value
                && self.filter.priority.is_none_or(|p| p == f.spec.priority);
        }
        // Non-strict: the flow's match must be at least as specific.
        f.mask.masked(&self.mask) == self.mask && f.value.masked(&self.mask) == self.value
    }
}
