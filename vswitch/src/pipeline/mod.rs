//! The packet pipeline. (Being built.)

pub mod drop;
pub mod extract;

pub use drop::DropReason;
