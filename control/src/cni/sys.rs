//! Links, addresses and offloads, changed by running `ip`, `ethtool` and
//! `nsenter --net=PATH` (iproute2, ethtool, util-linux).
//!
//! Every command goes through [`run`], which turns a failure into a CNI
//! error (code 100) naming the step, the command line and its stderr. Link
//! state is read with `ip -j`, so nothing depends on human-oriented output,
//! except the one `ethtool -k` line CHECK reads.
//!
//! Design decisions:
//! - Running the tools keeps `control` free of unsafe code (`setns(2)` on a
//!   thread, raw netlink) at the cost of a few milliseconds per step, which a
//!   pod start does not notice.
//! - Tools are looked up in `PATH`, then in the usual sbin/bin directories:
//!   runtimes do not always give plugins a `PATH` that has `/usr/sbin`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;

use super::error::{CniError, ErrorCode};

/// Directories searched after `PATH`.
const FALLBACK_DIRS: &[&str] = &["/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/// Finds a tool in `PATH` or [`FALLBACK_DIRS`].
fn tool(name: &str) -> Result<PathBuf, CniError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(FALLBACK_DIRS.iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            CniError::new(
                ErrorCode::SYSTEM,
                format!("{name} not found"),
                format!(
                    "vswitch-cni needs {name} in PATH or {}",
                    FALLBACK_DIRS.join(", ")
                ),
            )
        })
}

/// Where a command runs: the root namespace, or a netns by path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ns<'a> {
    /// The plugin's own (the host's) network namespace.
    Host,
    /// The network namespace at this path (`CNI_NETNS`).
    Path(&'a str),
}

/// The outcome of a command that ran.
struct Ran {
    ok: bool,
    stdout: String,
    stderr: String,
    line: String,
}

/// Runs `program args` in `ns` and returns what it printed, whatever its
/// exit status; only a failure to start it is an error.
fn exec(ns: Ns<'_>, program: &str, args: &[&str]) -> Result<Ran, CniError> {
    let prog = tool(program)?;
    let mut cmd = match ns {
        Ns::Host => Command::new(&prog),
        Ns::Path(p) => {
            let mut c = Command::new(tool("nsenter")?);
            c.arg(format!("--net={p}")).arg("--").arg(&prog);
            c
        }
    };
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let line = command_line(&cmd);
    let out = cmd.output().map_err(|e| {
        CniError::new(
            ErrorCode::SYSTEM,
            format!("cannot run {program}"),
            format!("`{line}`: {e}"),
        )
    })?;
    Ok(Ran {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        line,
    })
}

fn command_line(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(
        cmd.get_args()
            .map(|a: &OsStr| a.to_string_lossy().into_owned()),
    );
    parts.join(" ")
}

/// Runs a command that must succeed; `what` names the step in the error
/// (`"create veth vsw1a2b3c4d"`).
pub fn run(what: &str, ns: Ns<'_>, program: &str, args: &[&str]) -> Result<String, CniError> {
    let ran = exec(ns, program, args)?;
    if ran.ok {
        return Ok(ran.stdout);
    }
    Err(CniError::new(
        ErrorCode::SYSTEM,
        format!("failed to {what}"),
        format!("`{}`: {}", ran.line, ran.stderr),
    ))
}

/// An address of a link, from `ip -j addr show`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Addr {
    /// `inet` or `inet6`.
    pub family: String,
    /// The address.
    pub local: String,
    /// Its prefix length.
    pub prefixlen: u8,
}

/// The fields used here of a link as `ip -j -d addr show` prints it (plain
/// `addr show` omits the alias).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Link {
    /// Interface name.
    pub ifname: String,
    /// MTU.
    pub mtu: u32,
    /// Hardware address.
    #[serde(default)]
    pub address: String,
    /// `UP`, `LOWER_UP`, ...
    #[serde(default)]
    pub flags: Vec<String>,
    /// The alias (`ip link set X alias ...`).
    #[serde(default)]
    pub ifalias: Option<String>,
    /// Addresses.
    #[serde(default)]
    pub addr_info: Vec<Addr>,
}

impl Link {
    /// Administratively up.
    pub fn is_up(&self) -> bool {
        self.flags.iter().any(|f| f == "UP")
    }
}

/// The link `name` in `ns`, or `None` when there is none.
pub fn link(ns: Ns<'_>, name: &str) -> Result<Option<Link>, CniError> {
    let ran = exec(ns, "ip", &["-j", "-d", "addr", "show", "dev", name])?;
    if !ran.ok {
        if ran.stderr.contains("does not exist") || ran.stderr.contains("Cannot find device") {
            return Ok(None);
        }
        return Err(CniError::new(
            ErrorCode::SYSTEM,
            format!("failed to look up interface {name}"),
            format!("`{}`: {}", ran.line, ran.stderr),
        ));
    }
    let links: Vec<Link> = serde_json::from_str(&ran.stdout).map_err(|e| {
        CniError::new(
            ErrorCode::SYSTEM,
            format!("failed to look up interface {name}"),
            format!("`{}` printed JSON that does not parse: {e}", ran.line),
        )
    })?;
    Ok(links.into_iter().find(|l| l.ifname == name))
}

/// Every veth in the host namespace.
pub fn host_veths() -> Result<Vec<Link>, CniError> {
    let out = run(
        "list veths",
        Ns::Host,
        "ip",
        &["-j", "link", "show", "type", "veth"],
    )?;
    if out.trim().is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_str(&out).map_err(|e| {
        CniError::new(
            ErrorCode::SYSTEM,
            "failed to list veths",
            format!("`ip -j link show type veth` printed JSON that does not parse: {e}"),
        )
    })
}

/// Deletes a host link; a link that is already gone is not an error.
pub fn delete_host_link(name: &str) -> Result<(), CniError> {
    let ran = exec(Ns::Host, "ip", &["link", "del", "dev", name])?;
    if ran.ok || ran.stderr.contains("Cannot find device") || ran.stderr.contains("does not exist")
    {
        return Ok(());
    }
    Err(CniError::new(
        ErrorCode::SYSTEM,
        format!("failed to delete host interface {name}"),
        format!("`{}`: {}", ran.line, ran.stderr),
    ))
}

/// True when `ethtool -k` reports `tx-checksumming: off` for `dev` in `ns`.
pub fn tx_checksum_off(ns: Ns<'_>, dev: &str) -> Result<bool, CniError> {
    let out = run(
        &format!("read offloads of {dev}"),
        ns,
        "ethtool",
        &["-k", dev],
    )?;
    Ok(out
        .lines()
        .find_map(|l| l.trim().strip_prefix("tx-checksumming:"))
        .is_some_and(|v| v.trim().starts_with("off")))
}

/// True when the netns path exists.
pub fn netns_exists(path: &str) -> bool {
    Path::new(path).exists()
}
