//! Installed flows in the datapath's own form, and their compilation.
//!
//! The control plane speaks [`control::flow`]: matches by field name and
//! actions by OpenFlow meaning. Installing a flow compiles it once into a
//! [`DpFlow`]: a (value, mask) pair of [`FlowKey`]s for the classifier and a
//! slice of [`DpAction`]s whose operands are already in wire form. Per-packet
//! code only ever sees these. The original `control` flow is kept beside them
//! for `dump-flows`; the hot path never reads it.
//!
//! Flow statistics are one cache-line slot per worker, written by that worker
//! alone (plain load+store, no atomic read-modify-write) and summed on read.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use control::flow::{Action, CtAction, Field as CField, Flow, Group, GroupType, Nat};
use control::PortNo;

use super::DropReason;
use crate::key::{field, Field, FlowKey};
use crate::tables::conntrack::NatSpec;

/// Deepest chain of `resubmit`/`goto_table`/`group` the pipeline follows.
/// OVS allows 64 levels of resubmit; a chain past it is a loop or a bug.
pub const MAX_DEPTH: u8 = 64;

/// A compiled action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DpAction {
    /// Send out port N.
    Output(u32),
    /// Send back out the ingress port.
    InPort,
    /// L2 learning switch.
    Normal,
    /// Every port but the ingress port.
    Flood,
    /// Every port but the ingress port (no STP or no-flood distinction here).
    All,
    /// The switch's local port.
    Local,
    /// Look up `table` (None: the current one) with in_port temporarily `in_port`.
    Resubmit {
        /// Ingress port to look up with, if changed.
        in_port: Option<u32>,
        /// Table to look up, if not the current one.
        table: Option<u8>,
    },
    /// Continue in table N.
    GotoTable(u8),
    /// Rewrite the Ethernet source address.
    SetDlSrc([u8; 6]),
    /// Rewrite the Ethernet destination address.
    SetDlDst([u8; 6]),
    /// Rewrite the IPv4 source address (checksums updated).
    SetNwSrc(u32),
    /// Rewrite the IPv4 destination address (checksums updated).
    SetNwDst(u32),
    /// Rewrite the TCP/UDP source port (checksum updated).
    SetTpSrc(u16),
    /// Rewrite the TCP/UDP destination port (checksum updated).
    SetTpDst(u16),
    /// Rewrite the IPv4 TTL / IPv6 hop limit.
    SetNwTtl(u8),
    /// Rewrite the IPv4 TOS byte.
    SetNwTos(u8),
    /// Write a metadata field of the key (registers, tunnel metadata, ct_mark).
    SetMeta(Field, u64),
    /// Decrement TTL; drop with `ttl-expired` when it would reach zero.
    DecTtl,
    /// Push an 802.1Q/802.1ad tag with this TPID (VID 0).
    PushVlan(u16),
    /// Pop the outer tag.
    PopVlan,
    /// Set the VID of the outer tag, pushing an 802.1Q tag if there is none.
    SetVlanVid(u16),
    /// Apply group N.
    Group(u32),
    /// `ct(...)`: send the packet through connection tracking in `zone`
    /// (see `pipeline::ct` for the semantics).
    Ct {
        /// `ct_zone` (0 when the action names none).
        zone: u16,
        /// `commit`: store a new connection.
        commit: bool,
        /// `table=T`: continue in table T with the new `ct_*` fields (the
        /// rest of the action list is not run).
        table: Option<u8>,
        /// `nat(...)`: the translation to commit, or plain `nat`.
        nat: Option<NatSpec>,
        /// `exec(set_field:V->ct_mark)`: the mark to store on commit.
        mark: Option<u32>,
    },
    /// Clear connection-tracking state from the key.
    CtClear,
    /// An action whose feature is not yet executable: the packet is dropped
    /// with this reason (the flow is still accepted and listed).
    Unsupported(DropReason),
}

/// Statistics of one flow as written by one worker.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct StatSlot {
    packets: AtomicU64,
    bytes: AtomicU64,
}

impl StatSlot {
    /// Adds one packet. Only the owning worker calls this.
    #[inline(always)]
    pub fn hit(&self, bytes: u64) {
        self.packets
            .store(self.packets.load(Relaxed).wrapping_add(1), Relaxed);
        self.bytes
            .store(self.bytes.load(Relaxed).wrapping_add(bytes), Relaxed);
    }
}

