//! Printers: flows, matches, actions and groups as `ovs-ofctl` shows them.
//!
//! The forms follow OVS's own formatters: `match_format()` (lib/match.c) for
//! the match, field order and shorthands included (`tcp` for ip+nw_proto 6,
//! `arp_spa` on ARP flows, `icmp_type` on ICMP flows, `/24` for CIDR masks,
//! `%#x` numbers for registers and tunnel ids); `ofputil_flow_stats_format()`
//! (lib/ofp-flow.c) for the `dump-flows` line; the `format_*()` functions of
//! lib/ofp-actions.c for actions, as an OpenFlow 1.3 dump shows them (the
//! `mod_*` rewrites are `set_field:V->F` there); `ofputil_group_format()`
//! (lib/ofp-group.c) for groups.
//!
//! `Display for Flow` is the `--no-stats` form, which `parse_flow` reads back
//! to an equal flow. One knowing difference from an OpenFlow 1.3 dump:
//! `mod_vlan_vid:N` prints as itself, where OVS would show the
//! `push_vlan`+`set_field:..->vlan_vid` pair it encodes it as.
//!
//! Printing never fails and never panics; a match or action built in code
//! that the syntax cannot express (a masked `nw_ttl`, say) prints in a
//! `value/mask` form the parser refuses rather than being silently changed.
//! Ports and tables print as numbers (or reserved names like `LOCAL`): there
//! is no port-name map here.

use std::fmt::{self, Write};
use std::net::Ipv4Addr;

use super::{
    ct_state, Action, CtAction, Field, Flow, FlowFilter, FlowStats, Group, GroupType, Match, Nat,
    DEFAULT_PRIORITY, ETH_TYPE_ARP, ETH_TYPE_IP, ETH_TYPE_IPV6, ETH_TYPE_MPLS, ETH_TYPE_MPLS_MCAST,
    ETH_TYPE_RARP, IPPROTO_ICMP, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP,
};
use crate::types::{MacAddr, PortNo};

/// One `ovs-ofctl -O OpenFlow13 dump-flows` line (without the newline),
/// leading space included:
/// ` cookie=0x0, duration=1.234s, table=0, n_packets=0, n_bytes=0, priority=100,ip,nw_dst=10.0.0.0/24 actions=output:2`.
pub fn format_dump(flow: &Flow, stats: &FlowStats) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        " cookie=0x{:x}, duration={}, table={}, n_packets={}, n_bytes={}, ",
        flow.cookie,
        duration(stats.duration),
        flow.table,
        counter(stats.n_packets),
        counter(stats.n_bytes),
    );
    timeouts(flow, &mut s);
    if let Some(age) = stats.idle_age {
        let _ = write!(s, "idle_age={}, ", age.as_secs());
    }
    match_and_actions(flow, &mut s);
    s
}

/// OVS's `ofp_print_duration()`: whole seconds, then 3 decimals when the
/// fraction is whole milliseconds, else as many as needed.
fn duration(d: std::time::Duration) -> String {
    let nsec = d.subsec_nanos();
    let frac = if nsec == 0 {
        String::new()
    } else if nsec.is_multiple_of(1_000_000) {
        format!(".{:03}", nsec / 1_000_000)
    } else {
        format!(".{nsec:09}").trim_end_matches('0').to_string()
    };
    format!("{}{frac}s", d.as_secs())
}

/// A counter; OVS prints an unknown one (all ones) as `?`.
fn counter(v: u64) -> String {
    if v == u64::MAX {
        "?".into()
    } else {
        v.to_string()
    }
}

fn timeouts(flow: &Flow, s: &mut String) {
    if flow.idle_timeout != 0 {
        let _ = write!(s, "idle_timeout={}, ", flow.idle_timeout);
    }
    if flow.hard_timeout != 0 {
        let _ = write!(s, "hard_timeout={}, ", flow.hard_timeout);
    }
}

fn match_and_actions(flow: &Flow, s: &mut String) {
    let before = s.len();
    match_format(&flow.matches, flow.priority, s);
    if s.len() != before {
        s.push(' ');
    }
    s.push_str("actions=");
    format_actions(&flow.actions, Some(&flow.matches), s);
}

