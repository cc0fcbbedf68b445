//! vswitch control plane: the types users and the daemon exchange.
//!
//! This crate holds what is shared between `vswitchd`, `ofctl` and the CNI
//! shim: address newtypes, the OpenFlow-style flow model with its
//! `ovs-ofctl` text syntax. It never touches packets: the datapath compiles
//! these types into its own representation when flows are installed.
#![forbid(unsafe_code)]

pub mod api;
pub mod client;
pub mod cni;
pub mod flow;
pub mod model;
pub mod oneline;
pub mod types;

pub use types::{MacAddr, PortNo};
