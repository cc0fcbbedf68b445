//! The control protocol between `vswitchd` and its clients (`ofctl`, the CNI
//! shim): versioned JSON, one request and one reply per line, over the
//! daemon's unix socket.
//!
//! ```text
//! → {"version":1,"request":{"cmd":"dump-flows","filter":"table=0"}}
//! ← {"version":1,"ok":true,"reply":{"kind":"flows","flows":[...]}}
//! ← {"version":1,"ok":false,"error":"column 3 near \"nw_sorc\": unknown match field"}
//! ```
//!
//! Flows, filters and groups travel as `ovs-ofctl` text and are parsed by
//! the daemon, so there is one parser and its positioned errors reach the
//! user unchanged. A request with an unknown `cmd`, a missing field or a
//! different `version` is answered with an error reply, never dropped.

use serde::{Deserialize, Serialize};

/// Protocol version; a daemon refuses requests of any other version.
pub const VERSION: u32 = 1;

/// Default path of the daemon's socket.
pub const DEFAULT_SOCKET: &str = "/run/vswitch/vswitchd.sock";

/// Longest request line the daemon reads (a 100k-flow `add-flows` fits).
pub const MAX_REQUEST_BYTES: usize = 64 << 20;

/// A request with its protocol version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// Must be [`VERSION`].
    pub version: u32,
    /// What to do.
    pub request: Request,
}

/// Everything a client can ask.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Ports and switch state.
    Show {},
    /// Attach an interface.
    AddPort {
        /// Interface name.
        iface: String,
        /// `afxdp` or `afpacket`; the daemon's default when absent.
        #[serde(default)]
        backend: Option<String>,
        /// Requested OpenFlow port number; the lowest free one when absent.
        #[serde(default)]
        ofport: Option<u32>,
    },
    /// Detach an interface.
    DelPort {
        /// Interface name.
        iface: String,
    },
    /// Add flows (one per line, `ovs-ofctl` syntax), atomically.
    AddFlows {
        /// Flow text.
        flows: String,
    },
    /// Replace every flow with these, atomically.
    ReplaceFlows {
        /// Flow text.
        flows: String,
    },
    /// Delete flows selected by a filter (empty: all).
    DelFlows {
        /// Filter text (`table=1,ip,nw_dst=10.0.0.0/8`).
        #[serde(default)]
        filter: String,
        /// Exact match and priority instead of "at least as specific".
        #[serde(default)]
        strict: bool,
    },
    /// List flows selected by a filter (empty: all).
    DumpFlows {
        /// Filter text.
        #[serde(default)]
        filter: String,
    },
    /// Add or replace a group (`group_id=1,type=select,bucket=...`).
    AddGroup {
        /// Group text.
        group: String,
    },
    /// Delete one group, or all.
    DelGroups {
        /// Group id; all groups when absent.
        #[serde(default)]
        group_id: Option<u32>,
    },
    /// List groups.
    DumpGroups {},
    /// Port counters (one port by name or number, or all).
    DumpPorts {
        /// Port name or number.
        #[serde(default)]
        port: Option<String>,
    },
    /// The MAC learning table.
    FdbShow {},
    /// Trace a packet described by a flow match through the tables.
    Trace {
        /// Packet fields in match syntax (`in_port=1,tcp,nw_dst=10.244.1.5,tp_dst=80`).
        flow: String,
    },
    /// Register a pod's host-side interface (CNI ADD).
    AddPod {
        /// CNI container id.
        container_id: String,
        /// Host-side veth name.
        iface: String,
        /// The pod interface's MAC.
        mac: String,
        /// The pod's IPv4 address.
        ip: String,
    },
    /// Unregister a pod (CNI DEL); succeeds if it is not registered.
    DelPod {
        /// CNI container id.
        container_id: String,
        /// Host-side veth name.
        iface: String,
    },
    /// Add a remote node of the overlay, or replace the one of that name:
    /// its pod CIDR is routed through the VXLAN tunnel to its VTEP
    /// (`control::model`). Refused when the CIDR overlaps another node's or
    /// the VTEP IP is another node's.
    AddNode {
        /// Kubernetes node name.
        name: String,
        /// Its pod CIDR (`10.244.2.0/24`).
        pod_cidr: String,
        /// Its underlay (VTEP) IPv4 address.
        vtep_ip: String,
        /// The inner destination MAC it expects; derived from `vtep_ip` when absent.
        #[serde(default)]
        vtep_mac: Option<String>,
    },
    /// Remove a remote node; succeeds if it is not known (replies `count` 1 or 0).
    DelNode {
        /// Kubernetes node name.
        name: String,
    },
    /// List the remote nodes.
    DumpNodes {},
    /// Add a Service, or replace the one of that name (its endpoints, say):
    /// new connections to `vip:port/protocol` are spread over `endpoints`
    /// (`control::model`). Refused when another Service has that
    /// `VIP:PORT/PROTO`.
    AddService {
        /// Service name (`NAME` or `NAMESPACE/NAME`).
        name: String,
        /// The virtual IPv4 address.
        vip: String,
        /// The Service port, 1-65535.
        port: u16,
        /// `tcp` or `udp`.
        protocol: String,
        /// Backends as `IP:PORT`; none: new connections are dropped.
        #[serde(default)]
        endpoints: Vec<String>,
    },
    /// Remove a Service; succeeds if it is not known (replies `count` 1 or 0).
    DelService {
        /// Service name.
        name: String,
    },
    /// List the Services.
    DumpServices {},
    /// List connection-tracking entries (one zone, or all).
    DumpConntrack {
        /// Only this zone.
        #[serde(default)]
        zone: Option<u16>,
    },
    /// Delete connection-tracking entries (one zone, or all); replies `count`.
    FlushConntrack {
        /// Only this zone.
        #[serde(default)]
        zone: Option<u16>,
    },
}

