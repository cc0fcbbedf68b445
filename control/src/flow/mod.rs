//! The OpenFlow flow model and its `ovs-ofctl` text syntax.
//!
//! This module holds the types a flow is made of (match fields, actions,
//! groups, filters for `del-flows`/`dump-flows`) and re-exports the parsers
//! and printers for the subset of `ovs-ofctl` syntax that DESIGN.md §3 lists.
//! Text accepted here has the meaning OVS gives it; text outside the subset is
//! rejected with a [`FlowError`] naming the token, never guessed at.
//!
//! Design decisions:
//! - A [`Match`] is canonical: one entry per [`Field`], sorted, values
//!   pre-masked, all-wildcard entries dropped. Aliases collapse onto one field
//!   as OVS stores them (`arp_spa` is [`Field::NwSrc`], `icmp_type` is
//!   [`Field::TpSrc`], `dl_vlan` is [`Field::VlanTci`]), so printing a parsed
//!   flow and parsing it again gives an equal [`Flow`].
//! - `actions=drop` is the empty action list, as in OVS; [`Action::Drop`]
//!   exists for flows built in code and is never produced by the parser.
//! - `mod_nw_src:X` and friends become [`Action::SetField`] and print the way
//!   `ovs-ofctl -O OpenFlow13 dump-flows` shows them (`set_field:X->ip_src`).
//!
//! It does not install, classify or execute flows: the datapath compiles these
//! types into its own representation. It knows nothing of port names (ports
//! are numbers or the reserved names `LOCAL`, `IN_PORT`, ...).

use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::types::PortNo;

mod lex;
mod parse;
mod print;

#[cfg(test)]
mod tests;

pub use parse::{parse_filter, parse_flow, parse_flows, parse_group};
pub use print::format_dump;

/// The priority a flow gets when none is given (OpenFlow's `OFP_DEFAULT_PRIORITY`).
pub const DEFAULT_PRIORITY: u16 = 0x8000;
/// Highest table number a flow may live in (255 means "all tables" in OpenFlow).
pub const MAX_TABLE: u8 = 254;
/// Highest group id (OpenFlow's `OFPG_MAX`).
pub const MAX_GROUP: u32 = 0xffff_ff00;

/// Ethertype of IPv4 (`ip`).
pub const ETH_TYPE_IP: u16 = 0x0800;
/// Ethertype of ARP (`arp`).
pub const ETH_TYPE_ARP: u16 = 0x0806;
/// Ethertype of RARP (`rarp`).
pub const ETH_TYPE_RARP: u16 = 0x8035;
/// Ethertype of IPv6 (`ipv6`).
pub const ETH_TYPE_IPV6: u16 = 0x86dd;
/// Ethertype of MPLS unicast (`mpls`).
pub const ETH_TYPE_MPLS: u16 = 0x8847;
/// Ethertype of MPLS multicast (`mplsm`).
pub const ETH_TYPE_MPLS_MCAST: u16 = 0x8848;
/// IP protocol number of ICMP (`icmp`).
pub const IPPROTO_ICMP: u8 = 1;
/// IP protocol number of TCP (`tcp`).
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number of UDP (`udp`).
pub const IPPROTO_UDP: u8 = 17;
/// IP protocol number of SCTP (`sctp`).
pub const IPPROTO_SCTP: u8 = 132;

/// Connection-tracking state flags, with the bit values OVS uses for `ct_state`.
pub mod ct_state {
    /// `new`: the start of a new connection.
    pub const NEW: u64 = 0x01;
    /// `est`: part of an established connection.
    pub const EST: u64 = 0x02;
    /// `rel`: related to an existing connection (e.g. an ICMP error).
    pub const REL: u64 = 0x04;
    /// `rpl`: in the reply direction.
    pub const RPL: u64 = 0x08;
    /// `inv`: invalid (conntrack could not make sense of it).
    pub const INV: u64 = 0x10;
    /// `trk`: the packet went through conntrack.
    pub const TRK: u64 = 0x20;
    /// `snat`: source NAT was applied.
    pub const SNAT: u64 = 0x40;
    /// `dnat`: destination NAT was applied.
    pub const DNAT: u64 = 0x80;
    /// Every defined flag; the only bits a `ct_state` match may cover.
    pub const ALL: u64 = 0xff;
    /// Flag names in bit order (bit 0 first), as OVS prints them.
    pub const NAMES: [&str; 8] = ["new", "est", "rel", "rpl", "inv", "trk", "snat", "dnat"];
}

