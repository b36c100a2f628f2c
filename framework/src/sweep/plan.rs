//! The frozen plan of a sweep: every trial's resolved config and id, decided once at submission and
//! saved as `plan.json`, so that a later process (a Slurm array task on another node) runs trial
//! `i` from the plan alone, whatever happened to the YAML since.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_norway::Value;

use super::canonical::{config_json, sweep_id, to_json, trial_id};
use super::{clip, Distribution, Method, SweepSpec};
use crate::config::{self, Experiment, ExperimentConfig, Override};
use crate::error::ConfigError;
use crate::tracking::{is_secret_key, redact_assignment};

/// The plan's file name inside a sweep directory.
pub const PLAN_FILE: &str = "plan.json";

/// Where sweep directories go by default: `<SWEEPS_DIR>/<name>-<first 8 hex of the sweep id>/`.
pub const SWEEPS_DIR: &str = ".fairlab/sweeps";

/// The version of the `plan.json` layout.
const PLAN_FORMAT: u32 = 1;

/// A sweep expanded into its trials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepPlan {
    /// The `plan.json` layout version.
    pub format: u32,
    /// 16 hex digits identifying the set of trials (see [`SweepPlan::from_experiment_file`]).
    pub sweep_id: String,
    /// The experiment's `name` (the file stem when it has none).
    pub name: String,
    /// The sweep file it was planned from.
    pub experiment: PathBuf,
    /// The `--set KEY=VALUE` flags it was planned with (a secret's value shown as `***`).
    pub cli_overrides: Vec<String>,
    /// The validated `sweep:` section.
    pub spec: SweepSpec,
    /// What planning changed or noticed: dropped duplicates, a grid cut by `run_cap`, ...
    pub notes: Vec<String>,
    /// The trials, in plan order.
    pub trials: Vec<Trial>,
}

/// One trial: an experiment the sweep runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    /// Position in the plan, from 0 (the Slurm array index).
    pub index: usize,
    /// 16 hex digits of the SHA-256 of the canonical resolved config: the same config always gets
    /// the same id, whichever sweep plans it.
    pub id: String,
    /// The values the sweep sets, by dotted path, in the spec's order (parameters, then zip groups).
    pub overrides: Vec<(String, Value)>,
    /// The resolved config: the experiment without `sweep:`, these overrides, then the `--set`s.
    pub config: ExperimentConfig,
}