impl fmt::Display for Flow {
    /// The `add-flow` form, as `ovs-ofctl --no-stats dump-flows` prints it:
    /// `cookie`, `table` and timeouts only when not zero, `priority` only when
    /// not 32768, e.g. `table=1, priority=100,ip,nw_dst=10.0.0.0/24 actions=output:2`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        if self.cookie != 0 {
            let _ = write!(s, "cookie=0x{:x}, ", self.cookie);
        }
        if self.table != 0 {
            let _ = write!(s, "table={}, ", self.table);
        }
        timeouts(self, &mut s);
        match_and_actions(self, &mut s);
        f.write_str(&s)
    }
}

impl fmt::Display for Match {
    /// The match as OVS prints it (`tcp,nw_dst=10.0.0.0/24,tp_dst=80`); empty for match-all.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        match_format(self, DEFAULT_PRIORITY, &mut s);
        f.write_str(&s)
    }
}

impl fmt::Display for Action {
    /// The action on its own; field names that depend on the flow's match
    /// (`tcp_dst` vs `udp_dst`) fall back to match-independent forms (`mod_tp_dst:N`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        format_action(self, None, &mut s);
        f.write_str(&s)
    }
}

impl fmt::Display for FlowFilter {
    /// The filter in the syntax `parse_filter` reads (empty for "all flows").
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(t) = self.table {
            parts.push(format!("table={t}"));
        }
        if let Some((v, m)) = self.cookie {
            parts.push(format!("cookie=0x{v:x}/0x{m:x}"));
        }
        if let Some(p) = self.out_port {
            parts.push(format!("out_port={p}"));
        }
        if let Some(p) = self.priority {
            parts.push(format!("priority={p}"));
        }
        let m = self.matches.to_string();
        if !m.is_empty() {
            parts.push(m);
        }
        f.write_str(&parts.join(","))
    }
}

impl fmt::Display for Group {
    /// The `ovs-ofctl -O OpenFlow13 dump-groups` form (without its leading
    /// space): `group_id=1,type=select,bucket=weight:100,actions=output:1,...`.
    /// A bucket's weight is shown when it is not the default (1 in select
    /// groups, 0 elsewhere).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = format!("group_id={},type={}", self.id, self.kind);
        let default_weight = u16::from(self.kind == GroupType::Select);
        for b in &self.buckets {
            s.push_str(",bucket=");
            if b.weight != default_weight {
                let _ = write!(s, "weight:{},", b.weight);
            }
            s.push_str("actions=");
            format_actions(&b.actions, None, &mut s);
        }
        f.write_str(&s)
    }
}

/// C's `%#x`: `0` for zero, `0x..` otherwise (OVS's `ds_put_hex` agrees).
fn hex0x(v: u64) -> String {
    if v == 0 {
        "0".into()
    } else {
        format!("{v:#x}")
    }
}

/// `%#x[/%#x]`: registers, `ct_mark`, `tun_id` (OVS `format_uint32_masked`).
fn hex_masked(v: u64, mask: u64, full: u64) -> String {
    if mask == full {
        hex0x(v)
    } else {
        format!("{}/{}", hex0x(v), hex0x(mask))
    }
}

/// Decimal when exact, `0x%x/0x%x` otherwise (OVS `format_be16_masked`).
fn dec_masked(v: u64, mask: u64, full: u64) -> String {
    if mask == full {
        v.to_string()
    } else {
        format!("0x{v:x}/0x{mask:x}")
    }
}

fn ipv4(v: u64) -> Ipv4Addr {
    Ipv4Addr::from(v as u32)
}

/// OVS `ip_format_masked`: `/N` for CIDR masks, a dotted mask otherwise.
fn ip_masked(v: u64, mask: u64) -> String {
    let m = mask as u32;
    if m == u32::MAX {
        ipv4(v).to_string()
    } else if m.leading_ones() + m.trailing_zeros() == 32 {
        format!("{}/{}", ipv4(v), m.leading_ones())
    } else {
        format!("{}/{}", ipv4(v), ipv4(mask))
    }
}

fn mac_masked(v: u64, mask: u64) -> String {
    if mask == 0xffff_ffff_ffff {
        MacAddr::from_u64(v).to_string()
    } else {
        format!("{}/{}", MacAddr::from_u64(v), MacAddr::from_u64(mask))
    }
}

