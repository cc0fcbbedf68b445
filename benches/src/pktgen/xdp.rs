//! pktgen's XDP programs (`bpf/pktgen.bpf.c`, built by `build.rs`): the
//! live-frame transmit mode ([`LiveGen`], `pktgen send --tx-mode live`)
//! and the two-port redirect of the `xdp-fwd` tool ([`Forwarder`]).
//!
//! Live frames: the AF_XDP sender tops out where the kernel's copy-mode
//! transmit on veth does (under 1 Mpps at 64 B). With `BPF_PROG_RUN` and
//! `BPF_F_TEST_XDP_LIVE_FRAMES` the kernel instead runs an XDP program on
//! a template frame `repeat` times, in batches of 64, and transmits every
//! frame the program returns `XDP_TX` for out of ctx `ingress_ifindex`
//! through the driver's `ndo_xdp_xmit`: no socket, no copy from userspace,
//! no syscall per batch. The program numbers and stamps each frame as
//! [`Template::patch`] does (see the C file), so a sink cannot tell the two
//! senders apart. Its `live_sent` counter (in `.bss`) is the exact number
//! of frames handed to the driver; a veth whose peer's ring is full drops
//! some of them, which the sink then counts as loss.
//!
//! Each call costs two `synchronize_rcu()` (the XDP dispatcher is switched
//! to the program and back), so calls are long ([`CHUNK`] runs) and a
//! `--duration` run or a stop request ends the current one with a signal to
//! the generating thread: the kernel loop checks `signal_pending()` after
//! every batch and returns `EINTR`. The caller installs a handler for that
//! signal (a no-op, without `SA_RESTART`); this module only sends it.
//!
//! Pacing is coarse: the kernel loop has no notion of time. Up to
//! [`SMOOTH_MAX_PPS`] each call sends one frame at its time (a call with
//! `repeat` 1 skips the dispatcher switch: ~30 µs). Above, each call sends
//! the frames due at R since the start (at least 64, at most 100 ms worth)
//! as one burst at full speed; the call's fixed cost (~20 ms) sets the
//! burst size, R x 20 ms. The mean rate is right either way, but bursts
//! overflow a slow sink: this is no substitute for the AF_XDP sender's
//! per-batch pacer.
//!
//! What it deliberately does not do: choosing the kernel batch size
//! (libbpf-rs 0.25's `test_run` has no field for it: the kernel's default,
//! 64, is used), several queues or threads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use libbpf_rs::{Link, MapCore as _, MapFlags, MapHandle, Object, ObjectBuilder, ProgramInput};
use nix::sys::pthread::{pthread_kill, pthread_self};
use nix::sys::signal::Signal;

use super::frame::{FrameSpec, Template, PORTS_PER_IP, VXLAN_OVERHEAD};
use super::report::tx_progress_line;
use super::tx::{TxConfig, TxStats, CHECK_NS, TICK_NS};
use super::{mono_ns, Hooks};

/// `include_bytes!` is only byte aligned; libelf reads ELF headers in place.
#[repr(C, align(8))]
struct Aligned<T: ?Sized>(T);

static OBJECT: &Aligned<[u8]> =
    &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/pktgen.bpf.o")));

/// The generator program's name in the kernel.
pub const LIVE_PROG: &str = "pktgen_live";
/// The forwarder program's name in the kernel (`bpftool prog show`).
pub const FWD_PROG: &str = "xdp_fwd_redirect";
const FWD_MAP: &str = "fwd_ports";
/// `BPF_F_TEST_XDP_LIVE_FRAMES` (linux/bpf.h, kernel 5.18).
const LIVE_FRAMES: u32 = 1 << 1;
/// Runs per `BPF_PROG_RUN` call: about two seconds at 8 Mpps, long enough
/// that the per-call `synchronize_rcu()` does not show.
pub const CHUNK: u32 = 1 << 24;
/// Fewest frames a paced call sends above [`SMOOTH_MAX_PPS`] (one kernel
/// batch).
const MIN_PACED: u64 = 64;
/// Up to this rate a paced run sends one frame per call: a call of one
/// run skips the dispatcher switch and its RCU synchronisation, so it
/// costs tens of microseconds instead of tens of milliseconds.
pub const SMOOTH_MAX_PPS: u64 = 20_000;

