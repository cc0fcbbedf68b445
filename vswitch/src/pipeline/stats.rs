//! Worker-local counters: drops by reason, per-port rx/tx.
//!
//! Each worker owns one [`WorkerStats`] and is its only writer, so an update
//! is a relaxed load and store (no locked read-modify-write); readers (the
//! control thread) sum every worker's block. A reader may see a count one
//! batch old, never a torn value.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::DropReason;

/// Port slots per worker: the most ports a switch can have attached at once.
pub const MAX_PORT_SLOTS: usize = 256;

/// Counters of one port (as `ofctl dump-ports` shows them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Packets received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets transmitted.
    pub tx_packets: u64,
    /// Bytes transmitted.
    pub tx_bytes: u64,
    /// Packets received but dropped (malformed, no match, ...), counted on the ingress port.
    pub rx_dropped: u64,
    /// Packets that could not be transmitted (queue full).
    pub tx_dropped: u64,
}

impl PortStats {
    /// Adds `o` to `self`.
    pub fn add(&mut self, o: &PortStats) {
        self.rx_packets += o.rx_packets;
        self.rx_bytes += o.rx_bytes;
        self.tx_packets += o.tx_packets;
        self.tx_bytes += o.tx_bytes;
        self.rx_dropped += o.rx_dropped;
        self.tx_dropped += o.tx_dropped;
    }
}

#[derive(Debug, Default)]
#[repr(align(64))]
struct PortSlot {
    rx_packets: AtomicU64,
    rx_bytes: AtomicU64,
    tx_packets: AtomicU64,
    tx_bytes: AtomicU64,
    rx_dropped: AtomicU64,
    tx_dropped: AtomicU64,
}

/// One worker's counters.
#[derive(Debug)]
pub struct WorkerStats {
    drops: [AtomicU64; DropReason::COUNT],
    ports: Box<[PortSlot]>,
}

impl Default for WorkerStats {
    fn default() -> Self {
        WorkerStats {
            drops: std::array::from_fn(|_| AtomicU64::new(0)),
            ports: (0..MAX_PORT_SLOTS).map(|_| PortSlot::default()).collect(),
        }
    }
}

#[inline(always)]
fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
}

impl WorkerStats {
    /// Counts one drop. Owning worker only.
    #[inline(always)]
    pub fn count_drop(&self, r: DropReason) {
        bump(&self.drops[r as usize], 1);
    }

    /// Drops counted for `r`.
    pub fn drop_count(&self, r: DropReason) -> u64 {
        self.drops[r as usize].load(Relaxed)
    }

    /// Counts received packets on `slot`. Owning worker only.
    #[inline(always)]
    pub fn rx(&self, slot: u16, packets: u64, bytes: u64) {
        let p = &self.ports[slot as usize];
        bump(&p.rx_packets, packets);
        bump(&p.rx_bytes, bytes);
    }

    /// Counts a packet dropped after reception on `slot`. Owning worker only.
    #[inline(always)]
    pub fn rx_dropped(&self, slot: u16) {
        bump(&self.ports[slot as usize].rx_dropped, 1);
    }

    /// Counts transmitted and tx-dropped packets on `slot`. Owning worker only.
    #[inline(always)]
    pub fn tx(&self, slot: u16, packets: u64, bytes: u64, dropped: u64) {
        let p = &self.ports[slot as usize];
        bump(&p.tx_packets, packets);
        bump(&p.tx_bytes, bytes);
        bump(&p.tx_dropped, dropped);
    }

    /// Zeroes a slot's counters (when a port is attached to a reused slot).
    /// Racy against the owning worker only if the slot is in use, which the
    /// caller prevents by resetting before publishing the port.
    pub fn reset_port(&self, slot: u16) {
        let p = &self.ports[slot as usize];
        for c in [
            &p.rx_packets,
            &p.rx_bytes,
            &p.tx_packets,
            &p.tx_bytes,
            &p.rx_dropped,
            &p.tx_dropped,
        ] {
            c.store(0, Relaxed);
        }
    }

    /// A copy of a slot's counters.
    pub fn port(&self, slot: u16) -> PortStats {
        let p = &self.ports[slot as usize];
        PortStats {
            rx_packets: p.rx_packets.load(Relaxed),
            rx_bytes: p.rx_bytes.load(Relaxed),
            tx_packets: p.tx_packets.load(Relaxed),
            tx_bytes: p.tx_bytes.load(Relaxed),
            rx_dropped: p.rx_dropped.load(Relaxed),
            tx_dropped: p.tx_dropped.load(Relaxed),
        }
    }
}
