//! Parsers for `ovs-ofctl` flow, filter and group text.
//!
//! The grammar follows OVS's `parse_ofp_str__()` (flows and filters),
//! `ofpacts_parse__()` (actions) and `parse_ofp_group_mod_str__()` (groups):
//! match fields and the flow's own keys (`table`, `priority`, `cookie`,
//! timeouts) come first in any order, separated by commas or white space, and
//! `actions=` takes the rest of the text. The meaning of every accepted item
//! is OVS's, including its checks: match prerequisites (`nw_src` needs `ip`),
//! action prerequisites (`mod_tp_dst` needs `tcp`/`udp`/`sctp`, `ct` needs
//! `ip`), `goto_table` last and to a later table, `drop` alone.
//!
//! It does not accept what the subset leaves out (port names, `load`, `move`,
//! `learn`, IPv6 fields, NAT ranges, ...): those are errors naming the token,
//! with its column. It never panics, whatever the input.

use super::lex::{
    parse_int_masked, parse_ipv4, parse_ipv4_masked, parse_mac, parse_mac_masked, parse_port,
    parse_table, parse_u64, parse_uint, Delim, Kv, Lexer,
};
use super::{
    ct_state, Action, Bucket, CtAction, Field, Flow, FlowError, FlowFilter, Group, GroupType,
    Match, Nat, DEFAULT_PRIORITY, ETH_TYPE_ARP, ETH_TYPE_IP, ETH_TYPE_IPV6, ETH_TYPE_MPLS,
    ETH_TYPE_MPLS_MCAST, ETH_TYPE_RARP, IPPROTO_ICMP, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP,
    MAX_GROUP, N_REGS,
};
use crate::types::PortNo;

/// Parses one flow in `ovs-ofctl add-flow` syntax.
///
/// Also accepts a line of `dump-flows` output: its `duration`, `n_packets`,
/// `n_bytes`, `idle_age` and `hard_age` are ignored, as OVS does.
pub fn parse_flow(s: &str) -> Result<Flow, FlowError> {
    let h = parse_header(s, Mode::Flow)?;
    let actions_pos = h.actions.unwrap_or(s.len());
    let table = h.table.unwrap_or(0);
    let ctx = ActCtx {
        m: Some(&h.matches),
        table: Some(table),
        nest: Nest::Top,
    };
    let mut list = ActionList::new(s, ctx);
    list.feed(Lexer::range(s, actions_pos, s.len()))?;
    let actions = list.finish()?;
    let (cookie, _) = h.cookie.unwrap_or((0, u64::MAX));
    Ok(Flow {
        table,
        priority: h.priority.unwrap_or(DEFAULT_PRIORITY),
        cookie,
        idle_timeout: h.idle_timeout.unwrap_or(0),
        hard_timeout: h.hard_timeout.unwrap_or(0),
        matches: h.matches,
        actions,
    })
}

/// Parses the `[MATCH]` argument of `del-flows` / `dump-flows`; the empty
/// string selects all flows. `cookie` needs a mask (`cookie=0x5/-1`), as in OVS.
pub fn parse_filter(s: &str) -> Result<FlowFilter, FlowError> {
    let h = parse_header(s, Mode::Filter)?;
    Ok(FlowFilter {
        table: h.table,
        cookie: h.cookie,
        matches: h.matches,
        out_port: h.out_port,
        priority: h.priority,
    })
}

/// Parses an `add-flows` file: one flow per line; `#` starts a comment that
/// runs to the end of the line; blank lines are skipped. Errors carry the
/// 1-based line number.
pub fn parse_flows(text: &str) -> Result<Vec<Flow>, FlowError> {
    let mut flows = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let line = match line.find('#') {
            Some(p) => &line[..p],
            None => line,
        };
        if line.trim().is_empty() {
            continue;
        }
        let flow = parse_flow(line).map_err(|mut e| {
            e.line = Some(i + 1);
            e
        })?;
        flows.push(flow);
    }
    Ok(flows)
}

/// Parses a group in `ovs-ofctl add-group` syntax, e.g.
/// `group_id=1,type=select,bucket=weight:50,actions=output:1,bucket=output:2`.
pub fn parse_group(s: &str) -> Result<Group, FlowError> {
    const BUCKET: &str = "bucket=";
    let first_bucket = s.find(BUCKET);
    let mut id = None;
    let mut kind = None;
    let mut lex = Lexer::range(s, 0, first_bucket.unwrap_or(s.len()));
    while let Some(kv) = lex.next_kv()? {
        match kv.key {
            "group_id" => {
                need_value(s, &kv)?;
                if id.is_some() {
                    return Err(twice(s, &kv));
                }
                let v = parse_u64(kv.value).map_err(|r| value_err(s, &kv, r))?;
                if v > u64::from(MAX_GROUP) {
                    return Err(value_err(s, &kv, format!("group id must be 0-{MAX_GROUP}")));
                }
                id = Some(v as u32);
            }
            "type" => {
                need_value(s, &kv)?;
                if kind.is_some() {
                    return Err(twice(s, &kv));
                }
                kind = Some(match kv.value {
                    "all" => GroupType::All,
                    "select" => GroupType::Select,
                    "indirect" => GroupType::Indirect,
                    "ff" | "fast_failover" => {
                        return Err(value_err(s, &kv, "fast_failover groups are not supported"))
                    }
                    _ => {
                        return Err(value_err(
                            s,
                            &kv,
                            "group type must be all, select or indirect",
                        ))
                    }
                });
            }
            _ => return Err(name_err(s, &kv, "unknown group keyword")),
        }
    }
    let end_of_head = first_bucket.unwrap_or(s.len());
    let id = id.ok_or_else(|| FlowError::at(s, end_of_head, "", "missing group_id="))?;
    let kind = kind.ok_or_else(|| FlowError::at(s, end_of_head, "", "missing type="))?;

    let mut buckets = Vec::new();
    let mut next = first_bucket;
    while let Some(start) = next {
        let body = start + BUCKET.len();
        next = s.get(body..).and_then(|t| t.find(BUCKET)).map(|p| p + body);
        let end = next.unwrap_or(s.len());
        let bucket = parse_bucket(s, start, body, end, kind)?;
        if kind == GroupType::Indirect && !buckets.is_empty() {
            return Err(FlowError::at(
                s,
                start,
                BUCKET,
                "an indirect group has at most one bucket",
            ));
        }
        buckets.push(bucket);
    }
    Ok(Group { id, kind, buckets })
}

