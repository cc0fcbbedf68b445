//! The uplink's own XDP program: the switch receives only the underlay
//! traffic it owns, the kernel keeps the rest.
//!
//! On the uplink (the node's NIC) libxdp's `xsk_def_prog` would redirect
//! *every* frame to AF_XDP, taking SSH, kubelet and ARP for the node IP
//! away from the kernel. [`UplinkSteering`] instead loads
//! `bpf/uplink.bpf.c` (built by `build.rs`, embedded as
//! [`UPLINK_BPF_OBJECT`]) with libbpf-rs: IPv4/UDP to the configured VTEP
//! address and port (VXLAN, 4789), after at most one VLAN tag, goes to the
//! AF_XDP socket registered for the rx queue in its `xsks_map`; everything
//! else is `XDP_PASS`. [`AfXdpPort::open_uplink`] opens a port on it: the
//! socket is created with libxdp's `INHIBIT_PROG_LOAD` and its fd put in
//! our map. Per-CPU counters say what went where ([`UplinkCounters`]).
//!
//! Attach: a BPF link (`BPF_LINK_CREATE`), native (driver) mode first,
//! then SKB (generic) mode per [`XdpMode`]; the mode in effect is read back
//! from rtnetlink. A link, unlike a netlink attach, is tied to its file
//! descriptor and to the device, not to a name or an index: dropping
//! [`UplinkSteering`] (closing the fd) detaches the program from the right
//! device from any thread and any network namespace, and a process killed
//! with SIGKILL leaves nothing attached. A stale *netlink*-attached
//! program (libxdp's, from a killed vswitchd) is detached before attaching,
//! as [`sys::detach_xdp`] does; a live link of another process is not
//! touched and makes the attach fail with `EBUSY`.
//!
//! Not here: IPv6 underlay, multi-buffer frames (MTU above a UMEM frame),
//! changing the VTEP while attached (open a new one), the NIC's hardware
//! VLAN stripping (the program accepts tagged and untagged frames alike).
//!
//! # Unsafe
//! One FFI call, libbpf's `bpf_link_create`, because libbpf-rs 0.25 can
//! only attach XDP links without mode flags (no SKB-mode fallback): it is
//! given a valid program fd, an ifindex and a zeroed, correctly sized
//! options struct that outlives the call, and the fd it returns is owned by
//! nobody else, so it becomes an [`OwnedFd`]. Everything else goes through
//! libbpf-rs and xsk-rs' safe API (the socket itself through
//! `try_socket`, whose invariants are the parent module's).

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use libbpf_rs::libbpf_sys;
use libbpf_rs::{MapCore as _, MapFlags, MapHandle, Object, ObjectBuilder};
use xsk_rs::config::{LibxdpFlags, SocketConfig};

use super::{sys, AfXdpOptions, AfXdpPort, Prepared, TryErr, XdpAttach, XdpMode, BACKEND};
use crate::port::open::{os_reason, PortError};

/// The program's name in the kernel (`bpftool prog show name ...`).
pub const PROG_NAME: &str = "vswitch_uplink";
/// The VXLAN UDP port (RFC 7348).
pub const VXLAN_PORT: u16 = 4789;

const CONFIG_MAP: &str = "uplink_config";
const XSKS_MAP: &str = "xsks_map";
const STATS_MAP: &str = "uplink_stats";
/// Counter slots in `uplink_stats` (the program's enum).
const REDIRECTED: u32 = 0;
const PASSED: u32 = 1;
const UNBOUND: u32 = 2;
/// `xsks_map` entries when the interface's rx queues cannot be counted.
const DEFAULT_QUEUES: u32 = 64;

/// `include_bytes!` is only byte aligned; libelf reads ELF headers in place.
#[repr(C, align(8))]
struct Aligned<T: ?Sized>(T);

static OBJECT: &Aligned<[u8]> =
    &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/uplink.bpf.o")));