impl SweepPlan {
    /// Plan the sweep in the experiment file `path`.
    ///
    /// `cli_overrides` are `--set KEY=VALUE` flags: those under `sweep.` change the sweep section
    /// (`--set sweep.run_cap=5`); the others apply on top of every trial, and may not overwrite a
    /// swept path. Each trial is the experiment without its `sweep:` section, plus the trial's
    /// values applied like `--set`s, plus the command-line ones, deserialised into an
    /// [`ExperimentConfig`] and handed to `check` (the CLI validates plugin settings there). Errors
    /// name the trial and the key, at the file position of the sweep value that caused them.
    ///
    /// A secret (see [`is_secret_key`]) cannot be swept: its values would be in the plan and in the
    /// parent run's params.
    ///
    /// Trials with the same resolved config as an earlier one are dropped (with a note), and a grid
    /// keeps its first `run_cap` trials. The sweep id digests the sorted trial ids: re-planning the
    /// same sweep, in any key order, gives the same id, and any change to what would run gives a
    /// new one.
    pub fn from_experiment_file(
        path: &Path,
        cli_overrides: &[String],
        mut check: impl FnMut(&Experiment) -> Result<(), ConfigError>,
    ) -> Result<SweepPlan, ConfigError> {
        let (mut doc, source_map) = config::read_document(path)?;
        let (on_sweep, on_trials): (Vec<Override>, Vec<Override>) = config::parse_overrides(cli_overrides)?
            .into_iter()
            .partition(|o| o.key == "sweep" || o.key.starts_with("sweep."));
        for o in &on_sweep {
            o.apply(&mut doc)
                .map_err(|e| config::locate(&source_map, std::slice::from_ref(o), e))?;
        }
        let section = doc
            .as_mapping_mut()
            .and_then(|m| m.remove("sweep"))
            .ok_or_else(|| ConfigError::new(format!("{} has no `sweep:` section", path.display())))?;
        let spec = SweepSpec::from_value(section, &doc).map_err(|e| config::locate(&source_map, &on_sweep, e))?;
        if let Some(secret) = spec.paths().find(|p| is_secret_key(p)) {
            let key = if spec.parameters.iter().any(|p| p.path == secret) {
                format!("sweep.parameters.{secret}")
            } else {
                "sweep.zip".to_string()
            };
            return Err(config::locate(
                &source_map,
                &on_sweep,
                ConfigError::at_key(
                    key,
                    format!("`{secret}` is a secret and cannot be swept: its values would be written to the plan and the parent run's params"),
                ),
            ));
        }
        for o in &on_trials {
            let covers = |p: &&str| *p == o.key || p.starts_with(&format!("{}.", o.key));
            if let Some(swept) = spec.paths().find(covers) {
                return Err(ConfigError::at_key(
                    &o.key,
                    format!("would overwrite the swept `{swept}` in every trial; change `sweep.parameters` or `sweep.zip` instead"),
                )
                .with_location(o.location()));
            }
        }
        let name = match doc.get("name").and_then(Value::as_str) {
            Some(name) => name.to_string(),
            None => path.file_stem().unwrap_or_default().to_string_lossy().into_owned(),
        };

        let points = spec.points();
        let n_points = points.len();
        let cap = match spec.method {
            Method::Grid => spec.run_cap.map(|c| c as usize),
            Method::Random => None,
        };
        let mut trials: Vec<Trial> = Vec::new();
        let mut ids = HashSet::new();
        let mut duplicates = 0;
        for (n, point) in points.into_iter().enumerate() {
            if cap.is_some_and(|c| trials.len() >= c) {
                break;
            }
            let label = point.iter().map(|o| clip(&o.raw, 60)).collect::<Vec<_>>().join(", ");
            let in_trial = |mut e: ConfigError| {
                e.message = format!("in trial {n} ({label}): {}", e.message);
                e
            };
            let overrides = point.iter().map(|o| (o.key.clone(), o.value.clone())).collect();
            let all = point.into_iter().chain(on_trials.iter().cloned()).collect();
            let experiment = Experiment::from_document(path.to_path_buf(), doc.clone(), source_map.clone(), all)
                .map_err(in_trial)?;
            check(&experiment).map_err(in_trial)?;
            let json = config_json(&experiment.config).map_err(|m| in_trial(ConfigError::new(m)))?;
            let id = trial_id(&json);
            if !ids.insert(id.clone()) {
                duplicates += 1;
                continue;
            }
            trials.push(Trial {
                index: trials.len(),
                id,
                overrides,
                config: experiment.config,
            });
        }

        let mut notes = spec_notes(&spec);
        if duplicates > 0 {
            notes.push(format!(
                "{duplicates} trial(s) resolved to the same config as an earlier one and were dropped"
            ));
        }
        if let Some(c) = cap.filter(|c| *c < n_points) {
            notes.push(format!(
                "run_cap {c} keeps the first {c} of the grid's {n_points} points"
            ));
        }
        Ok(SweepPlan {
            format: PLAN_FORMAT,
            sweep_id: sweep_id(trials.iter().map(|t| t.id.as_str())),
            name,
            experiment: path.to_path_buf(),
            cli_overrides: cli_overrides.iter().map(|o| redact_assignment(o)).collect(),
            spec,
            notes,
            trials,
        })
    }

    /// The default sweep directory, relative to the working directory:
    /// `.fairlab/sweeps/<name>-<first 8 hex of the sweep id>`.
    pub fn default_dir(&self) -> PathBuf {
        let name: String = self
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        Path::new(SWEEPS_DIR).join(format!("{name}-{}", &self.sweep_id[..8]))
    }

