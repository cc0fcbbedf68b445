//! AF_PACKET port: the fallback that works on any Linux kernel.
//!
//! One `SOCK_RAW` packet socket bound to the interface for `ETH_P_ALL`,
//! non-blocking, in promiscuous membership (frames to other MACs arrive on a
//! real NIC too) and with `PACKET_IGNORE_OUTGOING`, so the port never
//! receives its own transmits (frames whose packet type is still
//! `PACKET_OUTGOING` are dropped as well, for kernels without that option).
//! A burst is a loop of non-blocking `recvmsg`/`send` calls straight into and
//! out of the worker's [`PacketPool`] frames: one system call per frame, which
//! is why AF_XDP is the default and this the fallback.
//!
//! The kernel strips a received VLAN tag into packet metadata before packet
//! sockets see the frame; `PACKET_AUXDATA` hands it back and the tag is
//! re-inserted in the frame's headroom, so the pipeline sees the frame as it
//! was on the wire.
//!
//! What it deliberately does not do: `PACKET_VNET_HDR` (segmentation and
//! checksum offload metadata). Like AF_XDP on veth, frames from a pod whose
//! `eth0` has tx checksum offload on arrive with an unfinished L4 checksum
//! (counted as `rx_csum_partial`) and TSO super-frames larger than a pool
//! frame are dropped (`rx_oversize`); pods need `ethtool -K eth0 tx off`
//! (see `shared/notes/afxdp-veth.md`). No `PACKET_MMAP` rings either.
//!
//! Unsafe: binding to a `sockaddr_ll` and the `SOL_PACKET` socket options
//! have no wrapper in `nix`, so two small functions call `libc` directly;
//! everything else goes through `nix`.
#![expect(
    unsafe_code,
    reason = "sockaddr_ll bind and SOL_PACKET options have no safe wrapper in nix"
)]

use std::io::{self, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, LinkAddr, MsgFlags, SockFlag, SockType};

use super::open::PortError;
use super::{Desc, PacketPool, Port, FRAME_SIZE, HEADROOM};
use crate::pipeline::Batch;

const BACKEND: &str = "afpacket";
/// Largest frame a pool buffer holds after its headroom.
const MAX_FRAME: usize = FRAME_SIZE - HEADROOM;
/// Socket receive buffer asked for (the kernel caps it at `rmem_max`):
/// the default (~200 KiB) holds only ~100 frames of backlog.
const RCVBUF: usize = 4 << 20;
/// Room for one `PACKET_AUXDATA` control message.
const CMSG_BUF: usize = 64;

// SOL_PACKET bits libc does not have on every target.
const PACKET_AUXDATA: libc::c_int = 8;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
const TP_STATUS_CSUMNOTREADY: u32 = 1 << 3;
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;

/// Per-port counters (single writer: the owning worker).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AfPacketStats {
    /// Frames received into the pool.
    pub rx_packets: u64,
    /// Rx bursts that found the pool empty (frames stay in the socket
    /// buffer; the kernel drops and counts when it overflows).
    pub rx_no_buffer: u64,
    /// Frames dropped because they exceed a pool frame (TSO super-frames).
    pub rx_oversize: u64,
    /// Received frames that still carried an unfinished (partial) L4
    /// checksum: the sender has tx checksum offload on.
    pub rx_csum_partial: u64,
    /// Received frames whose VLAN tag the kernel had moved into metadata
    /// and the port re-inserted.
    pub rx_vlan_restored: u64,
    /// Frames the socket returned as our own transmits (only on kernels
    /// without `PACKET_IGNORE_OUTGOING`), dropped.
    pub rx_outgoing: u64,
    /// Frames transmitted.
    pub tx_packets: u64,
    /// Frames dropped on transmit (socket buffer full, interface down).
    pub tx_dropped: u64,
}

/// An AF_PACKET port on one interface.
#[derive(Debug)]
pub struct AfPacketPort {
    name: String,
    ifindex: u32,
    fd: OwnedFd,
    ignore_outgoing: bool,
    cmsg: CmsgBuf,
    stats: AfPacketStats,
}

/// Control-message space, aligned like `cmsghdr` (nix takes a reference to
/// the first header in it).
#[derive(Debug)]
#[repr(C, align(8))]
struct CmsgBuf([u8; CMSG_BUF]);

