//! Human output: each reply in the form the matching OVS tool prints, so
//! OVS users (and their `grep`s) feel at home.
//!
//! - `show` follows `ovs-ofctl show`'s port blocks (` 1(vsw1): addr:...`),
//!   with our backend, worker and queue in place of OpenFlow features.
//! - `dump-flows` and `dump-groups` print the daemon's lines unchanged: the
//!   daemon already formats them as `ovs-ofctl -O OpenFlow13` does.
//! - `dump-ports` follows `ovs-ofctl dump-ports` (`  port  1: rx pkts=...`),
//!   then the datapath's drop counters by reason, which OVS has no place for.
//! - `fdb-show` follows `ovs-appctl fdb/show`; `trace` ends like
//!   `ofproto/trace` with `Datapath actions:`.
//! - `dump-nodes` (no OVS counterpart) is a table with a header line, like
//!   `kubectl get nodes`: columns as wide as their widest cell, `-` for an
//!   unresolved next hop.
//!
//! - `dump-services` is a table the same way (`-` for no endpoints);
//!   `dump-conntrack` prints the daemon's `ovs-dpctl dump-conntrack` lines
//!   then one `conntrack:` line of counters.
//!
//! Commands that change state print nothing on success, as OVS's do.
//! Everything returns a `String`; nothing here does I/O.

use std::fmt::Write;

use control::api::{
    CtStatsRow, FdbRow, FlowEntry, NodeRow, PortCounters, Reply, ServiceRow, ShowReply,
};
use control::PortNo;

use crate::cli::Command;

/// The text to print for `reply` to `cmd`, or an error naming what was
/// expected when the daemon answered with another kind of reply.
pub fn human(cmd: &Command, reply: &Reply) -> Result<String, String> {
    let wanted = match (cmd, reply) {
        (Command::Show, Reply::Show(s)) => return Ok(show(s)),
        (Command::DumpFlows { .. }, Reply::Flows { flows }) => return Ok(flow_lines(flows)),
        (Command::DumpGroups, Reply::Groups { groups }) => return Ok(lines(groups)),
        (Command::DumpPorts { .. }, Reply::Ports { ports, drops }) => {
            return Ok(dump_ports(ports, drops))
        }
        (Command::FdbShow, Reply::Fdb { entries }) => return Ok(fdb(entries)),
        (Command::Trace { flow }, Reply::Trace { lines, verdict }) => {
            return Ok(trace(flow, lines, verdict))
        }
        (Command::DumpNodes, Reply::Nodes { nodes: rows }) => return Ok(nodes(rows)),
        (Command::DumpServices, Reply::Services { services: rows }) => return Ok(services(rows)),
        (Command::DumpConntrack { .. }, Reply::Conntrack { entries, stats }) => {
            return Ok(conntrack(entries, stats))
        }
        (Command::Show, _) => "show",
        (Command::DumpFlows { .. }, _) => "flows",
        (Command::DumpGroups, _) => "groups",
        (Command::DumpPorts { .. }, _) => "ports",
        (Command::FdbShow, _) => "fdb",
        (Command::Trace { .. }, _) => "trace",
        (Command::DumpNodes, _) => "nodes",
        (Command::DumpServices, _) => "services",
        (Command::DumpConntrack { .. }, _) => "conntrack",
        // Changes: quiet on success, whatever the daemon counted.
        _ => return Ok(String::new()),
    };
    Err(format!(
        "unexpected reply from vswitchd: wanted {wanted:?}, got {:?}",
        kind(reply)
    ))
}

fn kind(reply: &Reply) -> String {
    serde_json::to_value(reply)
        .ok()
        .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// A port number as OVS prints it: the number, or `LOCAL` and friends.
fn port(n: u32) -> String {
    PortNo(n).to_string()
}

/// A counter; OVS prints an unknown one (all ones) as `?`.
fn counter(v: u64) -> String {
    if v == u64::MAX {
        "?".into()
    } else {
        v.to_string()
    }
}

fn show(s: &ShowReply) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "vswitch {}: n_workers:{}, n_ports:{}",
        s.node,
        s.workers,
        s.ports.len()
    );
    for p in &s.ports {
        let _ = writeln!(out, " {}({}): addr:{}", port(p.ofport), p.name, p.mac);
        let _ = write!(
            out,
            "     backend: {}, worker {}, queue {}",
            p.backend, p.worker, p.queue
        );
        if !p.detail.is_empty() {
            let _ = write!(out, ", {}", p.detail);
        }
        out.push('\n');
        let state = if p.link_up { "LINK_UP" } else { "LINK_DOWN" };
        let _ = writeln!(out, "     state:   {state}");
    }
    if let Some(t) = &s.tunnel {
        let _ = writeln!(
            out,
            " {}(vxlan): vni {}, local {} via {}, vtep_mac {}",
            t.ofport,
            t.vni,
            t.local_ip,
            t.uplink,
            s.vtep_mac.as_deref().unwrap_or("-")
        );
        for r in &t.remotes {
            let _ = writeln!(
                out,
                "     remote {}: {} vtep {} mac {} next-hop {}",
                r.name,
                r.pod_cidr,
                r.vtep_ip,
                r.vtep_mac,
                r.next_hop_mac.as_deref().unwrap_or("unresolved")
            );
        }
    }
    out
}

