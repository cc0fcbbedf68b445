//! CHECK: is the attachment still as ADD left it?
//!
//! From `prevResult` (required) it takes the pod interface (the entry named
//! `CNI_IFNAME` whose sandbox is `CNI_NETNS`) and that interface's
//! addresses, and verifies: the netns exists (code 3 otherwise); the
//! interface exists, is up, has the MAC and addresses recorded, the
//! configured MTU, and tx checksum offload off; the host end exists, is up
//! and carries this attachment's alias; IPAM's CHECK passes; vswitchd
//! answers. Routes are not checked: the spec lets later plugins change them.
//! Mismatches are code 103 and list every problem found.

use super::conf::{CniEnv, Command, NetConf, SpecVersion};
use super::daemon;
use super::error::{CniError, ErrorCode};
use super::ipam::Ipam;
use super::result::{CniResult, Ipv4Cidr};
use super::state;
use super::sys::{self, Ns};
use crate::api::Request;

/// Runs CHECK.
pub fn check(env: &CniEnv, conf: &NetConf) -> Result<(), CniError> {
    conf.require_version(SpecVersion::V0_4_0, Command::Check)?;
    let att = env.attachment(true)?;
    let netns = att.netns.unwrap_or_default();
    let prev = conf
        .prev_result
        .as_ref()
        .ok_or_else(|| CniError::netconf("CHECK needs prevResult, the result of the ADD"))?;
    let prev = CniResult::from_value(prev, "prevResult")?;
    let index = prev
        .interfaces
        .iter()
        .position(|i| i.name == att.ifname && i.sandbox.as_deref() == Some(netns))
        .ok_or_else(|| {
            CniError::netconf(format!(
                "prevResult lists no interface {} in sandbox {netns}",
                att.ifname
            ))
        })?;
    let expected_mac = prev.interfaces[index].mac.clone();
    let mut expected_ips = Vec::new();
    for ip in prev.ips.iter().filter(|ip| ip.interface == Some(index)) {
        let c = Ipv4Cidr::parse(&ip.address).ok_or_else(|| {
            CniError::netconf(format!(
                "prevResult address {:?} is not an IPv4 CIDR",
                ip.address
            ))
        })?;
        expected_ips.push(c);
    }

    if !sys::netns_exists(netns) {
        return Err(CniError::new(
            ErrorCode::UNKNOWN_CONTAINER,
            "network namespace does not exist",
            format!("CNI_NETNS {netns} does not exist"),
        ));
    }
    let ns = Ns::Path(netns);
    let ifname = att.ifname;
    let mut problems = Vec::new();
    match sys::link(ns, ifname)? {
        None => problems.push(format!("{ifname} does not exist in {netns}")),
        Some(link) => {
            if !link.is_up() {
                problems.push(format!("{ifname} is down"));
            }
            if let Some(mac) = &expected_mac {
                if !link.address.eq_ignore_ascii_case(mac) {
                    problems.push(format!(
                        "{ifname} has MAC {}, prevResult says {mac}",
                        link.address
                    ));
                }
            }
            if link.mtu != conf.mtu {
                problems.push(format!(
                    "{ifname} has MTU {}, the network's is {}",
                    link.mtu, conf.mtu
                ));
            }
            for want in &expected_ips {
                let present = link.addr_info.iter().any(|a| {
                    a.family == "inet"
                        && a.prefixlen == want.prefix
                        && a.local == want.addr.to_string()
                });
                if !present {
                    problems.push(format!("{ifname} lacks address {want}"));
                }
            }
            if !sys::tx_checksum_off(ns, ifname)? {
                problems.push(format!(
                    "tx checksum offload is on for {ifname}: TCP and UDP through AF_XDP fail"
                ));
            }
        }
    }
    let host = state::host_iface_name(att.container_id, ifname);
    match sys::link(Ns::Host, &host)? {
        None => problems.push(format!("host interface {host} does not exist")),
        Some(link) => {
            let ours = link
                .ifalias
                .as_deref()
                .and_then(state::parse_alias)
                .is_some_and(|(_, id, name)| id == att.container_id && name == ifname);
            if !ours {
                problems.push(format!(
                    "host interface {host} has alias {:?}, not this attachment's",
                    link.ifalias.as_deref().unwrap_or_default()
                ));
            }
            if !link.is_up() {
                problems.push(format!("host interface {host} is down"));
            }
        }
    }
    if !problems.is_empty() {
        return Err(CniError::new(
            ErrorCode::CHECK_FAILED,
            "attachment is not as ADD left it",
            problems.join("; "),
        ));
    }

    Ipam::find(env, conf)?.check()?;
    daemon::call(&conf.socket, "reach vswitchd", Request::Show {})?;
    Ok(())
}