/// One `bucket=` entry: `weight:W`, `actions=A` / `action=A` and bare actions.
fn parse_bucket(
    s: &str,
    start: usize,
    body: usize,
    end: usize,
    kind: GroupType,
) -> Result<Bucket, FlowError> {
    let ctx = ActCtx {
        m: None,
        table: None,
        nest: Nest::Bucket,
    };
    let mut weight = None;
    let mut list = ActionList::new(s, ctx);
    let mut lex = Lexer::range(s, body, end);
    while let Some(kv) = lex.next_kv()? {
        match kv.key.to_ascii_lowercase().as_str() {
            "weight" => {
                need_value(s, &kv)?;
                if weight.is_some() {
                    return Err(twice(s, &kv));
                }
                let w = parse_uint(kv.value, 16).map_err(|r| value_err(s, &kv, r))? as u16;
                if kind != GroupType::Select && w != 0 {
                    return Err(key_err(
                        s,
                        &kv,
                        "only select groups can have bucket weights",
                    ));
                }
                weight = Some(w);
            }
            "actions" | "action" => {
                need_value(s, &kv)?;
                list.feed(kv.value_lexer(s))?;
            }
            "watch_port" | "watch_group" | "bucket_id" => {
                return Err(key_err(s, &kv, "not supported (no fast-failover groups)"))
            }
            _ => list.push(&kv)?,
        }
    }
    if list.is_empty() {
        return Err(FlowError::at(
            s,
            start,
            "bucket=",
            "bucket must specify actions",
        ));
    }
    let default_weight = u16::from(kind == GroupType::Select);
    Ok(Bucket {
        weight: weight.unwrap_or(default_weight),
        actions: list.finish()?,
    })
}

/// Which command's syntax the header follows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `add-flow`: actions required, cookie without mask.
    Flow,
    /// `del-flows` / `dump-flows`: no actions, cookie with mask, `out_port`.
    Filter,
}

/// Everything before `actions=`.
#[derive(Default)]
struct Header {
    table: Option<u8>,
    priority: Option<u16>,
    cookie: Option<(u64, u64)>,
    idle_timeout: Option<u16>,
    hard_timeout: Option<u16>,
    out_port: Option<PortNo>,
    /// Byte position where the action text starts.
    actions: Option<usize>,
    matches: Match,
}

fn parse_header(s: &str, mode: Mode) -> Result<Header, FlowError> {
    let mut h = Header::default();
    let mut mb = MatchBuilder::new(s);
    let mut lex = Lexer::new(s);
    while let Some(kv) = lex.next_kv()? {
        match kv.key {
            "actions" | "action" => {
                if mode == Mode::Filter {
                    return Err(key_err(s, &kv, "actions are not allowed in a flow filter"));
                }
                if kv.delim != Delim::Equals {
                    return Err(key_err(s, &kv, "expected actions=..."));
                }
                h.actions = Some(kv.delim_pos + 1);
                break;
            }
            "table" => {
                need_value(s, &kv)?;
                if h.table.is_some() {
                    return Err(twice(s, &kv));
                }
                h.table = Some(parse_table(kv.value).map_err(|r| value_err(s, &kv, r))?);
            }
            "priority" => {
                need_value(s, &kv)?;
                if h.priority.is_some() {
                    return Err(twice(s, &kv));
                }
                let p = parse_uint(kv.value, 16)
                    .map_err(|r| value_err(s, &kv, format!("priority must be 0-65535: {r}")))?;
                h.priority = Some(p as u16);
            }
            "cookie" => {
                need_value(s, &kv)?;
                if h.cookie.is_some() {
                    return Err(twice(s, &kv));
                }
                h.cookie = Some(parse_cookie(s, &kv, mode)?);
            }
            "idle_timeout" | "hard_timeout" => {
                if mode == Mode::Filter {
                    return Err(key_err(s, &kv, "timeouts are not allowed in a flow filter"));
                }
                need_value(s, &kv)?;
                let slot = if kv.key == "idle_timeout" {
                    &mut h.idle_timeout
                } else {
                    &mut h.hard_timeout
                };
                if slot.is_some() {
                    return Err(twice(s, &kv));
                }
                let t = parse_uint(kv.value, 16).map_err(|r| value_err(s, &kv, r))?;
                *slot = Some(t as u16);
            }
            "out_port" => {
                if mode == Mode::Flow {
                    return Err(key_err(
                        s,
                        &kv,
                        "out_port is only for del-flows and dump-flows",
                    ));
                }
                need_value(s, &kv)?;
                if h.out_port.is_some() {
                    return Err(twice(s, &kv));
                }
                h.out_port = Some(parse_port(kv.value).map_err(|r| value_err(s, &kv, r))?);
            }
            "duration" | "n_packets" | "n_bytes" | "idle_age" | "hard_age" => {
                // dump-flows output fed back in: OVS ignores these.
                need_value(s, &kv)?;
            }
            key => {
                if let Some((dl_type, proto)) = protocol(key) {
                    if kv.delim != Delim::None {
                        return Err(key_err(s, &kv, format!("{key} takes no value")));
                    }
                    mb.add(Field::DlType, u64::from(dl_type), 0xffff, &kv)?;
                    if let Some(p) = proto {
                        mb.add(Field::NwProto, u64::from(p), 0xff, &kv)?;
                    }
                } else if let Some((field, syntax)) = match_field(key) {
                    need_value(s, &kv)?;
                    let (v, m) = parse_match_value(field, syntax, kv.value)
                        .map_err(|r| value_err(s, &kv, r))?;
                    mb.add(field, v, m, &kv)?;
                } else {
                    return Err(name_err(s, &kv, "unknown match field"));
                }
            }
        }
    }
    if mode == Mode::Flow && h.actions.is_none() {
        return Err(FlowError::at(
            s,
            s.len(),
            "",
            "missing actions= (a flow needs actions; actions=drop drops)",
        ));
    }
    h.matches = mb.finish()?;
    Ok(h)
}

