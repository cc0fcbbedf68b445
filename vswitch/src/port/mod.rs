//! Ports: where frames enter and leave the switch, in bursts.
//!
//! A worker owns a [`PacketPool`], a slab of fixed-size frame buffers (for
//! AF_XDP the pool is the UMEM), and moves [`Desc`]riptors, never bytes,
//! between ports and the pipeline. A [`Port`] receives a burst into the pool
//! and transmits a burst out of it; backends here: [`mem`] (in-process rings
//! for tests, benches and the in-memory demo). Kernel backends (AF_XDP,
//! AF_PACKET) implement the same trait: [`afxdp`], [`afpacket`], and
//! [`open::open_port`] to pick one by name.

pub mod afpacket;
pub mod afxdp;
pub mod mem;
pub mod open;
mod pool;

pub use pool::{Desc, PacketPool, FRAME_SIZE, HEADROOM};

use crate::pipeline::Batch;

/// A switch port with burst receive and transmit.
///
/// Both calls are non-blocking and allocate nothing per packet.
pub trait Port: Send + std::fmt::Debug {
    /// The interface name (`ofctl show`).
    fn name(&self) -> &str;

    /// The backend name (`mem`, `afxdp`, `afpacket`).
    fn backend(&self) -> &'static str;

    /// Receives up to `batch.room()` frames into `pool` and appends their
    /// descriptors to `batch`. Returns how many were received.
    fn rx_burst(&mut self, pool: &mut PacketPool, batch: &mut Batch) -> usize;

    /// Transmits the frames of `descs` (draining it). Frames go back to the
    /// pool once sent. Returns the packets and bytes sent; the rest were
    /// dropped (queue full) and also returned to the pool.
    fn tx_burst(&mut self, pool: &mut PacketPool, descs: &mut Vec<Desc>) -> (usize, u64);

    /// A file descriptor that becomes readable when frames arrive, for a
    /// worker that blocks in `poll()` when idle. `None`: the port cannot
    /// wake a sleeping worker (in-memory ports), so it must be polled.
    fn poll_fd(&self) -> Option<std::os::fd::RawFd> {
        None
    }

    /// Transmit work the kernel still has to be kicked for (AF_XDP copy
    /// mode transmits only on `sendto`/`poll`); called once per loop turn.
    fn kick(&mut self) {}

    /// Backend detail for `ofctl show` (AF_XDP: attach mode and bind flags).
    fn detail(&self) -> String {
        String::new()
    }
}
