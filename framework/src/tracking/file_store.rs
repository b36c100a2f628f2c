//! Placeholder: the tracking work replaces it.
use super::*;
/// The embedded store.
pub struct FileStore;
impl FileStore {
    /// Open.
    pub fn open(_root: impl AsRef<std::path::Path>) -> anyhow::Result<FileStore> {
        anyhow::bail!("not yet")
    }
}
impl Tracker for FileStore {
    fn uri(&self) -> String { todo!() }
    fn get_or_create_experiment(&self, _: &str) -> anyhow::Result<String> { todo!() }
    fn list_experiments(&self) -> anyhow::Result<Vec<ExperimentInfo>> { todo!() }
    fn create_run(&self, _: &str, _: &str, _: i64, _: &[(String, String)]) -> anyhow::Result<RunInfo> { todo!() }
    fn log_batch(&self, _: &str, _: &[MetricPoint], _: &[(String, String)], _: &[(String, String)]) -> anyhow::Result<()> { todo!() }
    fn log_artifact(&self, _: &str, _: &str, _: &[u8]) -> anyhow::Result<()> { todo!() }
    fn list_artifacts(&self, _: &str, _: Option<&str>) -> anyhow::Result<Vec<ArtifactEntry>> { todo!() }
    fn read_artifact(&self, _: &str, _: &str) -> anyhow::Result<Vec<u8>> { todo!() }
    fn set_terminated(&self, _: &str, _: RunStatus, _: i64) -> anyhow::Result<()> { todo!() }
    fn get_run(&self, _: &str) -> anyhow::Result<RunRecord> { todo!() }
    fn metric_history(&self, _: &str, _: &str) -> anyhow::Result<Vec<MetricPoint>> { todo!() }
    fn search_runs(&self, _: &[String]) -> anyhow::Result<Vec<RunRecord>> { todo!() }
}
