//! Shared helpers for benchmarks and the pktgen tool.
