//! The command line: clap definitions, and turning a command into the
//! [`Request`] the daemon gets.
//!
//! Flow, filter and group texts are checked here with the same parsers the
//! daemon uses before anything is sent, so a typo is reported with its
//! column (and, for files, its line) even when no daemon runs, and a file
//! with one bad line sends nothing. The text sent is the user's own, not a
//! re-print of the parse: the daemon parses it again and owns its meaning.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use clap::{Parser, Subcommand, ValueEnum};
use control::api::{Request, DEFAULT_SOCKET};
use control::flow::{parse_filter, parse_flow, parse_flows, parse_group, MAX_GROUP};
use control::model::{check_node_name, check_service_name, RemoteNode, Service};

/// Talk to vswitchd: ports, flows, groups, counters, MAC table, traces,
/// remote nodes of the overlay, Services, connection tracking.
///
/// Flow, match and group texts use the `ovs-ofctl` syntax.
#[derive(Debug, Parser)]
#[command(name = "ofctl", version)]
pub struct Cli {
    /// Path of vswitchd's control socket.
    #[arg(
        long,
        global = true,
        env = "VSWITCH_SOCKET",
        value_name = "PATH",
        default_value = DEFAULT_SOCKET
    )]
    pub socket: PathBuf,

    /// Print the daemon's reply as JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    /// Seconds to wait for vswitchd before giving up (0: wait forever).
    #[arg(long, global = true, value_name = "SECS", default_value_t = 30)]
    pub timeout: u64,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands, named as `ovs-ofctl` names them.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the switch and its ports.
    Show,
    /// Attach an interface to the switch.
    AddPort {
        /// Interface name.
        iface: String,
        /// Port backend (the daemon's default when omitted).
        #[arg(long = "type", value_name = "TYPE")]
        backend: Option<Backend>,
        /// OpenFlow port number to use (the lowest free one when omitted).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=0xfeff))]
        ofport: Option<u32>,
    },
    /// Detach an interface from the switch.
    DelPort {
        /// Interface name.
        iface: String,
    },
    /// Add one flow.
    AddFlow {
        /// The flow, e.g. "table=0,priority=100,ip,nw_dst=10.244.1.0/24,actions=output:2".
        flow: String,
    },
    /// Add the flows of FILE (one per line; "-" reads stdin), all or none.
    AddFlows {
        /// Flow file, or "-" for standard input.
        file: String,
    },
    /// Delete the flows that match MATCH (all flows when omitted).
    DelFlows {
        /// Delete only flows whose match and priority equal MATCH exactly.
        #[arg(long)]
        strict: bool,
        /// Flow match, e.g. "table=1,ip,nw_dst=10.0.0.0/8".
        #[arg(value_name = "MATCH")]
        filter: Option<String>,
    },
    /// Replace all flows with those of FILE ("-" reads stdin), atomically.
    ReplaceFlows {
        /// Flow file, or "-" for standard input.
        file: String,
    },
    /// Print the flows that match MATCH (all flows when omitted), with counters.
    DumpFlows {
        /// Flow match, e.g. "table=0,tcp".
        #[arg(value_name = "MATCH")]
        filter: Option<String>,
    },
    /// Add a group, or replace the one with the same id.
    AddGroup {
        /// The group, e.g. "group_id=1,type=select,bucket=output:1,bucket=output:2".
        group: String,
    },
    /// Delete one group ("group_id=N"), or all groups when omitted.
    DelGroups {
        /// "group_id=N" or "group_id=all".
        #[arg(value_name = "group_id=N")]
        group: Option<String>,
    },
    /// Print the groups.
    DumpGroups,
    /// Print port counters and datapath drops, for one port (name or number) or all.
    DumpPorts {
        /// Port name or OpenFlow number.
        port: Option<String>,
    },
    /// Print the learned MAC addresses.
    FdbShow,
    /// Show which flows a packet would hit, table by table, and what happens to it.
    Trace {
        /// The packet as a match, e.g. "in_port=1,tcp,nw_dst=10.244.1.5,tp_dst=80".
        #[arg(value_name = "FLOWSPEC")]
        flow: String,
    },
    /// Route a remote node's pod CIDR through the VXLAN tunnel to its VTEP
    /// (replaces the node of that name).
    AddNode {
        /// Kubernetes node name, e.g. "node-b".
        name: String,
        /// The node's pod CIDR, e.g. "10.244.2.0/24".
        #[arg(value_name = "POD_CIDR")]
        pod_cidr: String,
        /// The node's underlay (VTEP) IPv4 address, e.g. "198.18.0.2".
        #[arg(value_name = "VTEP_IP")]
        vtep_ip: String,
        /// The inner destination MAC the node expects (default: derived from VTEP_IP).
        #[arg(value_name = "VTEP_MAC")]
        vtep_mac: Option<String>,
    },
    /// Remove a remote node (nothing happens if it is not known).
    DelNode {
        /// Kubernetes node name.
        name: String,
    },
    /// Print the remote nodes: pod CIDR, VTEP IP and MAC, underlay next hop.
    DumpNodes,
    /// Load-balance new connections to VIP:PORT/PROTO over the backends
    /// (replaces the endpoints of the Service of that name).
    AddService {
        /// Service name, e.g. "default/web".
        name: String,
        /// The virtual IP, port and protocol, e.g. "10.96.0.10:80/tcp".
        #[arg(value_name = "VIP:PORT/PROTO")]
        frontend: String,
        /// Backends, e.g. "10.244.1.5:8080" (none: new connections are dropped).
        #[arg(value_name = "BACKEND:PORT")]
        endpoints: Vec<String>,
    },
    /// Remove a Service (nothing happens if it is not known).
    DelService {
        /// Service name.
        name: String,
    },
    /// Print the Services: VIP, port, protocol, endpoints.
    DumpServices,
    /// Print the connection-tracking entries, then the table's counters.
    DumpConntrack {
        /// Only the entries of this zone.
        #[arg(long, value_name = "N")]
        zone: Option<u16>,
    },
    /// Delete connection-tracking entries (of one zone, or all).
    FlushConntrack {
        /// Only the entries of this zone.
        #[arg(long, value_name = "N")]
        zone: Option<u16>,
    },
}