impl AfPacketPort {
    /// Opens a packet socket on `iface`.
    pub fn open(iface: &str) -> Result<AfPacketPort, PortError> {
        let fail = |step: &str, e: io::Error| PortError::step(BACKEND, iface, None, step, e);
        let ifindex =
            nix::net::if_::if_nametoindex(iface).map_err(|e| fail("lookup interface", e.into()))?;
        // Protocol 0: the socket receives nothing until it is bound to the
        // interface below, so no frame from another interface slips in.
        let fd = socket::socket(
            AddressFamily::Packet,
            SockType::Raw,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(|e| fail("socket", e.into()))?;
        let ignore_outgoing = match set_packet_opt(
            fd.as_fd(),
            PACKET_IGNORE_OUTGOING,
            &1 as &libc::c_int,
        ) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(iface, error = %e, "PACKET_IGNORE_OUTGOING unsupported, filtering own transmits by packet type");
                false
            }
        };
        set_packet_opt(fd.as_fd(), PACKET_AUXDATA, &1 as &libc::c_int)
            .map_err(|e| fail("setsockopt PACKET_AUXDATA", e))?;
        if let Err(e) = socket::setsockopt(&fd, socket::sockopt::RcvBuf, &RCVBUF) {
            tracing::debug!(iface, error = %e, "SO_RCVBUF not raised");
        }
        bind_ll(fd.as_fd(), ifindex).map_err(|e| fail("bind", e))?;
        let mreq = libc::packet_mreq {
            mr_ifindex: ifindex as libc::c_int,
            mr_type: libc::PACKET_MR_PROMISC as libc::c_ushort,
            mr_alen: 0,
            mr_address: [0; 8],
        };
        set_packet_opt(fd.as_fd(), libc::PACKET_ADD_MEMBERSHIP, &mreq)
            .map_err(|e| fail("setsockopt PACKET_ADD_MEMBERSHIP promisc", e))?;
        tracing::info!(iface, ifindex, ignore_outgoing, "afpacket port open");
        Ok(AfPacketPort {
            name: iface.to_string(),
            ifindex,
            fd,
            ignore_outgoing,
            cmsg: CmsgBuf([0; CMSG_BUF]),
            stats: AfPacketStats::default(),
        })
    }

    /// The interface index the socket is bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The port's counters.
    pub fn stats(&self) -> AfPacketStats {
        self.stats
    }

    /// Receives one frame into the frame buffer of `d`. `Ok(None)`: a frame
    /// was consumed but is not to be delivered (counted).
    fn recv_one(&mut self, pool: &mut PacketPool, d: Desc) -> Result<Option<Desc>, Errno> {
        self.cmsg.0.fill(0);
        let fd = self.fd.as_raw_fd();
        let buf = &mut pool.frame_mut(d.frame)[HEADROOM..];
        let mut iov = [IoSliceMut::new(buf)];
        let (len, truncated, pkttype) = {
            let msg = socket::recvmsg::<LinkAddr>(
                fd,
                &mut iov,
                Some(&mut self.cmsg.0),
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_TRUNC,
            )?;
            (
                msg.bytes,
                msg.flags.contains(MsgFlags::MSG_TRUNC),
                msg.address.map(|a| a.pkttype()),
            )
        };
        if !self.ignore_outgoing && pkttype == Some(libc::PACKET_OUTGOING) {
            self.stats.rx_outgoing += 1;
            return Ok(None);
        }
        if truncated || len > MAX_FRAME {
            self.stats.rx_oversize += 1;
            return Ok(None);
        }
        let mut out = Desc {
            frame: d.frame,
            off: HEADROOM as u16,
            len: len as u16,
        };
        if let Some(aux) = auxdata(&self.cmsg.0) {
            if aux.status & TP_STATUS_CSUMNOTREADY != 0 {
                self.stats.rx_csum_partial += 1;
            }
            if aux.status & TP_STATUS_VLAN_VALID != 0 && len >= 12 {
                let tpid = if aux.status & TP_STATUS_VLAN_TPID_VALID != 0 {
                    aux.vlan_tpid
                } else {
                    0x8100
                };
                if len + 4 > MAX_FRAME || !pool.push_front(&mut out, 4) {
                    self.stats.rx_oversize += 1;
                    return Ok(None);
                }
                let b = pool.data_mut(out);
                b.copy_within(4..16, 0);
                b[12..14].copy_from_slice(&tpid.to_be_bytes());
                b[14..16].copy_from_slice(&aux.vlan_tci.to_be_bytes());
                self.stats.rx_vlan_restored += 1;
            }
        }
        Ok(Some(out))
    }
}

impl Port for AfPacketPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn rx_burst(&mut self, pool: &mut PacketPool, batch: &mut Batch) -> usize {
        let mut n = 0;
        while batch.room() > 0 {
            let Some(d) = pool.alloc() else {
                // Leave the backlog in the socket: the kernel drops (and
                // counts) when the buffer overflows.
                if n == 0 {
                    self.stats.rx_no_buffer += 1;
                }
                break;
            };
            match self.recv_one(pool, d) {
                Ok(Some(d)) => {
                    batch.push(d);
                    n += 1;
                }
                Ok(None) => pool.free(d),
                Err(Errno::EINTR) => pool.free(d),
                Err(_) => {
                    // EAGAIN (drained) or the interface went away: either
                    // way nothing more this turn.
                    pool.free(d);
                    break;
                }
            }
        }
        self.stats.rx_packets += n as u64;
        n
    }

    fn tx_burst(&mut self, pool: &mut PacketPool, descs: &mut Vec<Desc>) -> (usize, u64) {
        let fd = self.fd.as_raw_fd();
        let total = descs.len();
        let (mut sent, mut bytes) = (0usize, 0u64);
        let mut blocked = false;
        for d in descs.drain(..) {
            if !blocked {
                match socket::send(fd, pool.data(d), MsgFlags::MSG_DONTWAIT) {
                    Ok(_) => {
                        sent += 1;
                        bytes += u64::from(d.len);
                    }
                    // Socket buffer full: drop the rest of the burst.
                    Err(Errno::EAGAIN | Errno::ENOBUFS) => blocked = true,
                    Err(_) => {}
                }
            }
            pool.free(d);
        }
        self.stats.tx_packets += sent as u64;
        self.stats.tx_dropped += (total - sent) as u64;
        (sent, bytes)
    }

    fn poll_fd(&self) -> Option<RawFd> {
        Some(self.fd.as_raw_fd())
    }

    fn detail(&self) -> String {
        format!(
            "ifindex={} ignore_outgoing={}",
            self.ifindex, self.ignore_outgoing
        )
    }
}

