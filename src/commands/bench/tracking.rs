//! `fairlab bench tracking`: how fast metric points logged the way a training loop logs them (one
//! [`ActiveRun::log_metric`] call per point) reach the MLflow server of `MLFLOW_TRACKING_URI`,
//! what each call costs the loop, and, against the same server in the same run, the server's own
//! ceiling: the same points pre-encoded as `runs/log-batch` bodies of 1000 metrics, sent with a
//! few requests in flight. `scripts/bench-tracking.sh` sets it beside MLflow's Python client.
//!
//! Every run's points are read back through [`Tracker::metric_history`] afterwards: the benchmark
//! fails unless each step arrived exactly once with its value.

use std::sync::{Arc, Barrier, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use fairlab_framework::tracking::limits::MAX_METRICS_PER_BATCH;
use fairlab_framework::tracking::rest::client::{ClientSettings, RestClient};
use fairlab_framework::tracking::rest::wire::{LogBatch, Metric, Value};
use fairlab_framework::tracking::{now_ms, ActiveRun, Tracker};
use fairlab_framework::ConfigError;

/// The metric keys the points cycle through (point `i` has key `KEYS[i % 4]` and step `i`).
const KEYS: [&str; 4] = ["loss", "accuracy", "lr", "grad_norm"];

/// Arguments of `fairlab bench tracking`.
#[derive(Debug, Clone, Args)]
pub struct TrackingBenchArgs {
    /// Metric points each run logs, one `log_metric` call per point (steps 0 to N-1).
    #[arg(long, default_value_t = 10_000)]
    pub points: usize,
    /// Runs logging at the same time, one thread each.
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// Requests in flight to try for the server's ceiling (comma-separated); the best is compared.
    #[arg(long, default_value = "1,2,4,8", value_delimiter = ',')]
    pub in_flight: Vec<usize>,
    /// The experiment the benchmark's runs go to (created when missing).
    #[arg(long, default_value = "fairlab-bench-tracking")]
    pub experiment: String,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Per-call cost of `log_metric` as the loop sees it, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
struct CallCost {
    median: f64,
    p99: f64,
    max: f64,
}

/// fairlab's side: runs logging point by point until flushed.
#[derive(Debug, Clone, PartialEq)]
struct LoopResult {
    /// From the first call of any run until the last run's `flush` returned.
    wall: Duration,
    /// Every call's duration.
    calls: CallCost,
}

/// One measurement of the server's ceiling.
#[derive(Debug, Clone, Copy, PartialEq)]
struct CeilingTrial {
    in_flight: usize,
    wall: Duration,
}

/// Everything one `fairlab bench tracking` measured.
#[derive(Debug, Clone, PartialEq)]
struct Report {
    server: String,
    mlflow_version: String,
    experiment: String,
    runs: usize,
    points_per_run: usize,
    fairlab: LoopResult,
    ceiling: Vec<CeilingTrial>,
}

impl Report {
    fn points(&self) -> f64 {
        (self.runs * self.points_per_run) as f64
    }

    fn rate(&self, wall: Duration) -> f64 {
        self.points() / wall.as_secs_f64()
    }

    /// The fastest ceiling trial.
    fn best_ceiling(&self) -> CeilingTrial {
        *self
            .ceiling
            .iter()
            .min_by_key(|t| t.wall)
            .expect("at least one ceiling trial")
    }

    fn to_json(&self) -> serde_json::Value {
        let best = self.best_ceiling();
        serde_json::json!({
            "server": self.server,
            "mlflow_version": self.mlflow_version,
            "experiment": self.experiment,
            "runs": self.runs,
            "points_per_run": self.points_per_run,
            "keys": KEYS,
            "fairlab": {
                "points_per_s": self.rate(self.fairlab.wall),
                "wall_s": self.fairlab.wall.as_secs_f64(),
                "call_us": {
                    "median": self.fairlab.calls.median,
                    "p99": self.fairlab.calls.p99,
                    "max": self.fairlab.calls.max,
                },
            },
            "ceiling": {
                "points_per_s": self.rate(best.wall),
                "in_flight": best.in_flight,
                "batch": MAX_METRICS_PER_BATCH,
                "trials": self.ceiling.iter().map(|t| serde_json::json!({
                    "in_flight": t.in_flight,
                    "points_per_s": self.rate(t.wall),
                    "wall_s": t.wall.as_secs_f64(),
                })).collect::<Vec<_>>(),
            },
            "fairlab_over_ceiling": best.wall.as_secs_f64() / self.fairlab.wall.as_secs_f64(),
        })
    }

    fn write_table(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let best = self.best_ceiling();
        writeln!(
            out,
            "fairlab bench tracking: {} run(s) x {} points to {} (MLflow {})\n",
            self.runs, self.points_per_run, self.server, self.mlflow_version
        )?;
        writeln!(out, "{:<46} {:>10} {:>9}", "", "points/s", "wall s")?;
        let row = |out: &mut dyn std::io::Write, name: &str, wall: Duration| {
            writeln!(out, "{name:<46} {:>10.0} {:>9.3}", self.rate(wall), wall.as_secs_f64())
        };
        row(out, "fairlab, one log_metric call per point", self.fairlab.wall)?;
        for trial in &self.ceiling {
            let best_mark = if trial.in_flight == best.in_flight {
                " (best)"
            } else {
                ""
            };
            let name = format!("server ceiling, {} in flight{best_mark}", trial.in_flight);
            row(out, &name, trial.wall)?;
        }
        let calls = self.fairlab.calls;
        writeln!(
            out,
            "\nlog_metric call: median {:.2} us, p99 {:.2} us, max {:.1} us ({} calls)",
            calls.median,
            calls.p99,
            calls.max,
            self.runs * self.points_per_run
        )?;
        writeln!(
            out,
            "fairlab / server ceiling: {:.2} (ceiling: log-batch bodies of {MAX_METRICS_PER_BATCH} metrics encoded \
             beforehand, {} in flight)",
            best.wall.as_secs_f64() / self.fairlab.wall.as_secs_f64(),
            best.in_flight
        )?;
        writeln!(
            out,
            "read back: every run has each of its {} steps exactly once, with its value",
            self.points_per_run
        )
    }
}

/// Run the benchmark against the server of `MLFLOW_TRACKING_URI`.
pub fn run(args: &TrackingBenchArgs, out: &mut dyn std::io::Write) -> anyhow::Result<()> {
    if args.points == 0 || args.runs == 0 {
        return Err(ConfigError::new("--points and --runs must be at least 1").into());
    }
    if args.in_flight.is_empty() || args.in_flight.contains(&0) {
        return Err(ConfigError::at_key("--in-flight", "give request counts of at least 1, e.g. 1,2,4,8").into());
    }
    let server = server_uri()?;
    let settings = ClientSettings::from_env()?;
    let mlflow_version = server_version(&server, &settings)?;
    let tracker = fairlab_framework::tracking::open(Some(&server))?;
    let client = RestClient::new(&server, settings)?;

    warm_up(&tracker, &client, args)?;
    let ceiling = args
        .in_flight
        .iter()
        .map(|&in_flight| ceiling_trial(&tracker, &client, args, in_flight))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let fairlab = log_like_a_training_loop(&tracker, args)?;

    let report = Report {
        server,
        mlflow_version,
        experiment: args.experiment.clone(),
        runs: args.runs,
        points_per_run: args.points,
        fairlab,
        ceiling,
    };
    if args.json {
        writeln!(out, "{}", report.to_json())?;
    } else {
        report.write_table(out)?;
    }
    Ok(())
}

/// The tracking server to measure: `MLFLOW_TRACKING_URI`, which must be `http(s)://`.
fn server_uri() -> anyhow::Result<String> {
    match super::super::tracking_uri() {
        None => Err(ConfigError::new(
            "fairlab bench tracking measures a tracking server, and MLFLOW_TRACKING_URI is not set: \
             set it to http://HOST:PORT (`scripts/mlflow-server.sh start` starts one and prints the line to use)",
        )
        .into()),
        Some(uri) if uri.starts_with("http://") || uri.starts_with("https://") => {
            Ok(uri.trim_end_matches('/').to_string())
        }
        Some(uri) => Err(ConfigError::new(format!(
            "fairlab bench tracking measures a tracking server, and MLFLOW_TRACKING_URI={uri} is a local store: \
             set it to http://HOST:PORT"
        ))
        .into()),
    }
}

/// The server's MLflow version (`GET /version`), asked with one quick retry at most, so that an
/// unreachable server is reported at once rather than after the full retry policy.
fn server_version(server: &str, settings: &ClientSettings) -> anyhow::Result<String> {
    let probe = RestClient::new(
        server,
        ClientSettings {
            max_retries: 1,
            backoff_factor: 0.5,
            timeout: Duration::from_secs(10),
            ..settings.clone()
        },
    )?;
    let bytes = probe
        .get_bytes("version")
        .with_context(|| format!("cannot reach the tracking server at {server}"))?;
    Ok(String::from_utf8_lossy(&bytes).trim().to_string())
}

/// Tags on every run the benchmark creates: which side of it the run is.
fn tags(side: &str) -> Vec<(String, String)> {
    vec![("fairlab.bench".to_string(), format!("tracking/{side}"))]
}

/// The value of point `i`, exact through JSON and back.
fn value(i: usize) -> f64 {
    1.0 / (1.0 + i as f64)
}

/// The `runs/log-batch` bodies carrying points `0..points` of `run_id`, `batch` to a body.
fn encoded_batches(run_id: &str, points: usize, batch: usize) -> anyhow::Result<Vec<Vec<u8>>> {
    let timestamp = now_ms();
    (0..points)
        .step_by(batch)
        .map(|start| {
            let metrics = (start..points.min(start + batch))
                .map(|i| Metric {
                    key: KEYS[i % KEYS.len()].to_string(),
                    value: Value(value(i)),
                    timestamp,
                    step: i as i64,
                })
                .collect();
            let body = LogBatch {
                run_id,
                metrics,
                params: Vec::new(),
                tags: Vec::new(),
            };
            serde_json::to_vec(&body).context("cannot encode a log-batch body")
        })
        .collect()
}

/// Send `bodies` to `runs/log-batch` with `in_flight` requests at a time; the wall time.
fn send_all(client: &RestClient, bodies: Vec<Vec<u8>>, in_flight: usize) -> anyhow::Result<Duration> {
    let queue = Mutex::new(bodies.into_iter());
    let next = || queue.lock().unwrap_or_else(PoisonError::into_inner).next();
    let started = Instant::now();
    std::thread::scope(|scope| {
        let senders: Vec<_> = (0..in_flight)
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<()> {
                    while let Some(body) = next() {
                        client.post_encoded::<serde_json::Value>("runs/log-batch", body)?;
                    }
                    Ok(())
                })
            })
            .collect();
        senders
            .into_iter()
            .try_for_each(|s| s.join().expect("a sender thread panicked"))
    })?;
    Ok(started.elapsed())
}

