//! `pktgen`: packet generator and sink for the vswitch benchmarks.
//!
//! ```text
//! pktgen send --iface IF --dst-mac MAC --src-ip IP --dst-ip IP [--src-mac MAC] [--size 60]
//!             [--count N | --duration S] [--rate PPS|BITS|max] [--flows N]
//!             [--vxlan VNI,OUTER_SRC,OUTER_DST] [--backend afxdp|afpacket|auto] [--queue Q]
//!             [--queues N] [--cpu C | --cpus LIST] [--batch N] [--dst-port P]
//!             [--dst-ports N] [--dst-ips N]
//!             [--tx-mode port|live] [--json]
//! pktgen sink --iface IF [--count N | --duration S] [--expect N] [--backend ...] [--queue Q]
//!             [--queues N] [--cpu C | --cpus LIST] [--json]
//! ```
//!
//! This file is the edge: it parses the command line, checks what needs
//! the system (the interface exists and has the queues, the CPUs are
//! there), pins the threads, opens the ports with
//! `vswitch::port::open::open_port`, and turns SIGINT/SIGTERM into a clean
//! stop through a signalfd (the signals are blocked, so no handler). The
//! work is in `vswitch_benches::pktgen`.
//!
//! `--queues N` (AF_XDP only) opens one socket per queue `Q..Q+N-1`, one
//! after the other on the main thread (libxdp shares one program per
//! interface; they are closed there too), then runs each on its own
//! thread, thread `i` pinned to `--cpus[i % len]`, under
//! `pktgen::parallel`: the main thread polls the signalfd and prints the
//! combined progress line. `send` splits the
//! flows (thread `i` owns flows `f % N == i`), the count and the rate
//! (`pktgen::tx::Share`); `sink` merges the per-queue trackers. One queue
//! keeps the single-threaded path.
//!
//! `send --tx-mode live` transmits with BPF_PROG_RUN live frames
//! (`pktgen::xdp::LiveGen`) from a second thread; a stop ends its running
//! kernel call with SIGUSR1, for which this file installs a no-op handler:
//! the one `unsafe` block of the binary.
//!
//! Output contract: a progress line a second on stderr, then one summary
//! line on stdout (or one JSON object with `--json`). Exit status 0 on
//! success; otherwise one line `pktgen: <message>` on stderr, status 2 for
//! a usage error and 1 for anything else (no such interface, the port
//! cannot be opened).
#![deny(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::AtomicU64;

use anyhow::{anyhow, bail, Context, Result};
use clap::error::ErrorKind;
use clap::Parser;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use vswitch::port::open::open_port;
use vswitch::port::Port;
use vswitch_benches::pktgen::cli::{Cli, Command, PortArgs, Rate, SendArgs, SinkArgs, TxMode};
use vswitch_benches::pktgen::frame::Template;
use vswitch_benches::pktgen::report::{
    rx_progress_line, tx_progress_line, SendSummary, SinkSummary, LATENCY_NOTE,
};
use vswitch_benches::pktgen::tracker::Tracker;
use vswitch_benches::pktgen::tx::{Share, TxStats};
use vswitch_benches::pktgen::xdp::LiveGen;
use vswitch_benches::pktgen::{parallel, rx, tx, Hooks, MacAddr};

/// Ends a running live-frame kernel call (see [`install_wake_handler`]).
const WAKE: Signal = Signal::SIGUSR1;

/// Source MAC when neither `--src-mac` nor the interface gives one.
const FALLBACK_SRC_MAC: MacAddr = MacAddr([0x02, 0x70, 0x67, 0x00, 0x00, 0x00]);

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let checked = match &cli.command {
        Command::Send(a) => a.check_live().and_then(|()| a.port.check_queues()),
        Command::Sink(a) => a.port.check_queues(),
    };
    if let Err(msg) = checked {
        return fail(2, &msg);
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(1, &format!("{e:#}")),
    }
}

fn run(cli: Cli) -> Result<()> {
    let mut hooks = Signals::install()?;
    match cli.command {
        Command::Send(a) => send(&a, &mut hooks),
        Command::Sink(a) => sink(&a, &mut hooks),
    }
}

