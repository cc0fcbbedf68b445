//! AF_XDP port (xsk-rs / libxdp): the default kernel backend.
//!
//! One AF_XDP socket per (interface, queue), bound in copy mode with
//! `XDP_USE_NEED_WAKEUP` (veth has no zero-copy AF_XDP), with its own UMEM
//! of [`AfXdpOptions::frames`] frames of 2048 bytes and rings of
//! [`AfXdpOptions::ring_size`] slots (small rings collapse throughput under
//! load: notes/afxdp-veth.md §4). libxdp attaches its `xsk_def_prog`; the
//! port asks for native (driver) mode first and falls back to SKB (generic)
//! mode, then reads back from rtnetlink what is really attached and reports
//! it in [`Port::detail`] (`xdp=native bind=copy,need_wakeup ...`).
//!
//! Data path: received frames are *copied* from the UMEM into the worker's
//! [`PacketPool`] and the UMEM frame goes straight back to the fill ring;
//! transmitted frames are copied from the pool into a free UMEM frame. One
//! memcpy per packet each way keeps ownership simple (the pool never lends
//! memory to the kernel). Sharing one UMEM per worker with the pool, so that
//! descriptors move without copying, is the planned optimisation.
//!
//! Copy-mode transmit happens only inside `sendto`/`poll`, and each `sendto`
//! sends at most 32 descriptors (the kernel's `TX_BATCH_SIZE`), so the port
//! kicks after every burst that produced frames and again from
//! [`Port::kick`] while the tx ring is not empty. If the tx ring is full the
//! rest of a burst is dropped.
//!
//! Dropping the port deletes the socket; libxdp then detaches the program
//! (reference counted per interface). A process killed with SIGKILL leaves
//! `xsk_def_prog` attached with an empty map: frames then fall through to
//! the host stack until the switch is restarted, which reuses the program;
//! the killed process's reference then keeps it attached even after the
//! next clean exit, so start-up should clear stale programs from the
//! interfaces it owns with [`sys::detach_xdp`].
//!
//! The uplink, which also carries the node's own traffic, uses the
//! switch's program instead ([`AfXdpPort::open_uplink`], [`steer`]): only
//! VXLAN to the node's VTEP is redirected, the rest goes to the kernel.
//!
//! # Unsafe
//! xsk-rs makes ring and UMEM access `unsafe`; this module upholds its two
//! rules and nothing else needs unsafe here:
//! 1. A frame given to the kernel (fill or tx ring) is not touched until it
//!    comes back (rx or completion ring). The frame ledger (`frames.rs`)
//!    tracks the owner of every frame, and the port reads or writes a
//!    frame's memory only when the ledger says userspace owns it (a free
//!    frame being filled for transmit) or that the kernel just returned it
//!    (a descriptor consumed from the rx ring for a frame on the receive
//!    side).
//! 2. Only descriptors of this port's own UMEM are used: the canonical
//!    descriptors `Umem::new` returned, indexed by frame number, and
//!    descriptors read from this socket's rings, checked to lie inside the
//!    UMEM before use.
//!
//! The same module mounts bpffs if missing ([`sys::ensure_bpffs`], one
//! `mount(2)`).
#![expect(
    unsafe_code,
    reason = "xsk-rs ring and UMEM access is unsafe; invariants in the module doc"
)]

mod frames;
pub mod steer;
pub mod sys;

use std::io::{self, Write as _};
use std::num::NonZeroU32;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use xsk_rs::config::{
    BindFlags, FrameSize, Interface, QueueSize, SocketConfig, UmemConfig, XdpFlags,
};
use xsk_rs::{CompQueue, FillQueue, FrameDesc, RxQueue, Socket, TxQueue, Umem};

pub use frames::FrameAccounting;
pub use sys::{XdpAttach, XdpLinkState};

use super::open::{os_reason, PortError};
use super::{Desc, PacketPool, Port, FRAME_SIZE};
use crate::pipeline::Batch;
use frames::FrameLedger;

