//! TCP state tracking of one connection: the handshake, teardown, and a
//! sequence-window check per segment.
//!
//! States follow Linux's `nf_conntrack_proto_tcp` names: `SYN_SENT`,
//! `SYN_RECV`, `ESTABLISHED`, `FIN_WAIT`, `CLOSE_WAIT`, `LAST_ACK`,
//! `TIME_WAIT`, `CLOSE`. The handshake is driven by flags (SYN, then a
//! SYN-ACK that acknowledges the SYN, then the originator's ACK).
//! Teardown is derived from per-direction facts rather than a flag table:
//! each side's FIN is recorded with the sequence number just past it, and
//! an ACK at or beyond that number acknowledges it. One FIN unacknowledged
//! is `FIN_WAIT`, acknowledged `CLOSE_WAIT`; two FINs `LAST_ACK` until both
//! are acknowledged, then `TIME_WAIT` (a simultaneous close reaches the
//! same states). A valid RST goes to `CLOSE`. A SYN in `TIME_WAIT` or
//! `CLOSE` reopens: the old connection is replaced by a new one.
//!
//! The window check is Linux's `tcp_in_window`, simplified: per direction
//! the highest sequence sent (`end`), the right edge the peer allowed
//! (`maxend`, the highest ACK + window it advertised) and the largest
//! window it advertised (`maxwin`, scaled once both SYNs offered window
//! scaling). A segment is accepted when it starts no later than `maxend`,
//! ends no earlier than one receiver window before `end`, and acknowledges
//! nothing unsent nor older than a window; otherwise it is `+inv` and
//! changes nothing. An RST must pass the same check. Connections picked up
//! mid-stream (first packet a plain ACK, as with Linux's `tcp_loose`) never
//! saw the window scale, so they are tracked liberally: state only, no
//! window check. Not done: SACK blocks, timestamps (PAWS), the
//! retransmission counter and its shorter timeout, simultaneous-open
//! subtleties beyond accepting one.

use crate::packet::tcp::flags::{ACK, FIN, RST, SYN};

use super::conn::{Tmo, Update};
use super::key::TcpSeg;

/// The connection's TCP state (Linux's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TcpState {
    SynSent,
    SynRecv,
    Established,
    FinWait,
    CloseWait,
    LastAck,
    TimeWait,
    Close,
}

impl TcpState {
    pub(crate) fn name(self) -> &'static str {
        match self {
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::Established => "ESTABLISHED",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
        }
    }
}

/// `Peer::flags`: this side sent a FIN.
const FIN_SENT: u8 = 1;
/// `Peer::flags`: the other side acknowledged this side's FIN.
const FIN_ACKED: u8 = 2;

/// What is known of one direction's sender.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Peer {
    /// Initial sequence number (from its SYN).
    isn: u32,
    /// Highest sequence number sent, plus one (`td_end`).
    end: u32,
    /// Highest sequence number the other side allowed (`td_maxend`).
    maxend: u32,
    /// Largest window advertised, scaled; 0 until this side is seen.
    maxwin: u32,
    /// Sequence number just past this side's FIN.
    fin_end: u32,
    /// Window scale shift in use.
    scale: u8,
    /// Window scale offered in its SYN, plus one (0: none).
    offered: u8,
    /// `FIN_SENT`, `FIN_ACKED`.
    flags: u8,
}

impl Peer {
    /// A side first seen through its SYN (or SYN-ACK).
    fn from_syn(seg: &TcpSeg) -> Peer {
        let end = seg_end(seg);
        Peer {
            isn: seg.seq,
            end,
            maxend: end,
            maxwin: u32::from(seg.window).max(1),
            fin_end: 0,
            scale: 0,
            offered: seg.wscale.map_or(0, |s| s.min(14) + 1),
            flags: 0,
        }
    }

    /// A side first seen mid-stream (picked-up connection).
    fn from_segment(seg: &TcpSeg) -> Peer {
        let end = seg_end(seg);
        Peer {
            isn: seg.seq,
            end,
            maxend: end,
            maxwin: u32::from(seg.window).max(1),
            ..Peer::default()
        }
    }

