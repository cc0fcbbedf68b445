//! Placeholder: flow key extraction.