fn flow_lines(flows: &[FlowEntry]) -> String {
    flows.iter().map(|f| format!("{}\n", f.text)).collect()
}

fn lines(items: &[String]) -> String {
    items.iter().map(|l| format!("{l}\n")).collect()
}

fn dump_ports(ports: &[PortCounters], drops: &[(String, u64)]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "OFPST_PORT reply: {} ports", ports.len());
    for p in ports {
        // OVS pads one-digit port numbers so the colons line up.
        let pad = if p.ofport < 10 { " " } else { "" };
        let _ = writeln!(
            out,
            "  port {pad}{}: rx pkts={}, bytes={}, drop={}, errs={}",
            port(p.ofport),
            counter(p.rx_packets),
            counter(p.rx_bytes),
            counter(p.rx_dropped),
            counter(p.rx_errors),
        );
        let _ = writeln!(
            out,
            "           tx pkts={}, bytes={}, drop={}, errs={}",
            counter(p.tx_packets),
            counter(p.tx_bytes),
            counter(p.tx_dropped),
            counter(p.tx_errors),
        );
    }
    if drops.is_empty() {
        out.push_str("datapath drops: none\n");
    } else {
        out.push_str("datapath drops:\n");
        for (reason, n) in drops {
            let _ = writeln!(out, "  {reason}={}", counter(*n));
        }
    }
    out
}

fn fdb(entries: &[FdbRow]) -> String {
    let mut out = String::from(" port  VLAN  MAC                Age\n");
    for e in entries {
        let _ = writeln!(
            out,
            "{:>5}  {:>4}  {}  {:>3}",
            port(e.port),
            e.vlan,
            e.mac,
            e.age_s
        );
    }
    out
}

fn trace(flow: &str, lines: &[String], verdict: &str) -> String {
    let mut out = format!("Flow: {flow}\n\n");
    for l in lines {
        let _ = writeln!(out, "{l}");
    }
    if !lines.is_empty() {
        out.push('\n');
    }
    let _ = writeln!(out, "Datapath actions: {verdict}");
    out
}

fn nodes(rows: &[NodeRow]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                r.pod_cidr.clone(),
                r.vtep_ip.clone(),
                r.vtep_mac.clone(),
                r.next_hop_mac.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    table(
        &["NAME", "POD_CIDR", "VTEP_IP", "VTEP_MAC", "NEXT_HOP_MAC"],
        &cells,
    )
}

fn services(rows: &[ServiceRow]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let eps = if r.endpoints.is_empty() {
                "-".to_string()
            } else {
                r.endpoints.join(",")
            };
            vec![
                r.name.clone(),
                r.vip.clone(),
                format!("{}/{}", r.port, r.protocol),
                eps,
            ]
        })
        .collect();
    table(&["NAME", "VIP", "PORT", "ENDPOINTS"], &cells)
}

fn conntrack(entries: &[String], s: &CtStatsRow) -> String {
    let mut out = lines(entries);
    let _ = writeln!(
        out,
        "conntrack: entries={} limit={} committed={} refused={} early_dropped={} invalid={} expired={}",
        s.entries, s.limit, s.committed, s.refused, s.early_dropped, s.invalid, s.expired
    );
    for z in &s.zones {
        let _ = writeln!(
            out,
            "conntrack: zone={} limit={} entries={}",
            z.zone, z.limit, z.entries
        );
    }
    out
}

/// A table with a header line, columns as wide as their widest cell, two
/// spaces apart, the last column unpadded.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, c) in row.iter().enumerate() {
            if i + 1 < row.len() {
                let _ = write!(line, "{c:<w$}  ", w = width[i]);
            } else {
                line.push_str(c);
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}