/// The uplink program's BPF ELF object, compiled by `build.rs` from
/// `bpf/uplink.bpf.c`.
pub static UPLINK_BPF_OBJECT: &[u8] = &OBJECT.0;

/// What the uplink program steers to the switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UplinkConfig {
    /// The node's VTEP address: only UDP to this address can be the switch's.
    pub vtep_ip: Ipv4Addr,
    /// The UDP destination port (VXLAN: [`VXLAN_PORT`]).
    pub udp_port: u16,
}

impl UplinkConfig {
    /// VXLAN (UDP 4789) to `vtep_ip`.
    pub fn vxlan(vtep_ip: Ipv4Addr) -> UplinkConfig {
        UplinkConfig {
            vtep_ip,
            udp_port: VXLAN_PORT,
        }
    }

    /// The `uplink_config` map value (`struct uplink_config`): address and
    /// port in network byte order, then two reserved zero bytes.
    fn to_bytes(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0..4].copy_from_slice(&self.vtep_ip.octets());
        b[4..6].copy_from_slice(&self.udp_port.to_be_bytes());
        b
    }

    /// Rejects what would steer nothing (the program treats address 0 as
    /// "off") or everything sent to a group.
    fn check(self) -> io::Result<()> {
        let bad = |what: &str| {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{what} (config {self})"),
            ))
        };
        if self.vtep_ip.is_unspecified() {
            return bad("VTEP address 0.0.0.0");
        }
        if self.vtep_ip.is_multicast() || self.vtep_ip.is_broadcast() {
            return bad("VTEP address is not unicast");
        }
        if self.udp_port == 0 {
            return bad("UDP port 0");
        }
        Ok(())
    }
}

impl fmt::Display for UplinkConfig {
    /// `198.18.0.1:4789`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        SocketAddrV4::new(self.vtep_ip, self.udp_port).fmt(f)
    }
}

/// The program's counters, summed over CPUs. Every frame the program sees
/// is counted in exactly one of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UplinkCounters {
    /// Owned frames redirected to an AF_XDP socket (the socket may still
    /// drop them: its `XDP_STATISTICS`).
    pub redirected: u64,
    /// Frames that are not the switch's, passed to the kernel.
    pub passed: u64,
    /// Owned frames that arrived on a queue with no registered socket,
    /// passed to the kernel.
    pub unbound: u64,
}

/// The uplink XDP program loaded, configured and attached to one
/// interface. Dropping it detaches the program; ports opened on it
/// ([`AfXdpPort::open_steered`]) hold it in an [`Arc`].
pub struct UplinkSteering {
    /// The BPF link: closing it detaches the program. First field, so it
    /// is dropped (detached) before the maps and the object go.
    link: OwnedFd,
    loaded: Loaded,
    iface: String,
    ifindex: u32,
    attach: XdpAttach,
    prog_id: u32,
    queues: u32,
    config: UplinkConfig,
}

