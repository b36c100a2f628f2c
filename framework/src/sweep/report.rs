//! The end-of-sweep report: every trial with the parameters that vary, the sweep metric, the Pareto
//! objective and its final metrics; the best trial by `metric.goal`; the Pareto front of the two
//! objectives. Printed as a table and written as `results.json` and `results.csv` in the sweep
//! directory.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use super::journal::{TrialState, TrialStatus};
use super::{Goal, Objective, SweepPlan};
use crate::config::inline_yaml;
use crate::tensor_io::write_atomic;
use crate::text_table::{self, Align};

/// The report's JSON file in a sweep directory.
pub const RESULTS_JSON: &str = "results.json";
/// The report's CSV file in a sweep directory.
pub const RESULTS_CSV: &str = "results.csv";

/// One trial of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrialRow {
    /// Index in the plan.
    pub index: usize,
    /// Trial id.
    pub id: String,
    /// The trial's latest state.
    pub state: TrialState,
    /// Attempts made.
    pub attempts: u32,
    /// The values of the swept paths that vary across the sweep, as inline YAML.
    pub params: BTreeMap<String, String>,
    /// The sweep metric, when the trial finished and logged it (finite).
    pub metric: Option<f64>,
    /// The Pareto objective, when configured, finished and logged (finite).
    pub pareto: Option<f64>,
    /// Every final metric of a finished trial (val and test).
    pub metrics: BTreeMap<String, f64>,
    /// The tracking run of the latest attempt.
    pub run_id: Option<String>,
    /// Why the latest attempt failed or was killed.
    pub reason: Option<String>,
    /// How long the latest attempt's run took, in milliseconds.
    pub duration_ms: Option<u64>,
}

/// The report of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepReport {
    /// The sweep's name.
    pub name: String,
    /// The sweep id.
    pub sweep_id: String,
    /// The sweep metric.
    pub metric: Objective,
    /// The second objective of the Pareto front, if any.
    pub pareto_objective: Option<Objective>,
    /// Trials per state (every state listed, zeros included).
    pub counts: BTreeMap<TrialState, usize>,
    /// Plan index of the best finished trial by the metric (the earliest among equals).
    pub best: Option<usize>,
    /// Plan indices of the non-dominated finished trials, best metric first.
    pub pareto_front: Vec<usize>,
    /// Every trial, in plan order.
    pub trials: Vec<TrialRow>,
}

impl Goal {
    /// Whether `a` is strictly better than `b`.
    pub fn better(self, a: f64, b: f64) -> bool {
        match self {
            Goal::Maximize => a > b,
            Goal::Minimize => a < b,
        }
    }
}

impl SweepReport {
    /// The report of `plan`'s trials given the journal's `statuses` (by trial id).
    pub fn build(plan: &SweepPlan, statuses: &BTreeMap<String, TrialStatus>) -> Self {
        let metric = plan.spec.metric.clone();
        let pareto_objective = plan.spec.pareto.clone();
        let texts: Vec<BTreeMap<&str, String>> = plan
            .trials
            .iter()
            .map(|t| t.overrides.iter().map(|(k, v)| (k.as_str(), inline_yaml(v))).collect())
            .collect();
        let varying: Vec<&str> = plan
            .spec
            .paths()
            .filter(|k| texts.iter().map(|t| t.get(k)).collect::<BTreeSet<_>>().len() > 1)
            .collect();
        let trials: Vec<TrialRow> = plan
            .trials
            .iter()
            .zip(&texts)
            .map(|(t, text)| {
                let status = statuses.get(&t.id);
                let last = status.map(|s| &s.last);
                let metrics = last
                    .filter(|l| l.state == TrialState::Finished)
                    .map(|l| l.metrics.clone())
                    .unwrap_or_default();
                let value = |name: &str| metrics.get(name).copied().filter(|v| v.is_finite());
                TrialRow {
                    index: t.index,
                    id: t.id.clone(),
                    state: last.map_or(TrialState::Pending, |l| l.state),
                    attempts: status.map_or(0, |s| s.attempts),
                    params: varying
                        .iter()
                        .filter_map(|k| text.get(k).map(|v| (k.to_string(), v.clone())))
                        .collect(),
                    metric: value(&metric.name),
                    pareto: pareto_objective.as_ref().and_then(|p| value(&p.name)),
                    run_id: last.and_then(|l| l.run_id.clone()),
                    reason: last.and_then(|l| l.reason.clone()),
                    duration_ms: last.and_then(|l| l.duration_ms),
                    metrics,
                }
            })
            .collect();
        let best = trials
            .iter()
            .filter_map(|t| t.metric.map(|m| (t.index, m)))
            .fold(None, |best: Option<(usize, f64)>, (i, m)| match best {
                Some((_, b)) if !metric.goal.better(m, b) => best,
                _ => Some((i, m)),
            })
            .map(|(i, _)| i);
        let pareto_front = match &pareto_objective {
            Some(p) => pareto_front(&trials, metric.goal, p.goal),
            None => Vec::new(),
        };
        let mut counts: BTreeMap<TrialState, usize> = [
            TrialState::Pending,
            TrialState::Queued,
            TrialState::Running,
            TrialState::Finished,
            TrialState::Failed,
            TrialState::Killed,
        ]
        .into_iter()
        .map(|s| (s, 0))
        .collect();
        for t in &trials {
            *counts.entry(t.state).or_insert(0) += 1;
        }
        Self {
            name: plan.name.clone(),
            sweep_id: plan.sweep_id.clone(),
            metric,
            pareto_objective,
            counts,
            best,
            pareto_front,
            trials,
        }
    }