/// An installed flow.
#[derive(Debug)]
pub struct DpFlow {
    /// The flow as the user gave it (for dumps; never read per packet).
    pub spec: Flow,
    /// Match value, pre-masked.
    pub value: FlowKey,
    /// Match mask.
    pub mask: FlowKey,
    /// Compiled actions.
    pub actions: Box<[DpAction]>,
    /// `Some(T)` when the only action is `goto_table:T` (a dispatch flow,
    /// which the pipeline follows batch-wise).
    pub dispatch: Option<u8>,
    /// When it was installed.
    pub created: Instant,
    /// One slot per worker.
    stats: Box<[StatSlot]>,
}

impl DpFlow {
    /// Statistics slot of worker `w` (workers beyond the slots share the last).
    #[inline(always)]
    pub fn stats(&self, w: usize) -> &StatSlot {
        &self.stats[w.min(self.stats.len() - 1)]
    }

    /// `(n_packets, n_bytes)` summed over workers.
    pub fn totals(&self) -> (u64, u64) {
        self.stats.iter().fold((0, 0), |(p, b), s| {
            (p + s.packets.load(Relaxed), b + s.bytes.load(Relaxed))
        })
    }
}

/// A compiled group.
#[derive(Debug)]
pub struct DpGroup {
    /// The group as the user gave it.
    pub spec: Group,
    /// `all`/`indirect`: every bucket; `select`: one, chosen by hash.
    pub kind: GroupType,
    /// `(weight, actions)` per bucket.
    pub buckets: Box<[(u16, Box<[DpAction]>)]>,
}

/// Why a flow or group could not be installed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    /// The named field cannot be written by set_field.
    #[error("field {0} is not writable by set_field")]
    NotWritable(String),
    /// A port number outside the usable range.
    #[error("port {0} is not a valid output port")]
    BadPort(u32),
    /// A register index above 7.
    #[error("register reg{0} does not exist (reg0-reg7)")]
    BadRegister(u8),
    /// An action inside `ct(exec(...))` other than `set_field:V->ct_mark`.
    #[error("ct exec supports only set_field:V->ct_mark, not {0}")]
    CtExec(String),
}

/// The key field a control-plane match field lives in.
pub fn key_field(f: CField) -> Result<Field, CompileError> {
    Ok(match f {
        CField::InPort => field::IN_PORT,
        CField::DlSrc => field::DL_SRC,
        CField::DlDst => field::DL_DST,
        CField::DlType => field::DL_TYPE,
        CField::VlanTci => field::VLAN_TCI,
        CField::NwSrc => field::NW_SRC,
        CField::NwDst => field::NW_DST,
        CField::NwProto => field::NW_PROTO,
        CField::NwTtl => field::NW_TTL,
        CField::NwTos => field::NW_TOS,
        CField::TpSrc => field::TP_SRC,
        CField::TpDst => field::TP_DST,
        CField::TunId => field::TUN_ID,
        CField::TunSrc => field::TUN_SRC,
        CField::TunDst => field::TUN_DST,
        CField::CtState => field::CT_STATE,
        CField::CtZone => field::CT_ZONE,
        CField::CtMark => field::CT_MARK,
        CField::Reg(n) => *field::REGS
            .get(n as usize)
            .ok_or(CompileError::BadRegister(n))?,
    })
}

/// Compiles a flow's match into `(value, mask)`.
pub fn compile_match(flow: &Flow) -> Result<(FlowKey, FlowKey), CompileError> {
    let mut value = FlowKey::default();
    let mut mask = FlowKey::default();
    for m in flow.matches.iter() {
        let f = key_field(m.field)?;
        value.set(f, m.value & m.mask);
        mask.set(f, m.mask);
    }
    Ok((value, mask))
}

fn port(p: PortNo) -> Result<DpAction, CompileError> {
    match p {
        PortNo::LOCAL => Ok(DpAction::Local),
        PortNo::IN_PORT => Ok(DpAction::InPort),
        PortNo(n) if n == 0 || n > PortNo::MAX.0 => Err(CompileError::BadPort(n)),
        PortNo(n) => Ok(DpAction::Output(n)),
    }
}