    fn seen(&self) -> bool {
        self.maxwin != 0
    }
}

/// `TcpConn::flags`: tracked by state only (picked up mid-stream).
const LIBERAL: u8 = 1;
/// `TcpConn::flags`: the handshake completed, or a picked-up connection
/// got a reply.
const ASSURED: u8 = 2;

/// TCP state of one connection: both directions' sequence tracking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TcpConn {
    state: TcpState,
    flags: u8,
    /// Indexed by direction: 0 original, 1 reply.
    peer: [Peer; 2],
}

/// How a segment's flags classify it (PSH, URG, ECE, CWR, NS ignored).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Syn,
    SynAck,
    Fin,
    Ack,
    Rst,
}

/// The segment's class, or `None` for a flag combination no stack sends
/// (SYN+FIN, SYN+RST, FIN without ACK, no flags, ...).
fn class(flags: u16) -> Option<Class> {
    const SYN_ACK: u16 = SYN | ACK;
    const FIN_ACK: u16 = FIN | ACK;
    const RST_ACK: u16 = RST | ACK;
    match flags & (SYN | ACK | FIN | RST) {
        SYN => Some(Class::Syn),
        SYN_ACK => Some(Class::SynAck),
        FIN_ACK => Some(Class::Fin),
        ACK => Some(Class::Ack),
        RST | RST_ACK => Some(Class::Rst),
        _ => None,
    }
}

/// Sequence number just past the segment (SYN and FIN count one each).
#[inline]
fn seg_end(seg: &TcpSeg) -> u32 {
    let syn = u32::from(seg.flags & SYN != 0);
    let fin = u32::from(seg.flags & FIN != 0);
    seg.seq
        .wrapping_add(seg.payload_len)
        .wrapping_add(syn)
        .wrapping_add(fin)
}

/// `a` comes before `b` in sequence space (RFC 1982 arithmetic).
#[inline]
fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// `a` comes after `b` in sequence space.
#[inline]
fn after(a: u32, b: u32) -> bool {
    before(b, a)
}

impl TcpConn {
    /// The state a first segment opens, or `None` when it cannot open a
    /// connection (a SYN-ACK, FIN, RST or invalid flags).
    pub(crate) fn new(seg: &TcpSeg) -> Option<TcpConn> {
        match class(seg.flags)? {
            Class::Syn => Some(TcpConn {
                state: TcpState::SynSent,
                flags: 0,
                peer: [Peer::from_syn(seg), Peer::default()],
            }),
            Class::Ack => Some(TcpConn {
                state: TcpState::Established,
                flags: LIBERAL,
                peer: [Peer::from_segment(seg), Peer::default()],
            }),
            _ => None,
        }
    }

    pub(crate) fn state(&self) -> TcpState {
        self.state
    }

    /// The handshake completed (or a picked-up connection got a reply):
    /// no longer a candidate for early drop.
    pub(crate) fn assured(&self) -> bool {
        self.flags & ASSURED != 0
    }

    pub(crate) fn timeout(&self) -> Tmo {
        match self.state {
            TcpState::SynSent => Tmo::TcpSynSent,
            TcpState::SynRecv => Tmo::TcpSynRecv,
            TcpState::Established => Tmo::TcpEstablished,
            TcpState::FinWait => Tmo::TcpFinWait,
            TcpState::CloseWait => Tmo::TcpCloseWait,
            TcpState::LastAck => Tmo::TcpLastAck,
            TcpState::TimeWait => Tmo::TcpTimeWait,
            TcpState::Close => Tmo::TcpClose,
        }
    }

