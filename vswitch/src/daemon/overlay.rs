//! The daemon's overlay: the uplink port, the tunnel, the node model
//! compiled to flows, the host routes to remote pods, and the underlay
//! next hops of remote VTEPs.
//!
//! Changes (a pod added, a remote node removed) recompile the model and push
//! only the difference ([`control::model::diff`]): flows of unrelated
//! objects are never deleted or re-added, so their traffic never stops.
//! Next hops come from the kernel's neighbour table (`ip route get` for the
//! next hop toward each remote VTEP, `/proc/net/arp` for its MAC); a missing
//! entry is resolved by the kernel, prompted by one ping. Until then
//! encapsulation toward that VTEP drops with `no-neighbor`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::Ipv4Addr;

use anyhow::{anyhow, Context};
use control::model::{
    self, default_vtep_mac, Compiled, HostRoute, Ipv4Cidr, LocalNode, NodeModel, RemoteNode,
    Service,
};
use control::MacAddr;
use parking_lot::Mutex;

use super::config::Config;
use super::host;
use crate::pipeline::tunnel::{TunnelConfig, VXLAN_OFPORT};
use crate::pipeline::Pipeline;

/// OpenFlow number of the uplink port.
pub const UPLINK_OFPORT: u32 = 65001;

/// UDP port of VXLAN (IANA).
pub const VXLAN_PORT: u16 = 4789;

/// The overlay state of a node.
#[derive(Debug)]
pub struct Overlay {
    /// The uplink interface.
    pub uplink: String,
    /// The host port's interface (routes to remote pods go through it).
    host_dev: String,
    model: Mutex<NodeModel>,
    installed: Mutex<Compiled>,
    routes: Mutex<BTreeSet<HostRoute>>,
    neighbors: Mutex<HashMap<Ipv4Addr, [u8; 6]>>,
}

impl Overlay {
    /// The model of a configured node whose host port has MAC `gw_mac`.
    pub fn new(cfg: &Config, gw_mac: MacAddr) -> anyhow::Result<Overlay> {
        let n = &cfg.node;
        let vtep_ip = n
            .vtep_ip
            .ok_or_else(|| anyhow!("node.vtep_ip is required with node.uplink"))?;
        let uplink = n
            .uplink
            .clone()
            .ok_or_else(|| anyhow!("node.uplink is required with node.vtep_ip"))?;
        let pod_cidr: Ipv4Cidr = n.pod_cidr.parse()?;
        let mut m = NodeModel::new(LocalNode {
            name: n.name.clone(),
            pod_cidr,
            gateway_ip: n.gateway_ip,
            vtep_ip,
            vni: n.vni,
            vtep_mac: n.vtep_mac.unwrap_or_else(|| default_vtep_mac(vtep_ip)),
            gw_mac,
            underlay_mtu: n.underlay_mtu,
        })?;
        for r in &cfg.remote_nodes {
            let node = RemoteNode::parse(
                &r.name,
                &r.pod_cidr,
                &r.vtep_ip.to_string(),
                r.vtep_mac.map(|m| m.to_string()).as_deref(),
            )
            .with_context(|| format!("remote_nodes: {}", r.name))?;
            m.upsert_remote(&r.name, node)?;
        }
        for s in &cfg.services {
            let svc = Service::parse(
                &s.name,
                &s.vip.to_string(),
                s.port,
                &s.protocol,
                &s.backends,
            )
            .with_context(|| format!("services: {}", s.name))?;
            m.upsert_service(&s.name, svc)?;
        }
        Ok(Overlay {
            uplink,
            host_dev: n.host_port.clone(),
            model: Mutex::new(m),
            installed: Mutex::new(Compiled {
                flows: Vec::new(),
                groups: Vec::new(),
            }),
            routes: Mutex::new(BTreeSet::new()),
            neighbors: Mutex::new(HashMap::new()),
        })
    }

    /// This node's VTEP MAC.
    pub fn vtep_mac(&self) -> MacAddr {
        self.model.lock().node.vtep_mac
    }

