//! Tests of the flow model and its text syntax.
//!
//! Golden cases pin the OVS canonical forms (what `ovs-ofctl -O OpenFlow13
//! dump-flows` prints for a given `add-flow` text); error cases pin the
//! column and token of each rejection; property tests show that printed flows
//! and groups parse back to equal values and that no input makes a parser panic.
//! They do not cover what the datapath does with a flow (that is vswitch's),
//! and they do not run OVS itself: the expected strings were read off OVS's
//! formatters (lib/match.c, lib/ofp-flow.c, lib/ofp-actions.c, lib/ofp-group.c).

use std::net::Ipv4Addr;
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::types::PortNo;

/// Parses `input`, checks it prints as `printed`, and that `printed` parses back equal.
#[track_caller]
fn golden(input: &str, printed: &str) -> Flow {
    let flow = parse_flow(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
    assert_eq!(flow.to_string(), printed, "printing {input:?}");
    assert_eq!(
        parse_flow(printed).as_ref(),
        Ok(&flow),
        "re-parsing {printed:?}"
    );
    flow
}

#[track_caller]
fn err(input: &str) -> FlowError {
    match parse_flow(input) {
        Ok(f) => panic!("{input:?} parsed as {f:?}"),
        Err(e) => e,
    }
}

/// Checks the error's column, token and that the reason contains `reason`.
#[track_caller]
fn rejects(input: &str, column: usize, token: &str, reason: &str) {
    let e = err(input);
    assert_eq!(
        (e.column, e.token.as_str()),
        (column, token),
        "{input:?}: {e}"
    );
    assert!(e.reason.contains(reason), "{input:?}: {e}");
}

// ---- matches -------------------------------------------------------------

#[test]
fn design_example() {
    let f = golden(
        "table=0, priority=100,ip,nw_dst=10.0.0.0/24 actions=output:2",
        "priority=100,ip,nw_dst=10.0.0.0/24 actions=output:2",
    );
    assert_eq!(f.table, 0);
    assert_eq!(f.priority, 100);
    assert_eq!(f.matches.get(Field::DlType), Some((0x0800, 0xffff)));
    assert_eq!(
        f.matches.get(Field::NwDst),
        Some((0x0a00_0000, 0xffff_ff00))
    );
    assert_eq!(f.actions, vec![Action::Output(PortNo(2))]);
}

#[test]
fn flow_keys_and_defaults() {
    let f = golden("actions=normal", "actions=NORMAL");
    assert_eq!(
        f,
        Flow {
            actions: vec![Action::Normal],
            ..Flow::default()
        }
    );
    assert_eq!(f.priority, 32768);
    golden("priority=32768,ip actions=drop", "ip actions=drop");
    golden(
        "ip priority=5 hard_timeout=20 cookie=0x10 idle_timeout=10 table=3 actions=drop",
        "cookie=0x10, table=3, idle_timeout=10, hard_timeout=20, priority=5,ip actions=drop",
    );
    golden("priority=0 actions=drop", "priority=0 actions=drop");
    golden("priority=65535,actions=drop", "priority=65535 actions=drop");
    golden(
        "cookie=18446744073709551615 actions=drop",
        "cookie=0xffffffffffffffff, actions=drop",
    );
    golden("table=254 actions=drop", "table=254, actions=drop");
    // Empty action list means drop, as in OVS.
    golden("ip actions=", "ip actions=drop");
}

#[test]
fn protocol_shorthands() {
    golden("ip actions=drop", "ip actions=drop");
    golden("tcp actions=drop", "tcp actions=drop");
    golden("udp actions=drop", "udp actions=drop");
    golden("icmp actions=drop", "icmp actions=drop");
    golden("sctp actions=drop", "sctp actions=drop");
    golden("arp actions=drop", "arp actions=drop");
    golden("ip,nw_proto=6 actions=drop", "tcp actions=drop");
    golden(
        "dl_type=0x0800,nw_proto=17 actions=drop",
        "udp actions=drop",
    );
    golden("dl_type=2048,ip_proto=1 actions=drop", "icmp actions=drop");
    golden("ip,nw_proto=47 actions=drop", "ip,nw_proto=47 actions=drop");
    golden("dl_type=0x86dd actions=drop", "ipv6 actions=drop");
    golden("eth_type=0x8035 actions=drop", "rarp actions=drop");
    golden("dl_type=0x88cc actions=drop", "dl_type=0x88cc actions=drop");
    golden("tcp,ip actions=drop", "tcp actions=drop");
    let f = parse_flow("tcp actions=drop").unwrap();
    assert_eq!(f.matches.get(Field::NwProto), Some((6, 0xff)));
}

#[test]
fn ports_and_ethernet() {
    golden("in_port=1 actions=drop", "in_port=1 actions=drop");
    golden("in_port=LOCAL actions=drop", "in_port=LOCAL actions=drop");
    golden("in_port=0x10 actions=drop", "in_port=16 actions=drop");
    golden(
        "dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,dl_src=00:11:22:33:44:55 actions=drop",
        "dl_src=00:11:22:33:44:55,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=drop",
    );
    golden(
        "eth_src=0A:0B:0C:0D:0E:0F actions=drop",
        "dl_src=0a:0b:0c:0d:0e:0f actions=drop",
    );
    let f = golden("in_port=3,ip actions=drop", "ip,in_port=3 actions=drop");
    assert_eq!(f.matches.get(Field::InPort), Some((3, 0xffff_ffff)));
}

#[test]
fn vlans() {
    let f = golden("dl_vlan=10 actions=drop", "dl_vlan=10 actions=drop");
    assert_eq!(f.matches.get(Field::VlanTci), Some((0x100a, 0x1fff)));
    let f = golden(
        "dl_vlan=0xffff actions=drop",
        "vlan_tci=0x0000 actions=drop",
    );
    assert_eq!(f.matches.get(Field::VlanTci), Some((0, 0xffff)));
    golden("vlan_tci=0 actions=drop", "vlan_tci=0x0000 actions=drop");
    golden(
        "vlan_tci=0x1000/0x1000 actions=drop",
        "vlan_tci=0x1000/0x1000 actions=drop",
    );
    golden(
        "dl_vlan=10,dl_vlan_pcp=3 actions=drop",
        "dl_vlan=10,dl_vlan_pcp=3 actions=drop",
    );
    golden(
        "vlan_tci=0x700a actions=drop",
        "dl_vlan=10,dl_vlan_pcp=3 actions=drop",
    );
    golden("dl_vlan_pcp=7 actions=drop", "dl_vlan_pcp=7 actions=drop");
    golden(
        "vlan_tci=0x0005/0x0fff actions=drop",
        "vlan_tci=0x0005/0x0fff actions=drop",
    );
}

#[test]
fn ipv4_and_arp() {
    golden(
        "ip,nw_src=10.1.2.3/24 actions=drop",
        "ip,nw_src=10.1.2.0/24 actions=drop",
    );
    golden(
        "ip,nw_src=10.1.2.3/255.255.255.0 actions=drop",
        "ip,nw_src=10.1.2.0/24 actions=drop",
    );
    // Non-contiguous masks are kept and printed dotted.
    golden(
        "ip,nw_dst=10.1.2.3/255.0.255.0 actions=drop",
        "ip,nw_dst=10.0.2.0/255.0.255.0 actions=drop",
    );
    golden(
        "ip,nw_src=10.0.0.1/32 actions=drop",
        "ip,nw_src=10.0.0.1 actions=drop",
    );
    // A /0 mask matches everything: no field, no prerequisite.
    golden("nw_src=0.0.0.0/0 actions=drop", "actions=drop");
    golden(
        "ip,ip_src=1.2.3.4,ip_dst=5.6.7.8 actions=drop",
        "ip,nw_src=1.2.3.4,nw_dst=5.6.7.8 actions=drop",
    );
    golden(
        "ip,nw_tos=16,nw_ttl=64 actions=drop",
        "ip,nw_tos=16,nw_ttl=64 actions=drop",
    );
    let f = golden(
        "arp,arp_op=1,arp_spa=10.0.0.1,arp_tpa=10.0.0.2 actions=drop",
        "arp,arp_spa=10.0.0.1,arp_tpa=10.0.0.2,arp_op=1 actions=drop",
    );
    // ARP fields alias the IPv4 ones, as in OVS.
    assert_eq!(
        f.matches.get(Field::NwSrc),
        Some((0x0a00_0001, 0xffff_ffff))
    );
    assert_eq!(f.matches.get(Field::NwProto), Some((1, 0xff)));
    assert_eq!(
        parse_flow("arp,nw_src=10.0.0.1,nw_dst=10.0.0.2,nw_proto=1 actions=drop"),
        Ok(f)
    );
    let f = parse_flow("ip,nw_tos=16 actions=drop").unwrap();
    assert_eq!(f.matches.get(Field::NwTos), Some((16, 0xfc)));
}

#[test]
fn transport() {
    golden("tcp,tp_dst=80 actions=drop", "tcp,tp_dst=80 actions=drop");
    golden(
        "tcp,tcp_src=1000,tcp_dst=80 actions=drop",
        "tcp,tp_src=1000,tp_dst=80 actions=drop",
    );
    golden("udp,udp_dst=53 actions=drop", "udp,tp_dst=53 actions=drop");
    golden(
        "tcp,tp_dst=0x1000/0xf000 actions=drop",
        "tcp,tp_dst=0x1000/0xf000 actions=drop",
    );
    golden(
        "tcp,tp_dst=80/0xffff actions=drop",
        "tcp,tp_dst=80 actions=drop",
    );
    golden("sctp,tp_src=9 actions=drop", "sctp,tp_src=9 actions=drop");
    let f = golden(
        "icmp,icmp_type=8,icmp_code=0 actions=drop",
        "icmp,icmp_type=8,icmp_code=0 actions=drop",
    );
    assert_eq!(f.matches.get(Field::TpSrc), Some((8, 0xffff)));
    golden(
        "icmp,tp_src=3 actions=drop",
        "icmp,icmp_type=3 actions=drop",
    );
}

#[test]
fn metadata_fields() {
    golden(
        "tun_id=0x5,tun_src=198.18.0.1,tun_dst=198.18.0.2/16 actions=drop",
        "tun_id=0x5,tun_src=198.18.0.1,tun_dst=198.18.0.0/16 actions=drop",
    );
    golden("tun_id=5/0xff actions=drop", "tun_id=0x5/0xff actions=drop");
    golden("tun_id=0 actions=drop", "tun_id=0 actions=drop");
    golden(
        "tunnel_id=0xffffffffffffffff actions=drop",
        "tun_id=0xffffffffffffffff actions=drop",
    );
    golden(
        "reg7=0xffffffff/0xffff0000,reg0=5 actions=drop",
        "reg0=0x5,reg7=0xffff0000/0xffff0000 actions=drop",
    );
    golden("reg3=0 actions=drop", "reg3=0 actions=drop");
    golden(
        "ct_zone=5,ct_mark=0x1/0xff actions=drop",
        "ct_zone=5,ct_mark=0x1/0xff actions=drop",
    );
    golden("ct_mark=0 actions=drop", "ct_mark=0 actions=drop");
}

#[test]
fn ct_state_forms() {
    let f = golden(
        "ct_state=+trk+new-est actions=drop",
        "ct_state=+new-est+trk actions=drop",
    );
    assert_eq!(
        f.matches.get(Field::CtState),
        Some((
            ct_state::TRK | ct_state::NEW,
            ct_state::TRK | ct_state::NEW | ct_state::EST
        ))
    );
    assert_eq!(parse_flow("ct_state=0x21/0x23 actions=drop"), Ok(f));
    golden("ct_state=-trk actions=drop", "ct_state=-trk actions=drop");
    golden(
        "ct_state=+snat+dnat+rpl-inv+rel actions=drop",
        "ct_state=+rel+rpl-inv+snat+dnat actions=drop",
    );
    let f = golden(
        "ct_state=new|trk actions=drop",
        "ct_state=new|trk actions=drop",
    );
    assert_eq!(f.matches.get(Field::CtState), Some((0x21, 0xff)));
    golden(
        "ct_state=0x21 actions=drop",
        "ct_state=new|trk actions=drop",
    );
    golden("ct_state=0 actions=drop", "ct_state=0 actions=drop");
    golden("ct_state=0/0xff actions=drop", "ct_state=0 actions=drop");
}

#[test]
fn ovs_field_order() {
    golden(
        "priority=100,tp_dst=80,nw_src=10.0.0.1,in_port=3,tcp,reg1=0x2,ct_zone=1,ct_state=+trk,\
         dl_dst=02:00:00:00:00:01,tun_id=9,dl_vlan=5,ct_mark=3,nw_ttl=9 actions=drop",
        "priority=100,ct_state=+trk,ct_zone=1,ct_mark=0x3,tcp,reg1=0x2,tun_id=0x9,in_port=3,\
         dl_vlan=5,dl_dst=02:00:00:00:00:01,nw_src=10.0.0.1,nw_ttl=9,tp_dst=80 actions=drop",
    );
}

#[test]
fn separators_and_whitespace() {
    let want = parse_flow("priority=7,tcp,tp_dst=80,actions=output:1,output:2").unwrap();
    for s in [
        "priority=7 tcp tp_dst=80 actions=output:1,output:2",
        "  priority=7,\ttcp, tp_dst=80  actions=output:1 output:2  ",
        "priority:7,tcp,tp_dst:80 actions=output:1,,output:2,",
        "tcp,actions=output:1,output:2,priority=7,tp_dst=80"
            .replace(
                ",actions=output:1,output:2,priority=7,tp_dst=80",
                ",priority=7,tp_dst=80,actions=output:1,output:2",
            )
            .as_str(),
    ] {
        assert_eq!(parse_flow(s).as_ref(), Ok(&want), "{s:?}");
    }
}

// ---- actions -------------------------------------------------------------

#[test]
fn output_actions() {
    golden("ip actions=output:2", "ip actions=output:2");
    golden("ip actions=2,3", "ip actions=output:2,output:3");
    golden("ip actions=in_port", "ip actions=IN_PORT");
    golden("ip actions=output:in_port", "ip actions=IN_PORT");
    golden("ip actions=normal", "ip actions=NORMAL");
    golden("ip actions=output:NORMAL", "ip actions=NORMAL");
    golden("ip actions=flood", "ip actions=FLOOD");
    golden("ip actions=all", "ip actions=ALL");
    golden("ip actions=local", "ip actions=LOCAL");
    let f = golden("ip actions=output:LOCAL", "ip actions=LOCAL");
    assert_eq!(f.actions, vec![Action::Local]);
    let f = golden("ip actions=drop", "ip actions=drop");
    assert!(f.actions.is_empty());
    golden("ip actions=DROP", "ip actions=drop");
    golden("actions=output:4294967040", "actions=output:4294967040");
}

#[test]
fn table_actions() {
    let f = golden("ip actions=resubmit(,2)", "ip actions=resubmit(,2)");
    assert_eq!(
        f.actions,
        vec![Action::Resubmit {
            port: None,
            table: Some(2)
        }]
    );
    golden("ip actions=resubmit(3,2)", "ip actions=resubmit(3,2)");
    golden("ip actions=resubmit:3", "ip actions=resubmit:3");
    golden("ip actions=resubmit(3)", "ip actions=resubmit:3");
    golden("ip actions=resubmit(3,)", "ip actions=resubmit:3");
    golden("ip actions=resubmit(IN_PORT,2)", "ip actions=resubmit(,2)");
    golden(
        "ip actions=resubmit(LOCAL,0)",
        "ip actions=resubmit(LOCAL,0)",
    );
    golden("ip actions=goto_table:2", "ip actions=goto_table:2");
    golden(
        "table=3,ip actions=dec_ttl,goto_table:4",
        "table=3, ip actions=dec_ttl,goto_table:4",
    );
    golden("ip actions=group:5", "ip actions=group:5");
}

#[test]
fn rewrite_actions_print_as_openflow13_set_field() {
    let f = golden(
        "tcp actions=mod_dl_src:00:00:00:00:00:01,mod_dl_dst:02:00:00:00:00:99,\
         mod_nw_src:10.0.0.1,mod_nw_dst:10.0.0.2,mod_tp_src:1000,mod_tp_dst:8080",
        "tcp actions=set_field:00:00:00:00:00:01->eth_src,set_field:02:00:00:00:00:99->eth_dst,\
         set_field:10.0.0.1->ip_src,set_field:10.0.0.2->ip_dst,set_field:1000->tcp_src,\
         set_field:8080->tcp_dst",
    );
    assert_eq!(
        f.actions[5],
        Action::SetField {
            field: Field::TpDst,
            value: 8080
        }
    );
    golden(
        "udp actions=mod_tp_dst:53",
        "udp actions=set_field:53->udp_dst",
    );
    golden(
        "sctp actions=mod_tp_src:5",
        "sctp actions=set_field:5->sctp_src",
    );
    golden(
        "udp actions=set_field:53->tp_dst",
        "udp actions=set_field:53->udp_dst",
    );
    golden(
        "icmp actions=set_field:0->icmp_code",
        "icmp actions=set_field:0->icmp_code",
    );
    golden(
        "ip actions=set_field:0x5->tun_id,set_field:198.18.0.2->tun_dst,set_field:198.18.0.1->tun_src,output:1",
        "ip actions=set_field:0x5->tun_id,set_field:198.18.0.2->tun_dst,set_field:198.18.0.1->tun_src,output:1",
    );
    golden(
        "actions=set_field:5->reg0,set_field:0->reg7",
        "actions=set_field:0x5->reg0,set_field:0->reg7",
    );
    golden(
        "actions=set_field:aa:bb:cc:dd:ee:ff->dl_dst",
        "actions=set_field:aa:bb:cc:dd:ee:ff->eth_dst",
    );
    golden(
        "ip actions=set_field:1.2.3.4->nw_src",
        "ip actions=set_field:1.2.3.4->ip_src",
    );
    golden(
        "ip actions=set_field:64->nw_ttl,set_field:16->nw_tos,mod_nw_ttl:5",
        "ip actions=set_field:64->nw_ttl,set_field:16->nw_tos,set_field:5->nw_ttl",
    );
    golden(
        "arp actions=set_field:10.0.0.1->arp_spa,set_field:10.0.0.2->arp_tpa,set_field:2->arp_op",
        "arp actions=set_field:10.0.0.1->arp_spa,set_field:10.0.0.2->arp_tpa,set_field:2->arp_op",
    );
    golden(
        "actions=set_field:0x1064->vlan_tci",
        "actions=set_field:0x1064->vlan_tci",
    );
    golden(
        "actions=set_field:3->in_port",
        "actions=set_field:3->in_port",
    );
}

#[test]
fn vlan_and_misc_actions() {
    golden("ip actions=dec_ttl", "ip actions=dec_ttl");
    golden("ipv6 actions=dec_ttl", "ipv6 actions=dec_ttl");
    golden(
        "actions=push_vlan:0x8100,mod_vlan_vid:7",
        "actions=push_vlan:0x8100,mod_vlan_vid:7",
    );
    golden("actions=push_vlan:34984", "actions=push_vlan:0x88a8");
    golden("actions=pop_vlan,strip_vlan", "actions=pop_vlan,pop_vlan");
    golden("actions=ct_clear", "actions=ct_clear");
    golden("actions=mod_vlan_vid:4095", "actions=mod_vlan_vid:4095");
}

#[test]
fn ct_actions() {
    let f = golden(
        "tcp actions=ct(commit,zone=1,nat(dst=10.244.1.5:8080))",
        "tcp actions=ct(commit,zone=1,nat(dst=10.244.1.5:8080))",
    );
    assert_eq!(
        f.actions,
        vec![Action::Ct(CtAction {
            commit: true,
            zone: Some(1),
            nat: Some(Nat::Dst {
                ip: Ipv4Addr::new(10, 244, 1, 5),
                port: Some(8080)
            }),
            ..CtAction::default()
        })]
    );
    golden(
        "ip actions=ct(zone=5,table=2,commit)",
        "ip actions=ct(commit,table=2,zone=5)",
    );
    golden(
        "ip actions=ct(table=1,zone=2,nat)",
        "ip actions=ct(table=1,zone=2,nat)",
    );
    golden(
        "ip actions=ct(commit,nat(src=1.2.3.4))",
        "ip actions=ct(commit,nat(src=1.2.3.4))",
    );
    golden("ip actions=ct(nat())", "ip actions=ct(nat)");
    golden(
        "ip actions=ct(exec(set_field:0x1->ct_mark),commit)",
        "ip actions=ct(commit,exec(set_field:0x1->ct_mark))",
    );
    golden(
        "ip actions=ct(commit,nat(dst=10.0.0.1),exec(set_field:1->ct_mark,set_field:0->ct_mark)),output:1",
        "ip actions=ct(commit,nat(dst=10.0.0.1),exec(set_field:0x1->ct_mark,set_field:0->ct_mark)),output:1",
    );
    golden("ip actions=ct", "ip actions=ct()");
    golden("ip actions=ct(zone=0)", "ip actions=ct()");
    golden("ipv6 actions=ct(commit,nat)", "ipv6 actions=ct(commit,nat)");
}

#[test]
fn action_display_without_match() {
    let a = Action::SetField {
        field: Field::TpDst,
        value: 80,
    };
    assert_eq!(a.to_string(), "mod_tp_dst:80");
    let a = Action::SetField {
        field: Field::NwSrc,
        value: 0x0a00_0001,
    };
    assert_eq!(a.to_string(), "set_field:10.0.0.1->ip_src");
    assert_eq!(Action::Output(PortNo::LOCAL).to_string(), "LOCAL");
    assert_eq!(Action::Drop.to_string(), "drop");
    assert_eq!(
        Action::Resubmit {
            port: Some(PortNo(1)),
            table: Some(2)
        }
        .to_string(),
        "resubmit(1,2)"
    );
}

// ---- dump format -----------------------------------------------------------

#[test]
fn dump_flows_format() {
    let f = parse_flow("priority=100,ip,nw_dst=10.0.0.0/24 actions=output:2").unwrap();
    let stats = FlowStats {
        duration: Duration::from_millis(1234),
        ..FlowStats::default()
    };
    let line = format_dump(&f, &stats);
    assert_eq!(
        line,
        " cookie=0x0, duration=1.234s, table=0, n_packets=0, n_bytes=0, priority=100,ip,nw_dst=10.0.0.0/24 actions=output:2"
    );
    // A dump line parses back to the flow (the counters are ignored, as in OVS).
    assert_eq!(parse_flow(&line), Ok(f));

    let f = parse_flow(
        "cookie=0x1,table=2,idle_timeout=60,hard_timeout=5,priority=10,tcp actions=mod_tp_dst:80,drop"
            .trim_end_matches(",drop"),
    )
    .unwrap();
    let stats = FlowStats {
        n_packets: 10,
        n_bytes: 1000,
        duration: Duration::from_millis(10),
        idle_age: Some(Duration::from_secs(3)),
    };
    let line = format_dump(&f, &stats);
    assert_eq!(
        line,
        " cookie=0x1, duration=0.010s, table=2, n_packets=10, n_bytes=1000, idle_timeout=60, \
         hard_timeout=5, idle_age=3, priority=10,tcp actions=set_field:80->tcp_dst"
    );
    assert_eq!(parse_flow(&line), Ok(f));

    let empty = Flow::default();
    let stats = FlowStats {
        n_packets: u64::MAX,
        duration: Duration::from_secs(5),
        ..FlowStats::default()
    };
    assert_eq!(
        format_dump(&empty, &stats),
        " cookie=0x0, duration=5s, table=0, n_packets=?, n_bytes=0, actions=drop"
    );
}

#[test]
fn dump_durations_like_ofp_print_duration() {
    let f = Flow::default();
    let d = |dur: Duration| {
        let line = format_dump(
            &f,
            &FlowStats {
                duration: dur,
                ..FlowStats::default()
            },
        );
        line.split(", ").nth(1).unwrap().to_string()
    };
    assert_eq!(d(Duration::ZERO), "duration=0s");
    assert_eq!(d(Duration::from_millis(1500)), "duration=1.500s");
    assert_eq!(d(Duration::new(1, 1_000)), "duration=1.000001s");
    assert_eq!(d(Duration::new(0, 123)), "duration=0.000000123s");
    assert_eq!(d(Duration::new(7, 120_000_000)), "duration=7.120s");
}

// ---- errors ----------------------------------------------------------------

#[test]
fn error_display() {
    let e = err("priority=100,ip,nw_sorc=10.0.0.1 actions=drop");
    assert_eq!(
        e.to_string(),
        "column 17 near \"nw_sorc\": unknown match field"
    );
    let e = parse_flows("ip actions=drop\n\n# c\nip actions=fod\n").unwrap_err();
    assert_eq!(e.line, Some(4));
    assert_eq!(
        e.to_string(),
        "line 4, column 12 near \"fod\": unknown action"
    );
}

#[test]
fn match_errors() {
    rejects(
        "priority=100,ip,nw_sorc=10.0.0.1 actions=drop",
        17,
        "nw_sorc",
        "unknown match field",
    );
    rejects(
        "nw_src=10.0.0.1 actions=drop",
        1,
        "nw_src",
        "needs dl_type ip or arp",
    );
    rejects("arp,nw_ttl=3 actions=drop", 5, "nw_ttl", "needs dl_type ip");
    rejects("ip,tp_dst=80 actions=drop", 4, "tp_dst", "needs nw_proto");
    rejects("icmp,tp_src=300 actions=drop", 6, "tp_src", "ICMP");
    rejects("tcp,udp actions=drop", 5, "udp", "conflicts");
    rejects(
        "ip,nw_src=1.1.1.1,nw_src=2.2.2.2 actions=drop",
        19,
        "nw_src=2.2.2.2",
        "conflicts",
    );
    rejects(
        "tcp,tp_dst=80,nw_dst=1.2.3 actions=drop",
        22,
        "1.2.3",
        "not an IPv4 address",
    );
    rejects(
        "ip,nw_src=10.0.0.0/33 actions=drop",
        11,
        "10.0.0.0/33",
        "longer than 32",
    );
    rejects(
        "tcp,tp_dst=0x1/0x10000 actions=drop",
        12,
        "0x1/0x10000",
        "wider",
    );
    rejects("tcp,tp_dst=65536 actions=drop", 12, "65536", "16 bits");
    rejects("in_port=0 actions=drop", 9, "0", "port 0");
    rejects(
        "in_port=4294967041 actions=drop",
        9,
        "4294967041",
        "out of range",
    );
    rejects("in_port=eth0 actions=drop", 9, "eth0", "port names");
    rejects("dl_vlan=4096 actions=drop", 9, "4096", "VLAN id");
    rejects(
        "dl_vlan=1,dl_vlan=2 actions=drop",
        11,
        "dl_vlan=2",
        "conflicts",
    );
    rejects(
        "dl_src=00:11:22:33:44 actions=drop",
        8,
        "00:11:22:33:44",
        "MAC",
    );
    rejects(
        "ct_state=+trk+foo actions=drop",
        10,
        "+trk+foo",
        "unknown ct_state flag",
    );
    rejects("ct_state=+trk+trk actions=drop", 10, "+trk+trk", "twice");
    rejects(
        "ct_state=0x100/0x100 actions=drop",
        10,
        "0x100/0x100",
        "unknown ct_state flag bits",
    );
    rejects(
        "ip,nw_ttl=5/0xff actions=drop",
        11,
        "5/0xff",
        "cannot be masked",
    );
    rejects("ip,nw_tos=3 actions=drop", 11, "3", "ECN");
    rejects("ct_zone=1/1 actions=drop", 9, "1/1", "cannot be masked");
    rejects("reg8=1 actions=drop", 1, "reg8", "unknown match field");
    rejects("nw_src actions=drop", 1, "nw_src", "missing value");
    rejects("ip=1 actions=drop", 1, "ip=1", "takes no value");
    rejects(
        "tun_id=0x10000000000000000 actions=drop",
        8,
        "0x10000000000000000",
        "too large",
    );
}

#[test]
fn flow_key_errors() {
    rejects("priority=65536 actions=drop", 10, "65536", "priority");
    rejects("priority=010 actions=drop", 10, "010", "leading zero");
    rejects("priority=-1 actions=drop", 10, "-1", "invalid number");
    rejects(
        "priority=1,priority=2 actions=drop",
        12,
        "priority=2",
        "twice",
    );
    rejects("table=255 actions=drop", 7, "255", "out of range");
    rejects("cookie=1/1 actions=drop", 8, "1/1", "cookie mask");
    rejects("idle_timeout=65536 actions=drop", 14, "65536", "16 bits");
    rejects("out_port=1 actions=drop", 1, "out_port=1", "del-flows");
    rejects("ip", 3, "", "missing actions");
    rejects("", 1, "", "missing actions");
    rejects("ip actions:drop", 4, "actions:drop", "expected actions=");
}

#[test]
fn action_errors() {
    rejects("ip actions=foo", 12, "foo", "unknown action");
    rejects("ip actions=output:0", 19, "0", "port 0");
    rejects("ip actions=output:", 12, "output:", "missing value");
    rejects("ip actions=drop,output:1", 12, "drop", "only action");
    rejects("ip actions=output:1,drop", 21, "drop", "only action");
    rejects("table=2,ip actions=goto_table:1", 31, "1", "after 2");
    rejects(
        "ip actions=goto_table:3,output:1",
        12,
        "goto_table:3",
        "last",
    );
    rejects("ip actions=goto_table:255", 23, "255", "out of range");
    rejects(
        "ip actions=mod_tp_dst:80",
        12,
        "mod_tp_dst:80",
        "tcp, udp or sctp",
    );
    rejects(
        "actions=mod_nw_src:1.2.3.4",
        9,
        "mod_nw_src:1.2.3.4",
        "ip match",
    );
    rejects("tcp actions=mod_nw_dst:1.2.3", 24, "1.2.3", "IPv4");
    rejects("actions=dec_ttl", 9, "dec_ttl", "ip match");
    rejects("ip actions=dec_ttl(1,2)", 20, "1,2", "not supported");
    rejects("actions=ct(commit)", 9, "ct(commit)", "ip match");
    rejects(
        "ip actions=set_field:1->ct_mark",
        12,
        "set_field:1->ct_mark",
        "inside ct(exec",
    );
    rejects(
        "ip actions=ct(exec(output:1))",
        20,
        "output:1",
        "only set_field",
    );
    rejects(
        "ip actions=ct(exec(set_field:1->reg0))",
        20,
        "set_field:1->reg0",
        "only set_field",
    );
    rejects("ip actions=ct(commit", 14, "(", "missing ')'");
    rejects("ip actions=ct(foo)", 15, "foo", "unknown ct argument");
    rejects("ip actions=ct(commit,commit)", 22, "commit", "twice");
    rejects(
        "ip actions=ct(nat(dst=1.2.3.4-1.2.3.5))",
        23,
        "1.2.3.4-1.2.3.5",
        "ranges",
    );
    rejects(
        "ip actions=ct(nat(dst=1.2.3.4:0))",
        23,
        "1.2.3.4:0",
        "1-65535",
    );
    rejects(
        "ip actions=ct(nat(src=1.2.3.4,dst=1.2.3.5))",
        31,
        "dst=1.2.3.5",
        "only one",
    );
    rejects(
        "ipv6 actions=ct(nat(dst=1.2.3.4))",
        14,
        "ct(nat(dst=1.2.3.4))",
        "IPv4",
    );
    rejects(
        "ip actions=set_field:1->nw_proto",
        25,
        "nw_proto",
        "cannot be written",
    );
    rejects("ip actions=set_field:1->foo", 25, "foo", "unknown field");
    rejects("ip actions=set_field:1", 22, "1", "->FIELD");
    rejects("ip actions=set_field:1/1->reg0", 22, "1/1", "masked");
    rejects(
        "udp actions=set_field:1->tcp_dst",
        13,
        "set_field:1->tcp_dst",
        "nw_proto 6",
    );
    rejects(
        "ip actions=set_field:1->arp_op",
        12,
        "set_field:1->arp_op",
        "arp match",
    );
    rejects(
        "actions=set_field:0x100000000->reg0",
        19,
        "0x100000000",
        "32 bits",
    );
    rejects("actions=push_vlan:0x0800", 19, "0x0800", "VLAN ethertype");
    rejects("actions=mod_vlan_vid:4096", 22, "4096", "0-4095");
    rejects("actions=group:4294967041", 15, "4294967041", "group id");
    rejects("actions=resubmit", 9, "resubmit", "port or a table");
    rejects("actions=resubmit(,)", 9, "resubmit(,)", "port or a table");
    rejects("actions=resubmit(1,2,ct)", 18, "1,2,ct", "(port,table)");
    rejects("actions=normal:1", 9, "normal:1", "takes no value");
    rejects("actions=learn(table=1)", 9, "learn", "unknown action");
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let n = 20_000;
    let s = format!("ip actions={}{}", "ct(exec(".repeat(n), "))".repeat(n));
    let e = err(&s);
    assert_eq!(e.column, 20, "{}", e.reason);
    assert!(e.reason.contains("only set_field"), "{}", e.reason);
    let s = format!("ip actions=ct({}", "(".repeat(n));
    assert!(parse_flow(&s).is_err());
    let s = format!("group_id=1,type=all,bucket={}", "ct(exec(".repeat(n));
    assert!(parse_group(&s).is_err());
}

#[test]
fn columns_count_characters_not_bytes() {
    rejects(
        "prïority=1 actions=drop",
        1,
        "prïority",
        "unknown match field",
    );
    rejects("ip,ñ=1 actions=drop", 4, "ñ", "unknown match field");
    rejects("ip actions=output:1,é", 21, "é", "unknown action");
}

// ---- filters ---------------------------------------------------------------

#[test]
fn filters() {
    assert_eq!(parse_filter(""), Ok(FlowFilter::default()));
    assert_eq!(parse_filter("  "), Ok(FlowFilter::default()));
    let f = parse_filter("table=1,cookie=0x5/-1,out_port=2,tcp,tp_dst=80").unwrap();
    assert_eq!(f.table, Some(1));
    assert_eq!(f.cookie, Some((5, u64::MAX)));
    assert_eq!(f.out_port, Some(PortNo(2)));
    assert_eq!(f.priority, None);
    assert_eq!(f.matches.get(Field::TpDst), Some((80, 0xffff)));
    assert_eq!(
        f.to_string(),
        "table=1,cookie=0x5/0xffffffffffffffff,out_port=2,tcp,tp_dst=80"
    );
    assert_eq!(parse_filter(&f.to_string()), Ok(f));
    let f = parse_filter("priority=32768,ip").unwrap();
    assert_eq!(f.priority, Some(32768));
    assert_eq!(parse_filter(&f.to_string()), Ok(f));
    let f = parse_filter("cookie=0x10/0xf0,out_port=LOCAL").unwrap();
    assert_eq!(f.cookie, Some((0x10, 0xf0)));
    assert_eq!(f.out_port, Some(PortNo::LOCAL));

    let e = parse_filter("cookie=5").unwrap_err();
    assert_eq!((e.column, e.token.as_str()), (8, "5"));
    assert!(e.reason.contains("cookie=5/-1"), "{e}");
    let e = parse_filter("ip actions=drop").unwrap_err();
    assert_eq!((e.column, e.token.as_str()), (4, "actions=drop"));
    let e = parse_filter("idle_timeout=5").unwrap_err();
    assert_eq!(e.column, 1);
    let e = parse_filter("nw_dst=1.2.3.4").unwrap_err();
    assert!(e.reason.contains("needs dl_type"), "{e}");
}

// ---- add-flows files -------------------------------------------------------

#[test]
fn flows_file() {
    let text = "# bridge flows\r\n\
                table=0,priority=100,tcp,nw_dst=10.244.1.12,tp_dst=23 actions=drop\r\n\
                \n   \t\n\
                table=0,priority=10,ip actions=dec_ttl,resubmit(,1)   # route\n\
                table=1,priority=0 actions=normal";
    let flows = parse_flows(text).unwrap();
    assert_eq!(flows.len(), 3);
    assert_eq!(
        flows[1].actions,
        vec![
            Action::DecTtl,
            Action::Resubmit {
                port: None,
                table: Some(1)
            }
        ]
    );
    assert_eq!(flows[2].table, 1);
    assert_eq!(parse_flows(""), Ok(vec![]));
    assert_eq!(parse_flows("# only\n\n"), Ok(vec![]));

    let e = parse_flows("ip actions=drop\n  ip,nw_src=1.2.3 actions=drop\n").unwrap_err();
    assert_eq!((e.line, e.column, e.token.as_str()), (Some(2), 13, "1.2.3"));
}

// ---- groups ----------------------------------------------------------------

#[test]
fn group_syntax() {
    let g = parse_group("group_id=1,type=select,bucket=output:1,bucket=weight:50,actions=output:2")
        .unwrap();
    assert_eq!(
        g,
        Group {
            id: 1,
            kind: GroupType::Select,
            buckets: vec![
                Bucket {
                    weight: 1,
                    actions: vec![Action::Output(PortNo(1))]
                },
                Bucket {
                    weight: 50,
                    actions: vec![Action::Output(PortNo(2))]
                },
            ],
        }
    );
    assert_eq!(
        g.to_string(),
        "group_id=1,type=select,bucket=actions=output:1,bucket=weight:50,actions=output:2"
    );
    assert_eq!(parse_group(&g.to_string()), Ok(g));

    let g = parse_group(
        "group_id=2,type=all,bucket=actions=output:1,output:2,bucket=actions=mod_dl_dst:02:00:00:00:00:01,output:3",
    )
    .unwrap();
    assert_eq!(g.buckets[0].actions.len(), 2);
    assert_eq!(g.buckets[0].weight, 0);
    assert_eq!(
        g.to_string(),
        "group_id=2,type=all,bucket=actions=output:1,output:2,\
         bucket=actions=set_field:02:00:00:00:00:01->eth_dst,output:3"
    );
    assert_eq!(parse_group(&g.to_string()), Ok(g));

    let g = parse_group(
        "group_id=3,type=select,bucket=weight=100,actions=ct(commit,nat(dst=10.244.1.5:8080)),\
         mod_tp_dst:8080,actions=resubmit(,4)",
    )
    .unwrap();
    assert_eq!(
        g.to_string(),
        "group_id=3,type=select,bucket=weight:100,actions=ct(commit,nat(dst=10.244.1.5:8080)),\
         mod_tp_dst:8080,resubmit(,4)"
    );
    assert_eq!(parse_group(&g.to_string()), Ok(g));

    let g = parse_group("type=indirect group_id=4 bucket=actions=drop").unwrap();
    assert_eq!(
        g.buckets,
        vec![Bucket {
            weight: 0,
            actions: vec![]
        }]
    );
    assert_eq!(
        g.to_string(),
        "group_id=4,type=indirect,bucket=actions=drop"
    );
    let g = parse_group("group_id=5,type=all").unwrap();
    assert!(g.buckets.is_empty());
    assert_eq!(g.to_string(), "group_id=5,type=all");
    let g = parse_group("group_id=6,type=select,bucket=weight:0,actions=1").unwrap();
    assert_eq!(
        g.to_string(),
        "group_id=6,type=select,bucket=weight:0,actions=output:1"
    );
}

#[test]
fn group_errors() {
    let e = |s: &str| parse_group(s).unwrap_err();
    let x = e("type=all,bucket=output:1");
    assert!(x.reason.contains("group_id"), "{x}");
    let x = e("group_id=1,bucket=output:1");
    assert!(x.reason.contains("type"), "{x}");
    let x = e("group_id=1,type=ff,bucket=output:1");
    assert_eq!((x.column, x.token.as_str()), (17, "ff"));
    let x = e("group_id=4294967041,type=all");
    assert_eq!(x.token, "4294967041");
    let x = e("group_id=1,type=all,bucket=weight:5,actions=output:1");
    assert_eq!((x.column, x.token.as_str()), (28, "weight:5"));
    let x = e("group_id=1,type=indirect,bucket=output:1,bucket=output:2");
    assert_eq!((x.column, x.token.as_str()), (42, "bucket="));
    let x = e("group_id=1,type=all,bucket=");
    assert!(x.reason.contains("must specify actions"), "{x}");
    let x = e("group_id=1,type=all,bucket=actions=goto_table:1");
    assert_eq!(x.token, "goto_table:1");
    let x = e("group_id=1,type=all,bucket=watch_port:1,output:1");
    assert_eq!(x.token, "watch_port:1");
    let x = e("group_id=1,type=all,selection_method=hash");
    assert_eq!(x.token, "selection_method");
    let x = e("group_id=1,type=all,bucket=actions=output:1,drop");
    assert!(x.reason.contains("only action"), "{x}");
    let x = e("group_id=1,group_id=2,type=all");
    assert!(x.reason.contains("twice"), "{x}");
}

// ---- model -----------------------------------------------------------------

#[test]
fn field_widths() {
    let cases = [
        (Field::InPort, 32),
        (Field::DlSrc, 48),
        (Field::DlDst, 48),
        (Field::DlType, 16),
        (Field::VlanTci, 16),
        (Field::NwSrc, 32),
        (Field::NwDst, 32),
        (Field::NwProto, 8),
        (Field::NwTtl, 8),
        (Field::NwTos, 8),
        (Field::TpSrc, 16),
        (Field::TpDst, 16),
        (Field::TunId, 64),
        (Field::TunSrc, 32),
        (Field::TunDst, 32),
        (Field::CtState, 16),
        (Field::CtZone, 16),
        (Field::CtMark, 32),
        (Field::Reg(3), 32),
    ];
    for (f, bits) in cases {
        assert_eq!(f.bits(), bits, "{f}");
    }
    assert_eq!(Field::TunId.full_mask(), u64::MAX);
    assert_eq!(Field::DlSrc.full_mask(), 0xffff_ffff_ffff);
    assert_eq!(Field::CtState.full_mask(), 0xff);
    assert_eq!(Field::NwTos.exact_mask(), 0xfc);
    assert_eq!(Field::Reg(5).to_string(), "reg5");
}

#[test]
fn match_is_canonical() {
    let mut m = Match::new();
    m.set(Field::TpDst, 80, 0xffff);
    m.set(Field::DlType, 0x0800, 0xffff);
    m.set(Field::NwSrc, 0x0a00_0005, 0xffff_ff00);
    m.set(Field::Reg(2), 1, 0);
    assert_eq!(m.len(), 3);
    assert_eq!(m.get(Field::NwSrc), Some((0x0a00_0000, 0xffff_ff00)));
    let order: Vec<Field> = m.iter().map(|f| f.field).collect();
    assert_eq!(order, vec![Field::DlType, Field::NwSrc, Field::TpDst]);
    assert_eq!(m.prerequisite_error().map(|e| e.0), Some(Field::TpDst));
    m.set_exact(Field::NwProto, 6);
    assert_eq!(m.prerequisite_error(), None);
    m.set(Field::TpDst, 0, 0);
    assert_eq!(m.get(Field::TpDst), None);
    assert_eq!(m.remove(Field::NwProto), Some((6, 0xff)));
    m.set(Field::CtState, 0xffff, 0xffff);
    assert_eq!(m.get(Field::CtState), Some((0xff, 0xff)));
    assert_eq!(
        m.to_string(),
        "ct_state=new|est|rel|rpl|inv|trk|snat|dnat,ip,nw_src=10.0.0.0/24"
    );
}

// ---- properties ------------------------------------------------------------

/// The protocol context a generated flow has.
#[derive(Clone, Copy, Debug)]
struct Ctx {
    dl_type: Option<u16>,
    proto: Option<u8>,
    /// A group bucket: no match, no prerequisites.
    bucket: bool,
}

impl Ctx {
    fn ip(&self) -> bool {
        self.bucket || self.dl_type == Some(ETH_TYPE_IP)
    }
    fn ip_any(&self) -> bool {
        self.ip() || self.dl_type == Some(ETH_TYPE_IPV6)
    }
    fn arp(&self) -> bool {
        !self.bucket && self.dl_type == Some(ETH_TYPE_ARP)
    }
    fn l4(&self) -> Option<u8> {
        if self.bucket {
            return Some(IPPROTO_TCP);
        }
        self.proto.filter(|_| self.dl_type == Some(ETH_TYPE_IP))
    }
}

fn port_from(a: u64) -> PortNo {
    if a.is_multiple_of(17) {
        PortNo::LOCAL
    } else {
        PortNo(1 + (a % u64::from(PortNo::MAX.0)) as u32)
    }
}

/// Raw randomness for one action, turned into a valid one by [`action_from`].
type Seed = (u8, u64, u64, bool);

fn action_from((sel, a, b, flag): Seed, ctx: Ctx) -> Option<Action> {
    let set = |field: Field, value: u64| Some(Action::SetField { field, value });
    Some(match sel % 17 {
        0 => Action::Output(PortNo(1 + (a % u64::from(PortNo::MAX.0)) as u32)),
        1 => Action::InPort,
        2 => Action::Normal,
        3 => Action::Flood,
        4 => Action::All,
        5 => Action::Local,
        6 => {
            let port = flag.then(|| port_from(a));
            let table = (port.is_none() || b.is_multiple_of(2)).then_some((b % 255) as u8);
            Action::Resubmit { port, table }
        }
        7 => Action::Group((a % (u64::from(MAX_GROUP) + 1)) as u32),
        8 if ctx.ip_any() => Action::DecTtl,
        9 => Action::PushVlan(if flag { 0x8100 } else { 0x88a8 }),
        10 => Action::PopVlan,
        11 => Action::ModVlanVid((a % 4096) as u16),
        12 => Action::CtClear,
        13 => {
            return match b % 9 {
                0 => set(Field::DlSrc, a & 0xffff_ffff_ffff),
                1 => set(Field::DlDst, a & 0xffff_ffff_ffff),
                2 => set(Field::VlanTci, a & 0xffff),
                3 => set(Field::InPort, u64::from(port_from(a).0)),
                4 => set(Field::TunId, a),
                5 => set(Field::TunSrc, a & 0xffff_ffff),
                6 => set(Field::TunDst, a & 0xffff_ffff),
                _ => set(Field::Reg((a % 8) as u8), b >> 8 & 0xffff_ffff),
            };
        }
        14 if ctx.ip() => {
            return match b % 4 {
                0 => set(Field::NwSrc, a & 0xffff_ffff),
                1 => set(Field::NwDst, a & 0xffff_ffff),
                2 => set(Field::NwTtl, a & 0xff),
                _ => set(Field::NwTos, a & 0xfc),
            };
        }
        14 if ctx.arp() => {
            return match b % 3 {
                0 => set(Field::NwSrc, a & 0xffff_ffff),
                1 => set(Field::NwDst, a & 0xffff_ffff),
                _ => set(Field::NwProto, a & 0xff),
            };
        }
        15 => {
            let width = match ctx.l4()? {
                IPPROTO_TCP | IPPROTO_UDP | IPPROTO_SCTP => 0xffff,
                IPPROTO_ICMP => 0xff,
                _ => return None,
            };
            let field = if flag { Field::TpSrc } else { Field::TpDst };
            return set(field, a & width);
        }
        16 if ctx.ip_any() => {
            let ip = Ipv4Addr::from((a >> 16) as u32);
            let port = (b % 3 != 0).then_some(1 + (b >> 8) as u16 % 65535);
            let nat = match (a % 4, ctx.ip()) {
                (0, _) => None,
                (1, _) => Some(Nat::Reverse),
                (2, true) => Some(Nat::Dst { ip, port }),
                (3, true) => Some(Nat::Src { ip, port }),
                _ => None,
            };
            let exec = (0..(b >> 40) % 3)
                .map(|i| Action::SetField {
                    field: Field::CtMark,
                    value: (b >> (i * 8)) & 0xffff_ffff,
                })
                .collect();
            Action::Ct(CtAction {
                commit: flag,
                zone: (b % 5 != 0).then_some(1 + (a >> 48) as u16 % 65535),
                table: (b % 7 < 3).then_some((a % 255) as u8),
                nat,
                exec,
            })
        }
        _ => return None,
    })
}

/// Turns a random mask of `bits` bits into an exact (1/3), prefix (1/3) or
/// arbitrary (1/3) one, so all three printed forms get exercised.
fn shape(k: u64, bits: u32) -> u64 {
    let full = if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    match k % 3 {
        0 => full,
        1 => {
            let len = ((k >> 2) % u64::from(bits + 1)) as u32;
            full & !full.checked_shr(len).unwrap_or(0)
        }
        _ => k & full,
    }
}

/// L3 kinds: none, ip, tcp, udp, sctp, icmp, ip+other proto, arp, other ethertype.
fn arb_match() -> impl Strategy<Value = (Match, Ctx)> {
    let vm16 = || proptest::option::of(any::<(u16, u16)>());
    let vm32 = || proptest::option::of(any::<(u32, u32)>());
    (
        (0u8..9, any::<u8>(), any::<u16>()),
        (
            proptest::option::of(any::<u64>()),
            proptest::option::of(any::<(u64, u64)>()),
            proptest::option::of(any::<(u64, u64)>()),
            vm16(),
        ),
        (
            vm32(),
            vm32(),
            proptest::option::of(any::<u8>()),
            proptest::option::of(0u8..64),
        ),
        (vm16(), vm16(), proptest::option::of(any::<(u8, u8)>())),
        (
            proptest::option::of(any::<(u64, u64)>()),
            vm32(),
            vm32(),
            proptest::option::of(any::<(u8, u8)>()),
            proptest::option::of(any::<u16>()),
            vm32(),
        ),
        proptest::collection::vec((0u8..8, any::<(u32, u32)>()), 0..3),
    )
        .prop_map(|((kind, oproto, otype), eth, l3, l4, meta, regs)| {
            let mut m = Match::new();
            let (dl_type, proto) = match kind {
                0 => (None, None),
                1 => (Some(ETH_TYPE_IP), None),
                2 => (Some(ETH_TYPE_IP), Some(IPPROTO_TCP)),
                3 => (Some(ETH_TYPE_IP), Some(IPPROTO_UDP)),
                4 => (Some(ETH_TYPE_IP), Some(IPPROTO_SCTP)),
                5 => (Some(ETH_TYPE_IP), Some(IPPROTO_ICMP)),
                6 => {
                    let p = match oproto {
                        IPPROTO_ICMP | IPPROTO_TCP | IPPROTO_UDP | IPPROTO_SCTP => 47,
                        p => p,
                    };
                    (Some(ETH_TYPE_IP), Some(p))
                }
                7 => (Some(ETH_TYPE_ARP), None),
                _ => {
                    let t = match otype {
                        ETH_TYPE_IP | ETH_TYPE_ARP => ETH_TYPE_IPV6,
                        t => t,
                    };
                    (Some(t), None)
                }
            };
            if let Some(t) = dl_type {
                m.set_exact(Field::DlType, u64::from(t));
            }
            if let Some(p) = proto {
                m.set_exact(Field::NwProto, u64::from(p));
            }
            let (in_port, src, dst, tci) = eth;
            if let Some(p) = in_port {
                m.set_exact(Field::InPort, u64::from(port_from(p).0));
            }
            if let Some((v, k)) = src {
                m.set(Field::DlSrc, v, shape(k, 48));
            }
            if let Some((v, k)) = dst {
                m.set(Field::DlDst, v, shape(k, 48));
            }
            if let Some((v, k)) = tci {
                m.set(Field::VlanTci, u64::from(v), shape(u64::from(k), 16));
            }
            let ip = dl_type == Some(ETH_TYPE_IP);
            let arp = dl_type == Some(ETH_TYPE_ARP);
            let (nw_src, nw_dst, ttl, dscp) = l3;
            if ip || arp {
                if let Some((v, k)) = nw_src {
                    m.set(Field::NwSrc, u64::from(v), shape(u64::from(k), 32));
                }
                if let Some((v, k)) = nw_dst {
                    m.set(Field::NwDst, u64::from(v), shape(u64::from(k), 32));
                }
            }
            if arp {
                if let Some(op) = ttl {
                    m.set_exact(Field::NwProto, u64::from(op));
                }
            }
            if ip {
                if let Some(t) = ttl {
                    m.set_exact(Field::NwTtl, u64::from(t));
                }
                if let Some(d) = dscp {
                    m.set_exact(Field::NwTos, u64::from(d) << 2);
                }
            }
            let (tp_src, tp_dst, icmp) = l4;
            match proto {
                Some(IPPROTO_TCP | IPPROTO_UDP | IPPROTO_SCTP) => {
                    if let Some((v, k)) = tp_src {
                        m.set(Field::TpSrc, u64::from(v), shape(u64::from(k), 16));
                    }
                    if let Some((v, k)) = tp_dst {
                        m.set(Field::TpDst, u64::from(v), shape(u64::from(k), 16));
                    }
                }
                Some(IPPROTO_ICMP) => {
                    if let Some((t, c)) = icmp {
                        m.set(Field::TpSrc, u64::from(t), 0xffff);
                        m.set(Field::TpDst, u64::from(c), 0xffff);
                    }
                }
                _ => {}
            }
            let (tun_id, tun_src, tun_dst, cts, zone, mark) = meta;
            if let Some((v, k)) = tun_id {
                m.set(Field::TunId, v, shape(k, 64));
            }
            if let Some((v, k)) = tun_src {
                m.set(Field::TunSrc, u64::from(v), shape(u64::from(k), 32));
            }
            if let Some((v, k)) = tun_dst {
                m.set(Field::TunDst, u64::from(v), shape(u64::from(k), 32));
            }
            if let Some((v, k)) = cts {
                m.set(Field::CtState, u64::from(v), shape(u64::from(k), 8));
            }
            if let Some(z) = zone {
                m.set_exact(Field::CtZone, u64::from(z));
            }
            if let Some((v, k)) = mark {
                m.set(Field::CtMark, u64::from(v), shape(u64::from(k), 32));
            }
            for (r, (v, k)) in regs {
                m.set(Field::Reg(r), u64::from(v), shape(u64::from(k), 32));
            }
            let ctx = Ctx {
                dl_type,
                proto: m.nw_proto(),
                bucket: false,
            };
            (m, ctx)
        })
}

fn arb_flow() -> impl Strategy<Value = Flow> {
    (
        arb_match(),
        (
            any::<u8>(),
            any::<u16>(),
            any::<u64>(),
            any::<u16>(),
            any::<u16>(),
        ),
        proptest::collection::vec(any::<Seed>(), 0..6),
        proptest::option::of(any::<u8>()),
    )
        .prop_map(
            |((matches, ctx), (table, priority, cookie, idle, hard), seeds, goto)| {
                let table = table % 255;
                let mut actions: Vec<Action> = seeds
                    .into_iter()
                    .filter_map(|s| action_from(s, ctx))
                    .collect();
                if let Some(g) = goto.filter(|_| table < MAX_TABLE) {
                    let span = MAX_TABLE - table;
                    actions.push(Action::GotoTable(table + 1 + g % span));
                }
                Flow {
                    table,
                    priority,
                    cookie,
                    idle_timeout: idle,
                    hard_timeout: hard,
                    matches,
                    actions,
                }
            },
        )
}

fn arb_group() -> impl Strategy<Value = Group> {
    (
        0u8..3,
        any::<u32>(),
        proptest::collection::vec(
            (any::<u16>(), proptest::collection::vec(any::<Seed>(), 0..4)),
            0..4,
        ),
    )
        .prop_map(|(k, id, buckets)| {
            let kind = [GroupType::All, GroupType::Select, GroupType::Indirect][k as usize];
            let ctx = Ctx {
                dl_type: None,
                proto: None,
                bucket: true,
            };
            let max_buckets = if kind == GroupType::Indirect { 1 } else { 4 };
            let buckets = buckets
                .into_iter()
                .take(max_buckets)
                .map(|(w, seeds)| Bucket {
                    weight: if kind == GroupType::Select { w } else { 0 },
                    actions: seeds
                        .into_iter()
                        .filter_map(|s| action_from(s, ctx))
                        .collect(),
                })
                .collect();
            Group {
                id: id % (MAX_GROUP + 1),
                kind,
                buckets,
            }
        })
}

/// Valid flow text with a few random edits: reaches deep into the parsers.
fn mutated_flow_text() -> impl Strategy<Value = String> {
    (
        arb_flow(),
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..4),
    )
        .prop_map(|(flow, edits)| {
            let mut chars: Vec<char> = flow.to_string().chars().collect();
            const ALPHABET: &[u8] = b"=:,()/->+|. 0x9af_ctn";
            for (at, c, op) in edits {
                if chars.is_empty() {
                    break;
                }
                let i = at.index(chars.len());
                let c = char::from(ALPHABET[usize::from(c) % ALPHABET.len()]);
                match op {
                    0 => chars[i] = c,
                    1 => chars.insert(i, c),
                    _ => {
                        chars.remove(i);
                    }
                }
            }
            chars.into_iter().collect()
        })
}

