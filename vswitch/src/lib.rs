//! vswitch datapath: packet views, the flow pipeline, its tables and ports.
//!
//! Per-packet code lives here and never touches control-plane types: flows
//! from `control` are compiled into [`key::FlowKey`] value/mask pairs and
//! datapath actions when they are installed.
#![deny(unsafe_code)]

pub mod daemon;
pub mod key;
pub mod packet;
pub mod pipeline;
pub mod port;
pub mod scenario;
pub mod switch;
pub mod sys;
pub mod tables;