fn parse_cookie(s: &str, kv: &Kv<'_>, mode: Mode) -> Result<(u64, u64), FlowError> {
    match (kv.value.split_once('/'), mode) {
        (Some(_), Mode::Flow) => Err(value_err(s, kv, "flow additions cannot use a cookie mask")),
        (None, Mode::Flow) => {
            let v = parse_u64(kv.value).map_err(|r| value_err(s, kv, r))?;
            Ok((v, u64::MAX))
        }
        (None, Mode::Filter) => Err(value_err(
            s,
            kv,
            format!("to match a cookie give a mask, e.g. cookie={}/-1", kv.value),
        )),
        (Some((v, m)), Mode::Filter) => {
            let v = parse_u64(v).map_err(|r| value_err(s, kv, r))?;
            let m = if m == "-1" {
                u64::MAX
            } else {
                parse_u64(m).map_err(|r| value_err(s, kv, r))?
            };
            Ok((v & m, m))
        }
    }
}

/// The protocol shorthands: `(dl_type, nw_proto)`.
fn protocol(name: &str) -> Option<(u16, Option<u8>)> {
    Some(match name {
        "ip" => (ETH_TYPE_IP, None),
        "icmp" => (ETH_TYPE_IP, Some(IPPROTO_ICMP)),
        "tcp" => (ETH_TYPE_IP, Some(IPPROTO_TCP)),
        "udp" => (ETH_TYPE_IP, Some(IPPROTO_UDP)),
        "sctp" => (ETH_TYPE_IP, Some(IPPROTO_SCTP)),
        "arp" => (ETH_TYPE_ARP, None),
        "rarp" => (ETH_TYPE_RARP, None),
        "ipv6" => (ETH_TYPE_IPV6, None),
        "mpls" => (ETH_TYPE_MPLS, None),
        "mplsm" => (ETH_TYPE_MPLS_MCAST, None),
        _ => return None,
    })
}

/// How a field's value is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Syntax {
    /// An OpenFlow port.
    Port,
    /// A MAC address, optionally `/mask`.
    Mac,
    /// An IPv4 address, optionally `/len` or `/mask`.
    Ipv4,
    /// A number, `/mask` if the field is maskable.
    Int,
    /// An 8-bit exact number stored in a 16-bit field (ICMP type/code).
    Icmp,
    /// `ct_state` flags.
    CtState,
    /// `dl_vlan`: a VLAN id, or 0xffff for "no tag".
    DlVlan,
    /// `dl_vlan_pcp`: a priority 0-7.
    DlVlanPcp,
    /// `nw_tos`: a TOS byte with the ECN bits clear.
    NwTos,
}

/// A match-field name: the field and how its value is written.
fn match_field(name: &str) -> Option<(Field, Syntax)> {
    use Field::*;
    Some(match name {
        "in_port" => (InPort, Syntax::Port),
        "dl_src" | "eth_src" => (DlSrc, Syntax::Mac),
        "dl_dst" | "eth_dst" => (DlDst, Syntax::Mac),
        "dl_type" | "eth_type" => (DlType, Syntax::Int),
        "vlan_tci" => (VlanTci, Syntax::Int),
        "dl_vlan" => (VlanTci, Syntax::DlVlan),
        "dl_vlan_pcp" => (VlanTci, Syntax::DlVlanPcp),
        "nw_src" | "ip_src" | "arp_spa" => (NwSrc, Syntax::Ipv4),
        "nw_dst" | "ip_dst" | "arp_tpa" => (NwDst, Syntax::Ipv4),
        "nw_proto" | "ip_proto" | "arp_op" => (NwProto, Syntax::Int),
        "nw_ttl" => (NwTtl, Syntax::Int),
        "nw_tos" => (NwTos, Syntax::NwTos),
        "tp_src" | "tcp_src" | "udp_src" | "sctp_src" => (TpSrc, Syntax::Int),
        "tp_dst" | "tcp_dst" | "udp_dst" | "sctp_dst" => (TpDst, Syntax::Int),
        "icmp_type" => (TpSrc, Syntax::Icmp),
        "icmp_code" => (TpDst, Syntax::Icmp),
        "tun_id" | "tunnel_id" => (TunId, Syntax::Int),
        "tun_src" => (TunSrc, Syntax::Ipv4),
        "tun_dst" => (TunDst, Syntax::Ipv4),
        "ct_state" => (CtState, Syntax::CtState),
        "ct_zone" => (CtZone, Syntax::Int),
        "ct_mark" => (CtMark, Syntax::Int),
        _ => return reg_field(name).map(|f| (f, Syntax::Int)),
    })
}

