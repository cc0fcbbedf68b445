//! The control socket: a unix stream socket, one thread per client,
//! newline-delimited JSON (see `control::api`).
//!
//! Access: the socket is created 0600 (root only) or 0660 with the
//! configured group; on top of the file mode, each connection's peer
//! credentials (SO_PEERCRED) are checked before a byte is read: root, the
//! daemon's own uid, or a member of the configured group. A malformed
//! request gets an error reply; the connection stays usable.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use nix::unistd::{chown, Gid, Group, Uid};

use super::{answer_line, Daemon};
use control::api::{self, ReplyEnvelope};

/// Who may talk to the daemon.
#[derive(Debug, Clone, Copy)]
pub struct Access {
    /// The daemon's uid.
    pub uid: u32,
    /// The configured group, if any.
    pub gid: Option<u32>,
}

impl Access {
    /// True when a peer with these credentials may send requests.
    pub fn allows(&self, uid: u32, gid: u32) -> bool {
        uid == 0 || uid == self.uid || self.gid.is_some_and(|g| g == gid)
    }
}

/// Binds the socket (replacing a stale one) with the right mode and group.
pub fn bind(path: &Path, group: Option<&str>) -> anyhow::Result<(UnixListener, Access)> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(anyhow!(
                "{} is in use: another vswitchd is running",
                path.display()
            ));
        }
        std::fs::remove_file(path).with_context(|| format!("removing stale {}", path.display()))?;
    }
    let l = UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    let gid = match group {
        Some(g) => {
            let grp = Group::from_name(g)
                .context("looking up control.group")?
                .ok_or_else(|| anyhow!("control.group {g:?} does not exist"))?;
            chown(path, None, Some(grp.gid)).context("chown control socket")?;
            Some(grp.gid.as_raw())
        }
        None => None,
    };
    let mode = if gid.is_some() { 0o660 } else { 0o600 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    let _ = Gid::current();
    Ok((
        l,
        Access {
            uid: Uid::current().as_raw(),
            gid,
        },
    ))
}

/// Accepts clients until the daemon stops.
pub fn serve(l: UnixListener, access: Access, d: Arc<Daemon>) {
    for conn in l.incoming() {
        if d.stopping() {
            break;
        }
        let Ok(s) = conn else { continue };
        let d = Arc::clone(&d);
        let _ = std::thread::Builder::new()
            .name("vsw-client".into())
            .spawn(move || client(s, access, &d));
    }
}

fn client(mut s: UnixStream, access: Access, d: &Daemon) {
    let creds = match getsockopt(&s, PeerCredentials) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("peer credentials unavailable: {e}");
            return;
        }
    };
    if !access.allows(creds.uid(), creds.gid()) {
        tracing::warn!(
            uid = creds.uid(),
            pid = creds.pid(),
            "refused control client"
        );
        let _ = reply(
            &mut s,
            &ReplyEnvelope::err(format!(
                "permission denied: uid {} may not use this socket",
                creds.uid()
            )),
        );
        return;
    }
    let _ = s.set_read_timeout(Some(Duration::from_secs(300)));
    let Ok(rs) = s.try_clone() else { return };
    let mut r = BufReader::new(rs.take(u64::MAX));
    let mut line = String::new();
    loop {
        line.clear();
        // Bound the line length so a client cannot make us buffer forever.
        let n = match r
            .by_ref()
            .take(api::MAX_REQUEST_BYTES as u64 + 1)
            .read_line(&mut line)
        {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let rep = if n > api::MAX_REQUEST_BYTES {
            let e = ReplyEnvelope::err(format!(
                "request longer than {} bytes",
                api::MAX_REQUEST_BYTES
            ));
            let _ = reply(&mut s, &e);
            return;
        } else if line.trim().is_empty() {
            continue;
        } else {
            answer_line(d, line.trim_end())
        };
        if reply(&mut s, &rep).is_err() {
            return;
        }
    }
}

fn reply(s: &mut UnixStream, r: &ReplyEnvelope) -> std::io::Result<()> {
    let mut v = serde_json::to_vec(r).unwrap_or_else(|_| {
        b"{\"version\":1,\"ok\":false,\"error\":\"reply encoding failed\"}".to_vec()
    });
    v.push(b'\n');
    s.write_all(&v)
}