/// Port backends `add-port --type` takes.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Backend {
    /// AF_XDP sockets (fast; needs XDP support).
    Afxdp,
    /// AF_PACKET sockets (works on any kernel).
    Afpacket,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Afxdp => "afxdp",
            Backend::Afpacket => "afpacket",
        }
    }
}

impl Command {
    /// The request to send, after checking every flow, match and group text
    /// locally. Reads the flow file of `add-flows`/`replace-flows`.
    pub fn request(&self) -> Result<Request> {
        Ok(match self {
            Command::Show => Request::Show {},
            Command::AddPort {
                iface,
                backend,
                ofport,
            } => Request::AddPort {
                iface: iface.clone(),
                backend: backend.map(|b| b.name().to_string()),
                ofport: *ofport,
            },
            Command::DelPort { iface } => Request::DelPort {
                iface: iface.clone(),
            },
            Command::AddFlow { flow } => {
                if flow.contains(['\n', '\r']) {
                    bail!("add-flow takes one flow; use add-flows for several");
                }
                parse_flow(flow)?;
                Request::AddFlows {
                    flows: flow.clone(),
                }
            }
            Command::AddFlows { file } => Request::AddFlows {
                flows: read_flows(file)?,
            },
            Command::ReplaceFlows { file } => Request::ReplaceFlows {
                flows: read_flows(file)?,
            },
            Command::DelFlows { strict, filter } => Request::DelFlows {
                filter: checked_filter(filter.as_deref())?,
                strict: *strict,
            },
            Command::DumpFlows { filter } => Request::DumpFlows {
                filter: checked_filter(filter.as_deref())?,
            },
            Command::AddGroup { group } => {
                parse_group(group)?;
                Request::AddGroup {
                    group: group.clone(),
                }
            }
            Command::DelGroups { group } => Request::DelGroups {
                group_id: match group {
                    Some(g) => parse_group_id(g)?,
                    None => None,
                },
            },
            Command::DumpGroups => Request::DumpGroups {},
            Command::DumpPorts { port } => Request::DumpPorts { port: port.clone() },
            Command::FdbShow => Request::FdbShow {},
            Command::Trace { flow } => {
                // The packet is described in match syntax; checking it as a
                // filter catches unknown fields and missing prerequisites.
                parse_filter(flow)?;
                Request::Trace { flow: flow.clone() }
            }
            Command::AddNode {
                name,
                pod_cidr,
                vtep_ip,
                vtep_mac,
            } => {
                // Checked here as the daemon checks it; sent in canonical form.
                let r = RemoteNode::parse(name, pod_cidr, vtep_ip, vtep_mac.as_deref())?;
                Request::AddNode {
                    name: name.clone(),
                    pod_cidr: r.pod_cidr.to_string(),
                    vtep_ip: r.vtep_ip.to_string(),
                    vtep_mac: r.vtep_mac.map(|m| m.to_string()),
                }
            }
            Command::DelNode { name } => {
                check_node_name(name)?;
                Request::DelNode { name: name.clone() }
            }
            Command::DumpNodes => Request::DumpNodes {},
            Command::AddService {
                name,
                frontend,
                endpoints,
            } => {
                let (vip, port, proto) = split_frontend(name, frontend)?;
                // Checked here as the daemon checks it; sent in canonical form.
                let s = Service::parse(name, vip, port, proto, endpoints)?;
                let row = s.row(name);
                Request::AddService {
                    name: row.name,
                    vip: row.vip,
                    port: row.port,
                    protocol: row.protocol,
                    endpoints: row.endpoints,
                }
            }
            Command::DelService { name } => {
                check_service_name(name)?;
                Request::DelService { name: name.clone() }
            }
            Command::DumpServices => Request::DumpServices {},
            Command::DumpConntrack { zone } => Request::DumpConntrack { zone: *zone },
            Command::FlushConntrack { zone } => Request::FlushConntrack { zone: *zone },
        })
    }
}

