//! `vswitchd`: the daemon around the datapath.
//!
//! [`Daemon::start`] builds everything from a [`config::Config`]: the
//! pipeline with its default `priority=0 actions=normal` flow (a fresh node
//! is a learning switch), the worker threads, the host port (a veth pair:
//! the host end holds the pods' gateway address in this namespace, the
//! other end is the switch's `LOCAL` port), and the ports the config names.
//! [`server`] serves the control socket; [`Daemon::handle`] answers each
//! request. [`Daemon::shutdown`] stops the workers, closes every port (which
//! detaches XDP programs) and removes the host port.
//!
//! Port ownership: the control side opens a port, reserves its pipeline
//! slot, and sends it to a worker (round-robin by load) over that worker's
//! command channel; from then on only that worker touches it.

pub mod config;
pub mod host;
pub mod overlay;
pub mod server;
pub mod worker;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use control::api::{self, FdbRow, FlowEntry, PortCounters, PortInfo, Reply, Request, ShowReply};
use control::flow::{format_dump, parse_filter, parse_flows, parse_group};
use control::PortNo;
use crossbeam::channel::{bounded, unbounded, Sender};
use parking_lot::Mutex;

use crate::pipeline::Pipeline;
use crate::port::open::{open_port, Backend};
use crate::port::Port;
use crate::switch::{Handoff, Switch};
use crate::tables::{Fdb, FdbConfig};
use config::Config;
use worker::{now_ns, WorkerCmd, WorkerOptions};

/// The OpenFlow number of the host port (OVS's `LOCAL`).
pub const LOCAL: u32 = PortNo::LOCAL.0;

/// A port the daemon attached.
#[derive(Debug, Clone)]
struct PortRecord {
    name: String,
    slot: u16,
    worker: usize,
    backend: String,
    detail: String,
}

/// A pod registered by the CNI shim (persisted in `state_dir/pods.json`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Pod {
    iface: String,
    ofport: u32,
    mac: control::MacAddr,
    ip: std::net::Ipv4Addr,
}

struct WorkerHandle {
    cmds: Sender<WorkerCmd>,
    thread: Option<JoinHandle<Switch>>,
}

/// The running daemon.
pub struct Daemon {
    /// The configuration it started with (flags applied).
    pub config: Config,
    /// The shared pipeline.
    pub pipeline: Arc<Pipeline>,
    handoff: Handoff,
    workers: Mutex<Vec<WorkerHandle>>,
    ports: Mutex<BTreeMap<u32, PortRecord>>,
    pods: Mutex<BTreeMap<String, Pod>>,
    stop: Arc<AtomicBool>,
    start: Instant,
    host: Mutex<Option<host::HostPort>>,
    /// The overlay, when the node has a VTEP and an uplink.
    pub overlay: Option<overlay::Overlay>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("node", &self.config.node.name)
            .finish()
    }
}

impl Daemon {
    /// Starts workers, the host port and configured ports.
    pub fn start(config: Config) -> anyhow::Result<Arc<Daemon>> {
        let d = &config.datapath;
        let fdb = Fdb::new(FdbConfig {
            max_entries: d.fdb_max,
            aging: Duration::from_secs(d.fdb_aging_s),
            ..FdbConfig::default()
        });
        let pipeline = Arc::new(Pipeline::with_conntrack(d.workers, fdb, config.ct_config()));
        config.apply_ct_zone_limits(pipeline.conntrack());
        let n = &config.node;
        let hp = host::HostPort::create(
            &n.host_port,
            n.gateway_ip,
            config.pod_cidr().len,
            n.underlay_mtu - 50,
        )?;
        let overlay = if n.vtep_ip.is_some() || n.uplink.is_some() {
            let gw_mac: control::MacAddr = host::read_sys(hp.host_side(), "address")
                .ok_or_else(|| anyhow!("cannot read the MAC of {}", hp.host_side()))?
                .parse()?;
            Some(overlay::Overlay::new(&config, gw_mac)?)
        } else {
            // No overlay: a learning switch for the node's pods and host.
            pipeline
                .add_flows(parse_flows("priority=0 actions=normal")?)
                .map_err(|e| anyhow!("default flow: {e}"))?;
            None
        };
        let handoff = Handoff::new(d.workers).context("creating worker inboxes")?;
        let stop = Arc::new(AtomicBool::new(false));
        let start = Instant::now();
        let mut workers = Vec::new();
        for id in 0..d.workers {
            let (tx, rx) = unbounded();
            let mut sw = Switch::new(Arc::clone(&pipeline), id);
            sw.set_handoff(handoff.clone());
            let opts = WorkerOptions {
                idle: d.idle,
                spin: Duration::from_micros(d.spin_us),
                core: (!d.cores.is_empty()).then(|| d.cores[id % d.cores.len()]),
                rt_priority: d.rt_priority,
            };
            let inbox = Arc::clone(&handoff.inboxes[id]);
            let stop = Arc::clone(&stop);
            let thread = std::thread::Builder::new()
                .name(format!("vsw-worker-{id}"))
                .spawn(move || worker::run(sw, rx, inbox, stop, opts, start))
                .context("spawning worker thread")?;
            workers.push(WorkerHandle {
                cmds: tx,
                thread: Some(thread),
            });
        }
        let daemon = Arc::new(Daemon {
            config,
            pipeline,
            handoff,
            workers: Mutex::new(workers),
            ports: Mutex::new(BTreeMap::new()),
            pods: Mutex::new(BTreeMap::new()),
            stop,
            start,
            host: Mutex::new(Some(hp)),
            overlay,
        });
        if let Err(e) = daemon.setup_ports() {
            daemon.shutdown();
            return Err(e);
        }
        Ok(daemon)
    }