/// OVS prints exact `ct_state` as `new|trk` (or `0`), masked as `+new-est+trk`,
/// flags in bit order.
fn ct_state_str(v: u64, mask: u64) -> String {
    let names = |bits: u64| {
        (0..8)
            .filter(move |i| bits & (1 << i) != 0)
            .map(|i| ct_state::NAMES[i])
    };
    if mask == ct_state::ALL {
        if v == 0 {
            "0".into()
        } else {
            names(v).collect::<Vec<_>>().join("|")
        }
    } else {
        (0..8)
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| {
                let sign = if v & (1 << i) != 0 { '+' } else { '-' };
                format!("{sign}{}", ct_state::NAMES[i])
            })
            .collect()
    }
}

/// The `dl_vlan`/`dl_vlan_pcp`/`vlan_tci` form of a TCI match, as `match_format`.
fn vlan(v: u64, mask: u64, parts: &mut Vec<String>) {
    let vid_mask = mask & 0x0fff;
    let pcp_mask = mask & 0xe000;
    let tagged = mask & 0x1000 != 0 && v & 0x1000 != 0;
    if tagged
        && (vid_mask == 0 || vid_mask == 0x0fff)
        && (pcp_mask == 0 || pcp_mask == 0xe000)
        && (vid_mask | pcp_mask) != 0
    {
        if vid_mask != 0 {
            parts.push(format!("dl_vlan={}", v & 0x0fff));
        }
        if pcp_mask != 0 {
            parts.push(format!("dl_vlan_pcp={}", v >> 13));
        }
    } else if mask == 0xffff {
        parts.push(format!("vlan_tci=0x{v:04x}"));
    } else {
        parts.push(format!("vlan_tci=0x{v:04x}/0x{mask:04x}"));
    }
}

/// OVS `match_format()` for our fields, in its order; `priority=` first when
/// not the default.
fn match_format(m: &Match, priority: u16, out: &mut String) {
    let mut parts: Vec<String> = Vec::new();
    if priority != DEFAULT_PRIORITY {
        parts.push(format!("priority={priority}"));
    }
    if let Some((v, mk)) = m.get(Field::CtState) {
        parts.push(format!("ct_state={}", ct_state_str(v, mk)));
    }
    if let Some((v, mk)) = m.get(Field::CtZone) {
        parts.push(format!("ct_zone={}", dec_masked(v, mk, 0xffff)));
    }
    if let Some((v, mk)) = m.get(Field::CtMark) {
        parts.push(format!("ct_mark={}", hex_masked(v, mk, 0xffff_ffff)));
    }

    let dl_type = m.dl_type();
    let proto = m.get(Field::NwProto);
    let mut skip_type = true;
    let mut skip_proto = false;
    match dl_type {
        Some(ETH_TYPE_IP) => {
            let name = match proto {
                Some((p, 0xff)) => match p as u8 {
                    IPPROTO_ICMP => Some("icmp"),
                    IPPROTO_TCP => Some("tcp"),
                    IPPROTO_UDP => Some("udp"),
                    IPPROTO_SCTP => Some("sctp"),
                    _ => None,
                },
                _ => None,
            };
            skip_proto = name.is_some();
            parts.push(name.unwrap_or("ip").to_string());
        }
        Some(ETH_TYPE_IPV6) => parts.push("ipv6".into()),
        Some(ETH_TYPE_ARP) => parts.push("arp".into()),
        Some(ETH_TYPE_RARP) => parts.push("rarp".into()),
        Some(ETH_TYPE_MPLS) => parts.push("mpls".into()),
        Some(ETH_TYPE_MPLS_MCAST) => parts.push("mplsm".into()),
        _ => skip_type = false,
    }

    for fm in m.iter() {
        if let Field::Reg(n) = fm.field {
            parts.push(format!(
                "reg{n}={}",
                hex_masked(fm.value, fm.mask, 0xffff_ffff)
            ));
        }
    }
    if let Some((v, mk)) = m.get(Field::TunId) {
        parts.push(format!("tun_id={}", hex_masked(v, mk, u64::MAX)));
    }
    if let Some((v, mk)) = m.get(Field::TunSrc) {
        parts.push(format!("tun_src={}", ip_masked(v, mk)));
    }
    if let Some((v, mk)) = m.get(Field::TunDst) {
        parts.push(format!("tun_dst={}", ip_masked(v, mk)));
    }
    if let Some((v, mk)) = m.get(Field::InPort) {
        if mk == 0xffff_ffff {
            parts.push(format!("in_port={}", PortNo(v as u32)));
        } else {
            parts.push(format!("in_port=0x{v:x}/0x{mk:x}"));
        }
    }
    if let Some((v, mk)) = m.get(Field::VlanTci) {
        vlan(v, mk, &mut parts);
    }
    if let Some((v, mk)) = m.get(Field::DlSrc) {
        parts.push(format!("dl_src={}", mac_masked(v, mk)));
    }
    if let Some((v, mk)) = m.get(Field::DlDst) {
        parts.push(format!("dl_dst={}", mac_masked(v, mk)));
    }
    if !skip_type {
        if let Some((v, mk)) = m.get(Field::DlType) {
            if mk == 0xffff {
                parts.push(format!("dl_type=0x{v:04x}"));
            } else {
                parts.push(format!("dl_type=0x{v:04x}/0x{mk:04x}"));
            }
        }
    }
    let arp = matches!(dl_type, Some(ETH_TYPE_ARP | ETH_TYPE_RARP));
    let (src, dst) = if arp {
        ("arp_spa", "arp_tpa")
    } else {
        ("nw_src", "nw_dst")
    };
    if let Some((v, mk)) = m.get(Field::NwSrc) {
        parts.push(format!("{src}={}", ip_masked(v, mk)));
    }
    if let Some((v, mk)) = m.get(Field::NwDst) {
        parts.push(format!("{dst}={}", ip_masked(v, mk)));
    }
    if !skip_proto {
        if let Some((v, mk)) = proto {
            let name = if arp { "arp_op" } else { "nw_proto" };
            parts.push(format!("{name}={}", dec_masked(v, mk, 0xff)));
        }
    }
    if let Some((v, mk)) = m.get(Field::NwTos) {
        parts.push(format!("nw_tos={}", dec_masked(v, mk, 0xfc)));
    }
    if let Some((v, mk)) = m.get(Field::NwTtl) {
        parts.push(format!("nw_ttl={}", dec_masked(v, mk, 0xff)));
    }
    let icmp = dl_type == Some(ETH_TYPE_IP) && proto.is_some_and(|(p, _)| p == 1);
    let (tsrc, tdst) = if icmp {
        ("icmp_type", "icmp_code")
    } else {
        ("tp_src", "tp_dst")
    };
    if let Some((v, mk)) = m.get(Field::TpSrc) {
        parts.push(format!("{tsrc}={}", dec_masked(v, mk, 0xffff)));
    }
    if let Some((v, mk)) = m.get(Field::TpDst) {
        parts.push(format!("{tdst}={}", dec_masked(v, mk, 0xffff)));
    }
    out.push_str(&parts.join(","));
}