    /// The number of trials in `state`.
    pub fn count(&self, state: TrialState) -> usize {
        self.counts.get(&state).copied().unwrap_or(0)
    }

    /// `7 FINISHED, 1 FAILED, 2 PENDING`: the non-zero counts.
    pub fn counts_line(&self) -> String {
        let parts: Vec<String> = self
            .counts
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(s, n)| format!("{n} {s}"))
            .collect();
        parts.join(", ")
    }

    /// A note when trials finished but none logged the sweep metric (a misspelt `metric.name`),
    /// listing the keys they did log.
    pub fn missing_metric_note(&self) -> Option<String> {
        let finished: Vec<&TrialRow> = self.trials.iter().filter(|t| t.state == TrialState::Finished).collect();
        let objectives = std::iter::once(&self.metric).chain(self.pareto_objective.as_ref());
        let missing: Vec<&str> = objectives
            .filter(|o| !finished.is_empty() && finished.iter().all(|t| !t.metrics.contains_key(&o.name)))
            .map(|o| o.name.as_str())
            .collect();
        if missing.is_empty() {
            return None;
        }
        let keys: BTreeSet<&String> = finished.iter().flat_map(|t| t.metrics.keys()).collect();
        let shown: Vec<&str> = keys
            .iter()
            .filter(|k| k.starts_with("test_"))
            .map(|k| k.as_str())
            .collect();
        Some(format!(
            "no finished trial logged {}; test metrics they logged: {}",
            missing
                .iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(" or "),
            shown.join(", ")
        ))
    }

    /// The report for people: one row per trial (state, varying params, objectives, duration,
    /// reason), then the best trial and the Pareto front.
    pub fn to_table(&self) -> String {
        let params = table_columns(&self.trials);
        let mut header: Vec<String> = ["#", "id", "state"].map(String::from).to_vec();
        header.extend(params.iter().map(|p| p.to_string()));
        header.push(self.metric.name.clone());
        if let Some(p) = &self.pareto_objective {
            header.push(p.name.clone());
        }
        header.extend(["time", "note"].map(String::from));
        let rows: Vec<Vec<String>> = self
            .trials
            .iter()
            .map(|t| {
                let mut row = vec![t.index.to_string(), t.id.clone(), t.state.to_string()];
                row.extend(params.iter().map(|p| super::clip(&t.params[*p], 30)));
                row.push(number(t.metric));
                if self.pareto_objective.is_some() {
                    row.push(number(t.pareto));
                }
                row.push(
                    t.duration_ms
                        .map_or("-".to_string(), |ms| format!("{:.1}s", ms as f64 / 1000.0)),
                );
                let mut marks = Vec::new();
                if self.best == Some(t.index) {
                    marks.push("best".to_string());
                }
                if self.pareto_front.contains(&t.index) {
                    marks.push("pareto".to_string());
                }
                if let Some(reason) = &t.reason {
                    marks.push(super::clip(reason.lines().next().unwrap_or_default(), 70));
                }
                row.push(marks.join("; "));
                row
            })
            .collect();
        let mut out = text_table::render(&header, &rows, Align::Left);
        out.push('\n');
        out.push_str(&format!("trials: {}\n", self.counts_line()));
        match self.best {
            Some(i) => {
                let t = &self.trials[i];
                out.push_str(&format!(
                    "best by {}: trial {i} ({}) {} = {}{}\n",
                    self.metric,
                    t.id,
                    self.metric.name,
                    number(t.metric),
                    t.run_id.as_ref().map(|r| format!(", run {r}")).unwrap_or_default()
                ));
            }
            None => out.push_str(&format!(
                "best by {}: none yet (no finished trial logged it)\n",
                self.metric
            )),
        }
        if let Some(p) = &self.pareto_objective {
            let front: Vec<String> = self.pareto_front.iter().map(|i| i.to_string()).collect();
            let front = match front.is_empty() {
                true => "none yet".to_string(),
                false => format!("trials {}", front.join(", ")),
            };
            out.push_str(&format!("pareto front ({} vs {p}): {front}\n", self.metric));
        }
        if let Some(note) = self.missing_metric_note() {
            out.push_str(&format!("note: {note}\n"));
        }
        out
    }

    /// Write `results.json` and `results.csv` into `dir` (each replaced atomically). The CSV has a
    /// row per trial: index, id, state, attempts, the varying params, every `test_` metric any
    /// trial logged, best, pareto, run_id, duration_ms and reason.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_string_pretty(self)? + "\n";
        for (file, bytes) in [
            (RESULTS_JSON, json.into_bytes()),
            (RESULTS_CSV, self.to_csv().into_bytes()),
        ] {
            let path = dir.join(file);
            write_atomic(&path, &bytes).with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    }

    /// The CSV text of [`SweepReport::write`].
    pub fn to_csv(&self) -> String {
        let params: BTreeSet<&String> = self.trials.iter().flat_map(|t| t.params.keys()).collect();
        let metrics: BTreeSet<&String> = self
            .trials
            .iter()
            .flat_map(|t| t.metrics.keys())
            .filter(|k| k.starts_with("test_"))
            .collect();
        let mut header: Vec<String> = ["index", "id", "state", "attempts"].map(String::from).to_vec();
        header.extend(params.iter().map(|k| k.to_string()));
        header.extend(metrics.iter().map(|k| k.to_string()));
        header.extend(["best", "pareto", "run_id", "duration_ms", "reason"].map(String::from));
        let mut out = csv_line(&header);
        for t in &self.trials {
            let mut row = vec![
                t.index.to_string(),
                t.id.clone(),
                t.state.to_string(),
                t.attempts.to_string(),
            ];
            row.extend(params.iter().map(|k| t.params.get(*k).cloned().unwrap_or_default()));
            row.extend(
                metrics
                    .iter()
                    .map(|k| t.metrics.get(*k).map(|v| v.to_string()).unwrap_or_default()),
            );
            row.push((self.best == Some(t.index)).to_string());
            row.push(self.pareto_front.contains(&t.index).to_string());
            row.push(t.run_id.clone().unwrap_or_default());
            row.push(t.duration_ms.map(|d| d.to_string()).unwrap_or_default());
            row.push(t.reason.clone().unwrap_or_default());
            out.push_str(&csv_line(&row));
        }
        out
    }
}