/// A reply with its protocol version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplyEnvelope {
    /// [`VERSION`].
    pub version: u32,
    /// True when the request was carried out.
    pub ok: bool,
    /// The result, when `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<Reply>,
    /// One line saying what was wrong, when not `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ReplyEnvelope {
    /// A success.
    pub fn ok(reply: Reply) -> ReplyEnvelope {
        ReplyEnvelope {
            version: VERSION,
            ok: true,
            reply: Some(reply),
            error: None,
        }
    }

    /// A failure with a one-line message.
    pub fn err(msg: impl Into<String>) -> ReplyEnvelope {
        ReplyEnvelope {
            version: VERSION,
            ok: false,
            reply: None,
            error: Some(msg.into()),
        }
    }
}

/// What a request returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Reply {
    /// Nothing to report.
    Done,
    /// A count (flows added or deleted, groups deleted).
    Count {
        /// How many.
        count: u64,
    },
    /// The port a request attached.
    Port {
        /// Its OpenFlow number.
        ofport: u32,
    },
    /// `show`.
    Show(ShowReply),
    /// `dump-flows`.
    Flows {
        /// Flows by table, then descending priority.
        flows: Vec<FlowEntry>,
    },
    /// `dump-groups`.
    Groups {
        /// Groups as `ovs-ofctl dump-groups` prints them.
        groups: Vec<String>,
    },
    /// `dump-ports`.
    Ports {
        /// Per-port counters.
        ports: Vec<PortCounters>,
        /// Datapath drops by reason (only reasons with a count).
        drops: Vec<(String, u64)>,
    },
    /// `fdb-show`.
    Fdb {
        /// Learned MACs.
        entries: Vec<FdbRow>,
    },
    /// `trace`.
    Trace {
        /// Human-readable steps, table by table.
        lines: Vec<String>,
        /// The final verdict (`output:2`, `drop (no-match)`, ...).
        verdict: String,
    },
    /// `dump-nodes`.
    Nodes {
        /// The remote nodes, by name.
        nodes: Vec<NodeRow>,
    },
    /// `dump-services`.
    Services {
        /// The Services, by name.
        services: Vec<ServiceRow>,
    },
    /// `dump-conntrack`.
    Conntrack {
        /// Entries as `ovs-dpctl dump-conntrack` prints them.
        entries: Vec<String>,
        /// Table-wide counters.
        stats: CtStatsRow,
    },
}

/// `show`: the switch and its ports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShowReply {
    /// Node name from the config.
    pub node: String,
    /// Worker threads.
    pub workers: u32,
    /// Attached ports, by OpenFlow number.
    pub ports: Vec<PortInfo>,
    /// This node's VTEP MAC (inner MAC of the overlay), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vtep_mac: Option<String>,
    /// The VXLAN port, when the node has an overlay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<TunnelInfo>,
}