fn send(a: &SendArgs, hooks: &mut Signals) -> Result<()> {
    check_iface(&a.port.iface)?;
    let src_mac = a
        .src_mac
        .or_else(|| iface_mac(&a.port.iface))
        .unwrap_or(FALLBACK_SRC_MAC);
    let spec = a.frame_spec(src_mac);
    let tpl = Template::new(&spec)?;
    let rate = match a.rate {
        Rate::Max => "max".to_string(),
        Rate::Pps(r) => format!("{r}pps"),
        Rate::Bits(b) => format!("{b}bps ({}pps)", a.rate.pps(a.size).unwrap_or(0)),
    };
    if a.tx_mode == TxMode::Live {
        if let Some(cpu) = a.port.cpu_for(0) {
            // The sending thread inherits this affinity.
            pin(&a.port, cpu)?;
        }
        install_wake_handler()?;
        let mut g = LiveGen::new(&spec, &tpl, &a.port.iface)?;
        hooks.progress(&format!(
            "pktgen send: {} tx-mode=live (BPF_PROG_RUN live frames, XDP_TX) size={} flows={} rate={rate}",
            a.port.iface, a.size, a.flows
        ));
        let st = g.send(&a.tx_config(), WAKE, hooks)?;
        let s = SendSummary::new(&st, tpl.len(), a.flows, &a.port.iface, "xdp-live");
        let out = if a.port.json {
            serde_json::to_string(&s)?
        } else {
            s.line()
        };
        return emit(&out);
    }
    check_queue_count(&a.port, "tx")?;
    if a.port.queues > 1 {
        return send_queues(a, &tpl, &rate, hooks);
    }
    let mut port = open(&a.port)?;
    hooks.progress(&format!(
        "pktgen send: {} backend={} {} size={} flows={} rate={rate}",
        a.port.iface,
        port.backend(),
        port.detail(),
        a.size,
        a.flows
    ));
    let st = tx::send(port.as_mut(), &tpl, &a.tx_config(), hooks);
    let s = SendSummary::new(&st, tpl.len(), a.flows, &a.port.iface, port.backend());
    drop(port);
    let out = if a.port.json {
        serde_json::to_string(&s)?
    } else {
        s.line()
    };
    emit(&out)
}

/// `send --queues N`: one port and thread per queue, the flows split.
fn send_queues(a: &SendArgs, tpl: &Template, rate: &str, hooks: &mut Signals) -> Result<()> {
    let ports = open_queues(&a.port)?;
    let backend = ports[0].backend();
    hooks.progress(&format!(
        "pktgen send: {} queues={} backend={} {} size={} flows={} rate={rate}",
        a.port.iface,
        ports.len(),
        backend,
        ports[0].detail(),
        a.size,
        a.flows
    ));
    if a.flows < a.port.queues {
        hooks.progress(&format!(
            "note: --flows {} < --queues {}: a flow stays on one queue, so queues {}.. send nothing",
            a.flows,
            a.port.queues,
            a.port.queue + a.flows
        ));
    }
    let cfgs = Share::split(&a.tx_config(), a.flows, a.port.queues);
    let inputs: Vec<_> = ports.into_iter().zip(cfgs).collect();
    let runs = parallel(
        inputs,
        hooks,
        |frames, bytes, ns, _| tx_progress_line(frames, bytes, ns),
        |i, (mut port, cfg), h| {
            pin_thread(&a.port, i)?;
            let st = tx::send(port.as_mut(), tpl, &cfg, h);
            Ok((port, st))
        },
    )
    .map_err(|e| anyhow!(e))?;
    // Closed one after the other here, as they were opened.
    let runs: Vec<TxStats> = runs.into_iter().map(|(_, st)| st).collect();
    let mut st = TxStats::default();
    for r in &runs {
        st.add(r);
    }
    let s = SendSummary::new(&st, tpl.len(), a.flows, &a.port.iface, backend)
        .with_queues(runs.iter().map(|r| r.sent).collect());
    let out = if a.port.json {
        serde_json::to_string(&s)?
    } else {
        s.line()
    };
    emit(&out)
}

