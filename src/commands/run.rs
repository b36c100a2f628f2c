//! `fairlab run EXPERIMENT.yaml [--set KEY=VALUE]... [--dry-run | --resume RUN_ID]`. A file with a
//! `sweep:` section is a sweep and goes to [`super::sweep`].

use std::path::PathBuf;
use std::process::ExitCode;

use fairlab_framework::config::Experiment;
use fairlab_framework::features::CacheStatus;
use fairlab_framework::runner::{self, RunOptions};
use fairlab_framework::sweep;
use fairlab_framework::Registry;

/// Arguments of `fairlab run`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// The experiment YAML file (with a `sweep:` section: a sweep of experiments).
    pub experiment: PathBuf,
    /// Override any key of the file, e.g. `--set debiaser.epochs=5` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Check the experiment and print the resolved config, secrets shown as `***` (a sweep: the
    /// plan) without running it.
    #[arg(long, conflicts_with = "resume")]
    pub dry_run: bool,
    /// Continue this ended run: the experiment runs again into it, its new metrics at later steps.
    /// The config must give exactly the run's params (exit 2 listing each difference otherwise).
    #[arg(long, value_name = "RUN_ID")]
    pub resume: Option<String>,
    /// A sweep's directory (default: `.fairlab/sweeps/<name>-<8 hex of the sweep id>`).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// A sweep's execution settings.
    #[command(flatten)]
    pub execution: super::sweep::ExecutionArgs,
}

/// Run the experiment and print its test metrics; the exit code follows the outcome.
pub fn run(args: &RunArgs, registry: &Registry) -> ExitCode {
    let is_sweep = sweep::declares_sweep(&args.experiment);
    if is_sweep && args.resume.is_some() {
        eprintln!(
            "error: --resume continues a single run; {} is a sweep (`fairlab sweep resume` runs its unfinished trials again)",
            args.experiment.display()
        );
        return ExitCode::from(2);
    }
    if is_sweep {
        return super::sweep::run(args, registry);
    }
    if args.dir.is_some() || args.execution.any() {
        eprintln!(
            "error: --dir, --jobs, --executor, --timeout and --retries apply to sweeps; {} has no `sweep:` section",
            args.experiment.display()
        );
        return ExitCode::from(2);
    }
    let experiment = match Experiment::load(&args.experiment, &args.overrides) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if args.dry_run {
        if let Err(e) = runner::validate(registry, &experiment) {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
        print!("{}", experiment.redacted_yaml());
        eprintln!("{}: valid; nothing was run (--dry-run)", args.experiment.display());
        return ExitCode::SUCCESS;
    }
    if let Err(e) = fairlab_framework::interrupt::install() {
        tracing::warn!("Ctrl-C will not end the run cleanly: {e:#}");
    }
    let options = RunOptions {
        tracking_uri: super::tracking_uri(),
        experiment_name: std::env::var("MLFLOW_EXPERIMENT_NAME").ok().filter(|n| !n.is_empty()),
        tags: Vec::new(),
        resume: args.resume.clone(),
    };
    match runner::run(registry, &experiment, &options) {
        Ok(outcome) => {
            let c = &experiment.config;
            println!(
                "{}: {} on {} with {} (seed {})",
                c.name, c.debiaser.kind, c.dataset.kind, c.backbone.kind, c.seed
            );
            match &outcome.cache {
                CacheStatus::Hit(p) => println!("features: from the cache {}", p.display()),
                CacheStatus::Stored(p) => println!("features: extracted, cached in {}", p.display()),
                CacheStatus::Disabled => println!("features: extracted (cache disabled)"),
            }
            println!();
            println!(
                "test metrics ({} samples, threshold {}):",
                outcome.test.n, outcome.test.threshold
            );
            print!("{}", outcome.test.to_table());
            println!();
            match outcome.resumed_at_step {
                Some(step) => println!(
                    "run {} FINISHED (resumed: its new metrics start at step {step})",
                    outcome.run_id
                ),
                None => println!("run {} FINISHED", outcome.run_id),
            }
            match &outcome.spooled_to {
                Some(spool) => println!(
                    "logged to {} (experiment '{}') until it became unavailable, then to the offline spool {}: \
                     `fairlab runs sync` sends the rest once the server is back",
                    outcome.tracking_uri,
                    outcome.experiment_name,
                    spool.display()
                ),
                None => println!(
                    "logged to {} (experiment '{}')",
                    outcome.tracking_uri, outcome.experiment_name
                ),
            }
            if let Some(path) = outcome.tracking_uri.strip_prefix("file://") {
                println!("view: MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri file://{path}");
            }
            ExitCode::SUCCESS
        }
        Err(failure) => {
            eprintln!("error: {:#}", failure.error);
            if failure.error.is::<fairlab_framework::interrupt::Interrupted>() {
                if let Some(id) = &failure.run_id {
                    eprintln!("run {id} recorded as KILLED");
                }
                return ExitCode::from(130);
            }
            if let Some(id) = &failure.run_id {
                eprintln!(
                    "run {id} recorded as FAILED in {}",
                    failure.tracking_uri.as_deref().unwrap_or("the tracking store")
                );
            }
            super::exit_code(&failure.error)
        }
    }
}
