//! The `sweep:` section of an experiment file, typed and validated before any trial is built.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_norway::{Mapping, Value};

use super::{Distribution, Execution};
use crate::config::deserialize_at;
use crate::error::ConfigError;
use crate::sweep::distribution::MAX_GRID_VALUES;

/// The most trials one sweep may plan (grid points, or a random sweep's `run_cap`).
pub const MAX_TRIALS: u64 = 100_000;

/// How a sweep chooses its trials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Every combination of the axes (the Cartesian product; zip groups are one axis each).
    Grid,
    /// `run_cap` seeded draws from the parameters' distributions.
    Random,
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Grid => "grid",
            Self::Random => "random",
        })
    }
}

/// Whether an objective is better high or low.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Goal {
    /// Higher is better.
    Maximize,
    /// Lower is better (the default, as in W&B).
    #[default]
    Minimize,
}

impl fmt::Display for Goal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Maximize => "maximize",
            Self::Minimize => "minimize",
        })
    }
}

/// A metric a sweep ranks its trials by (`{name: test_auc, goal: maximize}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Objective {
    /// A metric every trial logs (`test_auc`, `test_sex_deodds`, ...).
    pub name: String,
    /// Which direction is better.
    #[serde(default)]
    pub goal: Goal,
}

impl fmt::Display for Objective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.goal)
    }
}

/// One entry of `sweep.parameters`: a dotted config path and where its values come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parameter {
    /// The dotted config path the values are written to (`debiaser.optimizer.lr`).
    pub path: String,
    /// The values.
    #[serde(flatten)]
    pub distribution: Distribution,
}

/// One `zip:` group: a single axis whose i-th point sets every path to its i-th value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZipGroup {
    /// The dotted config paths, in the order written.
    pub paths: Vec<String>,
    /// The points: `points[i][k]` is the value of `paths[k]` at point `i`.
    pub points: Vec<Vec<Value>>,
}

/// The validated `sweep:` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepSpec {
    /// Grid or random.
    pub method: Method,
    /// The metric the sweep optimises.
    pub metric: Objective,
    /// An optional second objective (a fairness gap, say) for the Pareto front.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pareto: Option<Objective>,
    /// Random: the number of draws. Grid: keep only the first `run_cap` trials of the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_cap: Option<u64>,
    /// Seed of the random draws (independent of the experiment's own `seed`).
    #[serde(default)]
    pub seed: u64,
    /// The parameters, in file order; in a grid the first one varies slowest.
    pub parameters: Vec<Parameter>,
    /// The zip groups, in file order; in a grid they come after the parameters.
    #[serde(default)]
    pub zip: Vec<ZipGroup>,
    /// How the trials are run.
    #[serde(default)]
    pub execution: Execution,
}

/// `sweep:` as written, before validation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSweep {
    #[serde(default)]
    method: Option<Method>,
    #[serde(default)]
    metric: Option<Objective>,
    #[serde(default)]
    pareto: Option<Objective>,
    #[serde(default)]
    run_cap: Option<u64>,
    #[serde(default)]
    seed: u64,
    #[serde(default)]
    parameters: Mapping,
    #[serde(default)]
    zip: Vec<Mapping>,
    #[serde(default)]
    execution: Execution,
}