    /// The tunnel configuration for the datapath.
    pub fn tunnel_config(&self, uplink_mac: [u8; 6]) -> TunnelConfig {
        let m = self.model.lock();
        TunnelConfig {
            ofport: VXLAN_OFPORT,
            uplink_ofport: UPLINK_OFPORT,
            vni: m.node.vni,
            local_ip: m.node.vtep_ip,
            local_mac: uplink_mac,
            vtep_mac: Some(m.node.vtep_mac.0),
            allowed_sources: Some(
                m.remotes
                    .values()
                    .map(|r| r.vtep_ip)
                    .collect::<HashSet<_>>(),
            ),
            underlay_mtu: m.node.underlay_mtu as u16,
        }
    }

    /// Recompiles the model and pushes the difference to the pipeline and
    /// the host routes to the kernel.
    pub fn sync(&self, pipe: &Pipeline) -> anyhow::Result<()> {
        let model = self.model.lock().clone();
        let new = model::compile_all(&model);
        let mut installed = self.installed.lock();
        let d = model::diff_all(&installed, &new);
        // Groups first, so no flow ever points at a missing group; groups
        // that are gone last, once no flow refers to them.
        for g in &d.groups.add {
            pipe.add_group(g.clone())?;
        }
        if !d.flows.add.is_empty() {
            pipe.add_flows(d.flows.add.clone())?;
        }
        for f in d.flows.delete_filters() {
            pipe.del_flows(&f, true)?;
        }
        for id in &d.groups.delete {
            pipe.del_groups(Some(*id));
        }
        *installed = new;
        drop(installed);
        // Keep the allow-list of source VTEPs in step with the remotes.
        if let Some(mut t) = pipe.tunnel() {
            t.allowed_sources = Some(model.remotes.values().map(|r| r.vtep_ip).collect());
            pipe.set_tunnel(Some(t))?;
        }
        self.sync_routes(&model)
    }

    fn sync_routes(&self, model: &NodeModel) -> anyhow::Result<()> {
        let want: BTreeSet<HostRoute> = model::host_routes(model).into_iter().collect();
        let mut have = self.routes.lock();
        for r in have.difference(&want) {
            let _ = host::run("ip", &strs(&r.route_del_args(&self.host_dev)));
            let _ = host::run("ip", &strs(&r.neigh_del_args(&self.host_dev)));
        }
        for r in want.difference(&have) {
            host::run("ip", &strs(&r.neigh_replace_args(&self.host_dev)))?;
            host::run("ip", &strs(&r.route_replace_args(&self.host_dev)))?;
        }
        *have = want;
        Ok(())
    }

    /// Registers (or updates) a local pod.
    pub fn add_pod(
        &self,
        pipe: &Pipeline,
        id: &str,
        ofport: u32,
        mac: MacAddr,
        ip: Ipv4Addr,
    ) -> anyhow::Result<()> {
        self.model
            .lock()
            .upsert_pod(id, model::PodEntry { ofport, mac, ip })?;
        self.sync(pipe)
    }

    /// Forgets a local pod.
    pub fn del_pod(&self, pipe: &Pipeline, id: &str) -> anyhow::Result<()> {
        self.model.lock().remove_pod(id);
        self.sync(pipe)
    }

    /// Adds or replaces a remote node.
    pub fn add_node(&self, pipe: &Pipeline, name: &str, r: RemoteNode) -> anyhow::Result<()> {
        self.model.lock().upsert_remote(name, r)?;
        self.sync(pipe)
    }

    /// Removes a remote node; false if it was unknown.
    pub fn del_node(&self, pipe: &Pipeline, name: &str) -> anyhow::Result<bool> {
        let gone = self.model.lock().remove_remote(name).is_some();
        if gone {
            self.sync(pipe)?;
        }
        Ok(gone)
    }

    /// Adds or replaces a Service (its endpoints, say).
    pub fn add_service(&self, pipe: &Pipeline, name: &str, svc: Service) -> anyhow::Result<()> {
        self.model.lock().upsert_service(name, svc)?;
        self.sync(pipe)
    }

    /// Removes a Service; false if it was unknown.
    pub fn del_service(&self, pipe: &Pipeline, name: &str) -> anyhow::Result<bool> {
        let gone = self.model.lock().remove_service(name).is_some();
        if gone {
            self.sync(pipe)?;
        }
        Ok(gone)
    }