/// The fields of `struct tpacket_auxdata` the port uses.
struct AuxData {
    status: u32,
    vlan_tci: u16,
    vlan_tpid: u16,
}

/// Finds a `PACKET_AUXDATA` control message in a zero-initialised control
/// buffer the kernel filled (`cmsghdr` then data, native endian).
fn auxdata(buf: &[u8]) -> Option<AuxData> {
    const HDR: usize = std::mem::size_of::<libc::cmsghdr>();
    const ALIGN: usize = std::mem::size_of::<usize>();
    let mut at = 0;
    while at + HDR <= buf.len() {
        let len = usize::from_ne_bytes(buf[at..at + ALIGN].try_into().ok()?);
        if len < HDR || at + len > buf.len() {
            return None;
        }
        let level = i32::from_ne_bytes(buf[at + ALIGN..at + ALIGN + 4].try_into().ok()?);
        let kind = i32::from_ne_bytes(buf[at + ALIGN + 4..at + ALIGN + 8].try_into().ok()?);
        let data = &buf[at + HDR..at + len];
        if level == libc::SOL_PACKET && kind == PACKET_AUXDATA && data.len() >= 20 {
            let u32_at = |i: usize| u32::from_ne_bytes(data[i..i + 4].try_into().unwrap_or([0; 4]));
            let u16_at = |i: usize| u16::from_ne_bytes(data[i..i + 2].try_into().unwrap_or([0; 2]));
            // tp_status, tp_len, tp_snaplen, tp_mac, tp_net, tp_vlan_tci, tp_vlan_tpid
            return Some(AuxData {
                status: u32_at(0),
                vlan_tci: u16_at(16),
                vlan_tpid: u16_at(18),
            });
        }
        at += len.div_ceil(ALIGN) * ALIGN;
    }
    None
}

/// `setsockopt(SOL_PACKET, name, val)`.
fn set_packet_opt<T>(fd: BorrowedFd<'_>, name: libc::c_int, val: &T) -> io::Result<()> {
    // SAFETY: `val` is a live, initialised `T` for the duration of the call
    // and the length passed is exactly its size; the kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            name,
            (val as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Binds a packet socket to `ifindex` for every protocol (`ETH_P_ALL`).
fn bind_ll(fd: BorrowedFd<'_>, ifindex: u32) -> io::Result<()> {
    let sll = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as libc::c_ushort,
        sll_protocol: (libc::ETH_P_ALL as u16).to_be(),
        sll_ifindex: ifindex as libc::c_int,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    };
    // SAFETY: `sll` is a fully initialised `sockaddr_ll` that outlives the
    // call, and the length passed is exactly its size.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmsg(level: i32, kind: i32, data: &[u8]) -> Vec<u8> {
        let hdr = std::mem::size_of::<libc::cmsghdr>();
        let mut b = vec![0u8; CMSG_BUF];
        b[..8].copy_from_slice(&(hdr + data.len()).to_ne_bytes());
        b[8..12].copy_from_slice(&level.to_ne_bytes());
        b[12..16].copy_from_slice(&kind.to_ne_bytes());
        b[hdr..hdr + data.len()].copy_from_slice(data);
        b
    }

    #[test]
    fn auxdata_is_found_and_decoded() {
        let mut d = [0u8; 20];
        d[0..4].copy_from_slice(&(TP_STATUS_VLAN_VALID | TP_STATUS_CSUMNOTREADY).to_ne_bytes());
        d[16..18].copy_from_slice(&100u16.to_ne_bytes());
        d[18..20].copy_from_slice(&0x88a8u16.to_ne_bytes());
        let a = auxdata(&cmsg(libc::SOL_PACKET, PACKET_AUXDATA, &d)).unwrap();
        assert_eq!(a.status, TP_STATUS_VLAN_VALID | TP_STATUS_CSUMNOTREADY);
        assert_eq!((a.vlan_tci, a.vlan_tpid), (100, 0x88a8));
        assert!(auxdata(&cmsg(libc::SOL_SOCKET, PACKET_AUXDATA, &d)).is_none());
        assert!(auxdata(&[0u8; CMSG_BUF]).is_none());
    }

    #[test]
    fn open_on_a_missing_interface_names_it() {
        let e = AfPacketPort::open("vswnope0").unwrap_err();
        let s = e.to_string();
        assert!(
            s.starts_with("afpacket vswnope0: lookup interface failed"),
            "{s}"
        );
    }
}