/// Whatever parses must print to text that parses to the same value.
fn reparses(s: &str) -> Result<(), TestCaseError> {
    if let Ok(f) = parse_flow(s) {
        prop_assert_eq!(parse_flow(&f.to_string()), Ok(f.clone()), "from {:?}", s);
        let dump = format_dump(&f, &FlowStats::default());
        prop_assert_eq!(parse_flow(&dump), Ok(f));
    }
    if let Ok(f) = parse_filter(s) {
        prop_assert_eq!(parse_filter(&f.to_string()), Ok(f), "from {:?}", s);
    }
    if let Ok(g) = parse_group(s) {
        prop_assert_eq!(parse_group(&g.to_string()), Ok(g), "from {:?}", s);
    }
    let _ = parse_flows(s);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn flows_round_trip(flow in arb_flow()) {
        prop_assert_eq!(flow.matches.prerequisite_error(), None);
        let text = flow.to_string();
        prop_assert_eq!(parse_flow(&text), Ok(flow.clone()), "text {:?}", text);
        let line = format_dump(&flow, &FlowStats::default());
        prop_assert_eq!(parse_flow(&line), Ok(flow));
    }

    #[test]
    fn groups_round_trip(group in arb_group()) {
        let text = group.to_string();
        prop_assert_eq!(parse_group(&text), Ok(group), "text {:?}", text);
    }

    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>()) {
        reparses(&s)?;
    }

    #[test]
    fn flow_like_strings_never_panic(
        s in "[a-z_0-9=:,()/.+|> -]{0,60}( actions=[a-z_0-9=:,()/.+|> -]{0,60})?"
    ) {
        reparses(&s)?;
    }

    #[test]
    fn mutated_flows_never_panic(s in mutated_flow_text()) {
        reparses(&s)?;
    }
}