impl SweepSpec {
    /// Parse and validate a `sweep:` section. `experiment` is the rest of the document: every swept
    /// path must already be set there. Errors name the offending `sweep.` key (unlocated).
    pub fn from_value(section: Value, experiment: &Value) -> Result<SweepSpec, ConfigError> {
        if !matches!(section, Value::Mapping(_)) {
            return Err(ConfigError::at_key(
                "sweep",
                "`sweep` is a mapping: method, metric, parameters (and zip, run_cap, seed, pareto, execution)",
            ));
        }
        let raw: RawSweep = deserialize_at("sweep", section)?;
        let method = raw
            .method
            .ok_or_else(|| ConfigError::at_key("sweep.method", "missing: `grid` or `random`"))?;
        let metric = raw.metric.ok_or_else(|| {
            ConfigError::at_key(
                "sweep.metric",
                "missing: the metric the sweep optimises, e.g. `metric: {name: test_auc, goal: maximize}`",
            )
        })?;
        for (key, objective) in [("sweep.metric", Some(&metric)), ("sweep.pareto", raw.pareto.as_ref())] {
            if objective.is_some_and(|o| o.name.trim().is_empty()) {
                return Err(ConfigError::at_key(format!("{key}.name"), "empty metric name"));
            }
        }
        let mut paths = SweptPaths::default();
        let mut parameters = Vec::new();
        for (path, spec) in raw.parameters {
            let path = path_string(path, "sweep.parameters")?;
            let key = format!("sweep.parameters.{path}");
            paths.add(&path, &key, experiment)?;
            let distribution = parse_distribution(&key, spec)?;
            if method == Method::Grid {
                check_enumerable(&key, &distribution)?;
            }
            parameters.push(Parameter { path, distribution });
        }
        let mut zip = Vec::new();
        for (g, group) in raw.zip.into_iter().enumerate() {
            zip.push(parse_zip(&format!("sweep.zip.{g}"), group, &mut paths, experiment)?);
        }
        if parameters.is_empty() && zip.is_empty() {
            return Err(ConfigError::at_key(
                "sweep.parameters",
                "a sweep needs at least one parameter or zip group",
            ));
        }
        let spec = SweepSpec {
            method,
            metric,
            pareto: raw.pareto,
            run_cap: raw.run_cap,
            seed: raw.seed,
            parameters,
            zip,
            execution: raw.execution,
        };
        spec.execution.validate()?;
        spec.check_size()?;
        Ok(spec)
    }

    /// Every swept path: the parameters', then the zip groups'.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        let parameters = self.parameters.iter().map(|p| p.path.as_str());
        parameters.chain(self.zip.iter().flat_map(|g| g.paths.iter().map(String::as_str)))
    }

    /// The number of grid points (the product of the axis sizes), saturating.
    pub fn grid_size(&self) -> u64 {
        let parameters = self.parameters.iter().map(|p| p.distribution.grid_len().unwrap_or(1));
        parameters
            .chain(self.zip.iter().map(|g| g.points.len() as u64))
            .fold(1u64, u64::saturating_mul)
    }

    /// `run_cap` rules: at least 1, required for random, and no plan over [`MAX_TRIALS`].
    fn check_size(&self) -> Result<(), ConfigError> {
        if self.run_cap == Some(0) {
            return Err(ConfigError::at_key("sweep.run_cap", "must be at least 1"));
        }
        let (size, what) = match self.method {
            Method::Random => {
                let cap = self.run_cap.ok_or_else(|| {
                    ConfigError::at_key("sweep.run_cap", "method: random needs `run_cap`, the number of trials")
                })?;
                (cap, "run_cap")
            }
            Method::Grid => (self.grid_size(), "the grid"),
        };
        if size > MAX_TRIALS {
            let key = if self.method == Method::Random {
                "sweep.run_cap"
            } else {
                "sweep"
            };
            return Err(ConfigError::at_key(
                key,
                format!("{what} has {size} trials; a sweep plans at most {MAX_TRIALS}"),
            ));
        }
        Ok(())
    }
}

/// A `sweep.parameters` entry: infer `distribution:` when absent (W&B's rules), then deserialise
/// and validate.
fn parse_distribution(key: &str, spec: Value) -> Result<Distribution, ConfigError> {
    let Value::Mapping(mut map) = spec else {
        return Err(ConfigError::at_key(
            key,
            "a parameter is a mapping: `{value: V}`, `{values: [...]}`, or `{min: A, max: B}` with an optional `distribution`",
        ));
    };
    let inferred = match map.contains_key("distribution") {
        true => None,
        false => {
            let name = Distribution::infer(&map).ok_or_else(|| {
                ConfigError::at_key(
                    key,
                    "give `value`, `values`, or `min` and `max` (with an optional `distribution`)",
                )
            })?;
            map.insert(Value::from("distribution"), Value::from(name));
            Some(name)
        }
    };
    let distribution: Distribution = deserialize_at(key, Value::Mapping(map)).map_err(|mut e| {
        if let Some(name) = inferred {
            e.message += &format!(" (no `distribution:` given, so it is inferred as {name})");
        }
        e
    })?;
    distribution
        .validate()
        .map_err(|(setting, message)| ConfigError::at_key(format!("{key}.{setting}"), message))?;
    Ok(distribution)
}

