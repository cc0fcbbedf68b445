//! `vswitchd --config FILE`: the vswitch daemon.
//!
//! Starts the datapath and the control socket; ready when `ofctl show`
//! answers. SIGTERM or SIGINT stops it gracefully: workers stop, ports
//! close (XDP programs detached), the host port and the socket are removed.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use nix::sys::signal::{SigSet, Signal};
use tracing_subscriber::EnvFilter;
use vswitch::daemon::{config::Config, server, Daemon};

/// The vswitch daemon.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Configuration file (TOML).
    #[arg(long)]
    config: PathBuf,
    /// Control socket (overrides control.socket).
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Worker threads (overrides datapath.workers).
    #[arg(long)]
    workers: Option<usize>,
    /// Port backend: afxdp, afpacket or auto (overrides datapath.backend).
    #[arg(long)]
    backend: Option<String>,
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run() {
        eprintln!("vswitchd: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut cfg = Config::load(&args.config)?;
    if let Some(s) = args.socket {
        cfg.control.socket = s;
    }
    if let Some(w) = args.workers {
        cfg.datapath.workers = w;
    }
    if let Some(b) = args.backend {
        cfg.datapath.backend = b;
    }
    cfg.validate()?;

    // Block the stop signals in every thread; the main thread waits for them.
    let mut sigs = SigSet::empty();
    sigs.add(Signal::SIGTERM);
    sigs.add(Signal::SIGINT);
    sigs.thread_block().context("blocking signals")?;

    let socket = cfg.control.socket.clone();
    let group = cfg.control.group.clone();
    let daemon = Daemon::start(cfg)?;
    let (listener, access) = match server::bind(&socket, group.as_deref()) {
        Ok(x) => x,
        Err(e) => {
            daemon.shutdown();
            return Err(e);
        }
    };
    {
        let d = Arc::clone(&daemon);
        std::thread::Builder::new()
            .name("vsw-control".into())
            .spawn(move || server::serve(listener, access, d))?;
    }
    {
        let d = Arc::clone(&daemon);
        std::thread::Builder::new()
            .name("vsw-housekeeping".into())
            .spawn(move || {
                while !d.stopping() {
                    std::thread::sleep(Duration::from_secs(1));
                    d.housekeeping();
                }
            })?;
    }
    tracing::info!(socket = %socket.display(), node = %daemon.config.node.name, "vswitchd ready");
    let sig = sigs.wait().context("waiting for signals")?;
    tracing::info!(%sig, "stopping");
    daemon.shutdown();
    let _ = std::fs::remove_file(&socket);
    Ok(())
}
