//! GC (1.1.0): release every attachment of this network that is not in
//! `cni.dev/valid-attachments`.
//!
//! Stale attachments are found two ways: records in the state directory
//! (the usual case: the netns was deleted, taking the veth pair with it, and
//! only the address is left) and host veths whose alias names this network
//! (a record lost or never written). Each is released as DEL would release
//! it, with IPAM DEL run for its container id and ifname; then GC is
//! forwarded to the IPAM plugin if it speaks 1.1.0. Errors do not stop the
//! sweep: all are reported, the first one's code wins.

use std::collections::{BTreeSet, HashSet};

use super::conf::{CniEnv, Command, NetConf, SpecVersion};
use super::del::release;
use super::error::{CniError, ErrorCode};
use super::ipam::{Ipam, Target};
use super::log;
use super::state::{self, Store};
use super::sys;

/// Runs GC.
pub fn gc(env: &CniEnv, conf: &NetConf) -> Result<(), CniError> {
    conf.require_version(SpecVersion::V1_1_0, Command::Gc)?;
    if env.path.is_empty() {
        return Err(CniError::env("CNI_PATH is not set (GC requires it)"));
    }
    let valid: HashSet<(&str, &str)> = conf
        .valid_attachments
        .as_ref()
        .ok_or_else(|| CniError::netconf("GC needs cni.dev/valid-attachments"))?
        .iter()
        .map(|a| (a.container_id.as_str(), a.ifname.as_str()))
        .collect();

    let store = Store::new(&conf.state_dir, &conf.name);
    let (records, unreadable) = store.list().map_err(|e| {
        CniError::new(
            ErrorCode::IO_FAILURE,
            "failed to read attachment state",
            format!("{}: {e}", store.dir().display()),
        )
    })?;
    for u in unreadable {
        log(format_args!(
            "GC {}: skipping unreadable record {u}",
            conf.name
        ));
    }
    let mut stale = BTreeSet::new();
    for r in &records {
        if !valid.contains(&(r.container_id.as_str(), r.ifname.as_str())) {
            stale.insert((r.container_id.clone(), r.ifname.clone()));
        }
    }
    let mut errors = Vec::new();
    match sys::host_veths() {
        Ok(links) => {
            for link in links
                .iter()
                .filter(|l| state::is_host_iface_name(&l.ifname))
            {
                let Some((net, id, ifname)) = link.ifalias.as_deref().and_then(state::parse_alias)
                else {
                    continue;
                };
                if net == conf.name && !valid.contains(&(id, ifname)) {
                    stale.insert((id.to_string(), ifname.to_string()));
                }
            }
        }
        Err(e) => errors.push(e),
    }

    for (id, ifname) in &stale {
        let target = Target {
            container_id: Some(id),
            ifname: Some(ifname),
            netns: None,
        };
        errors.extend(release(env, conf, &store, id, ifname, Some(target)));
    }
    match Ipam::find(env, conf).and_then(|ipam| ipam.forward_1_1("GC")) {
        Ok(_) => {}
        Err(e) => errors.push(e),
    }

    if errors.is_empty() {
        return Ok(());
    }
    let first = &errors[0];
    Err(CniError::new(
        first.code,
        format!("GC failed: {}", first.msg),
        errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; "),
    ))
}