    fn setup_ports(&self) -> anyhow::Result<()> {
        let dp_side = self
            .host
            .lock()
            .as_ref()
            .map(|h| h.datapath_side().to_string())
            .expect("host port");
        self.attach(&dp_side, None, Some(LOCAL))?;
        self.pipeline.set_local_port(Some(LOCAL));
        if let Some(ov) = &self.overlay {
            self.attach_uplink(ov)?;
        }
        for p in self.config.ports.clone() {
            self.attach(&p.iface, p.backend.as_deref(), p.ofport)?;
        }
        self.restore_pods();
        if let Some(ov) = &self.overlay {
            ov.sync(&self.pipeline)?;
            ov.resolve_neighbors(&self.pipeline);
        }
        Ok(())
    }

    /// Attaches the uplink with the project's XDP program (only VXLAN to our
    /// VTEP reaches the switch) and configures the tunnel.
    fn attach_uplink(&self, ov: &overlay::Overlay) -> anyhow::Result<()> {
        let iface = ov.uplink.clone();
        let vtep_ip = self.config.node.vtep_ip.expect("overlay has a VTEP");
        let backend: Backend = self
            .config
            .datapath
            .backend
            .parse()
            .map_err(|e| anyhow!("{e}"))?;
        self.attach_with(&iface, Some(overlay::UPLINK_OFPORT), || {
            let steered = || {
                crate::port::afxdp::AfXdpPort::open_uplink(
                    &iface,
                    0,
                    vtep_ip,
                    overlay::VXLAN_PORT,
                    &crate::port::afxdp::AfXdpOptions::default(),
                )
            };
            let port: Box<dyn Port> = match backend {
                Backend::Afxdp => Box::new(steered()?),
                Backend::Afpacket => Box::new(crate::port::afpacket::AfPacketPort::open(&iface)?),
                Backend::Auto => match steered() {
                    Ok(p) => Box::new(p),
                    Err(e) => {
                        tracing::warn!(iface = %iface, "AF_XDP uplink unavailable ({e}); using AF_PACKET");
                        Box::new(crate::port::afpacket::AfPacketPort::open(&iface)?)
                    }
                },
            };
            Ok(port)
        })?;
        let mac: control::MacAddr = host::read_sys(&iface, "address")
            .ok_or_else(|| anyhow!("cannot read the MAC of {iface}"))?
            .parse()?;
        self.pipeline.set_tunnel(Some(ov.tunnel_config(mac.0)))?;
        Ok(())
    }

    fn pods_file(&self) -> std::path::PathBuf {
        self.config.control.state_dir.join("pods.json")
    }

    /// Writes the registered pods so a restart can re-attach them.
    fn save_pods(&self, pods: &BTreeMap<String, Pod>) {
        let path = self.pods_file();
        let res = std::fs::create_dir_all(&self.config.control.state_dir).and_then(|()| {
            let tmp = path.with_extension("json.tmp");
            std::fs::write(&tmp, serde_json::to_vec_pretty(pods).unwrap_or_default())?;
            std::fs::rename(&tmp, &path)
        });
        if let Err(e) = res {
            tracing::error!(path = %path.display(), "cannot save pod state: {e}");
        }
    }

