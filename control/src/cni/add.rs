//! ADD: attach a container to the switch.
//!
//! Order (each step named in its error): record the attachment; create the
//! veth pair with the peer born inside `CNI_NETNS` as `CNI_IFNAME`; mark the
//! host end with its alias; get an address from IPAM; inside the netns bring
//! `lo` up, assign the address, turn tx checksum offload off, bring the
//! interface up, add IPAM's routes and the default route via the gateway;
//! bring the host end up; register the pod with vswitchd.
//!
//! Tx checksum offload must be off on the pod side: with it on, the pod's
//! stack hands veth CHECKSUM_PARTIAL frames, AF_XDP copies them out with the
//! checksum never completed, and the peer drops every TCP and UDP segment
//! (notes/afxdp-veth.md §1, §3).
//!
//! Any failure undoes what was done, newest first: unregister, delete the
//! veth (which removes both ends), IPAM DEL (also after a failed IPAM ADD,
//! as SPEC.md section 4 asks), remove the record. The error returned is the
//! first one; failures while undoing are logged on stderr.

use std::net::Ipv4Addr;

use serde_json::Map;

use super::conf::{Attachment, CniEnv, NetConf, XDP_NATIVE_MAX_MTU};
use super::daemon;
use super::error::{CniError, ErrorCode};
use super::ipam::Ipam;
use super::log;
use super::result::{CniResult, Interface, Ipv4Cidr, Route};
use super::state::{self, Record, Store};
use super::sys::{self, Ns};
use crate::api::Request;

/// What has been done so far, to undo on failure.
#[derive(Debug, Default)]
struct Undo {
    record: bool,
    veth: bool,
    ipam: bool,
    daemon: bool,
}

/// Runs ADD; the result JSON on success.
pub fn add(env: &CniEnv, conf: &NetConf) -> Result<String, CniError> {
    let att = env.attachment(true)?;
    let netns = att.netns.unwrap_or_default();
    let prev = conf
        .prev_result
        .as_ref()
        .map(|v| CniResult::from_value(v, "prevResult"))
        .transpose()?;
    if !sys::netns_exists(netns) {
        return Err(CniError::new(
            ErrorCode::UNKNOWN_CONTAINER,
            "network namespace does not exist",
            format!("CNI_NETNS {netns} does not exist"),
        ));
    }
    if sys::link(Ns::Path(netns), att.ifname)?.is_some() {
        return Err(CniError::new(
            ErrorCode::INTERFACE_EXISTS,
            "interface already exists",
            format!("{} already exists in {netns}", att.ifname),
        ));
    }
    let host = state::host_iface_name(att.container_id, att.ifname);
    if let Some(l) = sys::link(Ns::Host, &host)? {
        return Err(CniError::new(
            ErrorCode::INTERFACE_EXISTS,
            "host interface already exists",
            format!(
                "host interface {host} already exists (alias {:?}); DEL the attachment first",
                l.ifalias.unwrap_or_default()
            ),
        ));
    }
    let ipam = Ipam::find(env, conf)?;
    if conf.mtu > XDP_NATIVE_MAX_MTU {
        log(format_args!(
            "ADD {}: mtu {} is above {XDP_NATIVE_MAX_MTU}, the largest native-mode XDP accepts \
             on veth; vswitchd's afxdp ports will fail on this pod",
            att.container_id, conf.mtu
        ));
    }
    let store = Store::new(&conf.state_dir, &conf.name);
    let mut undo = Undo::default();
    match steps(&att, conf, &ipam, &store, &host, prev, &mut undo) {
        Ok(result) => {
            Ok(serde_json::to_string(&result.to_value(conf.version)).expect("result serializes"))
        }
        Err(e) => {
            rollback(&undo, &att, conf, &ipam, &store, &host);
            Err(e)
        }
    }
}

