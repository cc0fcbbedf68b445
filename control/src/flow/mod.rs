//! Placeholder: replaced by the flow model.