/// The VXLAN port in `show`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TunnelInfo {
    /// Its OpenFlow number.
    pub ofport: u32,
    /// VXLAN network identifier.
    pub vni: u32,
    /// Our VTEP address.
    pub local_ip: String,
    /// The uplink interface.
    pub uplink: String,
    /// Remote VTEPs and their resolved underlay next-hop MACs.
    pub remotes: Vec<NodeRow>,
}

/// One port in `show`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortInfo {
    /// OpenFlow port number.
    pub ofport: u32,
    /// Interface name.
    pub name: String,
    /// `afxdp`, `afpacket`, `mem`.
    pub backend: String,
    /// The interface's MAC.
    pub mac: String,
    /// Link up.
    pub link_up: bool,
    /// The worker polling it.
    pub worker: u32,
    /// The NIC queue.
    pub queue: u32,
    /// Backend detail (AF_XDP: `xdp mode native, copy`).
    pub detail: String,
}

/// One flow in `dump-flows`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowEntry {
    /// The line `ovs-ofctl -O OpenFlow13 dump-flows` would print.
    pub text: String,
    /// Table id.
    pub table: u8,
    /// Priority.
    pub priority: u16,
    /// Cookie.
    pub cookie: u64,
    /// Packets matched.
    pub n_packets: u64,
    /// Bytes matched.
    pub n_bytes: u64,
    /// Seconds since installed.
    pub duration_s: f64,
}

/// Counters of one port in `dump-ports`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortCounters {
    /// OpenFlow port number.
    pub ofport: u32,
    /// Interface name.
    pub name: String,
    /// Packets received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Received packets dropped by the datapath.
    pub rx_dropped: u64,
    /// Receive errors (backend).
    pub rx_errors: u64,
    /// Packets transmitted.
    pub tx_packets: u64,
    /// Bytes transmitted.
    pub tx_bytes: u64,
    /// Packets that could not be transmitted.
    pub tx_dropped: u64,
    /// Transmit errors (backend).
    pub tx_errors: u64,
}

/// One learned MAC in `fdb-show`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FdbRow {
    /// OpenFlow port.
    pub port: u32,
    /// VLAN (0: untagged).
    pub vlan: u16,
    /// MAC address.
    pub mac: String,
    /// Seconds since last seen.
    pub age_s: u64,
}

/// One remote node in `dump-nodes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRow {
    /// Kubernetes node name.
    pub name: String,
    /// Its pod CIDR.
    pub pod_cidr: String,
    /// Its underlay (VTEP) address.
    pub vtep_ip: String,
    /// The inner destination MAC of frames sent to it: configured, or
    /// derived from `vtep_ip` (`control::model::default_vtep_mac`).
    pub vtep_mac: String,
    /// The underlay MAC its encapsulated frames go to (its own, or the
    /// underlay gateway's), once the daemon has resolved it.
    #[serde(default)]
    pub next_hop_mac: Option<String>,
}

/// One Service in `dump-services`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRow {
    /// Service name.
    pub name: String,
    /// Its virtual IP.
    pub vip: String,
    /// Its port.
    pub port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// Its backends as `IP:PORT`.
    pub endpoints: Vec<String>,
}

/// Connection-tracking counters in `dump-conntrack`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CtStatsRow {
    /// Entries in the table now.
    pub entries: u64,
    /// The most entries the table holds.
    pub limit: u64,
    /// Connections committed since start.
    pub committed: u64,
    /// Commits refused (table full).
    pub refused: u64,
    /// Entries evicted early to make room.
    pub early_dropped: u64,
    /// Packets found invalid (`ct_state=+inv`).
    pub invalid: u64,
    /// Entries expired.
    pub expired: u64,
    /// The zones that have a limit (config `conntrack.zone_limits`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<CtZoneRow>,
}