const BACKEND: &str = "afxdp";
/// UMEM frame size: the pool's frame size, so any pool frame fits.
const UMEM_FRAME: usize = FRAME_SIZE;
/// Completions reclaimed per ring read.
const RECLAIM_BATCH: usize = 256;
/// Descriptors a copy-mode `sendto` transmits at most (kernel TX_BATCH_SIZE).
const KERNEL_TX_BATCH: u32 = 32;
/// How long socket creation retries EBUSY, waiting for the kernel to
/// release a queue whose previous socket was just closed (deferred work).
const BUSY_WAIT: Duration = Duration::from_millis(250);

/// Which XDP attach mode to ask libxdp for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum XdpMode {
    /// Native (driver) mode, falling back to SKB (generic) mode.
    #[default]
    Auto,
    /// Native mode only.
    Native,
    /// SKB (generic) mode only.
    Skb,
}

/// AF_XDP port options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AfXdpOptions {
    /// UMEM frames (2048 bytes each). At least `2 * ring_size` so receive
    /// and transmit each can fill their rings.
    pub frames: u32,
    /// Slots in each of the fill, completion, rx and tx rings (power of two).
    pub ring_size: u32,
    /// Attach mode to ask for.
    pub mode: XdpMode,
    /// Bind with `XDP_USE_NEED_WAKEUP` (kick only when the kernel asks).
    pub need_wakeup: bool,
}

impl Default for AfXdpOptions {
    fn default() -> AfXdpOptions {
        AfXdpOptions {
            frames: 4096,
            ring_size: 2048,
            mode: XdpMode::Auto,
            need_wakeup: true,
        }
    }
}

/// The socket's `XDP_STATISTICS` (kernel counters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XdpStats {
    /// Received frames dropped for other reasons (e.g. larger than a frame).
    pub rx_dropped: u64,
    /// Received frames dropped: invalid descriptor.
    pub rx_invalid_descs: u64,
    /// Transmit descriptors rejected as invalid.
    pub tx_invalid_descs: u64,
    /// Received frames dropped: rx ring full (userspace too slow).
    pub rx_ring_full: u64,
    /// Times the kernel found the fill ring empty.
    pub rx_fill_ring_empty_descs: u64,
    /// Kicks that found the tx ring empty.
    pub tx_ring_empty_descs: u64,
}

/// Port counters kept by userspace (single writer: the owning worker).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AfXdpCounters {
    /// Frames received into the pool.
    pub rx_packets: u64,
    /// Received frames dropped: no free pool frame.
    pub rx_no_buffer: u64,
    /// Rx or completion descriptors that named no frame of ours (never
    /// expected; the memory is not touched).
    pub bad_descs: u64,
    /// Frames produced to the tx ring.
    pub tx_packets: u64,
    /// Frames dropped on transmit: tx ring full or no free UMEM frame.
    pub tx_ring_full: u64,
    /// Frames dropped on transmit: larger than a UMEM frame's data room.
    pub tx_oversize: u64,
    /// `sendto` kicks issued.
    pub tx_kicks: u64,
    /// Kicks that failed with an unexpected error.
    pub tx_kick_errors: u64,
}

/// An AF_XDP socket on one (interface, queue).
pub struct AfXdpPort {
    name: String,
    queue: u32,
    ifindex: u32,
    attach: XdpAttach,
    prog_id: u32,
    opts: AfXdpOptions,
    rx: RxQueue,
    tx: TxQueue,
    fill: FillQueue,
    comp: CompQueue,
    umem: Umem,
    /// `Umem::new`'s descriptors, indexed by frame number.
    descs: Vec<FrameDesc>,
    ledger: FrameLedger,
    /// Frames the port keeps on the receive side (fill + rx rings).
    fill_target: u32,
    /// Packet data room of a UMEM frame (frame minus XDP headroom).
    mtu: usize,
    /// Descriptors read from the rx or completion ring.
    scratch: Vec<FrameDesc>,
    /// Descriptors being produced to the fill or tx ring.
    staged: Vec<FrameDesc>,
    counters: AfXdpCounters,
    /// The uplink XDP program this socket is registered in
    /// ([`AfXdpPort::open_uplink`]); `None` for libxdp's program. Declared
    /// last so that the socket (rings, UMEM) closes before the program is
    /// detached.
    steering: Option<Arc<steer::UplinkSteering>>,
}