/// Plan indices of the finished trials that no other trial dominates (at least as good on both
/// objectives and better on one), best first objective first, ties in plan order.
pub fn pareto_front(trials: &[TrialRow], first: Goal, second: Goal) -> Vec<usize> {
    let points: Vec<(usize, f64, f64)> = trials
        .iter()
        .filter_map(|t| Some((t.index, t.metric?, t.pareto?)))
        .collect();
    let at_least = |goal: Goal, a: f64, b: f64| a == b || goal.better(a, b);
    let dominates = |a: &(usize, f64, f64), b: &(usize, f64, f64)| {
        at_least(first, a.1, b.1) && at_least(second, a.2, b.2) && (first.better(a.1, b.1) || second.better(a.2, b.2))
    };
    let mut front: Vec<(usize, f64, f64)> = points
        .iter()
        .filter(|p| !points.iter().any(|q| dominates(q, p)))
        .copied()
        .collect();
    front.sort_by(|a, b| {
        if first.better(a.1, b.1) {
            std::cmp::Ordering::Less
        } else if first.better(b.1, a.1) {
            std::cmp::Ordering::Greater
        } else {
            a.0.cmp(&b.0)
        }
    });
    front.into_iter().map(|p| p.0).collect()
}

/// The varying params worth a column in the table: a param whose values are mappings (a whole
/// section swept in a zip group, e.g. `debiaser`) is left out when a scalar param already tells
/// its values apart (e.g. the zip group's `name`); results.csv keeps every param.
fn table_columns(trials: &[TrialRow]) -> Vec<&String> {
    let all: Vec<&String> = trials.first().map(|t| t.params.keys().collect()).unwrap_or_default();
    let is_mapping = |p: &String| trials.iter().any(|t| t.params[p].starts_with('{'));
    // Whether each value of `by` comes with a single value of `what`.
    let determines = |by: &String, what: &String| {
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        trials
            .iter()
            .all(|t| *seen.entry(t.params[by].as_str()).or_insert(t.params[what].as_str()) == t.params[what])
    };
    all.iter()
        .copied()
        .filter(|p| !is_mapping(p) || !all.iter().any(|q| q != p && !is_mapping(q) && determines(q, p)))
        .collect()
}