/// One zone's limit and use, as OVS's `dpctl/ct-get-limits` lists them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CtZoneRow {
    /// `ct_zone`.
    pub zone: u16,
    /// The most entries the zone holds.
    pub limit: u64,
    /// Entries in the zone now.
    pub entries: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_reject_unknown_commands() {
        let e = Envelope {
            version: VERSION,
            request: Request::DelFlows {
                filter: "ip".into(),
                strict: true,
            },
        };
        let s = serde_json::to_string(&e).unwrap();
        assert_eq!(
            s,
            r#"{"version":1,"request":{"cmd":"del-flows","filter":"ip","strict":true}}"#
        );
        assert_eq!(serde_json::from_str::<Envelope>(&s).unwrap(), e);
        let d: Envelope =
            serde_json::from_str(r#"{"version":1,"request":{"cmd":"dump-flows"}}"#).unwrap();
        assert_eq!(
            d.request,
            Request::DumpFlows {
                filter: String::new()
            }
        );
        assert!(
            serde_json::from_str::<Envelope>(r#"{"version":1,"request":{"cmd":"reboot"}}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<Envelope>(
            r#"{"version":1,"request":{"cmd":"show","x":1}}"#
        )
        .is_err());
    }

    #[test]
    fn node_requests_round_trip() {
        let cases = [
            (
                Request::AddNode {
                    name: "node-b".into(),
                    pod_cidr: "10.244.2.0/24".into(),
                    vtep_ip: "198.18.0.2".into(),
                    vtep_mac: Some("aa:bb:cc:00:00:02".into()),
                },
                r#"{"cmd":"add-node","name":"node-b","pod_cidr":"10.244.2.0/24","vtep_ip":"198.18.0.2","vtep_mac":"aa:bb:cc:00:00:02"}"#,
            ),
            (
                Request::DelNode {
                    name: "node-b".into(),
                },
                r#"{"cmd":"del-node","name":"node-b"}"#,
            ),
            (Request::DumpNodes {}, r#"{"cmd":"dump-nodes"}"#),
        ];
        for (req, json) in cases {
            assert_eq!(serde_json::to_string(&req).unwrap(), json);
            assert_eq!(serde_json::from_str::<Request>(json).unwrap(), req);
        }
        // vtep_mac may be left out; unknown and missing fields are refused.
        let r: Request = serde_json::from_str(
            r#"{"cmd":"add-node","name":"n","pod_cidr":"10.244.2.0/24","vtep_ip":"198.18.0.2"}"#,
        )
        .unwrap();
        assert!(matches!(r, Request::AddNode { vtep_mac: None, .. }));
        for bad in [
            r#"{"cmd":"dump-nodes","all":true}"#,
            r#"{"cmd":"del-node"}"#,
            r#"{"cmd":"del-node","name":"n","force":true}"#,
            r#"{"cmd":"add-node","name":"n","pod_cidr":"10.244.2.0/24"}"#,
        ] {
            assert!(serde_json::from_str::<Request>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nodes_reply_round_trips() {
        let r = ReplyEnvelope::ok(Reply::Nodes {
            nodes: vec![NodeRow {
                name: "node-b".into(),
                pod_cidr: "10.244.2.0/24".into(),
                vtep_ip: "198.18.0.2".into(),
                vtep_mac: "02:56:c6:12:00:02".into(),
                next_hop_mac: None,
            }],
        });
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(
            s,
            r#"{"version":1,"ok":true,"reply":{"kind":"nodes","nodes":[{"name":"node-b","pod_cidr":"10.244.2.0/24","vtep_ip":"198.18.0.2","vtep_mac":"02:56:c6:12:00:02","next_hop_mac":null}]}}"#
        );
        assert_eq!(serde_json::from_str::<ReplyEnvelope>(&s).unwrap(), r);
    }

    #[test]
    fn replies_serialize_tagged() {
        let r = ReplyEnvelope::ok(Reply::Count { count: 3 });
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(
            s,
            r#"{"version":1,"ok":true,"reply":{"kind":"count","count":3}}"#
        );
        let e = ReplyEnvelope::err("no port 9");
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"version":1,"ok":false,"error":"no port 9"}"#
        );
    }

    #[test]
    fn service_and_conntrack_requests_round_trip() {
        let cases = [
            (
                Request::AddService {
                    name: "default/web".into(),
                    vip: "10.96.0.10".into(),
                    port: 80,
                    protocol: "tcp".into(),
                    endpoints: vec!["10.244.1.5:8080".into(), "10.244.2.7:8080".into()],
                },
                r#"{"cmd":"add-service","name":"default/web","vip":"10.96.0.10","port":80,"protocol":"tcp","endpoints":["10.244.1.5:8080","10.244.2.7:8080"]}"#,
            ),
            (
                Request::DelService {
                    name: "default/web".into(),
                },
                r#"{"cmd":"del-service","name":"default/web"}"#,
            ),
            (Request::DumpServices {}, r#"{"cmd":"dump-services"}"#),
            (
                Request::DumpConntrack { zone: Some(1) },
                r#"{"cmd":"dump-conntrack","zone":1}"#,
            ),
            (
                Request::FlushConntrack { zone: None },
                r#"{"cmd":"flush-conntrack","zone":null}"#,
            ),
        ];
        for (req, json) in cases {
            assert_eq!(serde_json::to_string(&req).unwrap(), json);
            assert_eq!(serde_json::from_str::<Request>(json).unwrap(), req);
        }
        // Optional fields may be left out; unknown and missing ones are refused.
        let r: Request = serde_json::from_str(r#"{"cmd":"dump-conntrack"}"#).unwrap();
        assert_eq!(r, Request::DumpConntrack { zone: None });
        let r: Request = serde_json::from_str(r#"{"cmd":"flush-conntrack"}"#).unwrap();
        assert_eq!(r, Request::FlushConntrack { zone: None });
        let r: Request = serde_json::from_str(
            r#"{"cmd":"add-service","name":"a","vip":"10.96.0.1","port":53,"protocol":"udp"}"#,
        )
        .unwrap();
        assert!(matches!(r, Request::AddService { ref endpoints, .. } if endpoints.is_empty()));
        for bad in [
            r#"{"cmd":"dump-services","all":true}"#,
            r#"{"cmd":"del-service"}"#,
            r#"{"cmd":"add-service","name":"a","vip":"10.96.0.1","protocol":"tcp"}"#,
            r#"{"cmd":"add-service","name":"a","vip":"10.96.0.1","port":70000,"protocol":"tcp"}"#,
            r#"{"cmd":"dump-conntrack","zone":65536}"#,
        ] {
            assert!(serde_json::from_str::<Request>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn service_and_conntrack_replies_round_trip() {
        let r = ReplyEnvelope::ok(Reply::Services {
            services: vec![ServiceRow {
                name: "default/web".into(),
                vip: "10.96.0.10".into(),
                port: 80,
                protocol: "tcp".into(),
                endpoints: vec!["10.244.1.5:8080".into()],
            }],
        });
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(
            s,
            r#"{"version":1,"ok":true,"reply":{"kind":"services","services":[{"name":"default/web","vip":"10.96.0.10","port":80,"protocol":"tcp","endpoints":["10.244.1.5:8080"]}]}}"#
        );
        assert_eq!(serde_json::from_str::<ReplyEnvelope>(&s).unwrap(), r);
        let r = ReplyEnvelope::ok(Reply::Conntrack {
            entries: vec!["tcp,orig=(src=10.244.1.5,dst=10.96.0.10,sport=40000,dport=80),reply=(src=10.244.2.7,dst=10.244.1.5,sport=8080,dport=40000),zone=1,protoinfo=(state=ESTABLISHED)".into()],
            stats: CtStatsRow {
                entries: 1,
                limit: 65536,
                committed: 3,
                refused: 0,
                early_dropped: 0,
                invalid: 2,
                expired: 2,
                zones: Vec::new(),
            },
        });
        let s = serde_json::to_string(&r).unwrap();
        assert!(s.contains(r#""kind":"conntrack""#), "{s}");
        assert!(s.contains(r#""stats":{"entries":1,"limit":65536,"committed":3,"refused":0,"early_dropped":0,"invalid":2,"expired":2}"#), "{s}");
        assert_eq!(serde_json::from_str::<ReplyEnvelope>(&s).unwrap(), r);
        // Zone limits, when there are any, travel with the counters.
        let r = ReplyEnvelope::ok(Reply::Conntrack {
            entries: Vec::new(),
            stats: CtStatsRow {
                zones: vec![CtZoneRow {
                    zone: 1,
                    limit: 100,
                    entries: 7,
                }],
                ..CtStatsRow::default()
            },
        });
        let s = serde_json::to_string(&r).unwrap();
        assert!(
            s.contains(r#""zones":[{"zone":1,"limit":100,"entries":7}]"#),
            "{s}"
        );
        assert_eq!(serde_json::from_str::<ReplyEnvelope>(&s).unwrap(), r);
    }
}