/// Why a live-frame run or the forwarder failed.
#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    /// Loading the embedded object into the kernel failed.
    #[error("cannot load pktgen's XDP program ({0}); it needs root (CAP_BPF, CAP_NET_ADMIN)")]
    Load(String),
    /// The object lacks something this module looks up (a build mismatch).
    #[error("pktgen's XDP object has no {0}")]
    Missing(&'static str),
    /// Reading or writing a map failed.
    #[error("XDP map {0}: {1}")]
    Map(&'static str, String),
    /// `BPF_PROG_RUN` failed for another reason than a stop signal.
    #[error("BPF_PROG_RUN with live frames on {iface} failed: {cause} (needs Linux 5.18 or later and a driver with ndo_xdp_xmit, e.g. veth)")]
    Run {
        /// The interface.
        iface: String,
        /// The kernel's answer.
        cause: String,
    },
    /// No such interface.
    #[error("interface {0} not found")]
    NoIface(String),
    /// Attaching the forwarder failed.
    #[error("cannot attach XDP to {iface}: {cause}")]
    Attach {
        /// The interface.
        iface: String,
        /// The kernel's answer.
        cause: String,
    },
    /// Live mode cannot do what was asked.
    #[error("{0}")]
    Unsupported(&'static str),
}

fn text(e: &libbpf_rs::Error) -> String {
    format!("{e:#}")
}

fn open_object(autoload: &str) -> Result<libbpf_rs::OpenObject, XdpError> {
    let mut open = ObjectBuilder::default()
        .open_memory(&OBJECT.0)
        .map_err(|e| XdpError::Load(text(&e)))?;
    for mut p in open.progs_mut() {
        let keep = p.name() == autoload;
        p.set_autoload(keep);
    }
    Ok(open)
}

fn ifindex(iface: &str) -> Result<u32, XdpError> {
    nix::net::if_::if_nametoindex(iface).map_err(|_| XdpError::NoIface(iface.to_string()))
}

/// Folds a one's-complement sum to 16 bits.
fn fold(mut sum: u32) -> u32 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum
}

/// Adds the big-endian 16-bit words of `b` (a trailing odd byte is the
/// high half of a word) to `sum`.
fn add_words(sum: u32, b: &[u8]) -> u32 {
    let mut chunks = b.chunks_exact(2);
    let mut s = sum;
    for w in &mut chunks {
        s = fold(s + u32::from(u16::from_be_bytes([w[0], w[1]])));
    }
    if let [last] = chunks.remainder() {
        s = fold(s + (u32::from(*last) << 8));
    }
    s
}

/// The program's `.rodata` (`struct live_config` in the C file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveConfig {
    /// Number of flows.
    pub flows: u32,
    /// Source address of flow 0 (host order).
    pub src_ip: u32,
    /// IPv4 header sum with source address and checksum zero.
    pub ip_sum: u32,
    /// Pseudo-header + UDP sum with every per-frame field zero.
    pub udp_sum: u32,
    /// The probe is VXLAN-encapsulated (inner frame at byte 50).
    pub vxlan: bool,
}

impl LiveConfig {
    /// The configuration for `tpl`, built from `spec`: the partial sums
    /// are those [`Template`] keeps, recomputed from its bytes (every
    /// per-frame field is zero there).
    pub fn new(spec: &FrameSpec, tpl: &Template) -> LiveConfig {
        let b = tpl.bytes();
        let inner = if spec.vxlan.is_some() {
            VXLAN_OVERHEAD
        } else {
            0
        };
        let ip = inner + 14;
        let udp = ip + 20;
        let udp_len = (b.len() - udp) as u32;
        let pseudo = add_words(add_words(0, &b[ip + 16..ip + 20]), &[0, 17]);
        LiveConfig {
            flows: spec.flows,
            src_ip: u32::from(spec.src_ip),
            ip_sum: add_words(0, &b[ip..ip + 20]),
            udp_sum: add_words(fold(pseudo + udp_len), &b[udp..]),
            vxlan: spec.vxlan.is_some(),
        }
    }

