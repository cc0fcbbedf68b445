//! Placeholder: datapath tables.