/// A field a flow can match on or an action can write.
///
/// Several OVS names map onto one field, as in OVS's own flow structure:
/// `arp_spa`/`arp_tpa` are [`Field::NwSrc`]/[`Field::NwDst`], `arp_op` is
/// [`Field::NwProto`], `icmp_type`/`icmp_code` are [`Field::TpSrc`]/[`Field::TpDst`],
/// and `dl_vlan`/`dl_vlan_pcp` are parts of [`Field::VlanTci`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Field {
    /// `in_port`: the OpenFlow port the packet arrived on.
    InPort,
    /// `dl_src`: Ethernet source address.
    DlSrc,
    /// `dl_dst`: Ethernet destination address.
    DlDst,
    /// `dl_type`: Ethertype.
    DlType,
    /// `vlan_tci`: the 802.1Q TCI, with bit 0x1000 meaning "tagged" (OVS's CFI convention).
    VlanTci,
    /// `nw_src`: IPv4 source (or ARP sender protocol address).
    NwSrc,
    /// `nw_dst`: IPv4 destination (or ARP target protocol address).
    NwDst,
    /// `nw_proto`: IP protocol (or ARP opcode).
    NwProto,
    /// `nw_ttl`: IP time to live.
    NwTtl,
    /// `nw_tos`: the IP TOS byte; matches and writes cover the DSCP bits (0xfc) only.
    NwTos,
    /// `tp_src`: TCP/UDP/SCTP source port, or ICMP type.
    TpSrc,
    /// `tp_dst`: TCP/UDP/SCTP destination port, or ICMP code.
    TpDst,
    /// `tun_id`: tunnel key (the VXLAN VNI).
    TunId,
    /// `tun_src`: outer IPv4 source of the tunnel.
    TunSrc,
    /// `tun_dst`: outer IPv4 destination of the tunnel.
    TunDst,
    /// `ct_state`: connection-tracking state flags (see [`ct_state`]).
    CtState,
    /// `ct_zone`: connection-tracking zone.
    CtZone,
    /// `ct_mark`: connection mark.
    CtMark,
    /// `reg0`..`reg7`: 32-bit scratch registers.
    Reg(u8),
}

/// Number of registers (`reg0`..`reg7`).
pub const N_REGS: u8 = 8;

impl Field {
    /// Width of the field in bits.
    pub fn bits(self) -> u32 {
        match self {
            Field::DlSrc | Field::DlDst => 48,
            Field::NwSrc | Field::NwDst | Field::TunSrc | Field::TunDst => 32,
            Field::InPort | Field::CtMark | Field::Reg(_) => 32,
            Field::TpSrc | Field::TpDst | Field::DlType | Field::VlanTci => 16,
            Field::CtState | Field::CtZone => 16,
            Field::NwProto | Field::NwTtl | Field::NwTos => 8,
            Field::TunId => 64,
        }
    }

    /// Every bit a match on this field may cover: all ones over [`Field::bits`],
    /// except `ct_state`, whose only defined bits are the eight flags (0xff).
    pub fn full_mask(self) -> u64 {
        match self {
            Field::CtState => ct_state::ALL,
            f if f.bits() >= 64 => u64::MAX,
            f => (1u64 << f.bits()) - 1,
        }
    }

    /// The mask an unmasked match (`field=value`) uses: [`Field::full_mask`],
    /// except `nw_tos`, which OVS matches on the DSCP bits only (0xfc).
    pub fn exact_mask(self) -> u64 {
        match self {
            Field::NwTos => 0xfc,
            f => f.full_mask(),
        }
    }

    /// Whether the text syntax accepts `value/mask` for this field (OVS's
    /// "Maskable: bitwise"); the others only match exact values.
    pub fn is_maskable(self) -> bool {
        !matches!(
            self,
            Field::InPort
                | Field::DlType
                | Field::NwProto
                | Field::NwTtl
                | Field::NwTos
                | Field::CtZone
        )
    }
}

