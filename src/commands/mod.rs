//! The subcommands, and what they share: the registry of built-in plugins, the tracking store from
//! the environment, and the mapping of errors to exit codes.

pub mod bench;
pub mod embed;
pub mod metrics;
pub mod plugins;
pub mod run;
pub mod runs;
pub mod sweep;
pub mod sync;

use std::process::ExitCode;
use std::sync::Arc;

use fairlab_framework::{ConfigError, Registry, Tracker};

/// Every built-in plugin.
pub fn registry() -> Registry {
    let mut registry = Registry::new();
    fairlab_backbones::register(&mut registry);
    fairlab_datasets::register(&mut registry);
    fairlab_debiasers::register(&mut registry);
    fairlab_metrics::register(&mut registry);
    fairlab_optimizers::register(&mut registry);
    registry
}

/// The tracking URI from `MLFLOW_TRACKING_URI` (unset = `./mlruns`).
pub fn tracking_uri() -> Option<String> {
    std::env::var("MLFLOW_TRACKING_URI")
        .ok()
        .filter(|u| !u.trim().is_empty())
}

/// The tracking store the environment selects.
pub fn tracker() -> anyhow::Result<Arc<dyn Tracker>> {
    fairlab_framework::tracking::open(tracking_uri().as_deref())
}

/// 2 for configuration and usage errors, 1 for everything else.
pub fn exit_code(error: &anyhow::Error) -> ExitCode {
    if error.chain().any(|e| e.is::<ConfigError>()) {
        ExitCode::from(2)
    } else {
        ExitCode::from(1)
    }
}