/// `reg0`..`reg7`.
fn reg_field(name: &str) -> Option<Field> {
    let n = name.strip_prefix("reg")?;
    match n.as_bytes() {
        [d @ b'0'..=b'9'] if d - b'0' < N_REGS => Some(Field::Reg(d - b'0')),
        _ => None,
    }
}

/// `(value, mask)` of a match on `field` written `s`.
fn parse_match_value(field: Field, syntax: Syntax, s: &str) -> Result<(u64, u64), String> {
    match syntax {
        Syntax::Port => {
            if s.contains('/') {
                return Err("in_port cannot be masked".into());
            }
            match parse_port(s)? {
                PortNo::IN_PORT => Err("in_port=IN_PORT matches nothing".into()),
                p => Ok((u64::from(p.0), 0xffff_ffff)),
            }
        }
        Syntax::Mac => parse_mac_masked(s),
        Syntax::Ipv4 => parse_ipv4_masked(s),
        Syntax::Int => parse_int_masked(s, field.bits(), field.is_maskable()),
        Syntax::Icmp => Ok((parse_int_masked(s, 8, false)?.0, 0xffff)),
        Syntax::NwTos => {
            let v = parse_int_masked(s, 8, false)?.0;
            if v & 0x03 != 0 {
                return Err("nw_tos is the DSCP times 4: the two low (ECN) bits must be 0".into());
            }
            Ok((v, 0xfc))
        }
        Syntax::DlVlan => {
            if s.contains('/') {
                return Err("dl_vlan cannot be masked (use vlan_tci=V/M)".into());
            }
            match parse_uint(s, 16)? {
                0xffff => Ok((0, 0xffff)),
                v if v <= 0xfff => Ok((0x1000 | v, 0x1fff)),
                _ => Err("VLAN id must be 0-4095, or 0xffff for untagged".into()),
            }
        }
        Syntax::DlVlanPcp => match parse_uint(s, 8)? {
            p if p <= 7 => Ok((0x1000 | (p << 13), 0xf000)),
            _ => Err("VLAN priority must be 0-7".into()),
        },
        Syntax::CtState => parse_ct_state(s),
    }
}

/// `ct_state` as `V/M` numbers, `+flag-flag...`, or `flag|flag|...` (exact).
fn parse_ct_state(s: &str) -> Result<(u64, u64), String> {
    let flag = |name: &str| -> Result<u64, String> {
        ct_state::NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| 1u64 << i)
            .ok_or_else(|| format!("unknown ct_state flag {name:?}"))
    };
    let known = |v: u64, text: &str| -> Result<u64, String> {
        if v & !ct_state::ALL != 0 {
            Err(format!("{text}: unknown ct_state flag bits"))
        } else {
            Ok(v)
        }
    };
    if let Some((v, m)) = s.split_once('/') {
        let v = known(parse_u64(v)?, v)?;
        let m = known(parse_u64(m)?, m)?;
        return Ok((v & m, m));
    }
    if s.starts_with('+') || s.starts_with('-') {
        let (mut flags, mut mask) = (0u64, 0u64);
        let mut rest = s;
        while let Some(sign) = rest.chars().next() {
            let set = match sign {
                '+' => true,
                '-' => false,
                _ => {
                    return Err(format!(
                        "{rest}: each ct_state flag needs a '+' or '-' before it"
                    ))
                }
            };
            rest = &rest[1..];
            let n = rest.find(['+', '-']).unwrap_or(rest.len());
            let bit = flag(&rest[..n])?;
            if mask & bit != 0 {
                return Err(format!("ct_state flag {} given twice", &rest[..n]));
            }
            mask |= bit;
            if set {
                flags |= bit;
            }
            rest = &rest[n..];
        }
        return Ok((flags, mask));
    }
    let mut flags = 0;
    for part in s.split('|') {
        flags |= if part.bytes().next().is_some_and(|c| c.is_ascii_digit()) {
            known(parse_u64(part)?, part)?
        } else {
            flag(part)?
        };
    }
    Ok((flags, ct_state::ALL))
}

/// Collects match fields, refusing contradictions and checking prerequisites.
struct MatchBuilder<'a> {
    src: &'a str,
    m: Match,
    /// Where each field was first given: `(field, pos, token)`.
    seen: Vec<(Field, usize, &'a str)>,
}