fn steps(
    att: &Attachment<'_>,
    conf: &NetConf,
    ipam: &Ipam<'_>,
    store: &Store,
    host: &str,
    prev: Option<CniResult>,
    undo: &mut Undo,
) -> Result<CniResult, CniError> {
    let netns = att.netns.unwrap_or_default();
    let ifname = att.ifname;
    let mut record = Record {
        container_id: att.container_id.to_string(),
        ifname: ifname.to_string(),
        netns: netns.to_string(),
        host_iface: host.to_string(),
        address: None,
    };
    undo.record = true;
    store.save(&record).map_err(|e| state_error(store, e))?;

    let mtu = conf.mtu.to_string();
    sys::run(
        &format!("create veth pair {host} <-> {ifname} in {netns}"),
        Ns::Host,
        "ip",
        &[
            "link", "add", host, "mtu", &mtu, "type", "veth", "peer", "name", ifname, "mtu", &mtu,
            "netns", netns,
        ],
    )?;
    undo.veth = true;
    let alias = state::alias(&conf.name, att.container_id, ifname);
    sys::run(
        &format!("set the alias of {host}"),
        Ns::Host,
        "ip",
        &["link", "set", "dev", host, "alias", &alias],
    )?;

    undo.ipam = true;
    let mut from_ipam = ipam.add()?;
    let (addr, gateway) = pick_ipv4(&from_ipam)?;
    let mut routes = Vec::new();
    for r in &from_ipam.routes {
        let dst = Ipv4Cidr::parse(&r.dst).ok_or_else(|| {
            CniError::new(
                ErrorCode::INVALID_NETCONF,
                "unsupported IPAM route",
                format!(
                    "route to {:?}: vswitch-cni supports IPv4 routes only",
                    r.dst
                ),
            )
        })?;
        let gw = match &r.gw {
            Some(g) => g.parse::<Ipv4Addr>().map_err(|_| {
                CniError::new(
                    ErrorCode::INVALID_NETCONF,
                    "unsupported IPAM route",
                    format!("route to {}: gateway {g:?} is not an IPv4 address", r.dst),
                )
            })?,
            None => gateway,
        };
        routes.push((dst, gw));
    }
    record.address = Some(addr.to_string());
    store.save(&record).map_err(|e| state_error(store, e))?;

    let ns = Ns::Path(netns);
    let addr_s = addr.to_string();
    sys::run(
        "bring up lo in the netns",
        ns,
        "ip",
        &["link", "set", "dev", "lo", "up"],
    )?;
    sys::run(
        &format!("assign {addr} to {ifname}"),
        ns,
        "ip",
        &["addr", "add", &addr_s, "dev", ifname],
    )?;
    sys::run(
        &format!("turn off tx checksum offload on {ifname}"),
        ns,
        "ethtool",
        &["-K", ifname, "tx", "off"],
    )?;
    sys::run(
        &format!("bring up {ifname}"),
        ns,
        "ip",
        &["link", "set", "dev", ifname, "up"],
    )?;
    let has_default = routes.iter().any(|(dst, _)| dst.prefix == 0);
    if !has_default {
        routes.push((
            Ipv4Cidr {
                addr: Ipv4Addr::UNSPECIFIED,
                prefix: 0,
            },
            gateway,
        ));
        from_ipam.routes.push(Route {
            dst: "0.0.0.0/0".into(),
            gw: Some(gateway.to_string()),
            extra: Map::new(),
        });
    }
    for (dst, gw) in &routes {
        let (dst_s, gw_s) = (dst.to_string(), gw.to_string());
        sys::run(
            &format!("add route to {dst} via {gw} in the netns"),
            ns,
            "ip",
            &["route", "add", &dst_s, "via", &gw_s, "dev", ifname],
        )?;
    }
    sys::run(
        &format!("bring up {host}"),
        Ns::Host,
        "ip",
        &["link", "set", "dev", host, "up"],
    )?;

    let pod_link = sys::link(ns, ifname)?.ok_or_else(|| vanished(ifname, netns))?;
    let host_link = sys::link(Ns::Host, host)?.ok_or_else(|| vanished(host, "the host"))?;
    daemon::call(
        &conf.socket,
        "register the pod with vswitchd",
        Request::AddPod {
            container_id: att.container_id.to_string(),
            iface: host.to_string(),
            mac: pod_link.address.clone(),
            ip: addr.addr.to_string(),
        },
    )?;
    undo.daemon = true;

    let mut result = prev.unwrap_or_default();
    let base = result.interfaces.len();
    result.interfaces.push(Interface {
        name: host.to_string(),
        mac: Some(host_link.address),
        mtu: Some(conf.mtu),
        sandbox: None,
        extra: Map::new(),
    });
    result.interfaces.push(Interface {
        name: ifname.to_string(),
        mac: Some(pod_link.address),
        mtu: Some(conf.mtu),
        sandbox: Some(netns.to_string()),
        extra: Map::new(),
    });
    for mut ip in from_ipam.ips {
        ip.interface = Some(base + 1);
        result.ips.push(ip);
    }
    result.routes.extend(from_ipam.routes);
    if !from_ipam.dns.is_empty() {
        result.dns = from_ipam.dns;
    }
    Ok(result)
}