    /// The `.rodata` bytes (five native-endian `u32`s).
    fn to_bytes(self) -> [u8; 20] {
        let mut out = [0u8; 20];
        let words = [
            self.flows,
            self.src_ip,
            self.ip_sum,
            self.udp_sum,
            u32::from(self.vxlan),
        ];
        for (o, w) in out.chunks_exact_mut(4).zip(words) {
            o.copy_from_slice(&w.to_ne_bytes());
        }
        out
    }
}

/// The live-frame generator: the program loaded and configured for one
/// template and one interface.
pub struct LiveGen {
    object: Object,
    /// The `.bss` map (the `live_sent` counter), read while the object is
    /// lent to the sending thread.
    bss: MapHandle,
    frame: Vec<u8>,
    iface: String,
    ifindex: u32,
}

impl std::fmt::Debug for LiveGen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveGen")
            .field("iface", &self.iface)
            .field("ifindex", &self.ifindex)
            .field("len", &self.frame.len())
            .finish_non_exhaustive()
    }
}

/// How one `BPF_PROG_RUN` call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallEnd {
    /// All runs done.
    Done,
    /// A signal ended it early (`EINTR`).
    Interrupted,
}

impl LiveGen {
    /// Loads the generator for frames like `tpl` (built from `spec`) out
    /// of `iface`.
    pub fn new(spec: &FrameSpec, tpl: &Template, iface: &str) -> Result<LiveGen, XdpError> {
        if u64::from(spec.flows) > u64::from(PORTS_PER_IP) * 1024 {
            return Err(XdpError::Unsupported("--flows: too many for live mode"));
        }
        let ifindex = ifindex(iface)?;
        let cfg = LiveConfig::new(spec, tpl);
        let mut open = open_object(LIVE_PROG)?;
        let mut found = false;
        for mut m in open.maps_mut() {
            if m.name().to_string_lossy().ends_with(".rodata") {
                let init = m.initial_value_mut().ok_or(XdpError::Missing(".rodata"))?;
                let b = cfg.to_bytes();
                init.get_mut(..b.len())
                    .ok_or(XdpError::Missing("live_config"))?
                    .copy_from_slice(&b);
                found = true;
            }
        }
        if !found {
            return Err(XdpError::Missing(".rodata"));
        }
        let object = open.load().map_err(|e| XdpError::Load(text(&e)))?;
        let bss = object
            .maps()
            .find(|m| m.name().to_string_lossy().ends_with(".bss"))
            .ok_or(XdpError::Missing(".bss"))
            .and_then(|m| MapHandle::try_from(&m).map_err(|e| XdpError::Map(".bss", text(&e))))?;
        let g = LiveGen {
            object,
            bss,
            frame: tpl.bytes().to_vec(),
            iface: iface.to_string(),
            ifindex,
        };
        g.sent()?;
        Ok(g)
    }

    /// Frames the program has stamped and returned `XDP_TX` for so far.
    pub fn sent(&self) -> Result<u64, XdpError> {
        read_sent(&self.bss)
    }

    /// Sets the frame counter (the next frame's global number).
    pub fn set_sent(&self, n: u64) -> Result<(), XdpError> {
        let mut v = vec![0u8; self.bss.value_size() as usize];
        v.get_mut(..8)
            .ok_or(XdpError::Missing("live_sent"))?
            .copy_from_slice(&n.to_ne_bytes());
        self.bss
            .update(&0u32.to_ne_bytes(), &v, MapFlags::ANY)
            .map_err(|e| XdpError::Map(".bss", text(&e)))
    }