    /// Save the plan as `dir/plan.json` (creating `dir`; replacing the file atomically); returns
    /// the file's path.
    pub fn write(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create the sweep directory {}", dir.display()))?;
        let path = dir.join(PLAN_FILE);
        let json = serde_json::to_string_pretty(self).context("cannot serialise the sweep plan")?;
        crate::tensor_io::write_atomic(&path, (json + "\n").as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }

    /// The plan as `plan.json` holds it, with the value of every secret key of the trials' configs
    /// shown as `***`: what the parent run keeps as its `plan.json` artifact (the file itself
    /// keeps the values, which the trials run with).
    pub fn redacted_json(&self) -> anyhow::Result<String> {
        let mut value = serde_norway::to_value(self).context("cannot serialise the sweep plan")?;
        crate::tracking::redact_yaml(&mut value);
        Ok(serde_json::to_string_pretty(&value).context("cannot serialise the sweep plan")? + "\n")
    }

    /// Load `dir/plan.json`, checking its format, that every trial's config still has its id and
    /// that the sweep id matches the trials.
    pub fn read(dir: &Path) -> anyhow::Result<SweepPlan> {
        let path = dir.join(PLAN_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        #[derive(Deserialize)]
        struct Header {
            format: u32,
        }
        let header: Header =
            serde_json::from_str(&text).with_context(|| format!("{} is not a sweep plan", path.display()))?;
        anyhow::ensure!(
            header.format == PLAN_FORMAT,
            "{} has plan format {}; this fairlab reads format {PLAN_FORMAT}",
            path.display(),
            header.format
        );
        let plan: SweepPlan =
            serde_json::from_str(&text).with_context(|| format!("{} is not a valid sweep plan", path.display()))?;
        anyhow::ensure!(
            plan.sweep_id == sweep_id(plan.trials.iter().map(|t| t.id.as_str())),
            "{}: the sweep id {} does not match its trials (was the file edited?)",
            path.display(),
            plan.sweep_id
        );
        Ok(plan)
    }
}

/// Notes about the spec itself: settings a method ignores, and `log_uniform` bounds that look like
/// values (the classic mix-up with `log_uniform_values`).
fn spec_notes(spec: &SweepSpec) -> Vec<String> {
    let mut notes = Vec::new();
    for p in &spec.parameters {
        match &p.distribution {
            Distribution::Categorical {
                probabilities: Some(_), ..
            } if spec.method == Method::Grid => notes.push(format!(
                "grid enumerates every value of `{}`; its probabilities only apply to method: random",
                p.path
            )),
            d @ Distribution::LogUniform { min, max } if *min > 0.0 && *max < 1.0 => notes.push(format!(
                "`{}` is {d}: log_uniform bounds are exponents; for bounds that are values use log_uniform_values",
                p.path
            )),
            _ => {}
        }
    }
    notes
}

/// A trial as stored in `plan.json`: values and config as canonical JSON.
#[derive(Serialize, Deserialize)]
struct StoredTrial {
    index: usize,
    id: String,
    overrides: Vec<(String, serde_json::Value)>,
    config: serde_json::Value,
}

impl Serialize for Trial {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let overrides = self
            .overrides
            .iter()
            .map(|(k, v)| Ok((k.clone(), to_json(v)?)))
            .collect::<Result<_, String>>()
            .map_err(S::Error::custom)?;
        StoredTrial {
            index: self.index,
            id: self.id.clone(),
            overrides,
            config: config_json(&self.config).map_err(S::Error::custom)?,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Trial {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let stored = StoredTrial::deserialize(deserializer)?;
        let yaml = |json: &serde_json::Value| serde_norway::to_value(json).map_err(D::Error::custom);
        let config = config::config_from_value(yaml(&stored.config)?)
            .map_err(|e| D::Error::custom(format!("trial {}: {e}", stored.index)))?;
        let id = config_json(&config)
            .map(|json| trial_id(&json))
            .map_err(D::Error::custom)?;
        if id != stored.id {
            return Err(D::Error::custom(format!(
                "trial {}: its config does not match its id {} (was the file edited?)",
                stored.index, stored.id
            )));
        }
        Ok(Trial {
            index: stored.index,
            id,
            overrides: stored
                .overrides
                .iter()
                .map(|(k, v)| Ok((k.clone(), yaml(v)?)))
                .collect::<Result<_, D::Error>>()?,
            config,
        })
    }
}
