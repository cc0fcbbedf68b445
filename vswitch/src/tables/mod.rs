//! The datapath's tables.
//!
//! - [`Classifier`]: prioritized wildcard rules, tuple space search; one per
//!   flow table, built by the control thread and published whole (RCU
//!   style) to the workers, which only read it.
//! - [`Emc`]: a worker's private exact-match cache in front of the
//!   classifier, invalidated by the snapshot generation.
//! - [`Fdb`]: the MAC learning table of the `normal` action, sharded and
//!   shared by all workers.
//! - [`Conntrack`]: connection tracking and NAT behind the `ct` action,
//!   sharded and shared by all workers.
//!
//! Each shared table documents its thread-safety in its module header.

pub mod classifier;
pub mod conntrack;
pub mod emc;
pub mod fdb;

pub use classifier::{Classifier, Rule, RuleId};
pub use conntrack::{
    Conntrack, CtConfig, CtEntry, CtPacket, CtStats, CtTimeouts, CtTuple, CtVerdict, L4Info,
    NatSpec, Rewrite, TcpSeg,
};
pub use emc::{Emc, EMC_ENTRIES};
pub use fdb::{Fdb, FdbConfig, FdbEntry, FdbStats, Learn};