impl fmt::Display for Field {
    /// The field's OVS match name (`dl_src`, `nw_src`, `reg3`, ...).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Field::InPort => "in_port",
            Field::DlSrc => "dl_src",
            Field::DlDst => "dl_dst",
            Field::DlType => "dl_type",
            Field::VlanTci => "vlan_tci",
            Field::NwSrc => "nw_src",
            Field::NwDst => "nw_dst",
            Field::NwProto => "nw_proto",
            Field::NwTtl => "nw_ttl",
            Field::NwTos => "nw_tos",
            Field::TpSrc => "tp_src",
            Field::TpDst => "tp_dst",
            Field::TunId => "tun_id",
            Field::TunSrc => "tun_src",
            Field::TunDst => "tun_dst",
            Field::CtState => "ct_state",
            Field::CtZone => "ct_zone",
            Field::CtMark => "ct_mark",
            Field::Reg(n) => return write!(f, "reg{n}"),
        };
        f.write_str(s)
    }
}

/// One field of a match: packets match when `packet & mask == value`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldMatch {
    /// The field.
    pub field: Field,
    /// The value, already masked (`value & !mask == 0`).
    pub value: u64,
    /// Which bits matter; never zero inside a [`Match`].
    pub mask: u64,
}

/// A flow's match: at most one [`FieldMatch`] per field, sorted by field.
///
/// The canonical form is what makes printing and re-parsing exact: build it
/// through [`Match::set`], which masks the value, clips the mask to the field
/// and drops all-wildcard entries. Deserialization goes through `set` too.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<FieldMatch>", into = "Vec<FieldMatch>")]
pub struct Match {
    fields: Vec<FieldMatch>,
}

impl Match {
    /// The match-everything match.
    pub fn new() -> Match {
        Match::default()
    }

    /// `(value, mask)` for `field`, if the match constrains it.
    pub fn get(&self, field: Field) -> Option<(u64, u64)> {
        self.fields
            .binary_search_by(|m| m.field.cmp(&field))
            .ok()
            .map(|i| (self.fields[i].value, self.fields[i].mask))
    }

    /// Matches `field` against `value` under `mask`, replacing any earlier
    /// constraint on it. The mask is clipped to [`Field::full_mask`] and the
    /// value masked; a zero mask removes the field.
    pub fn set(&mut self, field: Field, value: u64, mask: u64) {
        let mask = mask & field.full_mask();
        let value = value & mask;
        match self.fields.binary_search_by(|m| m.field.cmp(&field)) {
            Ok(i) if mask == 0 => {
                self.fields.remove(i);
            }
            Ok(i) => self.fields[i] = FieldMatch { field, value, mask },
            Err(_) if mask == 0 => {}
            Err(i) => self.fields.insert(i, FieldMatch { field, value, mask }),
        }
    }

    /// Matches `field` exactly (under [`Field::exact_mask`]).
    pub fn set_exact(&mut self, field: Field, value: u64) {
        self.set(field, value, field.exact_mask());
    }

    /// Stops matching on `field`; returns what it was.
    pub fn remove(&mut self, field: Field) -> Option<(u64, u64)> {
        let i = self.fields.binary_search_by(|m| m.field.cmp(&field)).ok()?;
        let m = self.fields.remove(i);
        Some((m.value, m.mask))
    }

    /// The constrained fields, in field order.
    pub fn iter(&self) -> std::slice::Iter<'_, FieldMatch> {
        self.fields.iter()
    }

    /// Number of constrained fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// True for the match-everything match.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The exact value of `field`, if it is matched under its exact mask.
    pub fn exact(&self, field: Field) -> Option<u64> {
        match self.get(field) {
            Some((v, m)) if m == field.exact_mask() => Some(v),
            _ => None,
        }
    }

    /// The Ethertype, if matched exactly.
    pub fn dl_type(&self) -> Option<u16> {
        self.exact(Field::DlType).map(|v| v as u16)
    }

    /// The IP protocol (or ARP opcode), if matched exactly.
    pub fn nw_proto(&self) -> Option<u8> {
        self.exact(Field::NwProto).map(|v| v as u8)
    }

    /// The first field whose OVS prerequisite is missing, with the reason:
    /// `nw_src`, `nw_dst`, `nw_proto` need `ip` or `arp`; `nw_ttl`, `nw_tos`
    /// need `ip`; `tp_src`, `tp_dst` need `tcp`, `udp`, `sctp` or `icmp`
    /// (for ICMP, an exact type/code of 0-255). `None` when all are met.
    pub fn prerequisite_error(&self) -> Option<(Field, &'static str)> {
        let dl_type = self.dl_type();
        let ip = dl_type == Some(ETH_TYPE_IP);
        let arp = dl_type == Some(ETH_TYPE_ARP);
        let proto = if ip { self.nw_proto() } else { None };
        for m in self.iter() {
            let err = match m.field {
                Field::NwSrc | Field::NwDst | Field::NwProto if !(ip || arp) => {
                    Some("needs dl_type ip or arp (add `ip` or `arp` to the match)")
                }
                Field::NwTtl | Field::NwTos if !ip => {
                    Some("needs dl_type ip (add `ip` to the match)")
                }
                Field::TpSrc | Field::TpDst => match proto {
                    Some(IPPROTO_TCP | IPPROTO_UDP | IPPROTO_SCTP) => None,
                    Some(IPPROTO_ICMP) if m.mask == 0xffff && m.value <= 0xff => None,
                    Some(IPPROTO_ICMP) => Some("ICMP type and code are exact values 0-255"),
                    _ => {
                        Some("needs nw_proto tcp, udp, sctp or icmp (add e.g. `tcp` to the match)")
                    }
                },
                _ => None,
            };
            if let Some(reason) = err {
                return Some((m.field, reason));
            }
        }
        None
    }
}