/// The action list; `drop` when empty (OVS `ofpacts_format`).
fn format_actions(actions: &[Action], ctx: Option<&Match>, out: &mut String) {
    if actions.is_empty() {
        out.push_str("drop");
        return;
    }
    for (i, a) in actions.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        format_action(a, ctx, out);
    }
}

/// One action, its field names chosen by the flow's match `ctx` when known.
fn format_action(a: &Action, ctx: Option<&Match>, out: &mut String) {
    let _ = match a {
        // OVS prints "output:" only for ordinary ports; reserved ones by name.
        Action::Output(p) if p.0 <= PortNo::MAX.0 => write!(out, "output:{}", p.0),
        Action::Output(p) => write!(out, "{p}"),
        Action::InPort => write!(out, "IN_PORT"),
        Action::Normal => write!(out, "NORMAL"),
        Action::Flood => write!(out, "FLOOD"),
        Action::All => write!(out, "ALL"),
        Action::Local => write!(out, "LOCAL"),
        Action::Drop => write!(out, "drop"),
        Action::Resubmit {
            port: Some(p),
            table: None,
        } => write!(out, "resubmit:{p}"),
        Action::Resubmit { port, table } => {
            let p = port.map(|p| p.to_string()).unwrap_or_default();
            let t = table.map(|t| t.to_string()).unwrap_or_default();
            write!(out, "resubmit({p},{t})")
        }
        Action::GotoTable(t) => write!(out, "goto_table:{t}"),
        Action::SetField { field, value } => {
            set_field(*field, *value, ctx, out);
            Ok(())
        }
        Action::DecTtl => write!(out, "dec_ttl"),
        Action::PushVlan(tpid) => write!(out, "push_vlan:{}", hex0x(u64::from(*tpid))),
        Action::PopVlan => write!(out, "pop_vlan"),
        Action::ModVlanVid(v) => write!(out, "mod_vlan_vid:{v}"),
        Action::Group(g) => write!(out, "group:{g}"),
        Action::Ct(ct) => {
            format_ct(ct, ctx, out);
            Ok(())
        }
        Action::CtClear => write!(out, "ct_clear"),
    };
}

