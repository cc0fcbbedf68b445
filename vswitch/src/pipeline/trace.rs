//! `ofctl trace`: which flows a packet would hit, table by table, and what
//! would finally happen to it (like `ovs-appctl ofproto/trace`).
//!
//! The trace interprets the compiled actions on a flow key alone, without a
//! frame and without touching counters, the FDB or the exact-match caches:
//! it shows what the current tables *would* do. Header rewrites update the
//! key exactly as the datapath does, so later tables see them.
//!
//! The tunnel: output to the VXLAN port shows the encapsulation (VNI, outer
//! source and destination, UDP source port, next-hop MAC or "no neighbour");
//! a packet traced with `in_port` the tunnel port is an already decapsulated
//! one (give `tun_src`/`tun_id` to match flows on them), and one traced with
//! `in_port` the uplink is taken as the inner packet of a VXLAN frame: it is
//! traced as from the tunnel port, with `tun_id` and `tun_dst` defaulting to
//! the configured VNI and our VTEP address.

use std::fmt::Write;
use std::net::Ipv4Addr;

use control::flow::{FlowFilter, GroupType};

use super::actions::{flow_hash, select_bucket};
use super::flows::{compile_match, DpAction, MAX_DEPTH};
use super::tunnel::source_port;
use super::{Pipeline, Snapshot};
use crate::key::{ct_state, field, FlowKey, VLAN_PRESENT};
use crate::packet::ip_proto;
use crate::tables::conntrack::{CtTuple, NatSpec};

/// `ct_state` bits as OVS prints them: `+new+trk`.
fn ct_state_str(s: u16) -> String {
    let mut out = String::new();
    for (bit, name) in [
        (ct_state::NEW, "new"),
        (ct_state::EST, "est"),
        (ct_state::REL, "rel"),
        (ct_state::RPL, "rpl"),
        (ct_state::INV, "inv"),
        (ct_state::TRK, "trk"),
        (ct_state::SNAT, "snat"),
        (ct_state::DNAT, "dnat"),
    ] {
        if s & bit != 0 {
            out.push('+');
            out.push_str(name);
        }
    }
    out
}

/// The result of a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    /// One line per step, indented by resubmit depth.
    pub lines: Vec<String>,
    /// `output:2,output:3`, or `drop (no-match)`.
    pub verdict: String,
}

struct Tracer<'a> {
    snap: &'a Snapshot,
    pipe: &'a Pipeline,
    now: u64,
    in_port: u32,
    lines: Vec<String>,
    outputs: Vec<String>,
    drop: &'static str,
}

impl Pipeline {
    /// Traces a packet whose fields are given as a match (`in_port=1,tcp,...`).
    pub fn trace(&self, packet: &FlowFilter, now: u64) -> Result<Trace, super::ControlError> {
        let probe = control::flow::Flow {
            matches: packet.matches.clone(),
            ..Default::default()
        };
        let (key, _) =
            compile_match(&probe).map_err(|err| super::ControlError::Flow { index: 0, err })?;
        let snap = self.snapshot();
        let mut t = Tracer {
            snap: &snap,
            pipe: self,
            now,
            in_port: key.get(field::IN_PORT) as u32,
            lines: Vec::new(),
            outputs: Vec::new(),
            drop: "no-match",
        };
        let mut key = key;
        t.ingress(&mut key);
        t.table(&mut key, 0, 0);
        let verdict = if t.outputs.is_empty() {
            format!("drop ({})", t.drop)
        } else {
            t.outputs.join(",")
        };
        Ok(Trace {
            lines: t.lines,
            verdict,
        })
    }
}