impl std::fmt::Debug for AfXdpPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AfXdpPort")
            .field("name", &self.name)
            .field("queue", &self.queue)
            .field("attach", &self.attach)
            .field("frames", &self.ledger.accounting())
            .finish_non_exhaustive()
    }
}

/// The OS error inside an xsk-rs error, or the error's text.
fn os_error(e: &dyn std::error::Error) -> io::Error {
    match e
        .source()
        .and_then(|s| s.downcast_ref::<io::Error>())
        .and_then(io::Error::raw_os_error)
    {
        Some(n) => io::Error::from_raw_os_error(n),
        None => io::Error::other(e.to_string()),
    }
}

/// Why one socket creation try failed.
enum TryErr {
    Umem(io::Error),
    Socket(io::Error),
}

/// Creates a fresh UMEM and an AF_XDP socket on it. A fresh UMEM per try:
/// libxdp binds the UMEM's own fd before attaching the program, and a
/// bound fd cannot be bound again.
fn try_socket(
    umem_cfg: UmemConfig,
    frames: NonZeroU32,
    sock_cfg: SocketConfig,
    ifname: &Interface,
    queue: u32,
) -> Result<Bound, TryErr> {
    let (umem, descs) =
        Umem::new(umem_cfg, frames, false).map_err(|e| TryErr::Umem(os_error(&e)))?;
    // SAFETY: the UMEM was created just above and is not shared, so this is
    // the first socket on it and the (iface, queue) pair is not already
    // bound through it; xsk-rs' only precondition (the INHIBIT_PROG_LOAD
    // flag for shared, already-bound pairs) does not apply.
    match unsafe { Socket::new(sock_cfg, &umem, ifname, queue) } {
        Ok((tx, rx, Some((fill, comp)))) => Ok(Bound {
            umem,
            descs,
            tx,
            rx,
            fill,
            comp,
        }),
        Ok((_, _, None)) => Err(TryErr::Socket(io::Error::other(
            "no fill/completion ring for an unshared UMEM",
        ))),
        Err(e) => Err(TryErr::Socket(os_error(&e))),
    }
}

/// Everything one successful socket creation yields.
struct Bound {
    umem: Umem,
    descs: Vec<FrameDesc>,
    tx: TxQueue,
    rx: RxQueue,
    fill: FillQueue,
    comp: CompQueue,
}

/// A port's checked options and the xsk-rs configurations made from them:
/// what every way of opening a socket shares.
struct Prepared<'a> {
    iface: &'a str,
    queue: u32,
    ifindex: u32,
    ifname: Interface,
    umem_cfg: UmemConfig,
    frames: NonZeroU32,
    ring: QueueSize,
    bind: BindFlags,
    bind_label: &'static str,
}

