//! End-to-end tests of vswitch.