impl fmt::Debug for UplinkSteering {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UplinkSteering")
            .field("iface", &self.iface)
            .field("attach", &self.attach)
            .field("prog_id", &self.prog_id)
            .field("queues", &self.queues)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// An io::Error for a libbpf-rs error: the OS error alone when the message
/// carries one (the caller's step says what failed), else the whole text.
fn bpf_err(e: libbpf_rs::Error) -> io::Error {
    let text = format!("{e:#}");
    match errno_in(&text) {
        Some(n) => io::Error::from_raw_os_error(n),
        None => io::Error::other(text),
    }
}

/// The `N` of the last `(os error N)` in `text`.
fn errno_in(text: &str) -> Option<i32> {
    let rest = &text[text.rfind("(os error ")? + "(os error ".len()..];
    rest[..rest.find(')')?].parse().ok()
}

/// Sums one per-CPU `u64` counter (one native-endian value per CPU).
fn sum_percpu(values: &[Vec<u8>]) -> u64 {
    values
        .iter()
        .filter_map(|v| v.get(..8)?.try_into().ok())
        .map(u64::from_ne_bytes)
        .fold(0, u64::wrapping_add)
}

/// The interface's rx queue count from sysfs, if sysfs shows this
/// interface (the same ifindex: sysfs shows the namespace it was mounted
/// in, which need not be the calling thread's).
fn rx_queue_count(iface: &str, ifindex: u32) -> Option<u32> {
    let dir = std::path::Path::new("/sys/class/net").join(iface);
    let idx: u32 = std::fs::read_to_string(dir.join("ifindex"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    if idx != ifindex {
        return None;
    }
    let n = std::fs::read_dir(dir.join("queues"))
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
        .count();
    u32::try_from(n).ok().filter(|&n| n > 0)
}

/// The program loaded into the kernel and configured, not attached.
struct Loaded {
    object: Object,
    xsks: MapHandle,
    stats: MapHandle,
}

impl Loaded {
    /// Loads the embedded object with `queues` entries in `xsks_map` and
    /// writes `config`. Errors: (step, cause).
    fn new(config: UplinkConfig, queues: u32) -> Result<Loaded, (String, io::Error)> {
        let mut open = ObjectBuilder::default()
            .open_memory(UPLINK_BPF_OBJECT)
            .map_err(|e| ("open uplink XDP object".to_string(), bpf_err(e)))?;
        for mut m in open.maps_mut() {
            if m.name() == XSKS_MAP {
                m.set_max_entries(queues)
                    .map_err(|e| (format!("size {XSKS_MAP}"), bpf_err(e)))?;
            }
        }
        let object = open.load().map_err(|e| {
            (
                "load uplink XDP program (libbpf's log is on stderr)".to_string(),
                bpf_err(e),
            )
        })?;
        let map = |name: &str| {
            let m = object
                .maps()
                .find(|m| m.name() == name)
                .ok_or_else(|| io::Error::other(format!("no map {name} in the object")))
                .and_then(|m| MapHandle::try_from(&m).map_err(bpf_err));
            m.map_err(|e| (format!("find map {name}"), e))
        };
        let config_map = map(CONFIG_MAP)?;
        let xsks = map(XSKS_MAP)?;
        let stats = map(STATS_MAP)?;
        config_map
            .update(&0u32.to_ne_bytes(), &config.to_bytes(), MapFlags::ANY)
            .map_err(|e| (format!("write {CONFIG_MAP}"), bpf_err(e)))?;
        Ok(Loaded {
            object,
            xsks,
            stats,
        })
    }

    /// The XDP program.
    fn prog(&self) -> io::Result<libbpf_rs::Program<'_>> {
        self.object
            .progs()
            .find(|p| p.name() == PROG_NAME)
            .ok_or_else(|| io::Error::other(format!("no program {PROG_NAME} in the object")))
    }

    fn counters(&self) -> io::Result<UplinkCounters> {
        let read = |slot: u32| -> io::Result<u64> {
            Ok(self
                .stats
                .lookup_percpu(&slot.to_ne_bytes(), MapFlags::ANY)
                .map_err(bpf_err)?
                .map_or(0, |v| sum_percpu(&v)))
        };
        Ok(UplinkCounters {
            redirected: read(REDIRECTED)?,
            passed: read(PASSED)?,
            unbound: read(UNBOUND)?,
        })
    }
}

/// Attaches `prog` to `ifindex` as an XDP BPF link in `mode` (native or
/// SKB); the returned fd is the link.
#[expect(
    unsafe_code,
    reason = "libbpf-rs 0.25 has no XDP link with mode flags; invariants in the module doc"
)]
fn link_create(prog: BorrowedFd<'_>, ifindex: u32, mode: XdpAttach) -> io::Result<OwnedFd> {
    let flags = match mode {
        XdpAttach::Native => libbpf_sys::XDP_FLAGS_DRV_MODE,
        _ => libbpf_sys::XDP_FLAGS_SKB_MODE,
    };
    let target = i32::try_from(ifindex)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "ifindex out of range"))?;
    let opts = libbpf_sys::bpf_link_create_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_link_create_opts>() as libbpf_sys::size_t,
        flags,
        ..Default::default()
    };
    // SAFETY: `prog` is a valid BPF program fd for the whole call, `opts`
    // is zero-initialised apart from `sz` (its real size) and `flags`, and
    // lives until the call returns; libbpf keeps no pointer to it.
    let fd = unsafe {
        libbpf_sys::bpf_link_create(prog.as_raw_fd(), target, libbpf_sys::BPF_XDP, &opts)
    };
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(-fd));
    }
    // SAFETY: a non-negative return is a new fd that the kernel just
    // created for this link; nothing else owns or will close it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl UplinkSteering {
    /// Loads the uplink program, configures it with `config` and attaches
    /// it to `iface` (in the calling thread's network namespace): native
    /// mode first, then SKB mode, as `mode` allows. A program left attached
    /// through netlink (libxdp's, by a killed vswitchd) is detached first.
    pub fn attach(
        iface: &str,
        config: UplinkConfig,
        mode: XdpMode,
    ) -> Result<UplinkSteering, PortError> {
        let fail = |step: String, e: io::Error| PortError::step(BACKEND, iface, None, step, e);
        config
            .check()
            .map_err(|e| fail("check uplink config".into(), e))?;
        let ifindex = nix::net::if_::if_nametoindex(iface)
            .map_err(|e| fail("lookup interface".into(), e.into()))?;
        let queues = rx_queue_count(iface, ifindex).unwrap_or(DEFAULT_QUEUES);

        let loaded = Loaded::new(config, queues).map_err(|(step, e)| fail(step, e))?;
        let prog = loaded.prog().map_err(|e| fail("find program".into(), e))?;

        // Only now, with a program ready to replace it.
        clear_stale(iface, ifindex)?;

        let tries: &[XdpAttach] = match mode {
            XdpMode::Auto => &[XdpAttach::Native, XdpAttach::Skb],
            XdpMode::Native => &[XdpAttach::Native],
            XdpMode::Skb => &[XdpAttach::Skb],
        };
        let mut failed: Option<(XdpAttach, io::Error)> = None;
        let mut attached = None;
        for &m in tries {
            match link_create(prog.as_fd(), ifindex, m) {
                Ok(link) => {
                    attached = Some((m, link));
                    break;
                }
                Err(err) => {
                    let hint = match err.raw_os_error() {
                        Some(libc::ERANGE) => {
                            " [veth takes native XDP only with peer MTU <= 3506]"
                        }
                        Some(libc::EBUSY) => {
                            " [another XDP program is attached through a BPF link: another vswitchd?]"
                        }
                        _ => "",
                    };
                    tracing::warn!(iface, mode = %m, error = %err, "uplink XDP attach failed{hint}");
                    let step = match &failed {
                        None => format!("attach {PROG_NAME} (xdp={m}){hint}"),
                        Some((fm, fe)) => format!(
                            "attach {PROG_NAME} (xdp={m}; xdp={fm} had failed: {}){hint}",
                            os_reason(fe)
                        ),
                    };
                    if tries.last() == Some(&m) {
                        return Err(fail(step, err));
                    }
                    failed = Some((m, err));
                }
            }
        }
        let Some((requested, link)) = attached else {
            return Err(fail(
                "attach".into(),
                io::Error::other("no attach mode to try"),
            ));
        };
        let (attach, prog_id) = match sys::xdp_link_state(ifindex) {
            Ok(st) if st.attach != XdpAttach::None => (st.attach, st.prog_id),
            Ok(_) => (requested, 0),
            Err(e) => {
                tracing::debug!(iface, error = %e, "XDP link state query failed");
                (requested, 0)
            }
        };
        tracing::info!(
            iface,
            xdp = %attach,
            prog = PROG_NAME,
            prog_id,
            vtep = %config,
            queues,
            "uplink XDP program attached"
        );
        Ok(UplinkSteering {
            link,
            loaded,
            iface: iface.to_string(),
            ifindex,
            attach,
            prog_id,
            queues,
            config,
        })
    }

    /// Puts the AF_XDP socket `xsk_fd` in `xsks_map` for rx queue `queue`:
    /// owned frames arriving on that queue go to it from now on. The kernel
    /// removes the entry itself when the socket closes.
    pub fn register(&self, queue: u32, xsk_fd: RawFd) -> Result<(), PortError> {
        let fail = |step: &str, e: io::Error| {
            PortError::step(BACKEND, &self.iface, Some(queue), step.to_string(), e)
        };
        if queue >= self.queues {
            return Err(fail(
                "register socket in xsks_map",
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("queue beyond the map's {} entries", self.queues),
                ),
            ));
        }
        let fd = u32::try_from(xsk_fd).map_err(|_| {
            fail(
                "register socket in xsks_map",
                io::Error::new(io::ErrorKind::InvalidInput, "negative fd"),
            )
        })?;
        self.loaded
            .xsks
            .update(&queue.to_ne_bytes(), &fd.to_ne_bytes(), MapFlags::ANY)
            .map_err(|e| fail("register socket in xsks_map", bpf_err(e)))
    }

    /// Removes the socket of `queue` from `xsks_map` (owned frames on it go
    /// to the kernel again); nothing registered is not an error.
    pub fn unregister(&self, queue: u32) -> io::Result<()> {
        match self
            .loaded
            .xsks
            .delete(&queue.to_ne_bytes())
            .map_err(bpf_err)
        {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            r => r,
        }
    }

    /// The program's counters, summed over CPUs.
    pub fn counters(&self) -> io::Result<UplinkCounters> {
        self.loaded.counters()
    }

    /// What the program steers.
    pub fn config(&self) -> UplinkConfig {
        self.config
    }

    /// The attach mode in effect (read back from the kernel).
    pub fn attach_mode(&self) -> XdpAttach {
        self.attach
    }

    /// The kernel's id of the attached program (0 if it could not be read).
    pub fn prog_id(&self) -> u32 {
        self.prog_id
    }

    /// The interface name as given.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// The interface index (in the namespace it was attached in).
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Entries of `xsks_map`: the highest queue + 1 a socket can serve.
    pub fn queues(&self) -> u32 {
        self.queues
    }
}