#[test]
fn serde_round_trip_keeps_match_canonical() {
    let f = parse_flow(
        "priority=7,tcp,nw_dst=10.0.0.0/8,tp_dst=80 actions=ct(commit,zone=3,nat(dst=10.0.0.1:80)),output:1",
    )
    .unwrap();
    let json = serde_json::to_string(&f).unwrap();
    assert_eq!(serde_json::from_str::<Flow>(&json).unwrap(), f);
    let g = parse_group("group_id=1,type=select,bucket=weight:5,actions=output:1").unwrap();
    let json = serde_json::to_string(&g).unwrap();
    assert_eq!(serde_json::from_str::<Group>(&json).unwrap(), g);

    // A non-canonical list (unsorted, unmasked value, zero mask) is canonicalized.
    let messy = r#"[{"field":"TpDst","value":4660,"mask":65280},
                    {"field":"DlType","value":2048,"mask":65535},
                    {"field":{"Reg":1},"value":5,"mask":0}]"#;
    let m: Match = serde_json::from_str(messy).unwrap();
    assert_eq!(
        m.iter().cloned().collect::<Vec<_>>(),
        vec![
            FieldMatch {
                field: Field::DlType,
                value: 0x0800,
                mask: 0xffff
            },
            FieldMatch {
                field: Field::TpDst,
                value: 0x1200,
                mask: 0xff00
            },
        ]
    );
}