/// Untimed: every server worker answers a few log-batch requests first (imports, database
/// connections), as many at once as the ceiling will send.
fn warm_up(tracker: &Arc<dyn Tracker>, client: &RestClient, args: &TrackingBenchArgs) -> anyhow::Result<()> {
    let in_flight = args.in_flight.iter().copied().max().unwrap_or(1);
    let run = ActiveRun::start(tracker.clone(), &args.experiment, "warm-up", tags("warm-up"))?;
    let bodies = encoded_batches(run.id(), 2 * in_flight * 100, 100)?;
    send_all(client, bodies, in_flight).context("warming the server up failed")?;
    run.finish()
}

/// The server's ceiling with `in_flight` requests at a time: the benchmark's points, for fresh
/// runs, pre-encoded in bodies of 1000 metrics (runs interleaved), sent with [`RestClient`].
fn ceiling_trial(
    tracker: &Arc<dyn Tracker>,
    client: &RestClient,
    args: &TrackingBenchArgs,
    in_flight: usize,
) -> anyhow::Result<CeilingTrial> {
    let runs = (0..args.runs)
        .map(|r| {
            let name = format!("ceiling-{in_flight}-in-flight-{r}");
            ActiveRun::start(tracker.clone(), &args.experiment, &name, tags("server-ceiling"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let per_run = runs
        .iter()
        .map(|run| encoded_batches(run.id(), args.points, MAX_METRICS_PER_BATCH))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let batches = per_run[0].len();
    let mut per_run: Vec<_> = per_run.into_iter().map(Vec::into_iter).collect();
    let bodies = (0..batches)
        .flat_map(|_| per_run.iter_mut().filter_map(Iterator::next).collect::<Vec<_>>())
        .collect();
    let wall = send_all(client, bodies, in_flight)
        .with_context(|| format!("the ceiling measurement with {in_flight} requests in flight failed"))?;
    for run in runs {
        run.finish()?;
    }
    Ok(CeilingTrial { in_flight, wall })
}

/// fairlab's side: `args.runs` runs on as many threads, started together, each logging
/// `args.points` points with one timed `log_metric` call per point, then `flush`; then every run
/// is read back and checked.
fn log_like_a_training_loop(tracker: &Arc<dyn Tracker>, args: &TrackingBenchArgs) -> anyhow::Result<LoopResult> {
    let runs = (0..args.runs)
        .map(|r| {
            ActiveRun::start(
                tracker.clone(),
                &args.experiment,
                &format!("fairlab-{r}"),
                tags("fairlab"),
            )
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let start_together = Barrier::new(args.runs);
    let loops = std::thread::scope(|scope| {
        let threads: Vec<_> = runs
            .into_iter()
            .map(|run| {
                let start_together = &start_together;
                scope.spawn(move || {
                    start_together.wait();
                    let timed = one_loop(&run, args.points);
                    (run, timed)
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("a logging thread panicked"))
            .collect::<Vec<_>>()
    });
    let mut first_calls = Vec::with_capacity(args.runs);
    let mut flushes = Vec::with_capacity(args.runs);
    let mut calls = Vec::with_capacity(args.runs * args.points);
    let mut runs = Vec::with_capacity(args.runs);
    for (run, timed) in loops {
        let timed = timed.with_context(|| format!("logging to run {} failed", run.id()))?;
        first_calls.push(timed.first_call);
        flushes.push(timed.flushed);
        calls.extend(timed.calls);
        runs.push(run);
    }
    for run in &runs {
        check_history(tracker.as_ref(), run.id(), args.points)?;
    }
    for run in runs {
        run.finish()?;
    }
    let first_call = first_calls.into_iter().min().expect("--runs is at least 1");
    let last_flush = flushes.into_iter().max().expect("--runs is at least 1");
    Ok(LoopResult {
        wall: last_flush - first_call,
        calls: call_cost(calls),
    })
}

/// One run's loop, as timed.
struct TimedLoop {
    first_call: Instant,
    flushed: Instant,
    /// Each call's duration, in nanoseconds.
    calls: Vec<u64>,
}

fn one_loop(run: &ActiveRun, points: usize) -> anyhow::Result<TimedLoop> {
    let mut calls = Vec::with_capacity(points);
    let first_call = Instant::now();
    for i in 0..points {
        let started = Instant::now();
        run.log_metric(KEYS[i % KEYS.len()], value(i), i as i64)?;
        calls.push(started.elapsed().as_nanos() as u64);
    }
    run.flush()?;
    Ok(TimedLoop {
        first_call,
        flushed: Instant::now(),
        calls,
    })
}

/// Median, 99th percentile and maximum of call durations in nanoseconds, in microseconds.
fn call_cost(mut calls: Vec<u64>) -> CallCost {
    calls.sort_unstable();
    let at = |q: f64| {
        let rank = ((q * calls.len() as f64).ceil() as usize).clamp(1, calls.len());
        calls[rank - 1] as f64 / 1e3
    };
    CallCost {
        median: at(0.5),
        p99: at(0.99),
        max: at(1.0),
    }
}

/// Fail unless run `run_id` holds each step of `0..points` exactly once, under its key and with
/// its value.
fn check_history(tracker: &dyn Tracker, run_id: &str, points: usize) -> anyhow::Result<()> {
    for (k, key) in KEYS.iter().enumerate() {
        let history = tracker
            .metric_history(run_id, key)
            .with_context(|| format!("cannot read back metric `{key}` of run {run_id}"))?;
        let mut seen = vec![0usize; points];
        let mut strangers = Vec::new();
        let mut altered = Vec::new();
        for p in &history {
            match usize::try_from(p.step)
                .ok()
                .filter(|&i| i < points && i % KEYS.len() == k)
            {
                None => strangers.push(p.step),
                Some(i) => {
                    seen[i] += 1;
                    if p.value.to_bits() != value(i).to_bits() {
                        altered.push((i, p.value));
                    }
                }
            }
        }
        let expected = (k..points).step_by(KEYS.len());
        let missing: Vec<usize> = expected.clone().filter(|&i| seen[i] == 0).collect();
        let repeated: Vec<usize> = expected.filter(|&i| seen[i] > 1).collect();
        let mut problems = Vec::new();
        if let Some(i) = missing.first() {
            problems.push(format!("{} steps missing (the first: {i})", missing.len()));
        }
        if let Some(i) = repeated.first() {
            problems.push(format!(
                "{} steps stored more than once (the first: {i})",
                repeated.len()
            ));
        }
        if let Some(step) = strangers.first() {
            problems.push(format!(
                "{} points at steps never logged under this key (the first: {step})",
                strangers.len()
            ));
        }
        if let Some((i, got)) = altered.first() {
            problems.push(format!(
                "{} values changed (the first: step {i} holds {got} instead of {})",
                altered.len(),
                value(*i)
            ));
        }
        if !problems.is_empty() {
            anyhow::bail!(
                "run {run_id} did not store metric `{key}` as logged ({} points read back): {}",
                history.len(),
                problems.join("; ")
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_cost_takes_ranks_of_the_sorted_calls() {
        let cost = call_cost((1..=1000).rev().map(|i| i * 1000).collect());
        assert_eq!(
            cost,
            CallCost {
                median: 500.0,
                p99: 990.0,
                max: 1000.0
            }
        );
        assert_eq!(call_cost(vec![2500]).median, 2.5);
    }

    #[test]
    fn batches_cover_every_point_once_within_mlflows_limit() {
        let bodies = encoded_batches("r", 2500, MAX_METRICS_PER_BATCH).unwrap();
        assert_eq!(bodies.len(), 3);
        let mut steps = Vec::new();
        for body in &bodies {
            let body: serde_json::Value = serde_json::from_slice(body).unwrap();
            assert_eq!(body["run_id"], "r");
            let metrics = body["metrics"].as_array().unwrap();
            assert!(metrics.len() <= MAX_METRICS_PER_BATCH);
            for m in metrics {
                let step = m["step"].as_u64().unwrap() as usize;
                assert_eq!(m["key"], KEYS[step % KEYS.len()]);
                assert_eq!(m["value"].as_f64().unwrap(), value(step));
                steps.push(step);
            }
        }
        assert_eq!(steps, (0..2500).collect::<Vec<_>>());
    }
}
