//! The host port: a veth pair joining the node's own stack to the switch.
//!
//! The host end (`host_port`, e.g. `vsw0`) lives in vswitchd's namespace and
//! holds the pods' gateway address, so the kernel routes the pod CIDR to it
//! and pods reach the host (and, through the host's routing, the rest of
//! the world). The other end (`<host_port>-dp`) is attached to the switch as
//! its `LOCAL` port. TX checksum offload is turned off on the host end: the
//! kernel would otherwise hand the switch frames with partial checksums that
//! AF_XDP cannot complete (notes/afxdp-veth.md §3).

use std::net::Ipv4Addr;
use std::process::Command;

use anyhow::{bail, Context};

/// The veth pair; removed when dropped.
#[derive(Debug)]
pub struct HostPort {
    host: String,
    dp: String,
}

/// Runs `ip`/`ethtool` and turns a failure into an error naming the command.
pub fn run(cmd: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .with_context(|| format!("running {cmd} (is it installed?)"))?;
    if !out.status.success() {
        bail!(
            "{cmd} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// A line from `/sys/class/net/IFACE/FILE`, trimmed.
pub fn read_sys(iface: &str, file: &str) -> Option<String> {
    std::fs::read_to_string(format!("/sys/class/net/{iface}/{file}"))
        .ok()
        .map(|s| s.trim().to_string())
}

impl HostPort {
    /// Creates (or recreates) the pair, addresses and brings it up.
    pub fn create(host: &str, gateway: Ipv4Addr, prefix: u8, mtu: u32) -> anyhow::Result<HostPort> {
        let mut dp = format!("{host}-dp");
        dp.truncate(15);
        if read_sys(host, "ifindex").is_some() {
            tracing::warn!(host, "host port exists (unclean shutdown?); recreating it");
            run("ip", &["link", "del", host])?;
        }
        run(
            "ip",
            &["link", "add", host, "type", "veth", "peer", "name", &dp],
        )?;
        let hp = HostPort {
            host: host.to_string(),
            dp: dp.clone(),
        };
        let mtu = mtu.to_string();
        run("ip", &["link", "set", host, "mtu", &mtu])?;
        run("ip", &["link", "set", &dp, "mtu", &mtu])?;
        run(
            "ip",
            &["addr", "add", &format!("{gateway}/{prefix}"), "dev", host],
        )?;
        run("ethtool", &["-K", host, "tx", "off"])?;
        run("ip", &["link", "set", &dp, "up"])?;
        run("ip", &["link", "set", host, "up"])?;
        tracing::info!(host, datapath_side = %dp, %gateway, "host port created");
        Ok(hp)
    }

    /// The end the switch attaches to.
    pub fn datapath_side(&self) -> &str {
        &self.dp
    }

    /// The end that holds the gateway address.
    pub fn host_side(&self) -> &str {
        &self.host
    }
}

impl Drop for HostPort {
    fn drop(&mut self) {
        if let Err(e) = run("ip", &["link", "del", &self.host]) {
            tracing::warn!("removing host port: {e}");
        }
    }
}