fn sink(a: &SinkArgs, hooks: &mut Signals) -> Result<()> {
    check_iface(&a.port.iface)?;
    check_queue_count(&a.port, "rx")?;
    if a.port.queues > 1 {
        return sink_queues(a, hooks);
    }
    let mut port = open(&a.port)?;
    hooks.progress(&format!(
        "pktgen sink: {} backend={} {} ready",
        a.port.iface,
        port.backend(),
        port.detail()
    ));
    let (t, _) = rx::sink(port.as_mut(), &a.rx_config(), hooks);
    let s = SinkSummary::new(&t, a.expect, &a.port.iface, port.backend());
    drop(port);
    emit_sink(a, &s, &t, hooks)
}

/// `sink --queues N`: one port, thread and tracker per queue, merged at
/// the end; `--count` is one budget for all.
fn sink_queues(a: &SinkArgs, hooks: &mut Signals) -> Result<()> {
    let ports = open_queues(&a.port)?;
    let backend = ports[0].backend();
    hooks.progress(&format!(
        "pktgen sink: {} queues={} backend={} {} ready",
        a.port.iface,
        ports.len(),
        backend,
        ports[0].detail()
    ));
    let cfg = a.rx_config();
    let budget = AtomicU64::new(cfg.count.unwrap_or(u64::MAX));
    let runs = parallel(ports, hooks, rx_progress_line, |i, mut port, h| {
        pin_thread(&a.port, i)?;
        let (t, _) = rx::sink_shared(port.as_mut(), &cfg, &budget, h);
        Ok((port, t))
    })
    .map_err(|e| anyhow!(e))?;
    // Closed one after the other here, as they were opened.
    let runs: Vec<Tracker> = runs.into_iter().map(|(_, t)| t).collect();
    let mut t = Tracker::new();
    for r in &runs {
        t.merge(r);
    }
    let s = SinkSummary::new(&t, a.expect, &a.port.iface, backend)
        .with_queues(runs.iter().map(|r| r.received).collect());
    emit_sink(a, &s, &t, hooks)
}

fn emit_sink(a: &SinkArgs, s: &SinkSummary, t: &Tracker, hooks: &mut Signals) -> Result<()> {
    if a.port.json {
        emit(&serde_json::to_string(s)?)
    } else {
        emit(&s.line())?;
        if t.latency.count() > 0 {
            hooks.progress(&format!("note: {LATENCY_NOTE}"));
        }
        Ok(())
    }
}

/// Pins the thread (if asked) and opens the port.
fn open(p: &PortArgs) -> Result<Box<dyn Port>> {
    if let Some(cpu) = p.cpu_for(0) {
        pin(p, cpu)?;
    }
    Ok(open_port(&p.iface, p.queue, p.backend)?)
}

/// Checks every CPU of `--cpus`, then opens one port per queue, in
/// order, on this thread.
fn open_queues(p: &PortArgs) -> Result<Vec<Box<dyn Port>>> {
    for i in 0..p.queues as usize {
        if let Some(cpu) = p.cpu_for(i) {
            check_cpu(cpu, "--cpus")?;
        }
    }
    let backend = p.backend_for_queues();
    p.queue_ids()
        .map(|q| open_port(&p.iface, q, backend).with_context(|| format!("queue {q}")))
        .collect()
}

/// Pins worker thread `i` (queue `--queue + i`) as `--cpus` says.
fn pin_thread(p: &PortArgs, i: usize) -> Result<(), String> {
    match p.cpu_for(i) {
        Some(cpu) => pin(p, cpu).map_err(|e| format!("thread {i}: {e:#}")),
        None => Ok(()),
    }
}

/// Fails when `--queue`/`--queues` name a queue `iface` does not have
/// (`dir`: `rx` for the sink, `tx` for the sender), from
/// /sys/class/net/IF/queues. AF_PACKET is not bound to a queue; without
/// sysfs the socket's bind reports it instead.
fn check_queue_count(p: &PortArgs, dir: &str) -> Result<()> {
    if p.backend_for_queues() == vswitch::port::open::Backend::Afpacket {
        return Ok(());
    }
    let Ok(entries) = std::fs::read_dir(format!("/sys/class/net/{}/queues", p.iface)) else {
        return Ok(());
    };
    let prefix = format!("{dir}-");
    let have = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .count() as u64;
    let last = u64::from(p.queue) + u64::from(p.queues) - 1;
    if last >= have {
        let asked = if p.queues > 1 {
            format!(
                "--queue {} --queues {} (queues {}..={last})",
                p.queue, p.queues, p.queue
            )
        } else {
            format!("--queue {}", p.queue)
        };
        bail!(
            "{asked}: interface {} has {have} {dir} queue{} (0..={})",
            p.iface,
            if have == 1 { "" } else { "s" },
            have.saturating_sub(1)
        );
    }
    Ok(())
}