impl<'a> MatchBuilder<'a> {
    fn new(src: &'a str) -> MatchBuilder<'a> {
        MatchBuilder {
            src,
            m: Match::new(),
            seen: Vec::new(),
        }
    }

    fn add(&mut self, field: Field, value: u64, mask: u64, kv: &Kv<'a>) -> Result<(), FlowError> {
        let mask = mask & field.full_mask();
        let value = value & mask;
        if mask == 0 {
            return Ok(()); // e.g. nw_src=0.0.0.0/0: matches everything.
        }
        match self.m.get(field) {
            None => self.m.set(field, value, mask),
            Some(old) if old == (value, mask) => {}
            // dl_vlan and dl_vlan_pcp each set part of the TCI.
            Some((v0, m0)) if field == Field::VlanTci && v0 & mask == value & m0 => {
                self.m.set(field, v0 | value, m0 | mask)
            }
            Some(_) => {
                return Err(key_err(
                    self.src,
                    kv,
                    format!("conflicts with an earlier match on {field}"),
                ))
            }
        }
        if !self.seen.iter().any(|s| s.0 == field) {
            self.seen.push((field, kv.key_pos, kv.key));
        }
        Ok(())
    }

    fn finish(self) -> Result<Match, FlowError> {
        if let Some((field, reason)) = self.m.prerequisite_error() {
            let (pos, token) = self
                .seen
                .iter()
                .find(|s| s.0 == field)
                .map_or((0, ""), |s| (s.1, s.2));
            return Err(FlowError::at(self.src, pos, token, reason));
        }
        Ok(self.m)
    }
}

/// Where an action list sits.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Nest {
    /// A flow's `actions=`.
    Top,
    /// A group bucket: no match to check prerequisites against.
    Bucket,
    /// Inside `ct(exec(...))`.
    CtExec,
}

/// What an action is checked against.
#[derive(Clone, Copy, Debug)]
struct ActCtx<'m> {
    /// The flow's match; `None` in buckets.
    m: Option<&'m Match>,
    /// The flow's table; `None` in buckets.
    table: Option<u8>,
    nest: Nest,
}

impl ActCtx<'_> {
    fn dl_type_is(&self, types: &[u16]) -> bool {
        self.m
            .is_none_or(|m| m.dl_type().is_some_and(|t| types.contains(&t)))
    }

    fn proto_is(&self, protos: &[u8]) -> bool {
        self.m.is_none_or(|m| {
            m.dl_type() == Some(ETH_TYPE_IP) && m.nw_proto().is_some_and(|p| protos.contains(&p))
        })
    }
}

/// An action list being built from one or more lexers (a bucket has several).
struct ActionList<'a> {
    src: &'a str,
    ctx: ActCtx<'a>,
    items: Vec<(Action, Kv<'a>)>,
    drop: Option<Kv<'a>>,
}

impl<'a> ActionList<'a> {
    fn new(src: &'a str, ctx: ActCtx<'a>) -> ActionList<'a> {
        ActionList {
            src,
            ctx,
            items: Vec::new(),
            drop: None,
        }
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty() && self.drop.is_none()
    }

    fn feed(&mut self, mut lex: Lexer<'a>) -> Result<(), FlowError> {
        while let Some(kv) = lex.next_kv()? {
            self.push(&kv)?;
        }
        Ok(())
    }

    fn push(&mut self, kv: &Kv<'a>) -> Result<(), FlowError> {
        match parse_action(self.src, kv, self.ctx)? {
            Some(a) => self.items.push((a, *kv)),
            None => self.drop = Some(*kv),
        }
        Ok(())
    }

    fn finish(self) -> Result<Vec<Action>, FlowError> {
        if let Some(d) = self.drop {
            if !self.items.is_empty() {
                return Err(key_err(self.src, &d, "drop must be the only action"));
            }
        }
        let n = self.items.len();
        for (i, (a, kv)) in self.items.iter().enumerate() {
            if matches!(a, Action::GotoTable(_)) && i + 1 != n {
                return Err(key_err(self.src, kv, "goto_table must be the last action"));
            }
        }
        Ok(self.items.into_iter().map(|(a, _)| a).collect())
    }
}