/// `VIP:PORT/PROTO` into its parts; the port must be 1-65535.
fn split_frontend<'a>(name: &str, text: &'a str) -> Result<(&'a str, u16, &'a str)> {
    let bad = || {
        anyhow!("service {name}: invalid {text:?}: expected VIP:PORT/PROTO like 10.96.0.10:80/tcp")
    };
    let (addr, proto) = text.split_once('/').ok_or_else(bad)?;
    let (vip, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    let port = match port.parse::<u16>() {
        Ok(p) if p > 0 && !port.starts_with('+') => p,
        _ => bail!("service {name}: invalid port {port:?} in {text:?}: expected 1-65535"),
    };
    Ok((vip, port, proto))
}

fn checked_filter(filter: Option<&str>) -> Result<String> {
    let filter = filter.unwrap_or("");
    parse_filter(filter)?;
    Ok(filter.to_string())
}

/// The `del-groups` argument: `group_id=N`, `group_id=all` (as OVS takes
/// them) or a bare `N`/`all`. `None` means all groups.
fn parse_group_id(arg: &str) -> Result<Option<u32>> {
    let v = arg.trim();
    let v = v.strip_prefix("group_id=").unwrap_or(v);
    if v == "all" {
        return Ok(None);
    }
    let n = if let Some(hex) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else {
        v.parse::<u64>().ok()
    };
    match n {
        Some(n) if n <= u64::from(MAX_GROUP) => Ok(Some(n as u32)),
        _ => bail!(
            "del-groups: expected group_id=N with N 0-{MAX_GROUP}, or group_id=all, not {arg:?}"
        ),
    }
}

/// Reads a flow file (`-`: stdin) and checks every line; an error names the
/// file and the line.
fn read_flows(file: &str) -> Result<String> {
    let (name, bytes) = if file == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| anyhow!("cannot read stdin: {}", io_message(&e)))?;
        ("stdin", buf)
    } else {
        let buf =
            std::fs::read(file).map_err(|e| anyhow!("cannot read {file}: {}", io_message(&e)))?;
        (file, buf)
    };
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow!(
            "{name}: not UTF-8 text (bad byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })?;
    parse_flows(&text).map_err(|e| anyhow!("{name}: {e}"))?;
    Ok(text)
}

/// An `io::Error`'s text without the ` (os error N)` tail.
pub fn io_message(e: &std::io::Error) -> String {
    let s = e.to_string();
    match (e.raw_os_error(), s.rfind(" (os error ")) {
        (Some(_), Some(p)) => s[..p].to_string(),
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_ids() {
        assert_eq!(parse_group_id("group_id=7").unwrap(), Some(7));
        assert_eq!(parse_group_id("group_id=0x10").unwrap(), Some(16));
        assert_eq!(parse_group_id("7").unwrap(), Some(7));
        assert_eq!(parse_group_id("group_id=all").unwrap(), None);
        assert!(parse_group_id("group_id=").is_err());
        assert!(parse_group_id("group_id=4294967295").is_err());
        assert!(parse_group_id("bucket=1").is_err());
    }

    #[test]
    fn frontends() {
        assert_eq!(
            split_frontend("w", "10.96.0.10:80/tcp").unwrap(),
            ("10.96.0.10", 80, "tcp")
        );
        for bad in [
            "10.96.0.10:80",
            "10.96.0.10/tcp",
            "10.96.0.10:0/tcp",
            "10.96.0.10:x/udp",
        ] {
            assert!(split_frontend("w", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
