//! DEL: detach a container, idempotently.
//!
//! The reverse of ADD: unregister from vswitchd, delete the host end of the
//! veth (the kernel removes the pod end with it, and the whole pair is
//! already gone when the netns was deleted), IPAM DEL, remove the record.
//! Every step runs even when an earlier one failed; the first failure is
//! returned and later ones logged.
//!
//! Not errors: a missing veth, record or netns (a second DEL, or a DEL after
//! the netns was deleted), and a daemon that is down or does not know the
//! pod (the datapath drops a port whose interface vanished; the failure is
//! logged on stderr). Errors: IPAM DEL failing, deleting an existing veth
//! failing, the record not being removable.

use super::conf::{CniEnv, NetConf};
use super::daemon;
use super::error::{CniError, ErrorCode};
use super::ipam::{Ipam, Target};
use super::log;
use super::state::{self, Store};
use super::sys::{self, Ns};
use crate::api::Request;

/// Runs DEL.
pub fn del(env: &CniEnv, conf: &NetConf) -> Result<(), CniError> {
    let att = env.attachment(false)?;
    let store = Store::new(&conf.state_dir, &conf.name);
    let mut errors = release(env, conf, &store, att.container_id, att.ifname, None);
    if errors.is_empty() {
        return Ok(());
    }
    let first = errors.remove(0);
    for e in errors {
        log(format_args!("DEL {}: also: {e}", att.container_id));
    }
    Err(first)
}

/// Releases everything an attachment holds; the failures, in order. `target`
/// overrides the attachment variables passed to IPAM (GC has none of its own).
pub(super) fn release(
    env: &CniEnv,
    conf: &NetConf,
    store: &Store,
    container_id: &str,
    ifname: &str,
    target: Option<Target<'_>>,
) -> Vec<CniError> {
    let mut errors = Vec::new();
    let host = state::host_iface_name(container_id, ifname);
    let cmd = env.command.as_str();

    let req = Request::DelPod {
        container_id: container_id.to_string(),
        iface: host.clone(),
    };
    if let Err(e) = daemon::call(&conf.socket, "unregister the pod from vswitchd", req) {
        log(format_args!("{cmd} {container_id}/{ifname}: {e} (ignored)"));
    }

    match sys::link(Ns::Host, &host) {
        Ok(Some(link)) => {
            let alias = link.ifalias.as_deref().unwrap_or_default();
            let ours = match state::parse_alias(alias) {
                Some((_, id, name)) => id == container_id && name == ifname,
                // An ADD killed between creating the veth and setting its
                // alias; its record (written first) names the link.
                None => {
                    alias.is_empty()
                        && store
                            .load(container_id, ifname)
                            .is_some_and(|r| r.host_iface == host)
                }
            };
            if ours {
                if let Err(e) = sys::delete_host_link(&host) {
                    errors.push(e);
                }
            } else {
                log(format_args!(
                    "{cmd} {container_id}/{ifname}: host interface {host} has alias {alias:?}, \
                     not this attachment's; left alone"
                ));
            }
        }
        Ok(None) => {}
        Err(e) => errors.push(e),
    }

    match Ipam::find(env, conf).and_then(|ipam| ipam.del(target)) {
        Ok(()) => {}
        Err(e) => errors.push(e),
    }

    if let Err(e) = store.remove(container_id, ifname) {
        errors.push(CniError::new(
            ErrorCode::IO_FAILURE,
            "failed to remove attachment state",
            format!("{}: {e}", store.dir().display()),
        ));
    }
    errors
}