    fn prog(object: &mut Object) -> Result<libbpf_rs::ProgramMut<'_>, XdpError> {
        object
            .progs_mut()
            .find(|p| p.name() == LIVE_PROG)
            .ok_or(XdpError::Missing(LIVE_PROG))
    }

    /// One `BPF_PROG_RUN` call of `repeat` live-frame runs.
    pub fn call(&mut self, repeat: u32) -> Result<CallEnd, XdpError> {
        let mut c = Caller {
            object: &mut self.object,
            frame: &self.frame,
            iface: &self.iface,
            ifindex: self.ifindex,
        };
        c.call(repeat)
    }

    /// One ordinary (not live) run on the template: the frame the program
    /// would have sent, and its verdict. Tests compare it with
    /// [`Template::build`].
    pub fn stamp_once(&mut self) -> Result<(Vec<u8>, u32), XdpError> {
        let prog = Self::prog(&mut self.object)?;
        let mut out = vec![0u8; self.frame.len() + 256];
        let input = ProgramInput {
            data_in: Some(&self.frame),
            data_out: Some(&mut out),
            ..ProgramInput::default()
        };
        let o = prog.test_run(input).map_err(|e| XdpError::Run {
            iface: self.iface.clone(),
            cause: text(&e),
        })?;
        let verdict = o.return_value;
        let len = o.data.map_or(0, |d| d.len());
        out.truncate(len.min(self.frame.len()));
        Ok((out, verdict))
    }

    /// Sends until `cfg` (count or duration) or `hooks` says stop, as fast
    /// as the kernel can or in coarse bursts for `cfg.rate`. `wake`
    /// is the signal that ends a running call: the caller must have
    /// installed a handler for it (a no-op), or it kills the process.
    /// Frames go out from a second thread, which inherits the caller's
    /// CPU affinity; this thread checks the stop conditions every 10 ms
    /// and writes a progress line a second.
    pub fn send(
        &mut self,
        cfg: &TxConfig,
        wake: Signal,
        hooks: &mut dyn Hooks,
    ) -> Result<TxStats, XdpError> {
        let len = self.frame.len() as u64;
        let first = self.sent()?;
        let bss = &self.bss;
        let mut caller = Caller {
            object: &mut self.object,
            frame: &self.frame,
            iface: &self.iface,
            ifindex: self.ifindex,
        };
        let stop = AtomicBool::new(false);
        let start = mono_ns();
        let deadline = cfg.duration_ns.map(|d| start.saturating_add(d));
        let result = std::thread::scope(|s| {
            let (tid_tx, tid_rx) = mpsc::channel();
            let (done_tx, done_rx) = mpsc::channel::<()>();
            let stop = &stop;
            let worker = s.spawn(move || -> Result<u64, XdpError> {
                let _ = tid_tx.send(pthread_self());
                let _done = Done(done_tx);
                while !stop.load(Ordering::Relaxed) {
                    let done = read_sent(bss)? - first;
                    let mut repeat = CHUNK;
                    if let Some(c) = cfg.count {
                        if done >= c {
                            break;
                        }
                        repeat = (c - done).min(u64::from(CHUNK)) as u32;
                    }
                    if let Some(r) = cfg.rate {
                        match due(r, start, done, repeat, stop) {
                            Some(n) => repeat = n,
                            None => break,
                        }
                    }
                    caller.call(repeat)?;
                }
                Ok(mono_ns())
            });
            let tid = tid_rx.recv().ok();
            let mut tick = (start, first);
            let mut stopping = false;
            while let Err(mpsc::RecvTimeoutError::Timeout) =
                done_rx.recv_timeout(Duration::from_nanos(CHECK_NS))
            {
                let now = mono_ns();
                if !stopping && (deadline.is_some_and(|d| now >= d) || hooks.stop()) {
                    stopping = true;
                    stop.store(true, Ordering::Relaxed);
                }
                if stopping {
                    // Again every check: a signal that lands between two
                    // calls only runs the handler.
                    if let Some(t) = tid {
                        let _ = pthread_kill(t, wake);
                    }
                }
                if now - tick.0 >= TICK_NS {
                    if let Ok(n) = read_sent(bss) {
                        let frames = n.saturating_sub(tick.1);
                        hooks.progress(&tx_progress_line(frames, frames * len, now - tick.0));
                        tick = (now, n);
                    }
                }
            }
            worker
                .join()
                .unwrap_or(Err(XdpError::Unsupported("the sending thread panicked")))
        });
        let end = result?;
        let sent = self.sent()? - first;
        Ok(TxStats {
            sent,
            bytes: sent * len,
            refused: 0,
            elapsed_ns: end - start,
        })
    }
}