fn check_iface(iface: &str) -> Result<()> {
    match nix::net::if_::if_nametoindex(iface) {
        Ok(_) => Ok(()),
        Err(e) => bail!("interface {iface} not found ({})", e.desc()),
    }
}

/// The interface's own MAC, from sysfs.
fn iface_mac(iface: &str) -> Option<MacAddr> {
    std::fs::read_to_string(format!("/sys/class/net/{iface}/address"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Pins the calling thread to `cpu`, which `p`'s `--cpu` or `--cpus` gave.
fn pin(p: &PortArgs, cpu: usize) -> Result<()> {
    let flag = if p.cpus.is_some() { "--cpus" } else { "--cpu" };
    check_cpu(cpu, flag)?;
    if !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
        bail!("{flag}: cannot pin the thread to CPU {cpu}");
    }
    Ok(())
}

/// Fails unless this process may run on `cpu` (`flag` names the option).
fn check_cpu(cpu: usize, flag: &str) -> Result<()> {
    let ids = core_affinity::get_core_ids().unwrap_or_default();
    if !ids.iter().any(|c| c.id == cpu) {
        let list: Vec<String> = ids.iter().map(|c| c.id.to_string()).collect();
        let what = if flag == "--cpu" {
            format!("--cpu {cpu}")
        } else {
            format!("{flag}: CPU {cpu}")
        };
        bail!(
            "{what}: no such CPU (this process may use {})",
            list.join(",")
        );
    }
    Ok(())
}

/// A no-op handler for [`WAKE`], without `SA_RESTART`: the signal only
/// makes the live sender's BPF_PROG_RUN call return `EINTR`.
#[allow(unsafe_code)]
fn install_wake_handler() -> Result<()> {
    extern "C" fn wake(_: nix::libc::c_int) {}
    let act = SigAction::new(SigHandler::Handler(wake), SaFlags::empty(), SigSet::empty());
    // SAFETY: the handler does nothing, so it is async-signal-safe, and
    // no other code in this process handles SIGUSR1.
    unsafe { nix::sys::signal::sigaction(WAKE, &act) }
        .map_err(|e| anyhow!("sigaction(SIGUSR1): {}", e.desc()))?;
    Ok(())
}

/// SIGINT and SIGTERM, blocked and read from a signalfd: a run stops at
/// its next check and still prints its summary.
struct Signals {
    fd: SignalFd,
    caught: bool,
}

impl Signals {
    fn install() -> Result<Signals> {
        let mut set = SigSet::empty();
        set.add(Signal::SIGINT);
        set.add(Signal::SIGTERM);
        // Before any thread starts: the workers inherit the mask, so only
        // the signalfd sees these signals.
        set.thread_block().context("block SIGINT/SIGTERM")?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| anyhow!("signalfd: {}", e.desc()))?;
        Ok(Signals { fd, caught: false })
    }
}

impl Hooks for Signals {
    fn stop(&mut self) -> bool {
        if !self.caught {
            self.caught = matches!(self.fd.read_signal(), Ok(Some(_)));
        }
        self.caught
    }

    fn progress(&mut self, line: &str) {
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}

/// Writes the summary line; a reader that went away is not an error.
fn emit(line: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow!("cannot write the summary: {e}"))
        }
        _ => Ok(()),
    }
}

/// `--help` and `--version` print as clap prints them; every other clap
/// error becomes one line and status 2.
fn usage_error(e: &clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            fail(2, "no command given: send or sink (try 'pktgen --help')")
        }
        _ => fail(
            2,
            &control::oneline::clap_error_line(&e.render().to_string(), "pktgen"),
        ),
    }
}

/// Prints `pktgen: <msg>` as one line on stderr and returns `code`.
fn fail(code: u8, msg: &str) -> ExitCode {
    let msg = control::oneline::one_line(msg);
    let _ = writeln!(std::io::stderr().lock(), "pktgen: {msg}");
    ExitCode::from(code)
}
