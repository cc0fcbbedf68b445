//! One tracked connection: immutable identity (both keys, NAT kind),
//! lock-free liveness, and the per-protocol state behind a small mutex.
//!
//! The connection is allocated once, as an `Arc`, and indexed twice (its
//! original and its reply key); see the thread-safety notes in
//! [`super`]. Per-protocol modules (`tcp`, `udp`, `icmp`, `other`) decide
//! what a packet does to the state; this file dispatches to them and names
//! the timeout each state runs under.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::icmp::IcmpConn;
use super::key::{CtKey, CtPacket, L4Info};
use super::other::OtherConn;
use super::tcp::TcpConn;
use super::udp::UdpConn;
use super::CtTimeouts;

/// What a packet of a known connection amounts to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Update {
    /// A valid packet: the state may have moved; refresh the timeout.
    Valid,
    /// Not acceptable in this state (`+inv`); nothing changed.
    Invalid,
    /// A new connection on the tuple of a finished one (a SYN in
    /// `TIME_WAIT`): remove the old one and treat the packet as new.
    Reopen,
}

/// The timeouts a state can run under; indexes [`Timeouts`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tmo {
    TcpSynSent,
    TcpSynRecv,
    TcpEstablished,
    TcpFinWait,
    TcpCloseWait,
    TcpLastAck,
    TcpTimeWait,
    TcpClose,
    UdpFirst,
    UdpStream,
    Icmp,
    Other,
}

/// [`CtTimeouts`] in nanoseconds, indexed by [`Tmo`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Timeouts([u64; 12]);

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
}

impl Timeouts {
    pub(crate) fn new(t: &CtTimeouts) -> Timeouts {
        Timeouts([
            nanos(t.tcp_syn_sent),
            nanos(t.tcp_syn_recv),
            nanos(t.tcp_established),
            nanos(t.tcp_fin_wait),
            nanos(t.tcp_close_wait),
            nanos(t.tcp_last_ack),
            nanos(t.tcp_time_wait),
            nanos(t.tcp_close),
            nanos(t.udp_first),
            nanos(t.udp_stream),
            nanos(t.icmp),
            nanos(t.other),
        ])
    }

    pub(crate) fn to_config(self) -> CtTimeouts {
        let d = |t: Tmo| Duration::from_nanos(self.get(t));
        CtTimeouts {
            tcp_syn_sent: d(Tmo::TcpSynSent),
            tcp_syn_recv: d(Tmo::TcpSynRecv),
            tcp_established: d(Tmo::TcpEstablished),
            tcp_fin_wait: d(Tmo::TcpFinWait),
            tcp_close_wait: d(Tmo::TcpCloseWait),
            tcp_last_ack: d(Tmo::TcpLastAck),
            tcp_time_wait: d(Tmo::TcpTimeWait),
            tcp_close: d(Tmo::TcpClose),
            udp_first: d(Tmo::UdpFirst),
            udp_stream: d(Tmo::UdpStream),
            icmp: d(Tmo::Icmp),
            other: d(Tmo::Other),
        }
    }

    #[inline]
    pub(crate) fn get(&self, t: Tmo) -> u64 {
        self.0[t as usize]
    }
}

/// Per-protocol state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum L4State {
    Tcp(TcpConn),
    Udp(UdpConn),
    Icmp(IcmpConn),
    Other(OtherConn),
}

impl L4State {
    /// The state a first packet opens, or `None` when it cannot open a
    /// connection (`+inv`).
    pub(crate) fn new(pkt: &CtPacket) -> Option<L4State> {
        match pkt.l4 {
            L4Info::Tcp(seg) => TcpConn::new(&seg).map(L4State::Tcp),
            L4Info::Udp => Some(L4State::Udp(UdpConn::new())),
            L4Info::IcmpEcho { reply } => IcmpConn::new(reply).map(L4State::Icmp),
            L4Info::Other => Some(L4State::Other(OtherConn::new())),
            L4Info::IcmpError { .. } | L4Info::IcmpOther { .. } => None,
        }
    }

    /// Tracks a packet travelling in direction `dir` (0 original, 1 reply).
    #[inline]
    pub(crate) fn update(&mut self, dir: usize, pkt: &CtPacket) -> Update {
        match (self, &pkt.l4) {
            (L4State::Tcp(c), L4Info::Tcp(seg)) => c.update(dir, seg),
            (L4State::Udp(c), L4Info::Udp) => c.update(dir),
            (L4State::Icmp(c), L4Info::IcmpEcho { reply }) => c.update(dir, *reply),
            (L4State::Other(c), L4Info::Other) => c.update(dir),
            _ => Update::Invalid,
        }
    }

    /// No longer a candidate for early drop.
    #[inline]
    pub(crate) fn assured(&self) -> bool {
        match self {
            L4State::Tcp(c) => c.assured(),
            L4State::Udp(c) => c.assured(),
            L4State::Icmp(c) => c.assured(),
            L4State::Other(c) => c.assured(),
        }
    }

    #[inline]
    pub(crate) fn timeout(&self) -> Tmo {
        match self {
            L4State::Tcp(c) => c.timeout(),
            L4State::Udp(c) => c.timeout(),
            L4State::Icmp(c) => c.timeout(),
            L4State::Other(c) => c.timeout(),
        }
    }

    /// The protocol state's name for `dump-conntrack`.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            L4State::Tcp(c) => c.state().name(),
            L4State::Udp(c) => c.name(),
            L4State::Icmp(c) => c.name(),
            L4State::Other(c) => c.name(),
        }
    }
}

/// The mutable part of a connection, under [`Conn::m`].
#[derive(Debug)]
pub(crate) struct ConnMut {
    pub(crate) l4: L4State,
    /// Per direction (0 original, 1 reply).
    pub(crate) packets: [u64; 2],
    /// Per direction.
    pub(crate) bytes: [u64; 2],
}

/// A connection, shared by its two index entries.
#[derive(Debug)]
pub(crate) struct Conn {
    /// Original key, and reply key *after* NAT. Immutable.
    pub(crate) keys: [CtKey; 2],
    /// Monotonic nanoseconds at which it expires; 0 once removed. Read
    /// without a lock (a stale read only sends the reader to the mutex);
    /// written only under `m`.
    pub(crate) expires: AtomicU64,
    /// `ct_mark`.
    pub(crate) mark: AtomicU32,
    /// Index of the shard holding the original key (its unassured count).
    pub(crate) shard: u32,
    /// `NAT_SRC` / `NAT_DST` bits. Immutable.
    pub(crate) nat: u8,
    /// Mirrors `l4.assured()`; written only under `m`, read by the early
    /// drop scan without the lock.
    pub(crate) assured: AtomicBool,
    pub(crate) m: Mutex<ConnMut>,
}

impl Conn {
    /// Neither removed nor expired at `now`.
    #[inline]
    pub(crate) fn live(&self, now: u64) -> bool {
        let e = self.expires.load(Relaxed);
        e != 0 && now < e
    }

    #[inline]
    pub(crate) fn zone(&self) -> u16 {
        self.keys[0].zone()
    }
}

/// One index entry: a connection under one of its keys. 16 bytes; the key
/// is read through the connection (the hash table's 7-bit tags make that
/// dereference happen, almost always, only for the entry being looked for).
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) conn: Arc<Conn>,
    /// Which of `conn.keys` this entry is filed under.
    pub(crate) dir: u8,
}

impl Slot {
    #[inline]
    pub(crate) fn key(&self) -> &CtKey {
        &self.conn.keys[usize::from(self.dir)]
    }
}