impl Drop for UplinkSteering {
    fn drop(&mut self) {
        let counters = self.counters().ok();
        tracing::info!(
            iface = %self.iface,
            prog_id = self.prog_id,
            link_fd = self.link.as_raw_fd(),
            ?counters,
            "detaching uplink XDP program"
        );
        // Closing `link` (the first field) detaches the program.
    }
}

/// Detaches a program left attached to `ifindex` through netlink, as
/// [`sys::detach_xdp`] does, logging what it was.
fn clear_stale(iface: &str, ifindex: u32) -> Result<(), PortError> {
    let st = match sys::xdp_link_state(ifindex) {
        Ok(st) if st.attach == XdpAttach::None => return Ok(()),
        Ok(st) => st,
        Err(e) => {
            tracing::debug!(iface, error = %e, "XDP link state query failed");
            return Ok(());
        }
    };
    tracing::warn!(
        iface,
        prog_id = st.prog_id,
        mode = %st.attach,
        "an XDP program is already attached (left by a killed vswitchd?); detaching it"
    );
    sys::detach_xdp(ifindex).map(drop).map_err(|e| {
        let hint = if e.raw_os_error() == Some(libc::EBUSY) {
            " [held by a BPF link of a live process: another vswitchd?]"
        } else {
            ""
        };
        PortError::step(
            BACKEND,
            iface,
            None,
            format!(
                "clear stale XDP program (prog_id {}, xdp={}){hint}",
                st.prog_id, st.attach
            ),
            e,
        )
    })
}