    /// Re-attaches the pods of a previous run whose interfaces still exist,
    /// with their old port numbers, so forwarding resumes after a restart.
    fn restore_pods(&self) {
        let Ok(text) = std::fs::read(self.pods_file()) else {
            return;
        };
        let saved: BTreeMap<String, Pod> = match serde_json::from_slice(&text) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("ignoring unreadable pod state: {e}");
                return;
            }
        };
        let mut pods = self.pods.lock();
        for (id, p) in saved {
            if host::read_sys(&p.iface, "ifindex").is_none() {
                tracing::info!(container = %id, iface = %p.iface, "pod interface gone; forgetting it");
                continue;
            }
            match self.attach(&p.iface, None, Some(p.ofport)) {
                Ok(ofport) => {
                    tracing::info!(container = %id, iface = %p.iface, ofport, "pod restored");
                    if let Some(ov) = &self.overlay {
                        if let Err(e) = ov.add_pod(&self.pipeline, &id, ofport, p.mac, p.ip) {
                            tracing::error!(container = %id, "cannot restore pod flows: {e:#}");
                        }
                    }
                    pods.insert(id, Pod { ofport, ..p });
                }
                Err(e) => {
                    tracing::error!(container = %id, iface = %p.iface, "cannot restore pod: {e:#}")
                }
            }
        }
        self.save_pods(&pods);
    }

    /// Nanoseconds on the datapath clock.
    pub fn now(&self) -> u64 {
        now_ns(self.start)
    }

    /// Opens `iface` and hands it to the least loaded worker.
    pub fn attach(
        &self,
        iface: &str,
        backend: Option<&str>,
        ofport: Option<u32>,
    ) -> anyhow::Result<u32> {
        let backend: Backend = backend
            .unwrap_or(&self.config.datapath.backend)
            .parse()
            .map_err(|e| anyhow!("{e}"))?;
        self.attach_with(iface, ofport, || {
            if backend != Backend::Afpacket {
                clear_stale_xdp(iface);
            }
            Ok(open_port(iface, 0, backend)?)
        })
    }

    /// Attaches the port `open` returns as `iface` (OpenFlow number `ofport`
    /// or the lowest free one) to the least loaded worker.
    pub fn attach_with(
        &self,
        iface: &str,
        ofport: Option<u32>,
        open: impl FnOnce() -> anyhow::Result<Box<dyn Port>>,
    ) -> anyhow::Result<u32> {
        let mut ports = self.ports.lock();
        if ports.values().any(|p| p.name == iface) {
            bail!("port {iface} already exists");
        }
        let ofport = match ofport {
            Some(0) => bail!("ofport 0 is not a valid port number"),
            Some(p) if ports.contains_key(&p) => bail!("ofport {p} is already in use"),
            Some(p) => p,
            None => (1..)
                .find(|p| !ports.contains_key(p))
                .expect("a free number"),
        };
        let port = open()?;
        let backend_name = port.backend().to_string();
        let detail = port.detail();
        let slot = self.pipeline.add_port(ofport)?;
        let workers = self.workers.lock();
        let mut load = vec![0usize; workers.len()];
        for p in ports.values() {
            load[p.worker] += 1;
        }
        let worker = (0..workers.len()).min_by_key(|w| load[*w]).unwrap_or(0);
        let (done_tx, done_rx) = bounded(1);
        let sent = workers[worker].cmds.send(WorkerCmd::Attach {
            slot,
            ofport,
            port,
            done: done_tx,
        });
        self.handoff.inboxes[worker].bell.ring();
        if sent.is_err() || done_rx.recv_timeout(Duration::from_secs(5)).is_err() {
            let _ = self.pipeline.del_port(ofport);
            bail!("worker {worker} did not attach {iface}");
        }
        ports.insert(
            ofport,
            PortRecord {
                name: iface.to_string(),
                slot,
                worker,
                backend: backend_name,
                detail,
            },
        );
        tracing::info!(iface, ofport, worker, "port added");
        Ok(ofport)
    }

    /// Detaches and closes a port by name.
    pub fn detach(&self, iface: &str) -> anyhow::Result<()> {
        let mut ports = self.ports.lock();
        let (&ofport, rec) = ports
            .iter()
            .find(|(_, p)| p.name == iface)
            .ok_or_else(|| anyhow!("no port named {iface}"))?;
        let rec = rec.clone();
        self.pipeline.del_port(ofport)?;
        let (done_tx, done_rx) = bounded(1);
        let workers = self.workers.lock();
        if workers[rec.worker]
            .cmds
            .send(WorkerCmd::Detach {
                slot: rec.slot,
                done: done_tx,
            })
            .is_ok()
        {
            self.handoff.inboxes[rec.worker].bell.ring();
            // Dropping the port closes its socket and detaches its XDP program.
            let _ = done_rx.recv_timeout(Duration::from_secs(5));
        }
        ports.remove(&ofport);
        tracing::info!(iface, ofport, "port deleted");
        Ok(())
    }

    /// Answers one request.
    pub fn handle(&self, req: Request) -> anyhow::Result<Reply> {
        Ok(match req {
            Request::Show {} => Reply::Show(self.show()),
            Request::AddPort {
                iface,
                backend,
                ofport,
            } => Reply::Port {
                ofport: self.attach(&iface, backend.as_deref(), ofport)?,
            },
            Request::DelPort { iface } => {
                self.detach(&iface)?;
                Reply::Done
            }
            Request::AddFlows { flows } => {
                let flows = parse_flows(&flows)?;
                let n = flows.len() as u64;
                self.pipeline.add_flows(flows)?;
                Reply::Count { count: n }
            }
            Request::ReplaceFlows { flows } => {
                let flows = parse_flows(&flows)?;
                let n = flows.len() as u64;
                self.pipeline.replace_flows(flows)?;
                Reply::Count { count: n }
            }
            Request::DelFlows { filter, strict } => Reply::Count {
                count: self.pipeline.del_flows(&parse_filter(&filter)?, strict)? as u64,
            },
            Request::DumpFlows { filter } => {
                let mut dumps = self.pipeline.dump_flows(&parse_filter(&filter)?)?;
                for d in &mut dumps {
                    // OVS keeps millisecond precision and prints what it has.
                    d.stats.duration = Duration::from_millis(d.stats.duration.as_millis() as u64);
                }
                Reply::Flows {
                    flows: dumps
                        .into_iter()
                        .map(|d| FlowEntry {
                            text: format_dump(&d.flow, &d.stats),
                            table: d.flow.table,
                            priority: d.flow.priority,
                            cookie: d.flow.cookie,
                            n_packets: d.stats.n_packets,
                            n_bytes: d.stats.n_bytes,
                            duration_s: d.stats.duration.as_secs_f64(),
                        })
                        .collect(),
                }
            }
            Request::AddGroup { group } => {
                self.pipeline.add_group(parse_group(&group)?)?;
                Reply::Done
            }
            Request::DelGroups { group_id } => Reply::Count {
                count: self.pipeline.del_groups(group_id) as u64,
            },
            Request::DumpGroups {} => Reply::Groups {
                groups: self
                    .pipeline
                    .dump_groups()
                    .iter()
                    .map(|g| g.to_string())
                    .collect(),
            },
            Request::DumpPorts { port } => self.dump_ports(port.as_deref())?,
            Request::FdbShow {} => {
                let now = self.now();
                Reply::Fdb {
                    entries: self
                        .pipeline
                        .fdb
                        .entries(now)
                        .into_iter()
                        .map(|e| FdbRow {
                            port: e.port,
                            vlan: e.vlan,
                            mac: control::MacAddr(e.mac).to_string(),
                            age_s: e.age.as_secs(),
                        })
                        .collect(),
                }
            }
            Request::Trace { flow } => {
                let t = self.pipeline.trace(&parse_filter(&flow)?, self.now())?;
                Reply::Trace {
                    lines: t.lines,
                    verdict: t.verdict,
                }
            }
            Request::AddPod {
                container_id,
                iface,
                mac,
                ip,
            } => {
                let mac: control::MacAddr = mac.parse()?;
                let ip: std::net::Ipv4Addr = ip
                    .parse()
                    .map_err(|_| anyhow!("{ip:?} is not an IPv4 address"))?;
                let mut pods = self.pods.lock();
                if let Some(p) = pods.get(&container_id) {
                    if p.iface == iface {
                        return Ok(Reply::Port { ofport: p.ofport });
                    }
                    bail!(
                        "container {container_id} is already attached as {}",
                        p.iface
                    );
                }
                let ofport = self.attach(&iface, None, None)?;
                if let Some(ov) = &self.overlay {
                    if let Err(e) = ov.add_pod(&self.pipeline, &container_id, ofport, mac, ip) {
                        let _ = self.detach(&iface);
                        return Err(e.context(format!("pod {container_id}")));
                    }
                }
                pods.insert(
                    container_id,
                    Pod {
                        iface,
                        ofport,
                        mac,
                        ip,
                    },
                );
                self.save_pods(&pods);
                Reply::Port { ofport }
            }
            Request::AddNode {
                name,
                pod_cidr,
                vtep_ip,
                vtep_mac,
            } => {
                let ov = self.need_overlay()?;
                let r = control::model::RemoteNode::parse(
                    &name,
                    &pod_cidr,
                    &vtep_ip,
                    vtep_mac.as_deref(),
                )?;
                ov.add_node(&self.pipeline, &name, r)?;
                ov.resolve_neighbors(&self.pipeline);
                Reply::Done
            }
            Request::DelNode { name } => Reply::Count {
                count: u64::from(self.need_overlay()?.del_node(&self.pipeline, &name)?),
            },
            Request::AddService {
                name,
                vip,
                port,
                protocol,
                endpoints,
            } => {
                let ov = self.need_overlay()?;
                let svc = control::model::Service::parse(&name, &vip, port, &protocol, &endpoints)?;
                ov.add_service(&self.pipeline, &name, svc)?;
                Reply::Done
            }
            Request::DelService { name } => Reply::Count {
                count: u64::from(self.need_overlay()?.del_service(&self.pipeline, &name)?),
            },
            Request::DumpServices {} => Reply::Services {
                services: self.need_overlay()?.service_rows(),
            },
            Request::DumpConntrack { zone } => {
                let ct = self.pipeline.conntrack();
                let st = ct.stats();
                Reply::Conntrack {
                    entries: ct
                        .dump(zone, self.now())
                        .iter()
                        .map(|e| e.to_string())
                        .collect(),
                    stats: control::api::CtStatsRow {
                        entries: st.entries as u64,
                        limit: st.limit as u64,
                        committed: st.committed,
                        refused: st.refused,
                        early_dropped: st.early_dropped,
                        invalid: st.invalid,
                        expired: st.expired,
                        zones: (0..=u16::MAX)
                            .filter_map(|z| {
                                Some(control::api::CtZoneRow {
                                    zone: z,
                                    limit: ct.zone_limit(z)?.into(),
                                    entries: ct.zone_len(z) as u64,
                                })
                            })
                            .collect(),
                    },
                }
            }
            Request::FlushConntrack { zone } => Reply::Count {
                count: self.pipeline.conntrack().flush(zone) as u64,
            },
            Request::DumpNodes {} => Reply::Nodes {
                nodes: self.need_overlay()?.rows(),
            },
            Request::DelPod {
                container_id,
                iface,
            } => {
                let pod = {
                    let mut pods = self.pods.lock();
                    let p = pods.remove(&container_id);
                    if p.is_some() {
                        self.save_pods(&pods);
                    }
                    p
                };
                if let (Some(ov), Some(_)) = (&self.overlay, &pod) {
                    ov.del_pod(&self.pipeline, &container_id)?;
                }
                let name = pod.map(|p| p.iface).unwrap_or(iface);
                if self.ports.lock().values().any(|p| p.name == name) {
                    self.detach(&name)?;
                }
                Reply::Done
            }
        })
    }

    fn need_overlay(&self) -> anyhow::Result<&overlay::Overlay> {
        self.overlay.as_ref().ok_or_else(|| {
            anyhow!("this node has no overlay (set node.vtep_ip and node.uplink in the config)")
        })
    }

    fn show(&self) -> ShowReply {
        let ports = self.ports.lock();
        ShowReply {
            node: self.config.node.name.clone(),
            workers: self.config.datapath.workers as u32,
            ports: ports
                .iter()
                .map(|(ofport, p)| PortInfo {
                    ofport: *ofport,
                    name: p.name.clone(),
                    backend: p.backend.clone(),
                    mac: host::read_sys(&p.name, "address").unwrap_or_default(),
                    link_up: host::read_sys(&p.name, "operstate").is_some_and(|s| s != "down"),
                    worker: p.worker as u32,
                    queue: 0,
                    detail: p.detail.clone(),
                })
                .collect(),
            vtep_mac: self.overlay.as_ref().map(|o| o.vtep_mac().to_string()),
            tunnel: self.overlay.as_ref().and_then(|o| {
                let t = self.pipeline.tunnel()?;
                Some(control::api::TunnelInfo {
                    ofport: t.ofport,
                    vni: t.vni,
                    local_ip: t.local_ip.to_string(),
                    uplink: o.uplink.clone(),
                    remotes: o.rows(),
                })
            }),
        }
    }

    fn dump_ports(&self, which: Option<&str>) -> anyhow::Result<Reply> {
        let ports = self.ports.lock();
        let mut out = Vec::new();
        for (ofport, p) in ports.iter() {
            let selected = match which {
                None => true,
                Some(w) => {
                    w == p.name
                        || w.parse::<u32>().ok() == Some(*ofport)
                        || (w == "LOCAL" && *ofport == LOCAL)
                }
            };
            if !selected {
                continue;
            }
            let s = self.pipeline.port_stats(p.slot);
            out.push(PortCounters {
                ofport: *ofport,
                name: p.name.clone(),
                rx_packets: s.rx_packets,
                rx_bytes: s.rx_bytes,
                rx_dropped: s.rx_dropped,
                rx_errors: 0,
                tx_packets: s.tx_packets,
                tx_bytes: s.tx_bytes,
                tx_dropped: s.tx_dropped,
                tx_errors: 0,
            });
        }
        if let Some(w) = which {
            if out.is_empty() {
                bail!("no port {w}");
            }
        }
        Ok(Reply::Ports {
            ports: out,
            drops: self
                .pipeline
                .drops()
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .map(|(r, n)| (r.name().to_string(), n))
                .collect(),
        })
    }

    /// Periodic work: ages out learned MACs.
    pub fn housekeeping(&self) {
        // Expired connections: a bounded sweep per second, never a stall.
        self.pipeline.conntrack().gc(self.now(), 65_536);
        if let Some(ov) = &self.overlay {
            ov.resolve_neighbors(&self.pipeline);
        }
        let n = self.pipeline.fdb.expire(self.now());
        if n > 0 {
            tracing::debug!(expired = n, "fdb entries aged out");
        }
    }

    /// True once shutdown began.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Stops workers, closes ports (detaching XDP programs), removes the host port.
    pub fn shutdown(&self) {
        if self.stop.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::info!("shutting down");
        for inbox in self.handoff.inboxes.iter() {
            inbox.bell.ring();
        }
        let mut workers = self.workers.lock();
        for w in workers.iter_mut() {
            if let Some(t) = w.thread.take() {
                match t.join() {
                    // Dropping the switch closes its ports.
                    Ok(sw) => drop(sw),
                    Err(_) => tracing::error!("a worker panicked"),
                }
            }
        }
        self.ports.lock().clear();
        if let Some(ov) = &self.overlay {
            ov.remove_routes();
        }
        if let Some(hp) = self.host.lock().take() {
            drop(hp);
        }
    }
}

