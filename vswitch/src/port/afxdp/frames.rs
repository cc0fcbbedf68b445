//! Who owns each UMEM frame: the ledger behind exact frame accounting.
//!
//! A UMEM frame is always in exactly one place: the free list (userspace,
//! idle), the kernel's receive side (fill ring, or filled and waiting in the
//! rx ring), or the kernel's transmit side (tx ring, or sent and waiting in
//! the completion ring). The port moves frames only through this ledger,
//! which keeps one state byte per frame and refuses a move from the wrong
//! state, so a descriptor the kernel hands back twice (or one we never gave
//! it) can neither be read as received data nor end up on the free list
//! twice. Frames are named by index (`addr / frame_size`); the ledger knows
//! nothing about rings or memory, which keeps it testable without a kernel.

/// Where a frame is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Free,
    Rx,
    Tx,
}

/// A snapshot of where the port's UMEM frames are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameAccounting {
    /// On the userspace free list.
    pub free: u32,
    /// Given to the kernel for receive: in the fill ring, or holding a
    /// received frame in the rx ring not yet consumed.
    pub fill: u32,
    /// Given to the kernel for transmit: in the tx ring, or sent and not
    /// yet reclaimed from the completion ring.
    pub in_flight_tx: u32,
    /// Frames in the UMEM.
    pub total: u32,
}

impl FrameAccounting {
    /// `free + fill + in_flight_tx == total`.
    pub fn balanced(&self) -> bool {
        u64::from(self.free) + u64::from(self.fill) + u64::from(self.in_flight_tx)
            == u64::from(self.total)
    }
}

/// The per-frame ownership ledger and free list.
#[derive(Debug)]
pub(crate) struct FrameLedger {
    state: Vec<State>,
    free: Vec<u32>,
    fill: u32,
    in_flight_tx: u32,
}

impl FrameLedger {
    /// `total` frames, all free.
    pub(crate) fn new(total: u32) -> FrameLedger {
        FrameLedger {
            state: vec![State::Free; total as usize],
            free: (0..total).rev().collect(),
            fill: 0,
            in_flight_tx: 0,
        }
    }

    pub(crate) fn free_len(&self) -> usize {
        self.free.len()
    }

    pub(crate) fn fill_len(&self) -> u32 {
        self.fill
    }

    /// Takes a free frame for the kernel's receive side.
    #[inline]
    pub(crate) fn take_for_rx(&mut self) -> Option<u32> {
        let f = self.free.pop()?;
        debug_assert_eq!(self.state[f as usize], State::Free);
        self.state[f as usize] = State::Rx;
        self.fill += 1;
        Some(f)
    }

    /// Takes a free frame for transmit.
    #[inline]
    pub(crate) fn take_for_tx(&mut self) -> Option<u32> {
        let f = self.free.pop()?;
        debug_assert_eq!(self.state[f as usize], State::Free);
        self.state[f as usize] = State::Tx;
        self.in_flight_tx += 1;
        Some(f)
    }

    /// Whether `frame` is on the kernel's receive side (so the kernel may
    /// hand it back in the rx ring).
    #[inline]
    pub(crate) fn is_rx(&self, frame: u32) -> bool {
        self.state.get(frame as usize) == Some(&State::Rx)
    }

    /// A frame came back from the rx ring (or a fill produce was undone).
    /// False, and nothing changes, when the frame was not on the receive side.
    #[inline]
    pub(crate) fn rx_done(&mut self, frame: u32) -> bool {
        self.back(frame, State::Rx)
    }

    /// A frame came back from the completion ring (or a tx produce was
    /// undone). False, and nothing changes, when it was not in flight.
    #[inline]
    pub(crate) fn tx_done(&mut self, frame: u32) -> bool {
        self.back(frame, State::Tx)
    }

    #[inline]
    fn back(&mut self, frame: u32, from: State) -> bool {
        match self.state.get_mut(frame as usize) {
            Some(s) if *s == from => {
                *s = State::Free;
                match from {
                    State::Rx => self.fill -= 1,
                    State::Tx => self.in_flight_tx -= 1,
                    State::Free => {}
                }
                self.free.push(frame);
                true
            }
            _ => false,
        }
    }

    pub(crate) fn accounting(&self) -> FrameAccounting {
        FrameAccounting {
            free: self.free.len() as u32,
            fill: self.fill,
            in_flight_tx: self.in_flight_tx,
            total: self.state.len() as u32,
        }
    }

    /// Recounts every frame's state and checks it against the counters and
    /// the free list (O(frames): for tests and debug assertions only).
    pub(crate) fn verify(&self) -> bool {
        let (mut free, mut rx, mut tx) = (0u32, 0u32, 0u32);
        for s in &self.state {
            match s {
                State::Free => free += 1,
                State::Rx => rx += 1,
                State::Tx => tx += 1,
            }
        }
        free as usize == self.free.len()
            && rx == self.fill
            && tx == self.in_flight_tx
            && self
                .free
                .iter()
                .all(|&f| self.state[f as usize] == State::Free)
            && self.accounting().balanced()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_frame_is_in_exactly_one_place() {
        let mut l = FrameLedger::new(8);
        assert!(l.verify());
        let rx: Vec<u32> = (0..4).map(|_| l.take_for_rx().unwrap()).collect();
        let tx: Vec<u32> = (0..3).map(|_| l.take_for_tx().unwrap()).collect();
        let a = l.accounting();
        assert_eq!((a.free, a.fill, a.in_flight_tx, a.total), (1, 4, 3, 8));
        assert!(a.balanced() && l.verify());
        assert!(l.is_rx(rx[0]) && !l.is_rx(tx[0]));
        assert!(l.rx_done(rx[0]));
        assert!(l.tx_done(tx[0]));
        assert!(l.verify());
        assert_eq!(l.free_len(), 3);
    }

    #[test]
    fn bogus_returns_change_nothing() {
        let mut l = FrameLedger::new(4);
        let r = l.take_for_rx().unwrap();
        let t = l.take_for_tx().unwrap();
        // A completion for a receive frame, a receive for a transmit frame,
        // a double return, an index past the end.
        assert!(!l.tx_done(r));
        assert!(!l.rx_done(t));
        assert!(l.rx_done(r));
        assert!(!l.rx_done(r));
        assert!(!l.rx_done(99));
        assert!(l.verify());
        assert_eq!(l.accounting().free, 3);
    }

    #[test]
    fn exhaustion_is_none_not_panic() {
        let mut l = FrameLedger::new(2);
        assert!(l.take_for_rx().is_some());
        assert!(l.take_for_tx().is_some());
        assert!(l.take_for_rx().is_none());
        assert!(l.take_for_tx().is_none());
        assert!(l.verify());
    }
}