/// One action; `None` for `drop`.
fn parse_action(s: &str, kv: &Kv<'_>, ctx: ActCtx<'_>) -> Result<Option<Action>, FlowError> {
    let name = kv.key.to_ascii_lowercase();
    // Checked before parsing so that nested `ct(exec(ct(...)))` cannot recurse.
    if ctx.nest == Nest::CtExec && name != "set_field" {
        return Err(key_err(s, kv, EXEC_ONLY));
    }
    let action = match name.as_str() {
        "drop" => {
            no_value(s, kv)?;
            return Ok(None);
        }
        "output" => {
            need_value(s, kv)?;
            output_target(kv.value).map_err(|r| value_err(s, kv, r))?
        }
        "resubmit" => parse_resubmit(s, kv)?,
        "goto_table" => {
            need_value(s, kv)?;
            let t = parse_table(kv.value).map_err(|r| value_err(s, kv, r))?;
            if ctx.nest != Nest::Top {
                return Err(key_err(
                    s,
                    kv,
                    "goto_table is only allowed in a flow's actions",
                ));
            }
            if let Some(cur) = ctx.table.filter(|cur| t <= *cur) {
                return Err(value_err(
                    s,
                    kv,
                    format!("goto_table must go to a table after {cur}"),
                ));
            }
            Action::GotoTable(t)
        }
        "set_field" => parse_set_field(s, kv, ctx)?,
        "mod_dl_src" | "mod_dl_dst" => {
            need_value(s, kv)?;
            let mac = parse_mac(kv.value).map_err(|r| value_err(s, kv, r))?;
            let field = if name == "mod_dl_src" {
                Field::DlSrc
            } else {
                Field::DlDst
            };
            Action::SetField { field, value: mac }
        }
        "mod_nw_src" | "mod_nw_dst" => {
            need_value(s, kv)?;
            let ip = parse_ipv4(kv.value).map_err(|r| value_err(s, kv, r))?;
            if !ctx.dl_type_is(&[ETH_TYPE_IP]) {
                return Err(key_err(s, kv, format!("{name} needs an ip match")));
            }
            let field = if name == "mod_nw_src" {
                Field::NwSrc
            } else {
                Field::NwDst
            };
            Action::SetField {
                field,
                value: u64::from(u32::from(ip)),
            }
        }
        "mod_tp_src" | "mod_tp_dst" => {
            need_value(s, kv)?;
            let port = parse_uint(kv.value, 16).map_err(|r| value_err(s, kv, r))?;
            if !ctx.proto_is(&[IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP]) {
                return Err(key_err(
                    s,
                    kv,
                    format!("{name} needs a tcp, udp or sctp match"),
                ));
            }
            let field = if name == "mod_tp_src" {
                Field::TpSrc
            } else {
                Field::TpDst
            };
            Action::SetField { field, value: port }
        }
        "mod_nw_ttl" => {
            need_value(s, kv)?;
            let ttl = parse_uint(kv.value, 8).map_err(|r| value_err(s, kv, r))?;
            if !ctx.dl_type_is(&[ETH_TYPE_IP]) {
                return Err(key_err(s, kv, "mod_nw_ttl needs an ip match"));
            }
            Action::SetField {
                field: Field::NwTtl,
                value: ttl,
            }
        }
        "dec_ttl" => {
            if kv.delim == Delim::Paren && !kv.value.is_empty() {
                return Err(value_err(s, kv, "dec_ttl(ids) is not supported"));
            }
            if matches!(kv.delim, Delim::Colon | Delim::Equals) {
                return Err(key_err(s, kv, "dec_ttl takes no value"));
            }
            if !ctx.dl_type_is(&[ETH_TYPE_IP, ETH_TYPE_IPV6]) {
                return Err(key_err(s, kv, "dec_ttl needs an ip match"));
            }
            Action::DecTtl
        }
        "push_vlan" => {
            need_value(s, kv)?;
            match parse_uint(kv.value, 16).map_err(|r| value_err(s, kv, r))? {
                v @ (0x8100 | 0x88a8) => Action::PushVlan(v as u16),
                _ => return Err(value_err(s, kv, "not a VLAN ethertype (0x8100 or 0x88a8)")),
            }
        }
        "pop_vlan" | "strip_vlan" => {
            no_value(s, kv)?;
            Action::PopVlan
        }
        "mod_vlan_vid" => {
            need_value(s, kv)?;
            match parse_uint(kv.value, 16).map_err(|r| value_err(s, kv, r))? {
                v if v <= 0xfff => Action::ModVlanVid(v as u16),
                _ => return Err(value_err(s, kv, "VLAN id must be 0-4095")),
            }
        }
        "group" => {
            need_value(s, kv)?;
            match parse_u64(kv.value).map_err(|r| value_err(s, kv, r))? {
                g if g <= u64::from(MAX_GROUP) => Action::Group(g as u32),
                _ => return Err(value_err(s, kv, format!("group id must be 0-{MAX_GROUP}"))),
            }
        }
        "ct" => parse_ct(s, kv, ctx)?,
        "ct_clear" => {
            no_value(s, kv)?;
            Action::CtClear
        }
        _ => match output_target(kv.key) {
            Ok(a) => {
                no_value(s, kv)?;
                a
            }
            Err(_) => return Err(name_err(s, kv, "unknown action")),
        },
    };
    if ctx.nest == Nest::CtExec
        && !matches!(
            action,
            Action::SetField {
                field: Field::CtMark,
                ..
            }
        )
    {
        return Err(key_err(s, kv, EXEC_ONLY));
    }
    Ok(Some(action))
}

/// What `ct(exec(...))` may contain.
const EXEC_ONLY: &str = "only set_field:V->ct_mark is allowed inside ct(exec(...))";

/// The target of `output:X` or a bare port action.
fn output_target(s: &str) -> Result<Action, String> {
    for (name, a) in [
        ("normal", Action::Normal),
        ("flood", Action::Flood),
        ("all", Action::All),
    ] {
        if s.eq_ignore_ascii_case(name) {
            return Ok(a);
        }
    }
    Ok(match parse_port(s)? {
        PortNo::LOCAL => Action::Local,
        PortNo::IN_PORT => Action::InPort,
        p => Action::Output(p),
    })
}

/// `resubmit:P`, `resubmit(P,T)`, `resubmit(,T)`.
fn parse_resubmit(s: &str, kv: &Kv<'_>) -> Result<Action, FlowError> {
    let port = |t: &str| -> Result<Option<PortNo>, String> {
        match t {
            "" => Ok(None),
            t => match parse_port(t)? {
                PortNo::IN_PORT => Ok(None),
                p => Ok(Some(p)),
            },
        }
    };
    let (p, t) = match kv.delim {
        Delim::Colon | Delim::Equals => (port(kv.value).map_err(|r| value_err(s, kv, r))?, None),
        Delim::Paren => {
            let mut parts = kv.value.split(',');
            let p = port(parts.next().unwrap_or("")).map_err(|r| value_err(s, kv, r))?;
            let t = match parts.next() {
                None | Some("") => None,
                Some(t) => Some(parse_table(t).map_err(|r| value_err(s, kv, r))?),
            };
            if parts.next().is_some() {
                return Err(value_err(s, kv, "resubmit takes (port,table) only"));
            }
            (p, t)
        }
        Delim::None => return Err(key_err(s, kv, "resubmit needs a port or a table")),
    };
    if p.is_none() && t.is_none() {
        return Err(key_err(s, kv, "resubmit needs a port or a table"));
    }
    Ok(Action::Resubmit { port: p, table: t })
}

/// What `set_field` requires of the flow's match.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Req {
    None,
    Ip,
    Arp,
    Proto(u8),
    /// tcp, udp or sctp.
    L4,
    /// Only inside `ct(exec(...))`.
    CtExec,
}

