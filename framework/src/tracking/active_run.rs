//! Placeholder: the tracking work replaces it.
/// A run in progress.
pub struct ActiveRun;