/// The one IPv4 address and gateway of an IPAM result (code 7 otherwise).
pub(super) fn pick_ipv4(r: &CniResult) -> Result<(Ipv4Cidr, Ipv4Addr), CniError> {
    let unusable = |details: String| {
        CniError::new(ErrorCode::INVALID_NETCONF, "unusable IPAM result", details)
    };
    let mut found = Vec::new();
    for ip in &r.ips {
        match Ipv4Cidr::parse(&ip.address) {
            Some(c) => found.push((c, ip.gateway.as_deref())),
            None if ip.address.contains(':') => {
                return Err(unusable(format!(
                    "IPAM assigned the IPv6 address {}; vswitch-cni supports IPv4 only",
                    ip.address
                )))
            }
            None => {
                return Err(unusable(format!(
                    "IPAM address {:?} is not in CIDR notation",
                    ip.address
                )))
            }
        }
    }
    let [(addr, gw)] = found[..] else {
        return Err(unusable(format!(
            "IPAM assigned {} IPv4 addresses; vswitch-cni needs exactly one",
            found.len()
        )));
    };
    let gw: Ipv4Addr = gw.and_then(|g| g.parse().ok()).ok_or_else(|| {
        unusable(format!(
            "IPAM gave no IPv4 gateway for {addr}; set ipam.gateway (the node's gateway_ip)"
        ))
    })?;
    if !addr.contains(gw) || gw == addr.addr {
        return Err(unusable(format!(
            "gateway {gw} is not another address of {addr}'s subnet"
        )));
    }
    Ok((addr, gw))
}

fn state_error(store: &Store, e: std::io::Error) -> CniError {
    CniError::new(
        ErrorCode::IO_FAILURE,
        "failed to write attachment state",
        format!("{}: {e}", store.dir().display()),
    )
}

fn vanished(name: &str, place: &str) -> CniError {
    CniError::new(
        ErrorCode::SYSTEM,
        "interface vanished during ADD",
        format!("{name} no longer exists in {place}"),
    )
}

/// Undoes a failed ADD, newest step first; failures are logged, not returned.
fn rollback(
    undo: &Undo,
    att: &Attachment<'_>,
    conf: &NetConf,
    ipam: &Ipam<'_>,
    store: &Store,
    host: &str,
) {
    let id = att.container_id;
    if undo.daemon {
        let req = Request::DelPod {
            container_id: id.to_string(),
            iface: host.to_string(),
        };
        if let Err(e) = daemon::call(&conf.socket, "unregister the pod from vswitchd", req) {
            log(format_args!("ADD {id}: rollback: {e}"));
        }
    }
    if undo.veth {
        if let Err(e) = sys::delete_host_link(host) {
            log(format_args!("ADD {id}: rollback: {e}"));
        }
    }
    if undo.ipam {
        if let Err(e) = ipam.del(None) {
            log(format_args!("ADD {id}: rollback: {e}"));
        }
    }
    if undo.record {
        if let Err(e) = store.remove(att.container_id, att.ifname) {
            log(format_args!("ADD {id}: rollback: removing state: {e}"));
        }
    }
}
