//! In-memory ports: the test, benchmark and demo backend.
//!
//! A [`MemPort`] is one end of a pair of queues; the other end, a
//! [`MemLink`], lets a test inject frames as if they arrived on the wire and
//! take the frames the switch transmitted. A port can also *replay* a fixed
//! set of frames forever and *sink* what it transmits (count and discard),
//! which is what the pipeline benchmarks use: no allocation per packet on
//! either side. The queues sit behind a mutex taken once per burst; this
//! backend is for tests and benches, never for a production datapath.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::{Desc, PacketPool, Port};
use crate::pipeline::Batch;

#[derive(Debug, Default)]
struct Queues {
    rx: VecDeque<Vec<u8>>,
    tx: VecDeque<Vec<u8>>,
    tx_capacity: usize,
    tx_sunk: u64,
}

/// The test's end of an in-memory port.
#[derive(Clone, Debug)]
pub struct MemLink {
    q: Arc<Mutex<Queues>>,
}

impl MemLink {
    /// Queues `frame` for the switch to receive.
    pub fn inject(&self, frame: &[u8]) {
        self.q
            .lock()
            .expect("mem port lock")
            .rx
            .push_back(frame.to_vec());
    }

    /// Takes every frame the switch transmitted so far.
    pub fn take_tx(&self) -> Vec<Vec<u8>> {
        self.q.lock().expect("mem port lock").tx.drain(..).collect()
    }

    /// Frames transmitted in sink mode (counted, not kept).
    pub fn sunk(&self) -> u64 {
        self.q.lock().expect("mem port lock").tx_sunk
    }

    /// Frames still waiting to be received by the switch.
    pub fn rx_pending(&self) -> usize {
        self.q.lock().expect("mem port lock").rx.len()
    }
}

/// The switch's end of an in-memory port.
#[derive(Debug)]
pub struct MemPort {
    name: String,
    q: Arc<Mutex<Queues>>,
    replay: Vec<Vec<u8>>,
    replay_next: usize,
    sink: bool,
}

impl MemPort {
    /// A port named `name` whose transmit queue holds up to `tx_capacity`
    /// frames (beyond that transmit drops, as a full NIC ring would).
    pub fn new(name: &str, tx_capacity: usize) -> (MemPort, MemLink) {
        let q = Arc::new(Mutex::new(Queues {
            tx_capacity,
            ..Queues::default()
        }));
        (
            MemPort {
                name: name.to_string(),
                q: Arc::clone(&q),
                replay: Vec::new(),
                replay_next: 0,
                sink: false,
            },
            MemLink { q },
        )
    }

    /// A port that receives `frames` round-robin, forever, and sinks its transmits.
    pub fn replay(name: &str, frames: Vec<Vec<u8>>) -> (MemPort, MemLink) {
        let (mut p, l) = MemPort::new(name, 0);
        p.replay = frames;
        p.sink = true;
        (p, l)
    }

    /// A port that counts and discards what it transmits.
    pub fn sink(name: &str) -> (MemPort, MemLink) {
        let (mut p, l) = MemPort::new(name, 0);
        p.sink = true;
        (p, l)
    }
}

impl Port for MemPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn backend(&self) -> &'static str {
        "mem"
    }

    fn rx_burst(&mut self, pool: &mut PacketPool, batch: &mut Batch) -> usize {
        let mut n = 0;
        if !self.replay.is_empty() {
            while batch.room() > 0 {
                let f = &self.replay[self.replay_next];
                let Some(d) = pool.alloc_copy(f) else { break };
                self.replay_next = (self.replay_next + 1) % self.replay.len();
                batch.push(d);
                n += 1;
            }
            return n;
        }
        let mut q = self.q.lock().expect("mem port lock");
        while batch.room() > 0 {
            let Some(f) = q.rx.front() else { break };
            match pool.alloc_copy(f) {
                Some(d) => {
                    q.rx.pop_front();
                    batch.push(d);
                    n += 1;
                }
                None if f.len() > super::FRAME_SIZE - super::HEADROOM => {
                    // Oversized for a frame buffer: the wire would not deliver it either.
                    q.rx.pop_front();
                }
                None => break,
            }
        }
        n
    }

    fn tx_burst(&mut self, pool: &mut PacketPool, descs: &mut Vec<Desc>) -> (usize, u64) {
        let (mut sent, mut bytes) = (0, 0);
        if self.sink {
            for d in descs.drain(..) {
                sent += 1;
                bytes += u64::from(d.len);
                pool.free(d);
            }
            self.q.lock().expect("mem port lock").tx_sunk += sent as u64;
            return (sent, bytes);
        }
        let mut q = self.q.lock().expect("mem port lock");
        for d in descs.drain(..) {
            if q.tx.len() < q.tx_capacity {
                q.tx.push_back(pool.data(d).to_vec());
                sent += 1;
                bytes += u64::from(d.len);
            }
            pool.free(d);
        }
        (sent, bytes)
    }
}
