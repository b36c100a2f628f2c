//! Placeholder replaced by the metrics work.
/// A metric plugin.
pub trait Metric: Send + Sync {
    /// Key.
    fn name(&self) -> &str;
    /// One line.
    fn description(&self) -> &str;
}