/// Removes an XDP program a killed switch left on `iface`: libxdp's
/// default program outlives a SIGKILL and would keep stealing frames (and
/// hold a reference the next clean exit cannot drop). Only called for an
/// interface this daemon is about to own.
fn clear_stale_xdp(iface: &str) {
    let Some(ifindex) = host::read_sys(iface, "ifindex").and_then(|s| s.parse().ok()) else {
        return;
    };
    match crate::port::afxdp::sys::detach_xdp(ifindex) {
        Ok(st) if st.attach != crate::port::afxdp::sys::XdpAttach::None => {
            tracing::warn!(
                iface,
                "removed a stale XDP program ({st:?}) left by an earlier switch"
            );
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(iface, "could not check for a stale XDP program: {e}"),
    }
}

/// Parses a request line and answers it; never panics on bad input.
pub fn answer_line(d: &Daemon, line: &str) -> api::ReplyEnvelope {
    let env: api::Envelope = match serde_json::from_str(line) {
        Ok(e) => e,
        Err(e) => return api::ReplyEnvelope::err(format!("malformed request: {e}")),
    };
    if env.version != api::VERSION {
        return api::ReplyEnvelope::err(format!(
            "protocol version {} not supported (this daemon speaks {})",
            env.version,
            api::VERSION
        ));
    }
    match d.handle(env.request) {
        Ok(r) => api::ReplyEnvelope::ok(r),
        Err(e) => api::ReplyEnvelope::err(format!("{e:#}").replace('\n', " ")),
    }
}
