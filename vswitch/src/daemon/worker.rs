//! A worker thread: the poll-mode loop around one [`Switch`].
//!
//! The loop: apply control commands (attach/detach a port), poll every
//! owned port once, kick transmits; when a turn finds no work for longer
//! than `spin_us`, block in `poll()` on the ports' fds and the worker's
//! doorbell (notes/afxdp-veth.md: on veth the kernel's receive work runs on
//! the same core, and a worker that spins starves it — blocking when idle
//! was worth ~3x there). Commands and the stop flag ring the doorbell, so a
//! sleeping worker reacts at once; the poll timeout (100 ms) bounds how
//! stale anything else can get.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, Sender};

use super::config::IdleMode;
use crate::port::Port;
use crate::switch::{Inbox, Switch};
use crate::sys;

/// What the control thread asks of a worker.
#[derive(Debug)]
pub enum WorkerCmd {
    /// Start polling `port` as pipeline slot `slot`.
    Attach {
        /// Pipeline slot (already published).
        slot: u16,
        /// OpenFlow number.
        ofport: u32,
        /// The opened port.
        port: Box<dyn Port>,
        /// Acknowledged once attached.
        done: Sender<()>,
    },
    /// Stop polling slot `slot` and hand the port back (to be closed).
    Detach {
        /// Pipeline slot.
        slot: u16,
        /// Receives the port, if this worker had it.
        done: Sender<Option<Box<dyn Port>>>,
    },
    /// Report the ports this worker polls: `(ofport, name, backend, detail)`.
    Ports {
        /// Receives the list.
        done: Sender<Vec<(u32, String, &'static str, String)>>,
    },
}

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Block or spin when idle.
    pub idle: IdleMode,
    /// Keep polling this long after the last packet before blocking.
    pub spin: Duration,
    /// Pin to this core.
    pub core: Option<usize>,
    /// SCHED_FIFO priority (0: leave SCHED_OTHER).
    pub rt_priority: u8,
}

/// Monotonic nanoseconds since `start` (the datapath's clock).
#[inline]
pub fn now_ns(start: Instant) -> u64 {
    start.elapsed().as_nanos() as u64
}

/// Runs the loop until `stop` is set; returns the switch (its ports are
/// closed when it is dropped).
pub fn run(
    mut sw: Switch,
    cmds: Receiver<WorkerCmd>,
    inbox: Arc<Inbox>,
    stop: Arc<AtomicBool>,
    opts: WorkerOptions,
    start: Instant,
) -> Switch {
    let id = sw.worker();
    if let Some(core) = opts.core {
        if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
            tracing::warn!(worker = id, core, "could not pin worker to core");
        }
    }
    if opts.rt_priority > 0 {
        match sys::set_fifo(opts.rt_priority) {
            Ok(()) => tracing::info!(
                worker = id,
                priority = opts.rt_priority,
                "worker runs SCHED_FIFO"
            ),
            Err(e) => tracing::warn!(worker = id, "SCHED_FIFO refused: {e}"),
        }
    }
    tracing::info!(worker = id, core = ?opts.core, idle = ?opts.idle, "worker started");
    let spin_ns = opts.spin.as_nanos() as u64;
    let mut fds: Vec<RawFd> = Vec::with_capacity(64);
    let mut last_work = now_ns(start);
    while !stop.load(Ordering::Acquire) {
        while let Ok(cmd) = cmds.try_recv() {
            apply(&mut sw, cmd);
        }
        let now = now_ns(start);
        let n = sw.poll(now);
        sw.kick();
        if n > 0 {
            last_work = now;
            continue;
        }
        if opts.idle == IdleMode::Spin || now.saturating_sub(last_work) < spin_ns || !sw.can_block()
        {
            std::hint::spin_loop();
            if !sw.can_block() && opts.idle == IdleMode::Block {
                // In-memory ports cannot wake us: nap instead of spinning.
                std::thread::sleep(Duration::from_micros(200));
            }
            continue;
        }
        inbox.sleeping.store(true, Ordering::Release);
        sw.poll_fds(&mut fds);
        let bell = fds.iter().position(|&f| f == inbox.bell.raw());
        // Re-check after announcing sleep: a parcel or command that raced in
        // before the flag was visible would otherwise wait for the timeout.
        let mut rung = true;
        if cmds.is_empty() && !stop.load(Ordering::Acquire) {
            match sys::poll_ready(&fds, 100) {
                // Only a rung doorbell needs its (otherwise EAGAIN) read:
                // one syscall less per wake-up by traffic.
                Ok(ready) => rung = bell.is_none_or(|b| b >= 64 || ready & 1 << b != 0),
                Err(e) => tracing::warn!(worker = id, "poll failed: {e}"),
            }
        }
        inbox.sleeping.store(false, Ordering::Release);
        if rung {
            inbox.bell.clear();
        }
    }
    tracing::info!(worker = id, "worker stopped");
    sw
}

fn apply(sw: &mut Switch, cmd: WorkerCmd) {
    match cmd {
        WorkerCmd::Attach {
            slot,
            ofport,
            port,
            done,
        } => {
            tracing::info!(
                worker = sw.worker(),
                ofport,
                port = port.name(),
                "port attached"
            );
            sw.attach(slot, ofport, port);
            let _ = done.send(());
        }
        WorkerCmd::Detach { slot, done } => {
            let _ = done.send(sw.detach(slot));
        }
        WorkerCmd::Ports { done } => {
            let _ = done.send(sw.ports());
        }
    }
}