/// Tells the supervising thread, when dropped, that the sender is done
/// (returned, failed or panicked).
struct Done(mpsc::Sender<()>);

impl Drop for Done {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// Coarse pacing at `rate` frames/s: waits (1 ms naps) until at least
/// [`MIN_PACED`] frames (or `want`, if fewer) are due since `start`, given
/// `done` sent, and returns how many to send now: those due, at most
/// `want` and at most 100 ms worth. `None` if `stop` was set meanwhile.
fn due(rate: u64, start: u64, done: u64, want: u32, stop: &AtomicBool) -> Option<u32> {
    if rate <= SMOOTH_MAX_PPS {
        // One frame per call, each at its time.
        let at = start + (u128::from(done) * 1_000_000_000 / u128::from(rate.max(1))) as u64;
        loop {
            if stop.load(Ordering::Relaxed) {
                return None;
            }
            let now = mono_ns();
            if now >= at {
                return Some(1);
            }
            if at - now > 100_000 {
                std::thread::sleep(Duration::from_nanos((at - now - 50_000).min(CHECK_NS)));
            } else {
                std::hint::spin_loop();
            }
        }
    }
    let cap = u64::from(want).min((rate / 10).max(MIN_PACED));
    loop {
        if stop.load(Ordering::Relaxed) {
            return None;
        }
        let elapsed = u128::from(mono_ns() - start);
        let owed = (elapsed * u128::from(rate) / 1_000_000_000) as u64;
        let n = owed.saturating_sub(done).min(cap);
        if n >= MIN_PACED.min(cap) {
            return Some(n as u32);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The counter in the `.bss` map.
fn read_sent(bss: &MapHandle) -> Result<u64, XdpError> {
    let v = bss
        .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
        .map_err(|e| XdpError::Map(".bss", text(&e)))?
        .ok_or(XdpError::Missing("live_sent"))?;
    let b: [u8; 8] = v
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or(XdpError::Missing("live_sent"))?;
    Ok(u64::from_ne_bytes(b))
}

/// What one `BPF_PROG_RUN` call needs, borrowed from a [`LiveGen`] so
/// that the sending thread can hold it while the other reads the counter.
struct Caller<'a> {
    object: &'a mut Object,
    frame: &'a [u8],
    iface: &'a str,
    ifindex: u32,
}

impl Caller<'_> {
    /// The `struct xdp_md` a call passes: data 0, data_end the frame
    /// length, ingress_ifindex the interface, the rest zero.
    fn ctx(&self) -> [u8; 24] {
        let mut ctx = [0u8; 24];
        ctx[4..8].copy_from_slice(&(self.frame.len() as u32).to_ne_bytes());
        ctx[12..16].copy_from_slice(&self.ifindex.to_ne_bytes());
        ctx
    }

    fn call(&mut self, repeat: u32) -> Result<CallEnd, XdpError> {
        let mut ctx = self.ctx();
        let frame = self.frame;
        let prog = LiveGen::prog(self.object)?;
        let input = ProgramInput {
            context_in: Some(&mut ctx),
            data_in: Some(frame),
            flags: LIVE_FRAMES,
            repeat,
            ..ProgramInput::default()
        };
        match prog.test_run(input) {
            Ok(_) => Ok(CallEnd::Done),
            Err(e) if e.kind() == libbpf_rs::ErrorKind::Interrupted => Ok(CallEnd::Interrupted),
            Err(e) => Err(XdpError::Run {
                iface: self.iface.to_string(),
                cause: text(&e),
            }),
        }
    }
}

/// `xdp-fwd`'s program attached to two interfaces, each redirecting to
/// the other through a devmap. Dropping it detaches both: the attachments
/// are BPF links, tied to this process's file descriptors, so a killed
/// process leaves nothing attached either.
pub struct Forwarder {
    /// First field: dropped (detached) before the object goes.
    links: Vec<Link>,
    _object: Object,
    ifaces: [String; 2],
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("ifaces", &self.ifaces)
            .field("links", &self.links.len())
            .finish_non_exhaustive()
    }
}

impl Forwarder {
    /// Loads the forwarder and attaches it to `a` and `b` (driver mode
    /// where the driver has native XDP, as veth does: an XDP link without
    /// mode flags gets the native mode when there is one).
    pub fn attach(a: &str, b: &str) -> Result<Forwarder, XdpError> {
        let (ia, ib) = (ifindex(a)?, ifindex(b)?);
        if ia == ib {
            return Err(XdpError::Unsupported(
                "xdp-fwd needs two different interfaces",
            ));
        }
        let object = open_object(FWD_PROG)?
            .load()
            .map_err(|e| XdpError::Load(text(&e)))?;
        let map = object
            .maps()
            .find(|m| m.name() == FWD_MAP)
            .ok_or(XdpError::Missing(FWD_MAP))?;
        for (k, v) in [(ia, ib), (ib, ia)] {
            map.update(&k.to_ne_bytes(), &v.to_ne_bytes(), MapFlags::ANY)
                .map_err(|e| XdpError::Map(FWD_MAP, text(&e)))?;
        }
        let prog = object
            .progs_mut()
            .find(|p| p.name() == FWD_PROG)
            .ok_or(XdpError::Missing(FWD_PROG))?;
        let mut links = Vec::with_capacity(2);
        for (name, idx) in [(a, ia), (b, ib)] {
            let link = prog.attach_xdp(idx as i32).map_err(|e| XdpError::Attach {
                iface: name.to_string(),
                cause: text(&e),
            })?;
            links.push(link);
        }
        Ok(Forwarder {
            links,
            _object: object,
            ifaces: [a.to_string(), b.to_string()],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pktgen::frame::{parse_probe, Stamp, Vxlan};
    use std::net::Ipv4Addr;

    fn spec(size: usize, flows: u32, vxlan: Option<Vxlan>) -> FrameSpec {
        FrameSpec::example(size, flows, vxlan)
    }

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    /// The program's frames are byte for byte those of `Template::build`
    /// (an ordinary test run returns the stamped frame).
    #[test]
    fn the_program_stamps_like_the_template() {
        if !is_root() {
            if std::env::var_os("CI").is_some() {
                panic!("needs root (BPF)");
            }
            println!("skipping: needs root (BPF)");
            return;
        }
        let vx = Vxlan {
            vni: 7,
            outer_src: Ipv4Addr::new(198, 18, 1, 1),
            outer_dst: Ipv4Addr::new(198, 18, 1, 2),
        };
        for (size, flows, vxlan) in [
            (60, 1, None),
            (61, 3, None),
            (1514, 100_000, None),
            (128, 100_000, Some(vx)),
        ] {
            let sp = spec(size, flows, vxlan);
            let tpl = Template::new(&sp).unwrap();
            let mut g = LiveGen::new(&sp, &tpl, "lo").unwrap();
            for start in [0u64, 64_511, 64_512 * 3 - 1, 1 << 40] {
                g.set_sent(start).unwrap();
                for k in 0..4 {
                    let n = start + k;
                    let (frame, verdict) = g.stamp_once().unwrap();
                    assert_eq!(verdict, 3, "XDP_TX");
                    let p = parse_probe(&frame).expect("a probe");
                    let f = u64::from(flows);
                    let want = Stamp {
                        flow: (n % f) as u32,
                        seq: n / f,
                        ts: p.ts,
                    };
                    assert_eq!(p, want, "frame {n}, size {size}");
                    assert_eq!(frame, tpl.build(want), "frame {n}, size {size}");
                }
                assert_eq!(g.sent().unwrap(), start + 4);
            }
        }
    }

    #[test]
    fn config_bytes_are_the_c_struct() {
        let sp = spec(60, 5, None);
        let tpl = Template::new(&sp).unwrap();
        let c = LiveConfig::new(&sp, &tpl);
        assert_eq!(c.flows, 5);
        assert_eq!(c.src_ip, 0xc612_0001);
        let b = c.to_bytes();
        assert_eq!(&b[0..4], &5u32.to_ne_bytes());
        assert_eq!(&b[16..20], &0u32.to_ne_bytes());
    }
}
