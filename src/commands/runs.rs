//! `fairlab runs list` and `fairlab runs show RUN_ID`: the runs in the tracking store, as a table
//! or as JSON. `list` gives one line per run (newest first) with its headline test metrics;
//! `show` gives one run's info, params, tags, latest metrics and artifacts, and for a FAILED or
//! KILLED run, the recorded reason first.
//!
//! Times are printed in UTC. In JSON, metric values that are not finite are the strings `"NaN"`,
//! `"Infinity"` and `"-Infinity"`, as in MLflow's REST API.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Context;
use clap::{Args, ValueEnum};
use fairlab_framework::text_table::{self, Align};
use fairlab_framework::tracking::{self, RunRecord, RunStatus, Tracker, FAILURE_REASON_TAG};
use fairlab_framework::ConfigError;
use serde_json::{json, Map, Value};

/// How `fairlab runs` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned text.
    Table,
    /// A JSON document.
    Json,
}

/// Arguments of `fairlab runs list`.
#[derive(Debug, Clone, Args)]
pub struct RunsListArgs {
    /// Only the runs of this experiment (by name). Default: every experiment.
    #[arg(long, value_name = "NAME")]
    pub experiment: Option<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

/// Arguments of `fairlab runs show`.
#[derive(Debug, Clone, Args)]
pub struct RunsShowArgs {
    /// The run id (32 hex characters, as `fairlab runs list` prints it).
    pub run_id: String,

    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

/// Most headline metric columns `runs list` prints.
const MAX_HEADLINE_METRICS: usize = 4;

/// Write the runs of the store (of one experiment with `--experiment`), newest first. An unknown
/// experiment name is a [`ConfigError`] listing the known ones.
pub fn list(tracker: &dyn Tracker, args: &RunsListArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let experiments = tracker.list_experiments()?;
    let names: BTreeMap<String, String> = experiments
        .iter()
        .map(|e| (e.experiment_id.clone(), e.name.clone()))
        .collect();
    let ids: Vec<String> = match &args.experiment {
        None => experiments.iter().map(|e| e.experiment_id.clone()).collect(),
        Some(name) => {
            let found = experiments.iter().find(|e| &e.name == name).ok_or_else(|| {
                let known: Vec<&str> = experiments.iter().map(|e| e.name.as_str()).collect();
                ConfigError::at_key(
                    "--experiment",
                    format!(
                        "no experiment named `{name}` in {}; known experiments: {}",
                        tracker.uri(),
                        known.join(", ")
                    ),
                )
            })?;
            vec![found.experiment_id.clone()]
        }
    };
    let runs = tracker.search_runs(&ids)?;
    let experiment_name = |run: &RunRecord| {
        names
            .get(&run.info.experiment_id)
            .cloned()
            .unwrap_or_else(|| run.info.experiment_id.clone())
    };
    match args.format {
        OutputFormat::Json => {
            let items: Vec<Value> = runs
                .iter()
                .map(|run| {
                    let metrics: Map<String, Value> = run
                        .metrics
                        .iter()
                        .map(|(k, p)| (k.clone(), json_number(p.value)))
                        .collect();
                    json!({
                        "run_id": run.info.run_id,
                        "experiment_id": run.info.experiment_id,
                        "experiment": experiment_name(run),
                        "run_name": run.info.run_name,
                        "status": run.info.status.as_str(),
                        "failure_reason": run.tags.get(FAILURE_REASON_TAG),
                        "start_time": run.info.start_time,
                        "start_time_utc": utc_time(run.info.start_time),
                        "end_time": run.info.end_time,
                        "duration_ms": run.info.end_time.map(|end| end - run.info.start_time),
                        "metrics": metrics,
                    })
                })
                .collect();
            serde_json::to_writer_pretty(&mut *out, &items)?;
            writeln!(out)?;
        }
        OutputFormat::Table => {
            if runs.is_empty() {
                writeln!(out, "no runs in {}", tracker.uri())?;
            } else {
                let headline = headline_metrics(&runs);
                let mut header = vec!["RUN ID", "EXPERIMENT", "NAME", "STATUS", "START (UTC)", "DURATION"];
                header.extend(headline.iter().map(String::as_str));
                let rows: Vec<Vec<String>> = runs
                    .iter()
                    .map(|run| {
                        let mut row = vec![
                            run.info.run_id.clone(),
                            experiment_name(run),
                            run.info.run_name.clone(),
                            run.info.status.as_str().to_string(),
                            utc_time(run.info.start_time),
                            run.info
                                .end_time
                                .map_or("-".to_string(), |end| duration(end - run.info.start_time)),
                        ];
                        row.extend(
                            headline
                                .iter()
                                .map(|key| run.metrics.get(key).map_or("-".to_string(), |p| short_number(p.value))),
                        );
                        row
                    })
                    .collect();
                let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
                write!(out, "{}", text_table::render(&header, &rows, Align::Left))?;
            }
        }
    }
    out.flush().context("writing the run list")
}

/// Write one run: info, the failure reason (for FAILED and KILLED runs), params, tags, latest
/// metrics and every artifact.
pub fn show(tracker: &dyn Tracker, args: &RunsShowArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let run = tracker.get_run(&args.run_id)?;
    let experiment = tracker
        .list_experiments()?
        .into_iter()
        .find(|e| e.experiment_id == run.info.experiment_id)
        .map(|e| e.name);
    let artifacts = tracking::all_artifacts(tracker, &run.info.run_id)?;
    let failure = run.tags.get(FAILURE_REASON_TAG);
    let info = &run.info;
    match args.format {
        OutputFormat::Json => {
            let metrics: Map<String, Value> = run
                .metrics
                .iter()
                .map(|(k, p)| {
                    let point = json!({"value": json_number(p.value), "step": p.step, "timestamp": p.timestamp});
                    (k.clone(), point)
                })
                .collect();
            let document = json!({
                "run_id": info.run_id,
                "run_name": info.run_name,
                "experiment_id": info.experiment_id,
                "experiment": experiment,
                "status": info.status.as_str(),
                "failure_reason": failure,
                "start_time": info.start_time,
                "start_time_utc": utc_time(info.start_time),
                "end_time": info.end_time,
                "end_time_utc": info.end_time.map(utc_time),
                "duration_ms": info.end_time.map(|end| end - info.start_time),
                "artifact_uri": info.artifact_uri,
                "params": run.params,
                "tags": run.tags,
                "metrics": metrics,
                "artifacts": artifacts,
            });
            serde_json::to_writer_pretty(&mut *out, &document)?;
            writeln!(out)?;
        }
        OutputFormat::Table => {
            writeln!(out, "Run {} ({})", info.run_id, info.run_name)?;
            if matches!(info.status, RunStatus::Failed | RunStatus::Killed) {
                let reason = failure.map_or("(no reason recorded)", String::as_str);
                writeln!(out, "\n!! {}: {}\n", info.status.as_str(), indent(reason, 4))?;
            }
            let experiment = match &experiment {
                Some(name) => format!("{name} (id {})", info.experiment_id),
                None => format!("id {} (deleted)", info.experiment_id),
            };
            let mut fields = vec![
                ("experiment".to_string(), experiment),
                ("status".to_string(), info.status.as_str().to_string()),
                ("started".to_string(), format!("{} UTC", utc_time(info.start_time))),
            ];
            if let Some(end) = info.end_time {
                fields.push(("ended".to_string(), format!("{} UTC", utc_time(end))));
                fields.push(("duration".to_string(), duration(end - info.start_time)));
            }
            fields.push(("artifacts".to_string(), info.artifact_uri.clone()));
            write_fields(out, &fields)?;

            let params: Vec<(String, String)> = run.params.clone().into_iter().collect();
            writeln!(out, "\nParams ({})", params.len())?;
            write_fields(out, &params)?;

            let tags: Vec<(String, String)> = run.tags.clone().into_iter().collect();
            writeln!(out, "\nTags ({})", tags.len())?;
            write_fields(out, &tags)?;

            writeln!(out, "\nMetrics ({}, latest value)", run.metrics.len())?;
            let values: Vec<String> = run.metrics.values().map(|p| full_number(p.value)).collect();
            let width = values.iter().map(|v| v.chars().count()).max().unwrap_or(0);
            let metrics: Vec<(String, String)> = run
                .metrics
                .iter()
                .zip(&values)
                .map(|((k, p), v)| (k.clone(), format!("{v:<width$}  step {}", p.step)))
                .collect();
            write_fields(out, &metrics)?;

            writeln!(out, "\nArtifacts ({})", artifacts.len())?;
            let listing: Vec<(String, String)> = artifacts
                .iter()
                .map(|a| match a.file_size {
                    Some(size) if !a.is_dir => (a.path.clone(), format!("{size} B")),
                    _ => (format!("{}/", a.path), String::new()),
                })
                .collect();
            write_fields(out, &listing)?;
        }
    }
    out.flush().context("writing the run")
}

/// The headline metric columns present in any of the runs: `test_auc`, `test_acc`, then the
/// `test_*_es_auc` ones (equity-scaled AUC per attribute), at most [`MAX_HEADLINE_METRICS`].
fn headline_metrics(runs: &[RunRecord]) -> Vec<String> {
    let present = |key: &str| runs.iter().any(|r| r.metrics.contains_key(key));
    let mut keys: Vec<String> = ["test_auc", "test_acc"]
        .into_iter()
        .filter(|k| present(k))
        .map(str::to_string)
        .collect();
    let mut equity: Vec<&String> = runs
        .iter()
        .flat_map(|r| r.metrics.keys())
        .filter(|k| k.starts_with("test_") && k.ends_with("_es_auc") && k.len() > "test__es_auc".len())
        .collect();
    equity.sort();
    equity.dedup();
    keys.extend(equity.into_iter().cloned());
    keys.truncate(MAX_HEADLINE_METRICS);
    keys
}

/// Write `key  value` lines, values aligned and multi-line values indented under themselves.
fn write_fields(out: &mut dyn Write, fields: &[(String, String)]) -> std::io::Result<()> {
    if fields.is_empty() {
        return writeln!(out, "  (none)");
    }
    let width = fields.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    for (key, value) in fields {
        let line = format!("  {key:<width$}  {}", indent(value, width + 4));
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// `text` with every line after the first indented by `spaces`.
fn indent(text: &str, spaces: usize) -> String {
    text.lines()
        .collect::<Vec<_>>()
        .join(&format!("\n{}", " ".repeat(spaces)))
}

/// A metric value for JSON: a number, or MLflow's strings for NaN and infinities.
fn json_number(value: f64) -> Value {
    if value.is_nan() {
        json!("NaN")
    } else if value.is_infinite() {
        json!(if value > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        json!(value)
    }
}

/// A metric value for a table column: 4 decimals, or 3 significant digits in exponent form for
/// very large or small magnitudes.
fn short_number(value: f64) -> String {
    let magnitude = value.abs();
    if value.is_finite() && magnitude != 0.0 && !(1e-3..1e6).contains(&magnitude) {
        format!("{value:.2e}")
    } else {
        format!("{value:.4}")
    }
}

/// A metric value in full (shortest round-trip form), in exponent form for extreme magnitudes.
fn full_number(value: f64) -> String {
    let magnitude = value.abs();
    if value.is_finite() && magnitude != 0.0 && !(1e-4..1e16).contains(&magnitude) {
        format!("{value:e}")
    } else {
        format!("{value}")
    }
}

/// A duration in milliseconds as `850ms`, `12.3s`, `4m 05s`, `2h 03m` or `1d 04h`.
fn duration(ms: i64) -> String {
    if ms < 0 {
        return "-".to_string();
    }
    let seconds = ms / 1000;
    match seconds {
        0 => format!("{ms}ms"),
        1..=59 => format!("{:.1}s", ms as f64 / 1000.0),
        60..=3599 => format!("{}m {:02}s", seconds / 60, seconds % 60),
        3600..=86_399 => format!("{}h {:02}m", seconds / 3600, seconds % 3600 / 60),
        _ => format!("{}d {:02}h", seconds / 86_400, seconds % 86_400 / 3600),
    }
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM:SS` (UTC).
fn utc_time(ms: i64) -> String {
    let seconds = ms.div_euclid(1000);
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let second_of_day = seconds.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fairlab_framework::tracking::{FileStore, MetricPoint};

    fn point(key: &str, value: f64, step: i64) -> MetricPoint {
        MetricPoint {
            key: key.to_string(),
            value,
            timestamp: 1,
            step,
        }
    }

    /// A store with a finished run in `fairclip` (with metrics and artifacts) and a failed one.
    fn store() -> (tempfile::TempDir, FileStore, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path().join("mlruns")).unwrap();
        let exp = store.get_or_create_experiment("fairclip").unwrap();
        let good = store.create_run(&exp, "seed-1", 1_700_000_000_000, &[]).unwrap().run_id;
        store
            .log_batch(
                &good,
                &[
                    point("test_auc", 0.8125, 3),
                    point("test_acc", 0.75, 3),
                    point("test_race_es_auc", 0.7, 3),
                    point("test_gender_es_auc", f64::NAN, 3),
                    point("test_language_es_auc", 0.6, 3),
                    point("loss", 0.1, 3),
                ],
                &[("lr".to_string(), "0.001".to_string())],
                &[],
            )
            .unwrap();
        store.log_artifact(&good, "sub/metrics.json", b"{}").unwrap();
        store
            .set_terminated(&good, RunStatus::Finished, 1_700_000_065_000)
            .unwrap();
        let bad = store.create_run(&exp, "seed-2", 1_700_000_100_000, &[]).unwrap().run_id;
        let reason = "CUDA out of memory\nwhile fitting".to_string();
        store
            .log_batch(&bad, &[], &[], &[(FAILURE_REASON_TAG.to_string(), reason)])
            .unwrap();
        store
            .set_terminated(&bad, RunStatus::Failed, 1_700_000_100_500)
            .unwrap();
        (dir, store, good, bad)
    }

    fn render(f: impl FnOnce(&mut dyn Write) -> anyhow::Result<()>) -> String {
        let mut out = Vec::new();
        f(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn dates_are_utc_civil_dates() {
        assert_eq!(utc_time(0), "1970-01-01 00:00:00");
        assert_eq!(utc_time(1_700_000_000_000), "2023-11-14 22:13:20");
        assert_eq!(utc_time(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(utc_time(-1000), "1969-12-31 23:59:59");
        assert_eq!(utc_time(4_107_542_400_000), "2100-03-01 00:00:00");
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(duration(850), "850ms");
        assert_eq!(duration(12_340), "12.3s");
        assert_eq!(duration(65_000), "1m 05s");
        assert_eq!(duration(7_380_000), "2h 03m");
        assert_eq!(duration(100_800_000), "1d 04h");
        assert_eq!(duration(-5), "-");
    }

    #[test]
    fn list_prints_a_table_with_headline_metrics() {
        let (_dir, store, good, bad) = store();
        let args = RunsListArgs {
            experiment: None,
            format: OutputFormat::Table,
        };
        let text = render(|out| list(&store, &args, out));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        for column in [
            "RUN ID",
            "EXPERIMENT",
            "NAME",
            "STATUS",
            "START (UTC)",
            "DURATION",
            "test_auc",
            "test_acc",
            "test_gender_es_auc",
            "test_language_es_auc",
        ] {
            assert!(lines[0].contains(column), "{column} missing:\n{text}");
        }
        assert!(
            !lines[0].contains("test_race_es_auc"),
            "only 4 headline metrics:\n{text}"
        );
        assert!(
            lines[1].starts_with(&bad) && lines[1].contains("FAILED") && lines[1].contains("500ms"),
            "{text}"
        );
        for cell in [
            good.as_str(),
            "fairclip",
            "seed-1",
            "FINISHED",
            "2023-11-14 22:13:20",
            "1m 05s",
            "0.8125",
            "0.7500",
            "NaN",
            "0.6000",
        ] {
            assert!(lines[2].contains(cell), "{cell} missing:\n{text}");
        }
    }

    #[test]
    fn list_filters_by_experiment_and_prints_json() {
        let (_dir, store, good, _bad) = store();
        store.create_run("0", "elsewhere", 5, &[]).unwrap();
        let args = RunsListArgs {
            experiment: Some("fairclip".into()),
            format: OutputFormat::Json,
        };
        let runs: Value = serde_json::from_str(&render(|out| list(&store, &args, out))).unwrap();
        let runs = runs.as_array().unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[1]["run_id"], good.as_str());
        assert_eq!(runs[1]["experiment"], "fairclip");
        assert_eq!(runs[1]["duration_ms"], 65_000);
        assert_eq!(runs[1]["metrics"]["test_gender_es_auc"], "NaN");
        assert_eq!(runs[1]["metrics"]["test_auc"], 0.8125);
        assert_eq!(runs[0]["failure_reason"], "CUDA out of memory\nwhile fitting");

        let args = RunsListArgs {
            experiment: Some("nope".into()),
            format: OutputFormat::Table,
        };
        let err = list(&store, &args, &mut Vec::new()).unwrap_err();
        assert!(err.is::<ConfigError>());
        let message = err.to_string();
        assert!(
            message.contains("nope") && message.contains("fairclip") && message.contains("Default"),
            "{message}"
        );
    }

    #[test]
    fn show_prints_everything_and_the_failure_reason_first() {
        let (_dir, store, good, bad) = store();
        let args = RunsShowArgs {
            run_id: bad.clone(),
            format: OutputFormat::Table,
        };
        let text = render(|out| show(&store, &args, out));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], format!("Run {bad} (seed-2)"));
        assert_eq!(lines[2], "!! FAILED: CUDA out of memory");
        assert_eq!(lines[3], "    while fitting");

        let args = RunsShowArgs {
            run_id: good.clone(),
            format: OutputFormat::Table,
        };
        let text = render(|out| show(&store, &args, out));
        for part in [
            "fairclip (id ",
            "FINISHED",
            "2023-11-14 22:13:20 UTC",
            "1m 05s",
            "Params (1)",
            "lr",
            "0.001",
            "mlflow.runName",
            "test_auc",
            "0.8125  step 3",
            "Artifacts (2)",
            "sub/",
            "sub/metrics.json",
            "2 B",
        ] {
            assert!(text.contains(part), "{part} missing:\n{text}");
        }
        assert!(!text.contains("!!"), "{text}");

        let args = RunsShowArgs {
            run_id: good.clone(),
            format: OutputFormat::Json,
        };
        let doc: Value = serde_json::from_str(&render(|out| show(&store, &args, out))).unwrap();
        assert_eq!(doc["status"], "FINISHED");
        assert_eq!(doc["params"]["lr"], "0.001");
        assert_eq!(doc["metrics"]["test_gender_es_auc"]["value"], "NaN");
        assert_eq!(doc["metrics"]["loss"]["step"], 3);
        assert_eq!(doc["artifacts"][1]["path"], "sub/metrics.json");
        assert_eq!(doc["failure_reason"], Value::Null);

        let args = RunsShowArgs {
            run_id: "0123456789abcdef0123456789abcdef".into(),
            format: OutputFormat::Table,
        };
        let err = show(&store, &args, &mut Vec::new()).unwrap_err().to_string();
        assert!(err.contains("0123456789abcdef0123456789abcdef"), "{err}");
    }
}