impl<'a> Prepared<'a> {
    /// Checks `opts` and looks the interface up.
    fn new(iface: &'a str, queue: u32, opts: &AfXdpOptions) -> Result<Prepared<'a>, PortError> {
        route_libbpf_logs();
        let fail =
            |step: String, e: io::Error| PortError::step(BACKEND, iface, Some(queue), step, e);
        let invalid = |msg: String| io::Error::new(io::ErrorKind::InvalidInput, msg);
        let ring = QueueSize::new(opts.ring_size)
            .map_err(|e| fail("check options".into(), invalid(e.to_string())))?;
        let frames = NonZeroU32::new(opts.frames)
            .filter(|f| u64::from(f.get()) >= 2 * u64::from(opts.ring_size))
            .ok_or_else(|| {
                fail(
                    "check options".into(),
                    invalid(format!(
                        "frames {} < 2 x ring_size {}",
                        opts.frames, opts.ring_size
                    )),
                )
            })?;
        let ifindex = nix::net::if_::if_nametoindex(iface)
            .map_err(|e| fail("lookup interface".into(), e.into()))?;
        let umem_cfg = UmemConfig::builder()
            .frame_size(
                FrameSize::new(UMEM_FRAME as u32)
                    .map_err(|e| fail("check options".into(), invalid(e.to_string())))?,
            )
            .fill_queue_size(ring)
            .comp_queue_size(ring)
            .frame_headroom(0)
            .build()
            .map_err(|e| fail("check options".into(), invalid(e.to_string())))?;
        let mut bind = BindFlags::XDP_COPY;
        if opts.need_wakeup {
            bind |= BindFlags::XDP_USE_NEED_WAKEUP;
        }
        let bind_label = if opts.need_wakeup {
            "copy,need_wakeup"
        } else {
            "copy"
        };
        let ifname: Interface = iface
            .parse()
            .map_err(|_| fail("check options".into(), invalid("NUL in name".into())))?;
        Ok(Prepared {
            iface,
            queue,
            ifindex,
            ifname,
            umem_cfg,
            frames,
            ring,
            bind,
            bind_label,
        })
    }

    /// Creates the UMEM and socket, retrying EBUSY for [`BUSY_WAIT`] when
    /// `wait_busy`.
    fn create_socket(&self, sock_cfg: SocketConfig, wait_busy: bool) -> Result<Bound, TryErr> {
        let deadline = Instant::now() + BUSY_WAIT;
        let mut retries = 0u32;
        let res = loop {
            match try_socket(
                self.umem_cfg,
                self.frames,
                sock_cfg,
                &self.ifname,
                self.queue,
            ) {
                Err(TryErr::Socket(e))
                    if wait_busy
                        && e.raw_os_error() == Some(libc::EBUSY)
                        && Instant::now() < deadline =>
                {
                    retries += 1;
                    std::thread::sleep(Duration::from_millis(5));
                }
                r => break r,
            }
        };
        if retries > 0 {
            tracing::debug!(
                iface = self.iface,
                queue = self.queue,
                retries,
                "queue was busy, retried"
            );
        }
        res
    }

    /// The port around a bound socket, its fill ring filled.
    fn assemble(
        &self,
        opts: &AfXdpOptions,
        b: Bound,
        attach: XdpAttach,
        prog_id: u32,
        steering: Option<Arc<steer::UplinkSteering>>,
    ) -> AfXdpPort {
        for (i, d) in b.descs.iter().enumerate() {
            debug_assert_eq!(d.addr() / UMEM_FRAME, i, "Umem::new descriptor order");
        }
        let mtu = self.umem_cfg.mtu() as usize;
        let mut port = AfXdpPort {
            name: self.iface.to_string(),
            queue: self.queue,
            ifindex: self.ifindex,
            attach,
            prog_id,
            opts: *opts,
            rx: b.rx,
            tx: b.tx,
            fill: b.fill,
            comp: b.comp,
            umem: b.umem,
            ledger: FrameLedger::new(b.descs.len() as u32),
            descs: b.descs,
            fill_target: opts.ring_size.min(opts.frames / 2),
            mtu,
            scratch: vec![FrameDesc::default(); RECLAIM_BATCH.max(crate::pipeline::BATCH)],
            staged: Vec::with_capacity(opts.ring_size as usize),
            counters: AfXdpCounters::default(),
            steering,
        };
        port.refill();
        tracing::info!(
            iface = self.iface,
            queue = self.queue,
            xdp = %attach,
            prog_id,
            prog = port.steering.as_ref().map_or("xsk_def_prog", |_| steer::PROG_NAME),
            bind = self.bind_label,
            frames = opts.frames,
            ring = opts.ring_size,
            "afxdp port open"
        );
        port
    }
}

/// Sends libbpf's messages (which libxdp's loads go through too) to
/// `tracing` instead of stderr: its "skipping unrecognized data section"
/// notes on every socket are noise at info level, real problems come back
/// as errors anyway.
fn route_libbpf_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        fn to_tracing(level: libbpf_rs::PrintLevel, msg: String) {
            let msg = msg.trim_end();
            match level {
                libbpf_rs::PrintLevel::Warn => tracing::debug!(target: "libbpf", "{msg}"),
                _ => tracing::trace!(target: "libbpf", "{msg}"),
            }
        }
        libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Debug, to_tracing)));
    });
}

