//! Placeholder: packet views.