    /// Tracks a segment travelling in direction `dir` (0 original, 1
    /// reply). An invalid segment changes nothing.
    pub(crate) fn update(&mut self, dir: usize, seg: &TcpSeg) -> Update {
        let Some(class) = class(seg.flags) else {
            return Update::Invalid;
        };
        match class {
            Class::Syn => self.on_syn(dir, seg),
            Class::SynAck => self.on_syn_ack(dir, seg),
            Class::Rst => self.on_rst(dir, seg),
            Class::Fin | Class::Ack => self.on_ack(dir, seg, class == Class::Fin),
        }
    }

    fn on_syn(&mut self, dir: usize, seg: &TcpSeg) -> Update {
        match (self.state, dir) {
            (TcpState::TimeWait | TcpState::Close, _) => Update::Reopen,
            (TcpState::SynSent, 0) => {
                // A retransmission, or the client retrying with a new ISN:
                // start this direction over, as Linux does.
                if seg.seq != self.peer[0].isn {
                    self.peer[0] = Peer::from_syn(seg);
                }
                Update::Valid
            }
            (TcpState::SynRecv, 0) if seg.seq == self.peer[0].isn => Update::Valid,
            (TcpState::SynSent, _) => {
                // Simultaneous open: the other side's SYN crossed ours.
                self.peer[1] = Peer::from_syn(seg);
                self.negotiate_scale();
                self.state = TcpState::SynRecv;
                Update::Valid
            }
            _ => Update::Invalid,
        }
    }

    fn on_syn_ack(&mut self, dir: usize, seg: &TcpSeg) -> Update {
        let other = 1 - dir;
        match self.state {
            TcpState::SynSent if dir == 1 => {
                if seg.ack != self.peer[0].isn.wrapping_add(1) {
                    return Update::Invalid;
                }
                self.peer[1] = Peer::from_syn(seg);
                self.negotiate_scale();
                self.raise_maxend(other, seg.ack, u32::from(seg.window));
                self.state = TcpState::SynRecv;
                Update::Valid
            }
            TcpState::SynSent | TcpState::TimeWait | TcpState::Close => Update::Invalid,
            _ => {
                // A retransmitted SYN-ACK, or the originator's SYN-ACK in a
                // simultaneous open: same ISN, acknowledging the other SYN.
                let (p, q) = (&self.peer[dir], &self.peer[other]);
                if p.seen() && q.seen() && seg.seq == p.isn && seg.ack == q.isn.wrapping_add(1) {
                    self.raise_maxend(other, seg.ack, u32::from(seg.window));
                    Update::Valid
                } else {
                    Update::Invalid
                }
            }
        }
    }

    fn on_rst(&mut self, dir: usize, seg: &TcpSeg) -> Update {
        let ok = match self.state {
            // The server refuses: the RST must acknowledge the SYN.
            TcpState::SynSent if dir == 1 => {
                seg.flags & ACK != 0 && seg.ack == self.peer[0].isn.wrapping_add(1)
            }
            // The client gives up: at its own SYN's sequence numbers.
            TcpState::SynSent => {
                seg.seq == self.peer[0].isn || seg.seq == self.peer[0].isn.wrapping_add(1)
            }
            _ if self.flags & LIBERAL != 0 => true,
            _ => self.in_window(dir, seg),
        };
        if !ok {
            return Update::Invalid;
        }
        self.state = TcpState::Close;
        Update::Valid
    }

    fn on_ack(&mut self, dir: usize, seg: &TcpSeg, fin: bool) -> Update {
        if self.state == TcpState::SynSent {
            return Update::Invalid;
        }
        let other = 1 - dir;
        if self.flags & LIBERAL != 0 {
            if !self.peer[dir].seen() {
                self.peer[dir] = Peer::from_segment(seg);
            }
            if dir == 1 {
                self.flags |= ASSURED;
            }
        } else if !self.in_window(dir, seg) {
            return Update::Invalid;
        }
        self.track(dir, seg);
        if fin && self.peer[dir].flags & FIN_SENT == 0 {
            self.peer[dir].flags |= FIN_SENT;
            self.peer[dir].fin_end = seg_end(seg);
        }
        let q = &mut self.peer[other];
        if seg.flags & ACK != 0 && q.flags & FIN_SENT != 0 && !before(seg.ack, q.fin_end) {
            q.flags |= FIN_ACKED;
        }
        if self.state == TcpState::SynRecv && dir == 0 {
            self.state = TcpState::Established;
            self.flags |= ASSURED;
        }
        if self.state < TcpState::Close {
            self.state = self.state.max(self.teardown());
        }
        Update::Valid
    }

