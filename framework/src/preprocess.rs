//! Placeholder: the backbone work replaces it.
/// How raw images become model input.
#[derive(Debug, Clone, PartialEq)]
pub struct Preprocessing;