    /// Rows for `dump-services`.
    pub fn service_rows(&self) -> Vec<control::api::ServiceRow> {
        model::service_rows(&self.model.lock())
    }

    /// Rows for `dump-nodes`, with resolved next-hop MACs.
    pub fn rows(&self) -> Vec<control::api::NodeRow> {
        let m = self.model.lock();
        let nb = self.neighbors.lock();
        let mut rows = model::node_rows(&m);
        for row in &mut rows {
            if let Ok(ip) = row.vtep_ip.parse::<Ipv4Addr>() {
                row.next_hop_mac = nb.get(&ip).map(|m| MacAddr(*m).to_string());
            }
        }
        rows
    }

    /// Looks up the underlay next hop of every remote VTEP in the kernel's
    /// tables, prompting resolution of missing ones, and publishes changes.
    pub fn resolve_neighbors(&self, pipe: &Pipeline) {
        let vteps: Vec<Ipv4Addr> = self
            .model
            .lock()
            .remotes
            .values()
            .map(|r| r.vtep_ip)
            .collect();
        let arp = std::fs::read_to_string("/proc/net/arp").unwrap_or_default();
        let mut found = HashMap::new();
        for vtep in vteps {
            let Some((nh, dev)) = next_hop(vtep) else {
                continue;
            };
            match arp_lookup(&arp, nh, &dev) {
                Some(mac) => {
                    found.insert(vtep, mac);
                }
                None => {
                    // Let the kernel resolve it: one probe, not waited for.
                    let _ = std::process::Command::new("ping")
                        .args(["-c", "1", "-W", "1", "-I", &dev, &nh.to_string()])
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .spawn()
                        .map(|mut c| std::thread::spawn(move || c.wait()));
                }
            }
        }
        let mut nb = self.neighbors.lock();
        if *nb != found {
            tracing::info!(?found, "underlay next hops changed");
            pipe.set_neighbors(found.clone());
            *nb = found;
        }
    }

    /// Removes the host routes (shutdown).
    pub fn remove_routes(&self) {
        let have = std::mem::take(&mut *self.routes.lock());
        for r in have {
            let _ = host::run("ip", &strs(&r.route_del_args(&self.host_dev)));
            let _ = host::run("ip", &strs(&r.neigh_del_args(&self.host_dev)));
        }
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The next hop (gateway or the address itself) and device toward `ip`.
fn next_hop(ip: Ipv4Addr) -> Option<(Ipv4Addr, String)> {
    let out = std::process::Command::new("ip")
        .args(["-j", "route", "get", &ip.to_string()])
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let r = v.get(0)?;
    let dev = r.get("dev")?.as_str()?.to_string();
    let nh = match r.get("gateway").and_then(|g| g.as_str()) {
        Some(g) => g.parse().ok()?,
        None => ip,
    };
    Some((nh, dev))
}

/// The MAC of `ip` on `dev` in `/proc/net/arp` text, if complete.
fn arp_lookup(arp: &str, ip: Ipv4Addr, dev: &str) -> Option<[u8; 6]> {
    let ip = ip.to_string();
    arp.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        // IP address, HW type, Flags, HW address, Mask, Device
        if f.len() >= 6 && f[0] == ip && f[5] == dev && f[2] != "0x0" {
            let m: MacAddr = f[3].parse().ok()?;
            (m != MacAddr::ZERO).then_some(m.0)
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arp_table_parsing() {
        let t = "IP address       HW type     Flags       HW address            Mask     Device\n\
                 198.18.0.2       0x1         0x2         aa:bb:cc:dd:ee:02     *        ul0\n\
                 198.18.0.3       0x1         0x0         00:00:00:00:00:00     *        ul0\n";
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(
            arp_lookup(t, ip("198.18.0.2"), "ul0"),
            Some([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x02])
        );
        assert_eq!(arp_lookup(t, ip("198.18.0.2"), "eth0"), None);
        assert_eq!(
            arp_lookup(t, ip("198.18.0.3"), "ul0"),
            None,
            "incomplete entry"
        );
        assert_eq!(arp_lookup(t, ip("198.18.0.4"), "ul0"), None);
    }
}