/// A writable field name: the field, its value syntax and its prerequisite.
fn set_field_spec(name: &str) -> Option<(Field, Syntax, Req)> {
    use Field::*;
    Some(match name {
        "eth_src" | "dl_src" => (DlSrc, Syntax::Mac, Req::None),
        "eth_dst" | "dl_dst" => (DlDst, Syntax::Mac, Req::None),
        "vlan_tci" => (VlanTci, Syntax::Int, Req::None),
        "in_port" => (InPort, Syntax::Port, Req::None),
        "ip_src" | "nw_src" => (NwSrc, Syntax::Ipv4, Req::Ip),
        "ip_dst" | "nw_dst" => (NwDst, Syntax::Ipv4, Req::Ip),
        "arp_spa" => (NwSrc, Syntax::Ipv4, Req::Arp),
        "arp_tpa" => (NwDst, Syntax::Ipv4, Req::Arp),
        "arp_op" => (NwProto, Syntax::Int, Req::Arp),
        "nw_ttl" => (NwTtl, Syntax::Int, Req::Ip),
        "nw_tos" => (NwTos, Syntax::NwTos, Req::Ip),
        "tcp_src" => (TpSrc, Syntax::Int, Req::Proto(IPPROTO_TCP)),
        "tcp_dst" => (TpDst, Syntax::Int, Req::Proto(IPPROTO_TCP)),
        "udp_src" => (TpSrc, Syntax::Int, Req::Proto(IPPROTO_UDP)),
        "udp_dst" => (TpDst, Syntax::Int, Req::Proto(IPPROTO_UDP)),
        "sctp_src" => (TpSrc, Syntax::Int, Req::Proto(IPPROTO_SCTP)),
        "sctp_dst" => (TpDst, Syntax::Int, Req::Proto(IPPROTO_SCTP)),
        "tp_src" => (TpSrc, Syntax::Int, Req::L4),
        "tp_dst" => (TpDst, Syntax::Int, Req::L4),
        "icmp_type" => (TpSrc, Syntax::Icmp, Req::Proto(IPPROTO_ICMP)),
        "icmp_code" => (TpDst, Syntax::Icmp, Req::Proto(IPPROTO_ICMP)),
        "tun_id" | "tunnel_id" => (TunId, Syntax::Int, Req::None),
        "tun_src" => (TunSrc, Syntax::Ipv4, Req::None),
        "tun_dst" => (TunDst, Syntax::Ipv4, Req::None),
        "ct_mark" => (CtMark, Syntax::Int, Req::CtExec),
        _ => return reg_field(name).map(|f| (f, Syntax::Int, Req::None)),
    })
}

/// `set_field:VALUE->FIELD`.
fn parse_set_field(s: &str, kv: &Kv<'_>, ctx: ActCtx<'_>) -> Result<Action, FlowError> {
    need_value(s, kv)?;
    let Some((v, name)) = kv.value.split_once("->") else {
        return Err(value_err(s, kv, "expected set_field:VALUE->FIELD"));
    };
    let name_pos = kv.value_pos + v.len() + 2;
    let Some((field, syntax, req)) = set_field_spec(name) else {
        let reason = if match_field(name).is_some() || protocol(name).is_some() {
            "this field cannot be written with set_field"
        } else {
            "unknown field"
        };
        return Err(FlowError::at(s, name_pos, name, reason));
    };
    let verr = |r: String| FlowError::at(s, kv.value_pos, v, r);
    if v.contains('/') {
        return Err(verr("masked set_field is not supported".into()));
    }
    let value = match syntax {
        Syntax::Mac => parse_mac(v).map_err(verr)?,
        Syntax::Ipv4 => u64::from(u32::from(parse_ipv4(v).map_err(verr)?)),
        Syntax::Port => u64::from(parse_port(v).map_err(verr)?.0),
        Syntax::Icmp => parse_uint(v, 8).map_err(verr)?,
        Syntax::NwTos => parse_match_value(field, syntax, v).map_err(verr)?.0,
        _ => parse_uint(v, field.bits()).map_err(verr)?,
    };
    let ok = match req {
        Req::None => true,
        Req::Ip => ctx.dl_type_is(&[ETH_TYPE_IP]),
        Req::Arp => ctx.dl_type_is(&[ETH_TYPE_ARP]),
        Req::Proto(p) => ctx.proto_is(&[p]),
        Req::L4 => ctx.proto_is(&[IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP]),
        Req::CtExec => ctx.nest == Nest::CtExec,
    };
    if !ok {
        let reason = match req {
            Req::Ip => "needs an ip match".to_string(),
            Req::Arp => "needs an arp match".to_string(),
            Req::Proto(p) => format!("needs a match on nw_proto {p}"),
            Req::L4 => "needs a tcp, udp or sctp match".to_string(),
            _ => "ct_mark can only be set inside ct(exec(...))".to_string(),
        };
        return Err(key_err(s, kv, format!("set_field {name} {reason}")));
    }
    Ok(Action::SetField { field, value })
}

