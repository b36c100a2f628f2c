//! `fairlab metrics PREDS.csv`: every registered metric of a predictions CSV, as a table or as the
//! JSON of the metrics contract (`docs/metrics.md`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use fairlab_framework::metric::{evaluate, evaluate_with_bootstrap};
use fairlab_framework::{ConfigError, Registry};

/// How `fairlab metrics` prints its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// The contract's JSON document.
    Json,
    /// An aligned text table.
    Table,
}

/// Arguments of `fairlab metrics`.
#[derive(Debug, Clone, Args)]
pub struct MetricsArgs {
    /// Predictions CSV: a header row with `y_true` (0/1), `y_score` (probability of class 1),
    /// optionally `y_pred` (0/1), and attribute columns.
    pub file: PathBuf,

    /// An attribute column (repeatable). Default: every column other than y_true, y_score and y_pred.
    #[arg(long = "group-col", value_name = "COLUMN")]
    pub group_col: Vec<String>,

    /// Samples with y_score >= THRESHOLD are predicted positive (when the file has no y_pred).
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f64,

    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,

    /// Add a 95% percentile confidence interval to every value, from N bootstrap resamples
    /// stratified by group (JSON values become {"value": .., "ci": [lo, hi]}).
    #[arg(long, value_name = "N")]
    pub bootstrap: Option<usize>,

    /// Seed of the bootstrap resampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Read `args.file`, evaluate every metric in `registry` and write the report to `out`. Bad input
/// (a missing column, a label not 0/1, a score outside [0, 1], an empty file, a ragged row, an
/// unknown `--group-col`, a threshold that is not a number, `--bootstrap 0`) is a [`ConfigError`] naming the file,
/// the row and the column.
pub fn run(args: &MetricsArgs, registry: &Registry, out: &mut dyn Write) -> anyhow::Result<()> {
    if !args.threshold.is_finite() {
        return Err(ConfigError::at_key(
            "--threshold",
            format!("must be a finite number, got {}", args.threshold),
        )
        .into());
    }
    if args.bootstrap == Some(0) {
        return Err(ConfigError::at_key("--bootstrap", "must be at least 1 resample").into());
    }
    let predictions = fairlab_metrics::read_predictions(&args.file, &args.group_col)?;
    let set = predictions.as_set();
    let report = match args.bootstrap {
        Some(resamples) => evaluate_with_bootstrap(registry, &set, args.threshold, resamples, args.seed)?,
        None => evaluate(registry, &set, args.threshold)?,
    };
    match args.format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &report)?;
            writeln!(out)?;
        }
        OutputFormat::Table => write!(out, "{}", report.to_table())?,
    }
    out.flush().context("writing the report")
}
