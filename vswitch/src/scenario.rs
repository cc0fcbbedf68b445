//! Scenario testing: push frames into in-memory ports, assert what leaves.
//!
//! VPP-style tests for the whole pipeline without a kernel: a [`Scenario`]
//! is a [`Switch`] whose ports are all [`MemPort`]s, a fake clock, and
//! helpers that send one frame and return exactly what every port
//! transmitted. Used by the unit tests, the benches and the in-memory demo.
//!
//! Overlay scenarios: [`Scenario::with_tunnel`] adds an uplink port
//! ([`UPLINK`]) and a VXLAN tunnel; two such scenarios are two nodes, and
//! [`Scenario::wire_in`] carries what one sent on its uplink into the
//! other's, as the underlay would.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::Arc;

use crate::pipeline::{DropReason, Pipeline, TunnelConfig};
use crate::port::mem::{MemLink, MemPort};
use crate::switch::Switch;
use crate::tables::conntrack::CtConfig;
use crate::tables::Fdb;

/// What the switch transmitted after one step, by OpenFlow port.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Frames per port, in transmit order; ports that sent nothing are absent.
    pub out: BTreeMap<u32, Vec<Vec<u8>>>,
}

impl Outcome {
    /// The ports that transmitted something, ascending.
    pub fn ports(&self) -> Vec<u32> {
        self.out.keys().copied().collect()
    }

    /// True when nothing was transmitted.
    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// The single frame sent, asserting it went out exactly one port, once.
    pub fn only(&self, port: u32) -> &[u8] {
        assert_eq!(
            self.ports(),
            vec![port],
            "expected output on port {port} only"
        );
        let frames = &self.out[&port];
        assert_eq!(frames.len(), 1, "expected one frame on port {port}");
        &frames[0]
    }

    /// Total frames transmitted.
    pub fn total(&self) -> usize {
        self.out.values().map(Vec::len).sum()
    }
}

/// OpenFlow number of the uplink port of [`Scenario::with_tunnel`].
pub const UPLINK: u32 = 64999;

/// A switch with in-memory ports and a fake clock.
#[derive(Debug)]
pub struct Scenario {
    /// The switch under test.
    pub sw: Switch,
    links: BTreeMap<u32, MemLink>,
    /// The fake monotonic clock, in nanoseconds.
    pub now: u64,
}

impl Scenario {
    /// A switch with ports numbered `ports` (named `p<N>`) and a default FDB.
    pub fn new(ports: &[u32]) -> Scenario {
        Scenario::with_fdb(ports, Fdb::default())
    }

    /// Same, with a given FDB (size limit, aging).
    pub fn with_fdb(ports: &[u32], fdb: Fdb) -> Scenario {
        Scenario::with_pipeline(ports, Pipeline::new(1, fdb))
    }

    /// Same, with a conntrack table of the given size and timeouts.
    pub fn with_conntrack(ports: &[u32], ct: CtConfig) -> Scenario {
        Scenario::with_pipeline(ports, Pipeline::with_conntrack(1, Fdb::default(), ct))
    }

    fn with_pipeline(ports: &[u32], pipe: Pipeline) -> Scenario {
        let mut sw = Switch::new(Arc::new(pipe), 0);
        let mut links = BTreeMap::new();
        for &p in ports {
            let (port, link) = MemPort::new(&format!("p{p}"), 4096);
            sw.add_port(p, Box::new(port)).expect("add port");
            links.insert(p, link);
        }
        Scenario {
            sw,
            links,
            now: 1_000_000_000,
        }
    }

    /// A switch with ports `ports`, an uplink port [`UPLINK`] and the VXLAN
    /// `tunnel` over it (its `uplink_ofport` is set to [`UPLINK`]), whose
    /// neighbour map is `neighbors`.
    pub fn with_tunnel(
        ports: &[u32],
        mut tunnel: TunnelConfig,
        neighbors: &[(Ipv4Addr, [u8; 6])],
    ) -> Scenario {
        let mut all = ports.to_vec();
        all.push(UPLINK);
        let s = Scenario::new(&all);
        tunnel.uplink_ofport = UPLINK;
        s.pipeline().set_tunnel(Some(tunnel)).expect("valid tunnel");
        s.pipeline()
            .set_neighbors(neighbors.iter().copied().collect::<HashMap<_, _>>());
        s
    }

    /// The underlay between two nodes: injects every frame `from` shows on
    /// [`UPLINK`] into this switch's uplink, runs it, returns what left.
    pub fn wire_in(&mut self, from: &Outcome) -> Outcome {
        for f in from.out.get(&UPLINK).into_iter().flatten() {
            self.links[&UPLINK].inject(f);
        }
        self.step()
    }

    /// The pipeline.
    pub fn pipeline(&self) -> &Arc<Pipeline> {
        self.sw.pipeline()
    }

    /// Installs flows given in `ovs-ofctl add-flows` text; panics on a bad flow.
    pub fn flows(&self, text: &str) {
        let flows = control::flow::parse_flows(text).expect("valid flow text");
        self.pipeline().add_flows(flows).expect("flows compile");
    }

    /// Injects `frame` on `port`, runs the switch until idle, returns what left.
    pub fn send(&mut self, port: u32, frame: &[u8]) -> Outcome {
        self.links[&port].inject(frame);
        self.step()
    }

    /// Runs the switch until idle and returns what every port transmitted.
    pub fn step(&mut self) -> Outcome {
        self.sw.run_until_idle(self.now);
        let mut o = Outcome::default();
        for (p, l) in &self.links {
            let frames = l.take_tx();
            if !frames.is_empty() {
                o.out.insert(*p, frames);
            }
        }
        o
    }

    /// Advances the fake clock.
    pub fn advance_secs(&mut self, secs: u64) {
        self.now += secs * 1_000_000_000;
    }

    /// Drops counted for `reason` so far.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.pipeline()
            .drops()
            .into_iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| n)
    }

    /// The link of port `p` (to inject without stepping).
    pub fn link(&self, p: u32) -> &MemLink {
        &self.links[&p]
    }
}