impl From<Vec<FieldMatch>> for Match {
    fn from(v: Vec<FieldMatch>) -> Match {
        let mut m = Match::new();
        for f in v {
            m.set(f.field, f.value, f.mask);
        }
        m
    }
}

impl From<Match> for Vec<FieldMatch> {
    fn from(m: Match) -> Vec<FieldMatch> {
        m.fields
    }
}

impl<'a> IntoIterator for &'a Match {
    type Item = &'a FieldMatch;
    type IntoIter = std::slice::Iter<'a, FieldMatch>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// The `nat` part of a `ct` action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Nat {
    /// `nat(dst=IP[:PORT])`: destination NAT of new connections.
    Dst {
        /// Translated destination address.
        ip: Ipv4Addr,
        /// Translated destination port (1-65535), if any.
        port: Option<u16>,
    },
    /// `nat(src=IP[:PORT])`: source NAT of new connections.
    Src {
        /// Translated source address.
        ip: Ipv4Addr,
        /// Translated source port (1-65535), if any.
        port: Option<u16>,
    },
    /// Plain `nat`: apply the NAT already recorded for the connection.
    Reverse,
}

/// The `ct(...)` action: send the packet through connection tracking.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CtAction {
    /// `commit`: create the connection entry if it does not exist.
    pub commit: bool,
    /// `zone=N`: the conntrack zone; `None` is zone 0 (OVS does not print `zone=0`).
    pub zone: Option<u16>,
    /// `table=T`: continue processing a clone of the packet in table T.
    pub table: Option<u8>,
    /// `nat` / `nat(src=..)` / `nat(dst=..)`.
    pub nat: Option<Nat>,
    /// `exec(...)`: actions applied to the connection; only `set_field:V->ct_mark`.
    pub exec: Vec<Action>,
}

/// One OpenFlow action (or the `goto_table` instruction).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// `output:N`: send to port N.
    Output(PortNo),
    /// `in_port`: send back out the port the packet came in on.
    InPort,
    /// `normal`: L2 learning switch behaviour.
    Normal,
    /// `flood`: every port except the input port (and ports with flooding off).
    Flood,
    /// `all`: every port except the input port.
    All,
    /// `local`: the switch's local port.
    Local,
    /// An explicit no-op for flows built in code; the parser turns `drop` into
    /// an empty action list instead, as OVS does.
    Drop,
    /// `resubmit:P`, `resubmit(P,T)`, `resubmit(,T)`: look up again (with in_port P, in table T).
    Resubmit {
        /// The in_port to look up with; `None` keeps the packet's own.
        port: Option<PortNo>,
        /// The table to look up in; `None` is the current table.
        table: Option<u8>,
    },
    /// `goto_table:T`: continue in table T (must be the last action).
    GotoTable(u8),
    /// `set_field:V->F` (and `mod_dl_src`, `mod_nw_dst`, `mod_tp_dst`, ...).
    SetField {
        /// The field written.
        field: Field,
        /// The value, fitting the field.
        value: u64,
    },
    /// `dec_ttl`: decrement the IP TTL, drop at zero.
    DecTtl,
    /// `push_vlan:TPID`: push a VLAN header with this TPID (0x8100 or 0x88a8).
    PushVlan(u16),
    /// `pop_vlan` (also `strip_vlan`): remove the outer VLAN header.
    PopVlan,
    /// `mod_vlan_vid:N`: set the VLAN id, pushing a tag if there is none.
    ModVlanVid(u16),
    /// `group:G`: process through group G.
    Group(u32),
    /// `ct(...)`: connection tracking.
    Ct(CtAction),
    /// `ct_clear`: forget the packet's conntrack state.
    CtClear,
}