/// `ct`, `ct()` or `ct(commit,zone=N,table=T,nat...,exec(...))`.
fn parse_ct(s: &str, kv: &Kv<'_>, ctx: ActCtx<'_>) -> Result<Action, FlowError> {
    let mut ct = CtAction::default();
    match kv.delim {
        Delim::None => {}
        Delim::Paren => {
            let mut seen: Vec<&str> = Vec::new();
            let mut lex = kv.value_lexer(s);
            while let Some(arg) = lex.next_kv()? {
                if seen.contains(&arg.key) {
                    return Err(twice(s, &arg));
                }
                seen.push(arg.key);
                match arg.key {
                    "commit" => {
                        no_value(s, &arg)?;
                        ct.commit = true;
                    }
                    "zone" => {
                        need_value(s, &arg)?;
                        let z = parse_uint(arg.value, 16).map_err(|r| value_err(s, &arg, r))?;
                        ct.zone = (z != 0).then_some(z as u16);
                    }
                    "table" => {
                        need_value(s, &arg)?;
                        ct.table = Some(parse_table(arg.value).map_err(|r| value_err(s, &arg, r))?);
                    }
                    "nat" => ct.nat = Some(parse_nat(s, &arg)?),
                    "exec" => {
                        if arg.delim != Delim::Paren {
                            return Err(key_err(s, &arg, "expected exec(...)"));
                        }
                        let exec_ctx = ActCtx {
                            nest: Nest::CtExec,
                            ..ctx
                        };
                        let mut list = ActionList::new(s, exec_ctx);
                        list.feed(arg.value_lexer(s))?;
                        ct.exec = list.finish()?;
                    }
                    "force" | "alg" => return Err(key_err(s, &arg, "not supported")),
                    _ => return Err(name_err(s, &arg, "unknown ct argument")),
                }
            }
        }
        _ => return Err(key_err(s, kv, "expected ct(...)")),
    }
    if !ctx.dl_type_is(&[ETH_TYPE_IP, ETH_TYPE_IPV6]) {
        return Err(key_err(s, kv, "ct needs an ip match"));
    }
    if matches!(ct.nat, Some(Nat::Src { .. } | Nat::Dst { .. })) && !ctx.dl_type_is(&[ETH_TYPE_IP])
    {
        return Err(key_err(s, kv, "nat to an IPv4 address needs an ip match"));
    }
    Ok(Action::Ct(ct))
}

/// `nat`, `nat()`, `nat(src=IP[:PORT])`, `nat(dst=IP[:PORT])`.
fn parse_nat(s: &str, kv: &Kv<'_>) -> Result<Nat, FlowError> {
    match kv.delim {
        Delim::None => return Ok(Nat::Reverse),
        Delim::Paren => {}
        _ => return Err(key_err(s, kv, "expected nat or nat(...)")),
    }
    let mut nat = Nat::Reverse;
    let mut lex = kv.value_lexer(s);
    while let Some(arg) = lex.next_kv()? {
        match arg.key {
            "src" | "dst" => {
                if nat != Nat::Reverse {
                    return Err(key_err(s, &arg, "nat takes only one of src= and dst="));
                }
                if arg.delim != Delim::Equals {
                    return Err(key_err(s, &arg, format!("expected {}=IP[:PORT]", arg.key)));
                }
                let (ip, port) = parse_nat_target(arg.value).map_err(|r| value_err(s, &arg, r))?;
                nat = if arg.key == "src" {
                    Nat::Src { ip, port }
                } else {
                    Nat::Dst { ip, port }
                };
            }
            "persistent" | "hash" | "random" => {
                return Err(key_err(s, &arg, "nat flags are not supported"))
            }
            _ => return Err(name_err(s, &arg, "unknown nat argument")),
        }
    }
    Ok(nat)
}

fn parse_nat_target(v: &str) -> Result<(std::net::Ipv4Addr, Option<u16>), String> {
    if v.contains('-') {
        return Err("NAT ranges are not supported".into());
    }
    let (ip, port) = match v.split_once(':') {
        None => (v, None),
        Some((ip, p)) => (ip, Some(p)),
    };
    let ip = parse_ipv4(ip)?;
    let port = match port {
        None => None,
        Some(p) => match parse_uint(p, 16)? {
            0 => return Err("NAT port must be 1-65535".into()),
            p => Some(p as u16),
        },
    };
    Ok((ip, port))
}

/// Error naming just the key (for unknown keywords).
fn name_err(s: &str, kv: &Kv<'_>, reason: impl Into<String>) -> FlowError {
    FlowError::at(s, kv.key_pos, kv.key, reason)
}

/// Error naming the whole item.
fn key_err(s: &str, kv: &Kv<'_>, reason: impl Into<String>) -> FlowError {
    FlowError::at(s, kv.key_pos, kv.text(s), reason)
}

/// Error naming the item's value (or the item, if the value is empty).
fn value_err(s: &str, kv: &Kv<'_>, reason: impl Into<String>) -> FlowError {
    if kv.value.is_empty() {
        key_err(s, kv, reason)
    } else {
        FlowError::at(s, kv.value_pos, kv.value, reason)
    }
}

fn twice(s: &str, kv: &Kv<'_>) -> FlowError {
    key_err(s, kv, format!("{} given twice", kv.key))
}

/// Requires `key=value` or `key:value` with a non-empty value.
fn need_value(s: &str, kv: &Kv<'_>) -> Result<(), FlowError> {
    match kv.delim {
        Delim::Colon | Delim::Equals if !kv.value.is_empty() => Ok(()),
        Delim::Paren => Err(key_err(s, kv, format!("expected {}=VALUE", kv.key))),
        _ => Err(key_err(s, kv, "missing value")),
    }
}

/// Requires a bare key (`key` or `key()`).
fn no_value(s: &str, kv: &Kv<'_>) -> Result<(), FlowError> {
    if kv.delim == Delim::None || (kv.delim == Delim::Paren && kv.value.is_empty()) {
        Ok(())
    } else {
        Err(key_err(s, kv, format!("{} takes no value", kv.key)))
    }
}