impl AfXdpPort {
    /// Opens an AF_XDP socket on `iface` queue `queue` and attaches libxdp's
    /// program (native mode first, then SKB mode, per `opts.mode`).
    pub fn open(iface: &str, queue: u32, opts: &AfXdpOptions) -> Result<AfXdpPort, PortError> {
        let fail =
            |step: String, e: io::Error| PortError::step(BACKEND, iface, Some(queue), step, e);
        let p = Prepared::new(iface, queue, opts)?;
        sys::ensure_bpffs();
        match sys::xdp_link_state(p.ifindex) {
            Ok(st) if st.attach != XdpAttach::None => tracing::warn!(
                iface,
                prog_id = st.prog_id,
                mode = %st.attach,
                "an XDP program is already attached (left by a killed vswitchd?); libxdp reuses xsk_def_prog, anything else makes the bind fail"
            ),
            Ok(_) => {}
            Err(e) => tracing::debug!(iface, error = %e, "XDP link state query failed"),
        }

        let bind_label = p.bind_label;
        let tries: &[XdpAttach] = match opts.mode {
            XdpMode::Auto => &[XdpAttach::Native, XdpAttach::Skb],
            XdpMode::Native => &[XdpAttach::Native],
            XdpMode::Skb => &[XdpAttach::Skb],
        };
        let mut failed: Option<(XdpAttach, io::Error)> = None;
        let mut bound = None;
        for &mode in tries {
            let xdp_flags = match mode {
                XdpAttach::Native => XdpFlags::XDP_FLAGS_DRV_MODE,
                _ => XdpFlags::XDP_FLAGS_SKB_MODE,
            };
            let sock_cfg = SocketConfig::builder()
                .rx_queue_size(p.ring)
                .tx_queue_size(p.ring)
                .xdp_flags(xdp_flags)
                .bind_flags(p.bind)
                .build();
            let step = match &failed {
                None => format!("create socket (bind {bind_label}, attach xdp={mode})"),
                Some((m, e)) => format!(
                    "create socket (bind {bind_label}, attach xdp={mode}; xdp={m} had failed: {})",
                    os_reason(e)
                ),
            };
            // A socket closed a moment ago (a failed native attempt just
            // now, or a port dropped and reopened) keeps the queue bound
            // until the kernel's deferred release runs: retry EBUSY for a
            // moment, unless the previous mode already waited for it.
            let wait_busy = failed
                .as_ref()
                .is_none_or(|(_, e)| e.raw_os_error() != Some(libc::EBUSY));
            match p.create_socket(sock_cfg, wait_busy) {
                Ok(b) => {
                    bound = Some((mode, b));
                    break;
                }
                Err(TryErr::Umem(e)) => return Err(fail("create umem".into(), e)),
                Err(TryErr::Socket(err)) => {
                    let hint = if err.raw_os_error() == Some(libc::ERANGE) {
                        " [veth takes native XDP only with peer MTU <= 3506]"
                    } else {
                        ""
                    };
                    tracing::warn!(iface, queue, mode = %mode, error = %err, "AF_XDP socket creation failed{hint}");
                    if tries.last() == Some(&mode) {
                        return Err(fail(format!("{step}{hint}"), err));
                    }
                    failed = Some((mode, err));
                }
            }
        }
        let Some((requested, b)) = bound else {
            return Err(fail(
                "create socket".into(),
                io::Error::other("no attach mode to try"),
            ));
        };

        // What is really attached: libxdp reuses a program left attached in
        // another mode, whatever flags it was given.
        let (attach, prog_id) = match sys::xdp_link_state(p.ifindex) {
            Ok(st) if st.attach != XdpAttach::None => (st.attach, st.prog_id),
            Ok(_) => (requested, 0),
            Err(e) => {
                tracing::debug!(iface, error = %e, "XDP link state query failed");
                (requested, 0)
            }
        };
        Ok(p.assemble(opts, b, attach, prog_id, None))
    }

    /// The attach mode in effect.
    pub fn attach(&self) -> XdpAttach {
        self.attach
    }

    /// The interface index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Where the UMEM frames are. In debug builds this also recounts every
    /// frame's owner and asserts the ledger agrees.
    pub fn frame_accounting(&self) -> FrameAccounting {
        debug_assert!(self.ledger.verify(), "frame ledger inconsistent");
        self.ledger.accounting()
    }

    /// The kernel's `XDP_STATISTICS` for the socket; `None` if the
    /// `getsockopt` fails.
    pub fn xdp_stats(&self) -> Option<XdpStats> {
        let s = self.rx.fd().xdp_statistics().ok()?;
        Some(XdpStats {
            rx_dropped: s.rx_dropped(),
            rx_invalid_descs: s.rx_invalid_descs(),
            tx_invalid_descs: s.tx_invalid_descs(),
            rx_ring_full: s.rx_ring_full(),
            rx_fill_ring_empty_descs: s.rx_fill_ring_empty_descs(),
            tx_ring_empty_descs: s.tx_ring_empty_descs(),
        })
    }