/// A flow as `ovs-ofctl add-flow` takes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    /// Table, 0-254.
    pub table: u8,
    /// Priority; [`DEFAULT_PRIORITY`] when not given.
    pub priority: u16,
    /// Opaque cookie.
    pub cookie: u64,
    /// Seconds without a hit before the flow expires; 0 = never.
    pub idle_timeout: u16,
    /// Seconds after which the flow expires; 0 = never.
    pub hard_timeout: u16,
    /// What the flow matches.
    pub matches: Match,
    /// What it does; empty means drop.
    pub actions: Vec<Action>,
}

impl Default for Flow {
    fn default() -> Flow {
        Flow {
            table: 0,
            priority: DEFAULT_PRIORITY,
            cookie: 0,
            idle_timeout: 0,
            hard_timeout: 0,
            matches: Match::new(),
            actions: Vec::new(),
        }
    }
}

/// Which flows `del-flows` / `dump-flows` act on.
///
/// A flow is selected when it is in `table` (any if `None`), its cookie
/// matches `cookie` under its mask, one of its actions outputs to `out_port`,
/// and its match is at least as specific as `matches` (or, with `--strict`,
/// equal to it and at `priority`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowFilter {
    /// `table=T`.
    pub table: Option<u8>,
    /// `cookie=V/M`: `(value, mask)`.
    pub cookie: Option<(u64, u64)>,
    /// The match fields given.
    pub matches: Match,
    /// `out_port=P`.
    pub out_port: Option<PortNo>,
    /// `priority=P`; only meaningful with `--strict`.
    pub priority: Option<u16>,
}

/// Counters shown by `dump-flows`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowStats {
    /// Packets that hit the flow.
    pub n_packets: u64,
    /// Bytes of those packets.
    pub n_bytes: u64,
    /// Time since the flow was added.
    pub duration: Duration,
    /// Time since the last hit, printed as `idle_age=` (whole seconds). OpenFlow
    /// 1.3 replies do not carry it, so `ovs-ofctl -O OpenFlow13` never prints
    /// it: leave it `None` for that format.
    pub idle_age: Option<Duration>,
}

/// How a group uses its buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GroupType {
    /// `all`: every bucket gets a copy (multicast, flooding).
    All,
    /// `select`: one bucket, chosen by a hash of the flow, weighted.
    Select,
    /// `indirect`: exactly one bucket.
    Indirect,
}

impl fmt::Display for GroupType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GroupType::All => "all",
            GroupType::Select => "select",
            GroupType::Indirect => "indirect",
        })
    }
}

/// One bucket of a group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    /// Relative weight (select groups; 1 by default there, 0 elsewhere).
    pub weight: u16,
    /// Actions applied to the packet (or its copy); empty means drop.
    pub actions: Vec<Action>,
}

/// A group as `ovs-ofctl add-group` takes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// `group_id=G`, 0 to [`MAX_GROUP`].
    pub id: u32,
    /// `type=all|select|indirect`.
    pub kind: GroupType,
    /// `bucket=...` entries, in order.
    pub buckets: Vec<Bucket>,
}

/// A flow, filter or group text that is not in the accepted `ovs-ofctl` subset.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}column {column} near {token:?}: {reason}", line_prefix(.line))]
pub struct FlowError {
    /// 1-based line, when parsing a file of flows.
    pub line: Option<usize>,
    /// 1-based character position of the offending token in its line.
    pub column: usize,
    /// The offending token.
    pub token: String,
    /// What is wrong with it.
    pub reason: String,
}

fn line_prefix(line: &Option<usize>) -> String {
    line.map(|l| format!("line {l}, ")).unwrap_or_default()
}

impl FlowError {
    /// An error about `token`, which starts at byte `pos` of `src`.
    pub(crate) fn at(src: &str, pos: usize, token: &str, reason: impl Into<String>) -> FlowError {
        let column = src.get(..pos).map_or(0, |p| p.chars().count()) + 1;
        FlowError {
            line: None,
            column,
            token: token.to_string(),
            reason: reason.into(),
        }
    }
}