/// `set_field:V->F` with the OXM name OVS shows (`ip_src`, `tcp_dst`, ...).
fn set_field(field: Field, v: u64, ctx: Option<&Match>, out: &mut String) {
    let dl_type = ctx.and_then(Match::dl_type);
    let arp = dl_type == Some(ETH_TYPE_ARP);
    let proto = ctx
        .filter(|m| m.dl_type() == Some(ETH_TYPE_IP))
        .and_then(Match::nw_proto);
    let l4 = |src: bool| -> Option<&'static str> {
        Some(match (proto?, src) {
            (IPPROTO_TCP, true) => "tcp_src",
            (IPPROTO_TCP, false) => "tcp_dst",
            (IPPROTO_UDP, true) => "udp_src",
            (IPPROTO_UDP, false) => "udp_dst",
            (IPPROTO_SCTP, true) => "sctp_src",
            (IPPROTO_SCTP, false) => "sctp_dst",
            (IPPROTO_ICMP, true) => "icmp_type",
            (IPPROTO_ICMP, false) => "icmp_code",
            _ => return None,
        })
    };
    let (value, name): (String, String) = match field {
        Field::InPort => (PortNo(v as u32).to_string(), "in_port".into()),
        Field::DlSrc => (MacAddr::from_u64(v).to_string(), "eth_src".into()),
        Field::DlDst => (MacAddr::from_u64(v).to_string(), "eth_dst".into()),
        Field::DlType => (hex0x(v), "eth_type".into()),
        Field::VlanTci => (hex0x(v), "vlan_tci".into()),
        Field::NwSrc => (
            ipv4(v).to_string(),
            if arp { "arp_spa" } else { "ip_src" }.into(),
        ),
        Field::NwDst => (
            ipv4(v).to_string(),
            if arp { "arp_tpa" } else { "ip_dst" }.into(),
        ),
        Field::NwProto => (
            v.to_string(),
            if arp { "arp_op" } else { "nw_proto" }.into(),
        ),
        Field::NwTtl => (v.to_string(), "nw_ttl".into()),
        Field::NwTos => (v.to_string(), "nw_tos".into()),
        Field::TpSrc | Field::TpDst => {
            let src = field == Field::TpSrc;
            match l4(src) {
                Some(name) => (v.to_string(), name.into()),
                None => {
                    // Without a known protocol OVS keeps the generic action.
                    let which = if src { "src" } else { "dst" };
                    let _ = write!(out, "mod_tp_{which}:{v}");
                    return;
                }
            }
        }
        Field::TunId => (hex0x(v), "tun_id".into()),
        Field::TunSrc => (ipv4(v).to_string(), "tun_src".into()),
        Field::TunDst => (ipv4(v).to_string(), "tun_dst".into()),
        Field::CtState => (hex0x(v), "ct_state".into()),
        Field::CtZone => (hex0x(v), "ct_zone".into()),
        Field::CtMark => (hex0x(v), "ct_mark".into()),
        Field::Reg(n) => (hex0x(v), format!("reg{n}")),
    };
    let _ = write!(out, "set_field:{value}->{name}");
}

/// OVS `format_CT`: `commit`, `table=`, `zone=`, the NAT, then `exec(...)`.
fn format_ct(ct: &CtAction, ctx: Option<&Match>, out: &mut String) {
    let mut parts: Vec<String> = Vec::new();
    if ct.commit {
        parts.push("commit".into());
    }
    if let Some(t) = ct.table {
        parts.push(format!("table={t}"));
    }
    if let Some(z) = ct.zone.filter(|z| *z != 0) {
        parts.push(format!("zone={z}"));
    }
    if let Some(nat) = &ct.nat {
        parts.push(match nat {
            Nat::Reverse => "nat".into(),
            Nat::Dst { ip, port } => format!("nat(dst={ip}{})", nat_port(*port)),
            Nat::Src { ip, port } => format!("nat(src={ip}{})", nat_port(*port)),
        });
    }
    if !ct.exec.is_empty() {
        let mut e = String::new();
        format_actions(&ct.exec, ctx, &mut e);
        parts.push(format!("exec({e})"));
    }
    let _ = write!(out, "ct({})", parts.join(","));
}

fn nat_port(port: Option<u16>) -> String {
    match port {
        Some(p) if p != 0 => format!(":{p}"),
        _ => String::new(),
    }
}