fn check_enumerable(key: &str, distribution: &Distribution) -> Result<(), ConfigError> {
    match distribution.grid_len() {
        None => Err(ConfigError::at_key(
            key,
            format!(
                "method: grid cannot enumerate a {} distribution; use `values`, int_uniform or q_uniform, or method: random",
                distribution.name()
            ),
        )),
        Some(n) if n > MAX_GRID_VALUES => Err(ConfigError::at_key(
            key,
            format!("{distribution} has {n} grid values; a grid axis takes at most {MAX_GRID_VALUES}"),
        )),
        Some(_) => Ok(()),
    }
}

/// A `zip:` group: a mapping of paths to equally long, non-empty lists.
fn parse_zip(key: &str, group: Mapping, paths: &mut SweptPaths, experiment: &Value) -> Result<ZipGroup, ConfigError> {
    if group.is_empty() {
        return Err(ConfigError::at_key(
            key,
            "an empty zip group; map paths to lists of values",
        ));
    }
    let mut columns: Vec<(String, Vec<Value>)> = Vec::new();
    for (path, values) in group {
        let path = path_string(path, key)?;
        let path_key = format!("{key}.{path}");
        paths.add(&path, &path_key, experiment)?;
        let Value::Sequence(values) = values else {
            return Err(ConfigError::at_key(
                path_key,
                "a zip key takes a list of values, one per point",
            ));
        };
        if values.is_empty() {
            return Err(ConfigError::at_key(
                path_key,
                "the list is empty; give at least one value",
            ));
        }
        if let Some((first, first_values)) = columns.first() {
            if values.len() != first_values.len() {
                return Err(ConfigError::at_key(
                    path_key,
                    format!(
                        "{} values, but `{first}` has {}; every key of a zip group needs one value per point",
                        values.len(),
                        first_values.len()
                    ),
                ));
            }
        }
        columns.push((path, values));
    }
    let len = columns[0].1.len();
    Ok(ZipGroup {
        paths: columns.iter().map(|(p, _)| p.clone()).collect(),
        points: (0..len)
            .map(|i| columns.iter().map(|(_, v)| v[i].clone()).collect())
            .collect(),
    })
}

/// A path written as a mapping key: a string of non-empty dotted segments.
fn path_string(key: Value, parent: &str) -> Result<String, ConfigError> {
    match key {
        Value::String(s) if !s.split('.').any(|seg| seg.trim().is_empty()) => Ok(s),
        other => Err(ConfigError::at_key(
            parent,
            format!(
                "`{}` is not a dotted config path like `debiaser.optimizer.lr`",
                crate::config::inline_yaml(&other)
            ),
        )),
    }
}

/// The paths swept so far, to reject one given twice (or one inside another).
#[derive(Default)]
struct SweptPaths {
    seen: Vec<(String, String)>,
}

impl SweptPaths {
    /// Accept `path` (written at `key`) if the experiment sets it, it is not in `sweep` itself and
    /// it does not overlap a path already swept.
    fn add(&mut self, path: &str, key: &str, experiment: &Value) -> Result<(), ConfigError> {
        if path == "sweep" || path.starts_with("sweep.") {
            return Err(ConfigError::at_key(key, "a sweep cannot vary its own `sweep` section"));
        }
        if lookup(experiment, path).is_none() {
            return Err(ConfigError::at_key(
                key,
                format!("`{path}` is not in the experiment; set it in the experiment first, then sweep it"),
            ));
        }
        let inside = |outer: &str, inner: &str| inner == outer || inner.starts_with(&format!("{outer}."));
        if let Some((other, other_key)) = self.seen.iter().find(|(p, _)| inside(p, path) || inside(path, p)) {
            let how = if other == path { "is also swept" } else { "overlaps" };
            return Err(ConfigError::at_key(
                key,
                format!("`{path}` {how} `{other}` at `{other_key}`; sweep each setting once"),
            ));
        }
        self.seen.push((path.to_string(), key.to_string()));
        Ok(())
    }
}

/// The value at a dotted path (numeric segments index lists).
fn lookup<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(doc, |node, segment| match node {
        Value::Mapping(map) => map.get(segment),
        Value::Sequence(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}