impl AfXdpPort {
    /// Opens an AF_XDP port on the uplink `iface` queue `queue` that
    /// receives only UDP to `vtep_ip`:`udp_port` (VXLAN), through the
    /// switch's own XDP program ([`UplinkSteering`], attached here in
    /// `opts.mode`); everything else stays with the kernel. The program
    /// lives as long as the port. For several queues of one uplink, attach
    /// an [`UplinkSteering`] once and use [`AfXdpPort::open_steered`].
    pub fn open_uplink(
        iface: &str,
        queue: u32,
        vtep_ip: Ipv4Addr,
        udp_port: u16,
        opts: &AfXdpOptions,
    ) -> Result<AfXdpPort, PortError> {
        let config = UplinkConfig { vtep_ip, udp_port };
        let steering = Arc::new(UplinkSteering::attach(iface, config, opts.mode)?);
        AfXdpPort::open_steered(&steering, queue, opts)
    }

    /// Opens an AF_XDP socket on `steering`'s interface queue `queue`
    /// without libxdp's program and registers it in `steering`'s map.
    /// `opts.mode` is not used: the program is already attached.
    pub fn open_steered(
        steering: &Arc<UplinkSteering>,
        queue: u32,
        opts: &AfXdpOptions,
    ) -> Result<AfXdpPort, PortError> {
        let iface = steering.iface();
        let fail =
            |step: String, e: io::Error| PortError::step(BACKEND, iface, Some(queue), step, e);
        let p = Prepared::new(iface, queue, opts)?;
        if p.ifindex != steering.ifindex() {
            return Err(fail(
                "check uplink program".into(),
                io::Error::other(format!(
                    "program is attached to ifindex {}, the interface here is {} (another network namespace?)",
                    steering.ifindex(),
                    p.ifindex
                )),
            ));
        }
        let sock_cfg = SocketConfig::builder()
            .rx_queue_size(p.ring)
            .tx_queue_size(p.ring)
            .libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD)
            .bind_flags(p.bind)
            .build();
        let b = match p.create_socket(sock_cfg, true) {
            Ok(b) => b,
            Err(TryErr::Umem(e)) => return Err(fail("create umem".into(), e)),
            Err(TryErr::Socket(e)) => {
                return Err(fail(
                    format!("create socket (bind {}, no libxdp program)", p.bind_label),
                    e,
                ))
            }
        };
        steering.register(queue, b.rx.fd().as_raw_fd())?;
        Ok(p.assemble(
            opts,
            b,
            steering.attach_mode(),
            steering.prog_id(),
            Some(Arc::clone(steering)),
        ))
    }

    /// The uplink program this port is registered in, if it is an uplink
    /// port.
    pub fn steering(&self) -> Option<&Arc<UplinkSteering>> {
        self.steering.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_encoded_in_network_order() {
        let c = UplinkConfig::vxlan(Ipv4Addr::new(198, 18, 0, 1));
        assert_eq!(c.to_bytes(), [198, 18, 0, 1, 0x12, 0xb5, 0, 0]);
        assert_eq!(c.to_string(), "198.18.0.1:4789");
        let c = UplinkConfig {
            vtep_ip: Ipv4Addr::new(10, 0, 0, 255),
            udp_port: 8472,
        };
        assert_eq!(c.to_bytes(), [10, 0, 0, 255, 0x21, 0x18, 0, 0]);
        assert!(c.check().is_ok());
    }

    #[test]
    fn configs_that_steer_nothing_or_groups_are_refused() {
        for (ip, port) in [
            (Ipv4Addr::UNSPECIFIED, VXLAN_PORT),
            (Ipv4Addr::BROADCAST, VXLAN_PORT),
            (Ipv4Addr::new(239, 1, 1, 1), VXLAN_PORT),
            (Ipv4Addr::new(198, 18, 0, 1), 0),
        ] {
            let c = UplinkConfig {
                vtep_ip: ip,
                udp_port: port,
            };
            let e = c.check().unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{c}: {e}");
        }
    }

    #[test]
    fn percpu_counters_are_summed() {
        let v = vec![
            5u64.to_ne_bytes().to_vec(),
            0u64.to_ne_bytes().to_vec(),
            37u64.to_ne_bytes().to_vec(),
            vec![1, 2, 3], // short: ignored
        ];
        assert_eq!(sum_percpu(&v), 42);
        assert_eq!(sum_percpu(&[]), 0);
    }

    #[test]
    fn errno_is_found_in_libbpf_messages() {
        assert_eq!(
            errno_in("failed to load object: Operation not permitted (os error 1)"),
            Some(1)
        );
        assert_eq!(errno_in("no error here"), None);
        let e = bpf_err(libbpf_rs::Error::from_raw_os_error(libc::ERANGE));
        assert_eq!(e.raw_os_error(), Some(libc::ERANGE));
    }

    /// Frames for the parser table: Ethernet + IPv4 + UDP from
    /// 198.18.0.2 to `dst`:`dport`, with `vlan` tags (TPIDs) in front.
    fn frame(vlan: &[u16], dst: [u8; 4], dport: u16) -> Vec<u8> {
        let mut f = Vec::new();
        etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])
            .ipv4([198, 18, 0, 2], dst, 64)
            .udp(40000, dport)
            .write_to_vec(&mut f, b"\x08\0\0\0\0\0\x2a\0inner")
            .unwrap();
        for &tpid in vlan.iter().rev() {
            let mut tag = tpid.to_be_bytes().to_vec();
            tag.extend_from_slice(&100u16.to_be_bytes());
            f.splice(12..12, tag);
        }
        f
    }

    /// `f` (untagged IPv4) with `n` 4-byte option words (NOPs) in the IPv4
    /// header.
    fn with_ip_options(mut f: Vec<u8>, n: u8) -> Vec<u8> {
        f.splice(34..34, std::iter::repeat_n(1u8, 4 * usize::from(n)));
        f[14] = 0x45 + n;
        let total = u16::from_be_bytes([f[16], f[17]]) + 4 * u16::from(n);
        f[16..18].copy_from_slice(&total.to_be_bytes());
        f
    }

    /// The program's verdicts through `BPF_PROG_TEST_RUN` (needs root, no
    /// interface): which frames are the switch's. With no socket in
    /// `xsks_map` an owned frame is passed too, but counted `unbound`.
    #[test]
    fn parser_owns_only_udp_to_the_vtep_port() {
        if !nix::unistd::geteuid().is_root() {
            let reason = "needs root to load a BPF program";
            assert!(std::env::var_os("CI").is_none(), "under CI: {reason}");
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                format!("skipping: {reason}\n").as_bytes(),
            );
            return;
        }
        let vtep = [198, 18, 0, 1];
        let loaded = Loaded::new(UplinkConfig::vxlan(Ipv4Addr::from(vtep)), 4)
            .unwrap_or_else(|(step, e)| panic!("{step}: {e}"));
        // test_run wants the mutable handle.
        let prog = loaded
            .object
            .progs_mut()
            .find(|p| p.name() == PROG_NAME)
            .unwrap();
        let plain = frame(&[], vtep, VXLAN_PORT);
        let mut fragment = plain.clone();
        fragment[20] |= 0x20; // MF
        let mut later_fragment = plain.clone();
        later_fragment[21] = 1; // offset 8
        let mut df = plain.clone();
        df[20] |= 0x40; // DF is not a fragment
        let mut tcp = plain.clone();
        tcp[23] = 6;
        let mut short_ihl = plain.clone();
        short_ihl[14] = 0x44;
        let mut v6_in_v4 = plain.clone();
        v6_in_v4[14] = 0x65;
        let mut ipv6 = Vec::new();
        etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv6([1; 16], [2; 16], 64)
            .udp(40000, VXLAN_PORT)
            .write_to_vec(&mut ipv6, b"v6")
            .unwrap();
        let mut arp = plain[..14].to_vec();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        arp.extend_from_slice(&[0; 20]);
        let cases: Vec<(&str, Vec<u8>, bool)> = vec![
            ("vxlan to the vtep", plain.clone(), true),
            ("802.1Q tagged", frame(&[0x8100], vtep, VXLAN_PORT), true),
            ("802.1ad tagged", frame(&[0x88a8], vtep, VXLAN_PORT), true),
            (
                "ipv4 options (ihl 6)",
                with_ip_options(plain.clone(), 1),
                true,
            ),
            (
                "ipv4 options (ihl 15)",
                with_ip_options(plain.clone(), 10),
                true,
            ),
            ("DF set", df, true),
            ("other port", frame(&[], vtep, VXLAN_PORT + 1), false),
            (
                "other address",
                frame(&[], [198, 18, 0, 3], VXLAN_PORT),
                false,
            ),
            ("tcp", tcp, false),
            ("first fragment", fragment, false),
            ("later fragment", later_fragment, false),
            (
                "two vlan tags",
                frame(&[0x88a8, 0x8100], vtep, VXLAN_PORT),
                false,
            ),
            ("ihl 4", short_ihl, false),
            ("version 6 in an ipv4 ethertype", v6_in_v4, false),
            ("ipv6 udp 4789", ipv6, false),
            ("arp", arp, false),
            ("ethernet header only", plain[..14].to_vec(), false),
            ("ipv4 header cut", plain[..30].to_vec(), false),
            ("udp header cut", plain[..38].to_vec(), false),
            (
                "vlan tag cut",
                frame(&[0x8100], vtep, VXLAN_PORT)[..16].to_vec(),
                false,
            ),
            (
                "options run past the end",
                with_ip_options(plain.clone(), 10)[..60].to_vec(),
                false,
            ),
        ];
        for (name, data, owned) in cases {
            let before = loaded.counters().unwrap();
            let out = prog
                .test_run(libbpf_rs::ProgramInput {
                    data_in: Some(&data),
                    ..Default::default()
                })
                .unwrap_or_else(|e| panic!("{name}: test run: {e:#}"));
            let after = loaded.counters().unwrap();
            assert_eq!(out.return_value, libbpf_sys::XDP_PASS, "{name}");
            let delta = (
                after.redirected - before.redirected,
                after.passed - before.passed,
                after.unbound - before.unbound,
            );
            let want = if owned { (0, 0, 1) } else { (0, 1, 0) };
            assert_eq!(delta, want, "{name}: (redirected, passed, unbound)");
        }
    }

    /// The embedded object parses and holds the program and maps this
    /// module names (no kernel needed: nothing is loaded).
    #[test]
    fn embedded_object_has_the_program_and_maps() {
        assert_eq!(&UPLINK_BPF_OBJECT[..4], b"\x7fELF");
        // e_machine (offset 18, little or big endian) is EM_BPF = 247.
        let machine = u16::from_ne_bytes([UPLINK_BPF_OBJECT[18], UPLINK_BPF_OBJECT[19]]);
        assert_eq!(machine, 247);
        let open = ObjectBuilder::default()
            .open_memory(UPLINK_BPF_OBJECT)
            .expect("libbpf opens the object");
        let progs: Vec<String> = open
            .progs()
            .map(|p| p.name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(progs, [PROG_NAME]);
        let maps: Vec<(String, u32)> = open
            .maps()
            .map(|m| (m.name().to_string_lossy().into_owned(), m.max_entries()))
            .collect();
        for (name, entries) in [(CONFIG_MAP, 1), (XSKS_MAP, 64), (STATS_MAP, 3)] {
            assert!(
                maps.iter().any(|(n, e)| n == name && *e == entries),
                "{name} with {entries} entries in {maps:?}"
            );
        }
    }
}