impl Tracer<'_> {
    /// Notes (and for the uplink, applies) what happens before table 0.
    fn ingress(&mut self, key: &mut FlowKey) {
        let Some(tun) = self.snap.tunnel.as_ref() else {
            return;
        };
        if self.in_port == tun.uplink {
            if key.get(field::TUN_ID) == 0 {
                key.set(field::TUN_ID, u64::from(tun.vni));
            }
            if key.get(field::TUN_DST) == 0 {
                key.set(field::TUN_DST, u64::from(tun.local_ip));
            }
            key.set(field::IN_PORT, u64::from(tun.ofport));
            self.in_port = tun.ofport;
            self.say(
                0,
                format!(
                    "in_port {}: the VXLAN uplink; tracing the inner packet, decapsulated \
                     (vni {}, {} -> {}), as in_port={}",
                    tun.uplink,
                    key.get(field::TUN_ID),
                    Ipv4Addr::from(key.get(field::TUN_SRC) as u32),
                    Ipv4Addr::from(key.get(field::TUN_DST) as u32),
                    tun.ofport
                ),
            );
        } else if self.in_port == tun.ofport {
            self.say(
                0,
                format!(
                    "in_port {}: the VXLAN tunnel port (tun_id={:#x}, tun_src={}, tun_dst={})",
                    tun.ofport,
                    key.get(field::TUN_ID),
                    Ipv4Addr::from(key.get(field::TUN_SRC) as u32),
                    Ipv4Addr::from(key.get(field::TUN_DST) as u32),
                ),
            );
        }
    }

    fn say(&mut self, depth: u8, s: String) {
        self.lines
            .push(format!("{}{s}", "    ".repeat(depth as usize)));
    }

    fn table(&mut self, key: &mut FlowKey, table: u8, depth: u8) {
        let snap = self.snap;
        let hit = snap
            .table(table)
            .and_then(|t| t.cls.lookup(key).map(|r| &t.flows[r.data as usize]));
        match hit {
            None => {
                self.say(depth, format!("{table}. No match: drop (table miss)"));
                self.drop = "no-match";
            }
            Some(f) => {
                let m = f.spec.matches.to_string();
                let m = if m.is_empty() {
                    String::new()
                } else {
                    format!(",{m}")
                };
                let acts: Vec<String> = f.spec.actions.iter().map(|a| a.to_string()).collect();
                let acts = if acts.is_empty() {
                    "drop".to_string()
                } else {
                    acts.join(",")
                };
                self.say(
                    depth,
                    format!(
                        "{table}. priority {}{m}, cookie {:#x}",
                        f.spec.priority, f.spec.cookie
                    ),
                );
                self.say(depth + 1, format!("actions={acts}"));
                if f.actions.is_empty() {
                    self.drop = "drop-action";
                }
                self.actions(key, &f.actions, table, depth);
            }
        }
    }

    fn actions(&mut self, key: &mut FlowKey, acts: &[DpAction], table: u8, depth: u8) -> bool {
        for a in acts {
            if !self.action(key, a, table, depth) {
                return false;
            }
        }
        true
    }

    /// Returns false when processing stops.
    fn action(&mut self, key: &mut FlowKey, a: &DpAction, table: u8, depth: u8) -> bool {
        let d = depth + 1;
        match a {
            DpAction::Output(p) if *p == self.in_port => {
                self.say(d, format!("output:{p}: skipped, it is the ingress port"));
                self.drop = "output-to-in-port";
            }
            DpAction::Output(p) => self.output(key, d, *p),
            DpAction::InPort => self.output(key, d, self.in_port),
            DpAction::Local => match self.snap.local_port {
                Some(p) => self.output(key, d, p),
                None => {
                    self.say(d, "local: no local port".into());
                    self.drop = "no-such-port";
                }
            },
            DpAction::Flood | DpAction::All => self.flood(key, d),
            DpAction::Normal => {
                let tci = key.get(field::VLAN_TCI) as u16;
                let vlan = if tci & VLAN_PRESENT != 0 {
                    tci & 0x0fff
                } else {
                    0
                };
                let dst = key.mac(field::DL_DST);
                if dst[0] & 1 == 1 {
                    self.say(
                        d,
                        "normal: multicast/broadcast destination, flooding".into(),
                    );
                    self.flood(key, d);
                } else {
                    match self.pipe.fdb.lookup(dst, vlan, self.now) {
                        Some(p) if p == self.in_port => {
                            self.say(
                                d,
                                format!(
                                    "normal: destination learned on ingress port {p}, dropping"
                                ),
                            );
                            self.drop = "output-to-in-port";
                        }
                        Some(p) => {
                            self.say(d, format!("normal: destination learned on port {p}"));
                            self.output(key, d, p);
                        }
                        None => {
                            self.say(d, "normal: destination unknown, flooding".into());
                            self.flood(key, d);
                        }
                    }
                }
            }
            DpAction::Resubmit { in_port, table: t } => {
                if depth + 1 >= MAX_DEPTH {
                    self.say(d, "resubmit: too deep, drop".into());
                    self.drop = "resubmit-limit";
                    return false;
                }
                let t = t.unwrap_or(table);
                let saved = key.get(field::IN_PORT);
                if let Some(p) = in_port {
                    key.set(field::IN_PORT, u64::from(*p));
                }
                self.say(d, format!("resubmit to table {t}"));
                self.table(key, t, d);
                key.set(field::IN_PORT, saved);
            }
            DpAction::GotoTable(t) => {
                self.say(d, format!("goto_table:{t}"));
                self.table(key, *t, d);
                return false;
            }
            DpAction::SetDlSrc(m) => key.set_mac(field::DL_SRC, *m),
            DpAction::SetDlDst(m) => key.set_mac(field::DL_DST, *m),
            DpAction::SetNwSrc(v) => key.set(field::NW_SRC, u64::from(*v)),
            DpAction::SetNwDst(v) => key.set(field::NW_DST, u64::from(*v)),
            DpAction::SetTpSrc(v) => key.set(field::TP_SRC, u64::from(*v)),
            DpAction::SetTpDst(v) => key.set(field::TP_DST, u64::from(*v)),
            DpAction::SetNwTtl(v) => key.set(field::NW_TTL, u64::from(*v)),
            DpAction::SetNwTos(v) => key.set(field::NW_TOS, u64::from(*v)),
            DpAction::SetMeta(f, v) => key.set(*f, *v),
            DpAction::DecTtl => {
                let ttl = key.get(field::NW_TTL);
                if ttl <= 1 {
                    self.say(d, format!("dec_ttl: ttl {ttl} expires, drop"));
                    self.drop = "ttl-expired";
                    return false;
                }
                key.set(field::NW_TTL, ttl - 1);
            }
            DpAction::PushVlan(_) => {
                let tci = key.get(field::VLAN_TCI) as u16;
                key.set(field::VLAN_TCI, u64::from(tci | VLAN_PRESENT));
            }
            DpAction::PopVlan => key.set(field::VLAN_TCI, 0),
            DpAction::SetVlanVid(v) => {
                let tci = key.get(field::VLAN_TCI) as u16;
                key.set(
                    field::VLAN_TCI,
                    u64::from((tci & 0xf000) | VLAN_PRESENT | v),
                );
            }
            DpAction::Group(g) => {
                let snap = self.snap;
                let Some(grp) = snap.groups.get(g) else {
                    self.say(d, format!("group:{g}: no such group, drop"));
                    self.drop = "no-such-group";
                    return false;
                };
                match grp.kind {
                    GroupType::Select => match select_bucket(&grp.buckets, flow_hash(key)) {
                        Some(b) => {
                            self.say(d, format!("group:{g} (select): bucket {b} by 5-tuple hash"));
                            return self.actions(key, &grp.buckets[b].1, table, d);
                        }
                        None => {
                            self.say(d, format!("group:{g}: no live bucket, drop"));
                            self.drop = "no-such-group";
                            return false;
                        }
                    },
                    GroupType::All | GroupType::Indirect => {
                        for (i, (_, acts)) in grp.buckets.iter().enumerate() {
                            self.say(d, format!("group:{g} bucket {i}"));
                            let mut k = *key;
                            self.actions(&mut k, acts, table, d);
                        }
                    }
                }
            }
            DpAction::Ct {
                zone,
                commit,
                table: t,
                nat,
                mark,
            } => {
                self.ct(key, d, *zone, *commit, nat.as_ref(), *mark);
                if let Some(t) = t {
                    if depth + 1 >= MAX_DEPTH {
                        self.say(d, "ct: too deep, drop".into());
                        self.drop = "resubmit-limit";
                        return false;
                    }
                    self.say(d, format!("ct: recirculate to table {t}"));
                    self.table(key, *t, d);
                    return false;
                }
            }
            DpAction::CtClear => {
                key.set(field::CT_STATE, 0);
                key.set(field::CT_ZONE, 0);
                key.set(field::CT_MARK, 0);
            }
            DpAction::Unsupported(r) => {
                self.say(d, format!("{}: not executable yet, drop", r.name()));
                self.drop = r.name();
                return false;
            }
        }
        true
    }

    /// The `ct` action on a key: what conntrack would say, without
    /// committing or updating anything. An existing connection is looked
    /// up ([`Conntrack::get`](crate::tables::conntrack::Conntrack::get));
    /// otherwise the packet would be `+new` (and, with `commit` and a NAT,
    /// translated as the commit would). The key has no TCP flags, ICMP
    /// identifier or quoted header: a trace assumes a valid segment, echo
    /// identifier 0, and an ICMP error is shown as not traceable (`+inv`).
    fn ct(
        &mut self,
        key: &mut FlowKey,
        depth: u8,
        zone: u16,
        commit: bool,
        nat: Option<&NatSpec>,
        mark: Option<u32>,
    ) {
        let mut state = ct_state::TRK;
        let mut ct_mark = 0u32;
        let mut rewrite: Option<CtTuple> = None;
        let proto = key.get(field::NW_PROTO) as u8;
        let icmp_type = key.get(field::ICMP_TYPE) as u8;
        let tuple =
            (key.get(field::DL_TYPE) == 0x0800 && key.get(field::NW_FRAG) == 0).then(|| {
                let src = Ipv4Addr::from(key.get(field::NW_SRC) as u32);
                let dst = Ipv4Addr::from(key.get(field::NW_DST) as u32);
                let (sp, dp) = (key.get(field::TP_SRC) as u16, key.get(field::TP_DST) as u16);
                match proto {
                    ip_proto::TCP => CtTuple::tcp(src, sp, dst, dp),
                    ip_proto::UDP => CtTuple::udp(src, sp, dst, dp),
                    ip_proto::ICMP => CtTuple::icmp_echo(src, dst, 0),
                    p => CtTuple::other(src, dst, p),
                }
            });
        let what = match tuple {
            None => {
                state |= ct_state::INV;
                "not trackable (not IPv4, or a fragment)".to_string()
            }
            Some(_) if proto == ip_proto::ICMP && !matches!(icmp_type, 0 | 8) => {
                state |= ct_state::INV;
                "ICMP other than echo: +rel or +inv depends on the quoted header, \
                 not in a trace; assuming +inv"
                    .to_string()
            }
            Some(t) => match self.pipe.conntrack().get(&t, zone, self.now) {
                Some(e) => {
                    let orig = e.orig == t;
                    state |= ct_state::EST;
                    if !orig {
                        state |= ct_state::RPL;
                    }
                    ct_mark = if commit {
                        mark.unwrap_or(e.mark)
                    } else {
                        e.mark
                    };
                    if nat.is_some() && (e.snat || e.dnat) {
                        if e.snat {
                            state |= ct_state::SNAT;
                        }
                        if e.dnat {
                            state |= ct_state::DNAT;
                        }
                        let to = if orig {
                            e.reply.reverse()
                        } else {
                            e.orig.reverse()
                        };
                        rewrite = Some(to);
                    }
                    format!("existing connection {e}")
                }
                None => {
                    state |= ct_state::NEW;
                    match (commit, nat) {
                        (true, Some(&NatSpec::Dst { ip, port })) => {
                            state |= ct_state::DNAT;
                            let mut to = t;
                            to.dst = ip;
                            if t.has_ports() {
                                to.dst_port = port.unwrap_or(t.dst_port);
                            }
                            rewrite = Some(to);
                            ct_mark = mark.unwrap_or(0);
                        }
                        (true, Some(&NatSpec::Src { ip, port })) => {
                            state |= ct_state::SNAT;
                            let mut to = t;
                            to.src = ip;
                            if t.has_ports() {
                                to.src_port = port.unwrap_or(t.src_port);
                            }
                            rewrite = Some(to);
                            ct_mark = mark.unwrap_or(0);
                        }
                        (true, _) => ct_mark = mark.unwrap_or(0),
                        _ => {}
                    }
                    if commit {
                        "no connection: would be +new, committed".to_string()
                    } else {
                        "no connection: would be +new (not committed)".to_string()
                    }
                }
            },
        };
        self.say(
            depth,
            format!(
                "ct(zone={zone}): {what}; ct_state={}, ct_mark={ct_mark:#x}",
                ct_state_str(state)
            ),
        );
        if let (Some(from), Some(to)) = (tuple, rewrite) {
            if from != to {
                self.say(depth, format!("ct: nat ({from}) -> ({to})"));
                key.set(field::NW_SRC, u64::from(u32::from(to.src)));
                key.set(field::NW_DST, u64::from(u32::from(to.dst)));
                if to.has_ports() {
                    key.set(field::TP_SRC, u64::from(to.src_port));
                    key.set(field::TP_DST, u64::from(to.dst_port));
                }
            }
        }
        key.set(field::CT_STATE, u64::from(state));
        key.set(field::CT_ZONE, u64::from(zone));
        key.set(field::CT_MARK, u64::from(ct_mark));
    }

    fn output(&mut self, key: &FlowKey, depth: u8, port: u32) {
        if self.snap.slot_of.contains(port) {
            let mut s = String::new();
            let _ = write!(s, "output:{}", control::PortNo(port));
            self.say(depth, s.clone());
            self.outputs.push(s);
        } else if self.snap.is_tunnel_port(port) {
            self.encap(key, depth, port);
        } else {
            self.say(depth, format!("output:{port}: no such port"));
            self.drop = "no-such-port";
        }
    }

    /// Output to the tunnel port: what the encapsulation would be.
    fn encap(&mut self, key: &FlowKey, depth: u8, port: u32) {
        let Some(t) = self.snap.tunnel.as_ref() else {
            self.say(
                depth,
                format!("output:{port}: VXLAN port, but no tunnel is configured: drop"),
            );
            self.drop = "tunnel-unsupported";
            return;
        };
        let dst = key.get(field::TUN_DST) as u32;
        if dst == 0 {
            self.say(depth, format!("output:{port}: VXLAN, no tun_dst set: drop"));
            self.drop = "tunnel-no-destination";
            return;
        }
        let head = format!(
            "output:{port}: VXLAN vni {}, {} -> {}, udp {} -> 4789",
            t.vni_for(key.get(field::TUN_ID)),
            Ipv4Addr::from(t.local_ip),
            Ipv4Addr::from(dst),
            source_port(key),
        );
        let Some(nh) = t.neighbor(dst) else {
            self.say(depth, format!("{head}, no neighbour: drop"));
            self.drop = "no-neighbor";
            return;
        };
        if t.uplink_slot.is_none() {
            self.say(
                depth,
                format!(
                    "{head}, next hop {}, uplink {} not attached: drop",
                    control::MacAddr(nh),
                    t.uplink
                ),
            );
            self.drop = "no-such-port";
            return;
        }
        self.say(
            depth,
            format!(
                "{head}, next hop {}, out uplink port {} (inner frames over {} bytes: mtu-exceeded)",
                control::MacAddr(nh),
                t.uplink,
                t.underlay_mtu - 36
            ),
        );
        self.outputs.push(format!("output:{port}"));
    }

    fn flood(&mut self, key: &FlowKey, depth: u8) {
        let ports: Vec<u32> = self
            .snap
            .ports
            .iter()
            .copied()
            .filter(|p| *p != self.in_port)
            .collect();
        if ports.is_empty() {
            self.say(depth, "flood: no other port".into());
            self.drop = "drop-action";
        }
        for p in ports {
            self.output(key, depth, p);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::scenario::Scenario;
    use control::flow::parse_filter;

    #[test]
    fn trace_follows_tables_rewrites_and_outputs() {
        let s = Scenario::new(&[1, 2, 3]);
        s.flows(
            "table=0,priority=10,tcp,nw_dst=10.96.0.10 actions=mod_nw_dst:10.244.1.5,resubmit(,1)\n\
             table=0,priority=5,udp actions=dec_ttl,output:3\n\
             table=1,priority=10,ip,nw_dst=10.244.1.5 actions=output:2\n",
        );
        let t = s
            .pipeline()
            .trace(
                &parse_filter("in_port=1,tcp,nw_dst=10.96.0.10,tp_dst=80").unwrap(),
                0,
            )
            .unwrap();
        assert_eq!(t.verdict, "output:2", "{t:?}");
        assert!(
            t.lines.iter().any(|l| l.contains("resubmit to table 1")),
            "{t:?}"
        );
        let t = s
            .pipeline()
            .trace(&parse_filter("in_port=1,udp,nw_ttl=1").unwrap(), 0)
            .unwrap();
        assert_eq!(t.verdict, "drop (ttl-expired)");
        let t = s
            .pipeline()
            .trace(&parse_filter("in_port=1,arp").unwrap(), 0)
            .unwrap();
        assert_eq!(t.verdict, "drop (no-match)");
    }
}