/// Compiles a list of actions.
pub fn compile_actions(actions: &[Action]) -> Result<Box<[DpAction]>, CompileError> {
    let mut out = Vec::with_capacity(actions.len());
    for a in actions {
        out.push(match a {
            Action::Output(p) => port(*p)?,
            Action::InPort => DpAction::InPort,
            Action::Normal => DpAction::Normal,
            Action::Flood => DpAction::Flood,
            Action::All => DpAction::All,
            Action::Local => DpAction::Local,
            Action::Drop => continue,
            Action::Resubmit { port, table } => DpAction::Resubmit {
                in_port: port.map(|p| p.0),
                table: *table,
            },
            Action::GotoTable(t) => DpAction::GotoTable(*t),
            Action::SetField { field: f, value } => set_field(*f, *value)?,
            Action::DecTtl => DpAction::DecTtl,
            Action::PushVlan(tpid) => DpAction::PushVlan(*tpid),
            Action::PopVlan => DpAction::PopVlan,
            Action::ModVlanVid(v) => DpAction::SetVlanVid(*v & 0x0fff),
            Action::Group(g) => DpAction::Group(*g),
            Action::Ct(c) => ct_action(c)?,
            Action::CtClear => DpAction::CtClear,
        });
    }
    Ok(out.into_boxed_slice())
}

fn ct_action(c: &CtAction) -> Result<DpAction, CompileError> {
    let mut mark = None;
    for a in &c.exec {
        match a {
            Action::SetField {
                field: CField::CtMark,
                value,
            } => mark = Some(*value as u32),
            other => return Err(CompileError::CtExec(other.to_string())),
        }
    }
    let nat = c.nat.as_ref().map(|n| match *n {
        Nat::Dst { ip, port } => NatSpec::Dst { ip, port },
        Nat::Src { ip, port } => NatSpec::Src { ip, port },
        Nat::Reverse => NatSpec::Reverse,
    });
    Ok(DpAction::Ct {
        zone: c.zone.unwrap_or(0),
        commit: c.commit,
        table: c.table,
        nat,
        mark,
    })
}

fn set_field(f: CField, v: u64) -> Result<DpAction, CompileError> {
    let mac = |v: u64| {
        let b = v.to_be_bytes();
        [b[2], b[3], b[4], b[5], b[6], b[7]]
    };
    Ok(match f {
        CField::DlSrc => DpAction::SetDlSrc(mac(v)),
        CField::DlDst => DpAction::SetDlDst(mac(v)),
        CField::NwSrc => DpAction::SetNwSrc(v as u32),
        CField::NwDst => DpAction::SetNwDst(v as u32),
        CField::TpSrc => DpAction::SetTpSrc(v as u16),
        CField::TpDst => DpAction::SetTpDst(v as u16),
        CField::NwTtl => DpAction::SetNwTtl(v as u8),
        CField::NwTos => DpAction::SetNwTos(v as u8),
        CField::VlanTci => DpAction::SetVlanVid((v as u16) & 0x0fff),
        CField::TunId | CField::TunSrc | CField::TunDst | CField::CtMark | CField::Reg(_) => {
            DpAction::SetMeta(key_field(f)?, v)
        }
        CField::InPort | CField::DlType | CField::NwProto | CField::CtState | CField::CtZone => {
            return Err(CompileError::NotWritable(format!("{f:?}")))
        }
    })
}

/// Compiles a flow for a datapath with `workers` workers.
pub fn compile_flow(flow: Flow, workers: usize) -> Result<DpFlow, CompileError> {
    let (value, mask) = compile_match(&flow)?;
    let actions = compile_actions(&flow.actions)?;
    let dispatch = match *actions {
        [DpAction::GotoTable(t)] => Some(t),
        _ => None,
    };
    Ok(DpFlow {
        spec: flow,
        value,
        mask,
        actions,
        dispatch,
        created: Instant::now(),
        stats: (0..workers.max(1)).map(|_| StatSlot::default()).collect(),
    })
}

/// Compiles a group.
pub fn compile_group(group: Group) -> Result<DpGroup, CompileError> {
    let buckets = group
        .buckets
        .iter()
        .map(|b| Ok((b.weight, compile_actions(&b.actions)?)))
        .collect::<Result<Vec<_>, CompileError>>()?
        .into_boxed_slice();
    Ok(DpGroup {
        kind: group.kind,
        spec: group,
        buckets,
    })
}
