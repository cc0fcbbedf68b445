//! What this plugin remembers about its attachments: the host veth's name
//! and alias, and one record file per attachment under
//! `<stateDir>/<network>/`, so GC can find attachments whose netns (and
//! with it the veth pair) is already gone and release their addresses.
//!
//! Design decisions:
//! - The host end's name is a pure function of `(container id, ifname)`:
//!   `vsw` + 8 hex digits of an FNV-1a hash, 11 bytes (Linux allows 15). DEL
//!   and CHECK find it without state. The pair is unique per node by the
//!   spec; a hash collision is caught because ADD refuses an existing name.
//! - The host end carries the alias `vswitch-cni <network> <id> <ifname>`,
//!   and DEL and GC delete only a link whose alias says it is theirs (or,
//!   for an ADD killed before it set the alias, that has no alias and is
//!   named in the attachment's record), never another `vsw…` interface
//!   (such as vswitchd's `vsw0`).
//! - A record is written before the veth is created, and removed last on
//!   DEL, so a crash in between leaves something GC can act on. Writes are
//!   atomic (temporary file, then rename).
//! - Records are named `<containerID>@<ifname>`: container ids cannot hold
//!   `@`, so names cannot collide.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Prefix of host-side veth names.
pub const HOST_PREFIX: &str = "vsw";

/// Prefix of the host-side veth alias.
pub const ALIAS_PREFIX: &str = "vswitch-cni";

/// The host-side veth name for an attachment: `vsw` + 8 hex digits.
pub fn host_iface_name(container_id: &str, ifname: &str) -> String {
    // FNV-1a, 32 bits: stable across builds and platforms, unlike std's hasher.
    let mut h: u32 = 0x811c_9dc5;
    for b in container_id
        .bytes()
        .chain(std::iter::once(0))
        .chain(ifname.bytes())
    {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{HOST_PREFIX}{h:08x}")
}

/// True for names [`host_iface_name`] can produce.
pub fn is_host_iface_name(name: &str) -> bool {
    name.len() == HOST_PREFIX.len() + 8
        && name.starts_with(HOST_PREFIX)
        && name[HOST_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The alias the host end of an attachment carries.
pub fn alias(network: &str, container_id: &str, ifname: &str) -> String {
    format!("{ALIAS_PREFIX} {network} {container_id} {ifname}")
}

/// `(network, container id, ifname)` of an alias [`alias`] wrote.
pub fn parse_alias(alias: &str) -> Option<(&str, &str, &str)> {
    let mut parts = alias.split(' ');
    if parts.next()? != ALIAS_PREFIX {
        return None;
    }
    let t = (parts.next()?, parts.next()?, parts.next()?);
    parts.next().is_none().then_some(t)
}

/// One attachment's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// `CNI_CONTAINERID`.
    #[serde(rename = "containerID")]
    pub container_id: String,
    /// `CNI_IFNAME`.
    pub ifname: String,
    /// `CNI_NETNS` at ADD.
    pub netns: String,
    /// Host-side veth name.
    #[serde(rename = "hostIface")]
    pub host_iface: String,
    /// The pod's address (`10.244.1.5/24`), once IPAM gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// The records of one network.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The store of `network` under `state_dir`.
    pub fn new(state_dir: &Path, network: &str) -> Store {
        Store {
            dir: state_dir.join(network),
        }
    }

    /// The directory holding the records.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file(&self, container_id: &str, ifname: &str) -> PathBuf {
        self.dir.join(format!("{container_id}@{ifname}"))
    }

    /// Writes (or replaces) a record.
    pub fn save(&self, r: &Record) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let path = self.file(&r.container_id, &r.ifname);
        // Record names start with a letter or digit; temporaries with a dot.
        let tmp = self.dir.join(format!(
            ".{}@{}.{}",
            r.container_id,
            r.ifname,
            std::process::id()
        ));
        let body = serde_json::to_vec(r).map_err(io::Error::other)?;
        fs::write(&tmp, body)?;
        fs::rename(&tmp, &path)
    }

    /// The record of an attachment, if there is a readable one.
    pub fn load(&self, container_id: &str, ifname: &str) -> Option<Record> {
        let body = fs::read(self.file(container_id, ifname)).ok()?;
        serde_json::from_slice(&body).ok()
    }

    /// Removes a record; a missing one is fine.
    pub fn remove(&self, container_id: &str, ifname: &str) -> io::Result<()> {
        match fs::remove_file(self.file(container_id, ifname)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Every readable record; unreadable files are reported in the second
    /// list (path and reason) and skipped.
    pub fn list(&self) -> io::Result<(Vec<Record>, Vec<String>)> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
            Err(e) => return Err(e),
        };
        let mut records = Vec::new();
        let mut bad = Vec::new();
        for entry in entries {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !name.contains('@') || name.starts_with('.') {
                continue;
            }
            match fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Record>(&b).map_err(|e| e.to_string()))
            {
                Ok(r) => records.push(r),
                Err(e) => bad.push(format!("{}: {e}", path.display())),
            }
        }
        Ok((records, bad))
    }
}