    /// The state the FINs seen so far amount to (`SynSent`, the lowest,
    /// when there is none: the caller keeps the higher of the two).
    fn teardown(&self) -> TcpState {
        let fin = |p: &Peer| p.flags & FIN_SENT != 0;
        let acked = |p: &Peer| p.flags & FIN_ACKED != 0;
        let [a, b] = &self.peer;
        match (fin(a), fin(b)) {
            (false, false) => TcpState::SynSent,
            (true, true) if acked(a) && acked(b) => TcpState::TimeWait,
            (true, true) => TcpState::LastAck,
            _ if acked(a) || acked(b) => TcpState::CloseWait,
            _ => TcpState::FinWait,
        }
    }

    /// Both SYNs offered window scaling: each side's windows are scaled
    /// by its own offer; otherwise neither is.
    fn negotiate_scale(&mut self) {
        let [a, b] = &mut self.peer;
        if a.offered != 0 && b.offered != 0 {
            a.scale = a.offered - 1;
            b.scale = b.offered - 1;
        } else {
            a.scale = 0;
            b.scale = 0;
        }
    }

    /// Side `dir` may now send up to `ack + window`.
    fn raise_maxend(&mut self, dir: usize, ack: u32, window: u32) {
        let edge = ack.wrapping_add(window.max(1));
        if after(edge, self.peer[dir].maxend) {
            self.peer[dir].maxend = edge;
        }
    }

    /// The window this segment advertises, scaled (SYNs never are).
    #[inline]
    fn window(&self, dir: usize, seg: &TcpSeg) -> u32 {
        let scale = if seg.flags & SYN != 0 {
            0
        } else {
            self.peer[dir].scale
        };
        u32::from(seg.window) << scale
    }

    /// The segment lies inside what the receiver could accept and
    /// acknowledges only what was sent (simplified `tcp_in_window`).
    fn in_window(&self, dir: usize, seg: &TcpSeg) -> bool {
        let (s, r) = (&self.peer[dir], &self.peer[1 - dir]);
        if !s.seen() || !r.seen() {
            return true;
        }
        let end = seg_end(seg);
        let ack = if seg.flags & ACK != 0 { seg.ack } else { r.end };
        // Linux's four bounds: not beyond the receiver's window, not older
        // than one receiver window, no ACK of unsent data, no ACK older than
        // one sender window (`MAXACKWINDOW`).
        !after(seg.seq, s.maxend)
            && !before(end, s.end.wrapping_sub(r.maxwin))
            && !after(ack, r.end)
            && !before(ack, r.end.wrapping_sub(s.maxwin))
    }

    /// Records an accepted segment: highest sequence sent, largest
    /// window, and how far the other side may now send.
    fn track(&mut self, dir: usize, seg: &TcpSeg) {
        let win = self.window(dir, seg);
        let end = seg_end(seg);
        let other = 1 - dir;
        {
            let s = &mut self.peer[dir];
            if win > s.maxwin {
                s.maxwin = win;
            }
            if after(end, s.end) {
                s.end = end;
            }
        }
        // A sender past the edge it was given shows the receiver's window
        // is larger than seen (Linux widens `td_maxwin` the same way).
        let over = end.wrapping_sub(self.peer[dir].maxend);
        if self.peer[other].seen() && after(end, self.peer[dir].maxend) {
            self.peer[other].maxwin = self.peer[other].maxwin.saturating_add(over);
        }
        if seg.flags & ACK != 0 {
            self.raise_maxend(other, seg.ack, win);
        }
    }
}