    /// Userspace counters.
    pub fn counters(&self) -> AfXdpCounters {
        self.counters
    }

    /// The frame a descriptor from one of our rings lies in, if it lies
    /// wholly inside the UMEM (`len` bytes from its address).
    #[inline]
    fn frame_of(&self, d: &FrameDesc, len: usize) -> Option<u32> {
        let frame = d.addr() / UMEM_FRAME;
        let off = d.addr() % UMEM_FRAME;
        (frame < self.descs.len() && off + len <= UMEM_FRAME).then_some(frame as u32)
    }

    /// Tops the fill ring up to `fill_target` frames on the receive side.
    fn refill(&mut self) {
        let want = self.fill_target.saturating_sub(self.ledger.fill_len());
        if want == 0 {
            return;
        }
        let want = (want.min(self.fill.nb_free(want)) as usize)
            .min(self.ledger.free_len())
            .min(self.staged.capacity());
        self.staged.clear();
        for _ in 0..want {
            let Some(f) = self.ledger.take_for_rx() else {
                break;
            };
            self.staged.push(self.descs[f as usize]);
        }
        // SAFETY: every staged descriptor is a canonical descriptor of this
        // port's UMEM whose frame the ledger just moved from free to the
        // receive side; nothing in userspace refers to those frames.
        let n = unsafe { self.fill.produce(&self.staged) };
        if n < self.staged.len() {
            // produce is all or nothing; give the frames back.
            for d in &self.staged[n..] {
                self.ledger.rx_done((d.addr() / UMEM_FRAME) as u32);
            }
        }
        self.staged.clear();
    }

    /// Moves every completed transmit frame back to the free list.
    fn reclaim(&mut self) {
        loop {
            // SAFETY: `scratch` only receives descriptors; the completion
            // ring belongs to this port's UMEM.
            let n = unsafe { self.comp.consume(&mut self.scratch) };
            for d in &self.scratch[..n] {
                let ok = match self.frame_of(d, 0) {
                    Some(f) => self.ledger.tx_done(f),
                    None => false,
                };
                if !ok {
                    self.counters.bad_descs += 1;
                }
            }
            if n < self.scratch.len() {
                break;
            }
        }
    }

    /// Whether the tx ring still holds descriptors the kernel has not taken.
    fn tx_pending(&mut self) -> bool {
        self.tx.nb_free_exact() < self.opts.ring_size
    }

    /// Kicks copy-mode transmit until the tx ring is drained (each `sendto`
    /// sends at most 32 frames) or the kernel stops taking frames.
    fn kick_tx(&mut self) {
        let pending = self.opts.ring_size - self.tx.nb_free_exact();
        let mut tries = pending / KERNEL_TX_BATCH + 2;
        while tries > 0 && self.tx_pending() {
            if self.opts.need_wakeup && !self.tx.needs_wakeup() {
                break;
            }
            self.counters.tx_kicks += 1;
            if self.tx.wakeup().is_err() {
                self.counters.tx_kick_errors += 1;
                break;
            }
            tries -= 1;
        }
    }

    #[inline]
    fn debug_check(&self) {
        debug_assert!(
            self.ledger.accounting().balanced(),
            "{}: frame accounting {:?}",
            self.name,
            self.ledger.accounting()
        );
    }
}