fn number(value: Option<f64>) -> String {
    value.map_or("-".to_string(), |v| format!("{v:.4}"))
}

/// One CSV record (RFC 4180 quoting) with its newline.
fn csv_line(cells: &[String]) -> String {
    let quoted: Vec<String> = cells
        .iter()
        .map(|c| {
            if c.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", c.replace('"', "\"\""))
            } else {
                c.clone()
            }
        })
        .collect();
    quoted.join(",") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(index: usize, metric: Option<f64>, pareto: Option<f64>) -> TrialRow {
        TrialRow {
            index,
            id: format!("t{index}"),
            state: if metric.is_some() {
                TrialState::Finished
            } else {
                TrialState::Failed
            },
            attempts: 1,
            params: BTreeMap::new(),
            metric,
            pareto,
            metrics: BTreeMap::new(),
            run_id: None,
            reason: None,
            duration_ms: None,
        }
    }

    #[test]
    fn the_pareto_front_keeps_only_non_dominated_trials() {
        // (AUC up, gap down): 0 dominates 3; 1 and 2 trade off; 4 failed.
        let trials = [
            row(0, Some(0.70), Some(0.10)),
            row(1, Some(0.75), Some(0.20)),
            row(2, Some(0.65), Some(0.05)),
            row(3, Some(0.69), Some(0.12)),
            row(4, None, None),
            row(5, Some(0.70), Some(0.10)), // a tie with 0: neither dominates
        ];
        assert_eq!(pareto_front(&trials, Goal::Maximize, Goal::Minimize), vec![1, 0, 5, 2]);
        // The opposite goals: 3 now dominates 0 and 5.
        assert_eq!(pareto_front(&trials, Goal::Minimize, Goal::Maximize), vec![2, 3, 1]);
    }

    #[test]
    fn a_mapping_column_named_by_a_scalar_one_is_left_out_of_the_table() {
        let with = |name: &str, debiaser: &str, seed: &str| TrialRow {
            params: [("name", name), ("debiaser", debiaser), ("seed", seed)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..row(0, None, None)
        };
        let named = [
            with("erm", "{kind: erm}", "0"),
            with("dro", "{kind: group-dro}", "0"),
            with("erm", "{kind: erm}", "1"),
        ];
        let columns: Vec<&str> = table_columns(&named).into_iter().map(String::as_str).collect();
        assert_eq!(columns, ["name", "seed"]);
        // Two settings under one name: the mapping is what tells them apart, so it stays.
        let unnamed = [with("dne", "{lr: 1}", "0"), with("dne", "{lr: 2}", "0")];
        assert_eq!(table_columns(&unnamed).len(), 3);
    }

    #[test]
    fn csv_cells_are_quoted_when_needed() {
        let cells = ["a", "b,c", "say \"hi\"", "x\ny"].map(String::from);
        assert_eq!(csv_line(&cells), "a,\"b,c\",\"say \"\"hi\"\"\",\"x\ny\"\n");
    }
}