impl Port for AfXdpPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn rx_burst(&mut self, pool: &mut PacketPool, batch: &mut Batch) -> usize {
        // Frames the pool cannot take stay in the rx ring (backpressure).
        let want = batch.room().min(pool.available()).min(self.scratch.len());
        if want == 0 {
            return 0;
        }
        // SAFETY: `scratch` only receives descriptors; the rx ring belongs
        // to this port's UMEM.
        let n = unsafe { self.rx.consume(&mut self.scratch[..want]) };
        let mut got = 0;
        for d in &self.scratch[..n] {
            let len = d.lengths().data();
            let Some(f) = self.frame_of(d, len).filter(|&f| self.ledger.is_rx(f)) else {
                // Not a frame we gave the kernel: never read it.
                self.counters.bad_descs += 1;
                continue;
            };
            // SAFETY: `d` came from this socket's rx ring and lies inside
            // the UMEM (checked above), in a frame the ledger has on the
            // receive side: the kernel has finished writing it and hands it
            // to us; nothing else refers to it until `rx_done` below frees
            // it, after the last use of `bytes`.
            let bytes = unsafe { self.umem.data(d) };
            match pool.alloc_copy(bytes.contents()) {
                Some(pd) => {
                    batch.push(pd);
                    got += 1;
                }
                None => self.counters.rx_no_buffer += 1,
            }
            self.ledger.rx_done(f);
        }
        if n > 0 {
            self.refill();
        }
        self.counters.rx_packets += got as u64;
        self.debug_check();
        got
    }

    fn tx_burst(&mut self, pool: &mut PacketPool, descs: &mut Vec<Desc>) -> (usize, u64) {
        self.reclaim();
        let room = (self.tx.nb_free(descs.len() as u32) as usize).min(self.staged.capacity());
        self.staged.clear();
        let mut bytes = 0u64;
        for d in descs.drain(..) {
            let len = usize::from(d.len);
            if len > self.mtu {
                self.counters.tx_oversize += 1;
            } else if self.staged.len() >= room {
                self.counters.tx_ring_full += 1;
            } else if let Some(f) = self.ledger.take_for_tx() {
                let mut fd = self.descs[f as usize];
                {
                    // SAFETY: frame `f` was free (ledger): the kernel does not
                    // own it and no other reference to it exists; `fd` is the
                    // canonical descriptor of this UMEM's frame `f`.
                    let mut data = unsafe { self.umem.data_mut(&mut fd) };
                    let mut cur = data.cursor();
                    cur.set_pos(0);
                    // Cannot fail: len <= mtu, the frame's data room.
                    let _ = cur.write_all(pool.data(d));
                }
                fd.set_options(0);
                self.staged.push(fd);
                bytes += u64::from(d.len);
            } else {
                self.counters.tx_ring_full += 1;
            }
            pool.free(d);
        }
        // SAFETY: every staged descriptor names a frame of this UMEM that
        // the ledger moved from free to transmit above and that was written
        // in the block above; no reference to its memory is left.
        let n = unsafe { self.tx.produce(&self.staged) };
        if n < self.staged.len() {
            // produce is all or nothing; give the frames back.
            self.counters.tx_ring_full += (self.staged.len() - n) as u64;
            for d in &self.staged[n..] {
                self.ledger.tx_done((d.addr() / UMEM_FRAME) as u32);
            }
            bytes = 0;
        }
        self.staged.clear();
        self.counters.tx_packets += n as u64;
        if n > 0 {
            self.kick_tx();
            self.reclaim();
        }
        self.debug_check();
        (n, bytes)
    }

    fn poll_fd(&self) -> Option<RawFd> {
        Some(self.rx.fd().as_raw_fd())
    }

    fn kick(&mut self) {
        if self.tx_pending() {
            self.kick_tx();
        }
        self.reclaim();
        if self.ledger.fill_len() < self.fill_target {
            self.refill();
        }
        self.debug_check();
    }

    fn detail(&self) -> String {
        // An uplink port also names its program and what it steers.
        let prog = self
            .steering
            .as_ref()
            .map(|s| format!(" prog={} vtep={}", steer::PROG_NAME, s.config()))
            .unwrap_or_default();
        format!(
            "xdp={}{prog} bind={} queue={} prog_id={} frames={} ring={}",
            self.attach,
            if self.opts.need_wakeup {
                "copy,need_wakeup"
            } else {
                "copy"
            },
            self.queue,
            self.prog_id,
            self.opts.frames,
            self.opts.ring_size
        )
    }
}

impl Drop for AfXdpPort {
    fn drop(&mut self) {
        tracing::debug!(
            iface = %self.name,
            queue = self.queue,
            counters = ?self.counters,
            xdp_stats = ?self.xdp_stats(),
            uplink = self.steering.is_some(),
            "afxdp port closed; the XDP program goes with its last socket (libxdp) or its last uplink port"
        );
    }
}
