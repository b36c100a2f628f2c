//! What a sweep parameter's values come from: enumeration for grid sweeps, seeded sampling for
//! random sweeps, and a one-line description of the resolved range for `--dry-run`.
//!
//! Sampling reads nothing but `next_u64` from the generator and does its own arithmetic (uniform
//! floats from the top 53 bits, Box-Muller normals), so a plan depends only on the ChaCha20 stream
//! and not on how a `rand` release implements its distributions.

use std::fmt;

use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_norway::Value;

use crate::config::{inline_yaml, short_float as short};

/// The most values a grid may enumerate from one `int_uniform` or `q_uniform` parameter.
pub const MAX_GRID_VALUES: u64 = 10_000;

/// A parameter's distribution, as written in `sweep.parameters` (W&B's names and settings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "distribution", rename_all = "snake_case", deny_unknown_fields)]
pub enum Distribution {
    /// Always `value` (`{value: V}`).
    Constant {
        /// The value.
        value: Value,
    },
    /// One of `values` (`{values: [...]}`); random sweeps draw with `probabilities` when given
    /// (uniformly otherwise), grid sweeps enumerate every value.
    Categorical {
        /// The choices, in order.
        values: Vec<Value>,
        /// One probability per value, summing to 1.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        probabilities: Option<Vec<f64>>,
    },
    /// An integer in `[min, max]`, uniformly.
    IntUniform {
        /// Smallest value.
        min: i64,
        /// Largest value.
        max: i64,
    },
    /// A float in `[min, max)`, uniformly.
    Uniform {
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
    },
    /// `round(uniform(min, max) / q) * q`: the multiples of `q` between the bounds (a float).
    QUniform {
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
        /// The step.
        #[serde(default = "one")]
        q: f64,
    },
    /// `exp(uniform(min, max))`: the bounds are natural-log exponents, as in W&B.
    LogUniform {
        /// Lower exponent.
        min: f64,
        /// Upper exponent.
        max: f64,
    },
    /// Log-uniform between the values `min` and `max` (both > 0).
    LogUniformValues {
        /// Smallest value.
        min: f64,
        /// Largest value.
        max: f64,
    },
    /// `round(log_uniform_values(min, max) / q) * q`.
    QLogUniformValues {
        /// Smallest value (> 0).
        min: f64,
        /// Largest value.
        max: f64,
        /// The step.
        #[serde(default = "one")]
        q: f64,
    },
    /// `mu + sigma * N(0, 1)`.
    Normal {
        /// Mean.
        #[serde(default)]
        mu: f64,
        /// Standard deviation (> 0).
        #[serde(default = "one")]
        sigma: f64,
    },
    /// `exp(normal(mu, sigma))`.
    LogNormal {
        /// Mean of the logarithm.
        #[serde(default)]
        mu: f64,
        /// Standard deviation of the logarithm (> 0).
        #[serde(default = "one")]
        sigma: f64,
    },
}

fn one() -> f64 {
    1.0
}

impl Distribution {
    /// The name written as `distribution:` (`log_uniform_values`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Constant { .. } => "constant",
            Self::Categorical { .. } => "categorical",
            Self::IntUniform { .. } => "int_uniform",
            Self::Uniform { .. } => "uniform",
            Self::QUniform { .. } => "q_uniform",
            Self::LogUniform { .. } => "log_uniform",
            Self::LogUniformValues { .. } => "log_uniform_values",
            Self::QLogUniformValues { .. } => "q_log_uniform_values",
            Self::Normal { .. } => "normal",
            Self::LogNormal { .. } => "log_normal",
        }
    }

    /// W&B's inference when `distribution:` is absent, from the keys of a parameter's mapping:
    /// `values` -> categorical, `value` -> constant, integer `min` and `max` -> int_uniform, other
    /// `min`/`max` -> uniform. `None` when there is nothing to infer from.
    pub(crate) fn infer(spec: &serde_norway::Mapping) -> Option<&'static str> {
        let integer = |key: &str| spec.get(key).is_some_and(|v| v.is_i64() || v.is_u64());
        if spec.contains_key("values") {
            Some("categorical")
        } else if spec.contains_key("value") {
            Some("constant")
        } else if integer("min") && integer("max") {
            Some("int_uniform")
        } else if spec.contains_key("min") || spec.contains_key("max") {
            Some("uniform")
        } else {
            None
        }
    }

    /// Check the settings: non-empty values, probabilities that fit them, finite bounds with
    /// `min <= max`, positive bounds for the `*_values` distributions, positive `q` and `sigma`.
    /// The error names the offending setting (`min`, `probabilities`, ...) and explains it.
    pub(crate) fn validate(&self) -> Result<(), (&'static str, String)> {
        let finite = |name: &'static str, x: f64| {
            if x.is_finite() {
                Ok(())
            } else {
                Err((name, format!("must be a finite number, got {x}")))
            }
        };
        let ordered = |min: f64, max: f64| {
            finite("min", min)?;
            finite("max", max)?;
            if min > max {
                return Err(("min", format!("min {} is greater than max {}", short(min), short(max))));
            }
            Ok(())
        };
        let positive = |name: &'static str, x: f64, why: &str| {
            if x > 0.0 && x.is_finite() {
                Ok(())
            } else {
                Err((name, format!("must be > 0 ({why}), got {}", short(x))))
            }
        };
        match self {
            Self::Constant { .. } => Ok(()),
            Self::Categorical { values, probabilities } => {
                if values.is_empty() {
                    return Err(("values", "the list is empty; give at least one value".to_string()));
                }
                let Some(p) = probabilities else { return Ok(()) };
                if p.len() != values.len() {
                    return Err((
                        "probabilities",
                        format!(
                            "{} probabilities for {} values; give one per value",
                            p.len(),
                            values.len()
                        ),
                    ));
                }
                if let Some(bad) = p.iter().find(|x| !(x.is_finite() && **x >= 0.0)) {
                    return Err(("probabilities", format!("{bad} is not a probability")));
                }
                let sum: f64 = p.iter().sum();
                if (sum - 1.0).abs() > 1e-6 {
                    return Err(("probabilities", format!("they sum to {}, not 1", short(sum))));
                }
                Ok(())
            }
            Self::IntUniform { min, max } => {
                if min > max {
                    return Err(("min", format!("min {min} is greater than max {max}")));
                }
                Ok(())
            }
            Self::Uniform { min, max } => ordered(*min, *max),
            Self::QUniform { min, max, q } => {
                ordered(*min, *max)?;
                positive("q", *q, "the quantisation step")
            }
            Self::LogUniform { min, max } => {
                ordered(*min, *max)?;
                if !max.exp().is_finite() {
                    return Err((
                        "max",
                        format!(
                            "exp({}) overflows: log_uniform bounds are natural-log exponents; for bounds that are values use log_uniform_values",
                            short(*max)
                        ),
                    ));
                }
                Ok(())
            }
            Self::LogUniformValues { min, max } | Self::QLogUniformValues { min, max, .. } => {
                let why = "the bounds of a *_values distribution are values; for exponents use log_uniform";
                positive("min", *min, why)?;
                positive("max", *max, why)?;
                ordered(*min, *max)?;
                match self {
                    Self::QLogUniformValues { q, .. } => positive("q", *q, "the quantisation step"),
                    _ => Ok(()),
                }
            }
            Self::Normal { mu, sigma } | Self::LogNormal { mu, sigma } => {
                finite("mu", *mu)?;
                positive("sigma", *sigma, "the standard deviation")
            }
        }
    }

    /// How many values a grid enumerates; `None` for the distributions a grid cannot enumerate
    /// (only constant, categorical, int_uniform and q_uniform can).
    pub fn grid_len(&self) -> Option<u64> {
        match self {
            Self::Constant { .. } => Some(1),
            Self::Categorical { values, .. } => Some(values.len() as u64),
            Self::IntUniform { min, max } => Some(u64::try_from(*max as i128 - *min as i128 + 1).unwrap_or(u64::MAX)),
            // A float-to-int `as` saturates, so absurd ranges give u64::MAX rather than wrapping.
            Self::QUniform { min, max, q } => Some((((max / q).round() - (min / q).round()) as u64).saturating_add(1)),
            _ => None,
        }
    }

    /// The values a grid enumerates, in order, each with the suffix of the parameter's key where it
    /// is written in the file (`.values.2`; empty when computed). `None` where [`grid_len`] is.
    ///
    /// [`grid_len`]: Self::grid_len
    pub(crate) fn grid_values(&self) -> Option<Vec<(Value, String)>> {
        match self {
            Self::Constant { value } => Some(vec![(value.clone(), ".value".to_string())]),
            Self::Categorical { values, .. } => Some(
                values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (v.clone(), format!(".values.{i}")))
                    .collect(),
            ),
            Self::IntUniform { min, max } => Some((*min..=*max).map(|i| (Value::from(i), String::new())).collect()),
            Self::QUniform { min, q, .. } => {
                let first = (min / q).round();
                let len = self.grid_len()?;
                Some(
                    (0..len)
                        .map(|k| (Value::from(round_to_step((first + k as f64) * q, *q)), String::new()))
                        .collect(),
                )
            }
            _ => None,
        }
    }

    /// Draw one value, with the key suffix where it is written (as [`grid_values`]).
    ///
    /// [`grid_values`]: Self::grid_values
    pub(crate) fn sample(&self, rng: &mut impl RngCore) -> (Value, String) {
        let computed = |x: f64| (Value::from(x), String::new());
        match self {
            Self::Constant { value } => (value.clone(), ".value".to_string()),
            Self::Categorical { values, probabilities } => {
                let i = match probabilities {
                    Some(p) => {
                        let u = unit(rng);
                        let mut acc = 0.0;
                        p.iter()
                            .position(|x| {
                                acc += x;
                                u < acc
                            })
                            .unwrap_or(values.len() - 1)
                    }
                    None => below(rng, values.len() as u64) as usize,
                };
                (values[i].clone(), format!(".values.{i}"))
            }
            Self::IntUniform { min, max } => {
                let span = (*max as i128 - *min as i128 + 1) as u64;
                let offset = if span == 0 { rng.next_u64() } else { below(rng, span) };
                (Value::from((*min as i128 + offset as i128) as i64), String::new())
            }
            Self::Uniform { min, max } => computed(uniform(rng, *min, *max)),
            Self::QUniform { min, max, q } => computed(round_to_step(quantise(uniform(rng, *min, *max), *q), *q)),
            Self::LogUniform { min, max } => computed(uniform(rng, *min, *max).exp()),
            Self::LogUniformValues { min, max } => computed(log_uniform_values(rng, *min, *max)),
            Self::QLogUniformValues { min, max, q } => {
                computed(round_to_step(quantise(log_uniform_values(rng, *min, *max), *q), *q))
            }
            Self::Normal { mu, sigma } => computed(mu + sigma * standard_normal(rng)),
            Self::LogNormal { mu, sigma } => computed((mu + sigma * standard_normal(rng)).exp()),
        }
    }
}

/// The resolved range, e.g. `log_uniform_values [1e-5, 0.01]`; `log_uniform` also shows the values
/// its exponents give, the classic mix-up.
impl fmt::Display for Distribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name();
        match self {
            Self::Constant { value } => write!(f, "{name} {}", inline_yaml(value)),
            Self::Categorical { values, probabilities } => {
                write!(f, "{name} {}", inline_yaml(&Value::Sequence(values.clone())))?;
                if let Some(p) = probabilities {
                    let p: Vec<String> = p.iter().map(|x| short(*x)).collect();
                    write!(f, " with probabilities [{}]", p.join(", "))?;
                }
                Ok(())
            }
            Self::IntUniform { min, max } => write!(f, "{name} [{min}, {max}]"),
            Self::Uniform { min, max } | Self::LogUniformValues { min, max } => {
                write!(f, "{name} [{}, {}]", short(*min), short(*max))
            }
            Self::QUniform { min, max, q } | Self::QLogUniformValues { min, max, q } => {
                write!(f, "{name} [{}, {}] step {}", short(*min), short(*max), short(*q))
            }
            Self::LogUniform { min, max } => write!(
                f,
                "{name} exponents [{}, {}] = values [{}, {}]",
                short(*min),
                short(*max),
                short(min.exp()),
                short(max.exp())
            ),
            Self::Normal { mu, sigma } | Self::LogNormal { mu, sigma } => {
                write!(f, "{name} mu {} sigma {}", short(*mu), short(*sigma))
            }
        }
    }
}

/// A uniform float in `[0, 1)` from the top 53 bits of one draw.
fn unit(rng: &mut impl RngCore) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A uniform integer in `[0, n)` (`n > 0`), by widening multiplication.
pub(crate) fn below(rng: &mut impl RngCore, n: u64) -> u64 {
    ((rng.next_u64() as u128 * n as u128) >> 64) as u64
}

fn uniform(rng: &mut impl RngCore, min: f64, max: f64) -> f64 {
    min + (max - min) * unit(rng)
}

/// Log-uniform between two positive values, clamped so rounding never leaves `[min, max]`.
fn log_uniform_values(rng: &mut impl RngCore, min: f64, max: f64) -> f64 {
    uniform(rng, min.ln(), max.ln()).exp().clamp(min, max)
}

/// Box-Muller: one standard normal from two uniforms.
fn standard_normal(rng: &mut impl RngCore) -> f64 {
    let (u1, u2) = (1.0 - unit(rng), unit(rng));
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn quantise(x: f64, q: f64) -> f64 {
    (x / q).round() * q
}

/// Round a multiple of `q` to `q`'s decimal places, so that `3 * 0.1` is `0.3`, not
/// `0.30000000000000004`.
fn round_to_step(x: f64, q: f64) -> f64 {
    let decimals = format!("{q}").split_once('.').map_or(0, |(_, d)| d.len());
    format!("{x:.decimals$}").parse().unwrap_or(x)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    use super::*;

    fn float(v: &Value) -> f64 {
        v.as_f64().unwrap()
    }

    #[test]
    fn q_uniform_enumerates_rounded_multiples() {
        let d = Distribution::QUniform {
            min: 0.0,
            max: 0.5,
            q: 0.1,
        };
        let values: Vec<f64> = d.grid_values().unwrap().iter().map(|(v, _)| float(v)).collect();
        assert_eq!(values, [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]);
        assert_eq!(d.grid_len(), Some(6));
        assert_eq!(Distribution::IntUniform { min: -2, max: 2 }.grid_len(), Some(5));
        assert_eq!(Distribution::Uniform { min: 0.0, max: 1.0 }.grid_len(), None);
    }

    #[test]
    fn validation_names_the_setting() {
        let bad = |d: Distribution| d.validate().unwrap_err();
        assert_eq!(bad(Distribution::LogUniformValues { min: 0.0, max: 1.0 }).0, "min");
        assert_eq!(bad(Distribution::Uniform { min: 2.0, max: 1.0 }).0, "min");
        assert_eq!(bad(Distribution::Normal { mu: 0.0, sigma: 0.0 }).0, "sigma");
        assert_eq!(bad(Distribution::LogUniform { min: 0.0, max: 1000.0 }).0, "max");
        let cat = |p: Vec<f64>| Distribution::Categorical {
            values: vec![Value::from(1), Value::from(2)],
            probabilities: Some(p),
        };
        assert!(bad(cat(vec![0.5, 0.4])).1.contains("sum to 0.9"));
        assert!(bad(cat(vec![1.0])).1.contains("1 probabilities for 2 values"));
        assert!(cat(vec![0.25, 0.75]).validate().is_ok());
    }

    #[test]
    fn displays_resolved_ranges() {
        let d = Distribution::LogUniformValues { min: 1e-5, max: 1e-2 };
        assert_eq!(d.to_string(), "log_uniform_values [1e-5, 0.01]");
        let d = Distribution::LogUniform { min: 0.0, max: 1.0 };
        assert_eq!(d.to_string(), "log_uniform exponents [0, 1] = values [1, 2.71828]");
        assert_eq!(short(0.1 + 0.2), "0.3");
        assert_eq!(short(123456789.0), "1.23457e8");
    }

    #[test]
    fn weighted_categorical_follows_its_probabilities() {
        let d = Distribution::Categorical {
            values: vec![Value::from("a"), Value::from("b")],
            probabilities: Some(vec![0.9, 0.1]),
        };
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let a = (0..2000).filter(|_| d.sample(&mut rng).0 == "a").count();
        assert!((1700..1900).contains(&a), "{a}");
    }

    proptest! {
        #[test]
        fn log_uniform_values_stay_in_bounds(seed: u64, lo in 1e-12f64..1e3, ratio in 1f64..1e9) {
            let d = Distribution::LogUniformValues { min: lo, max: lo * ratio };
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            for _ in 0..50 {
                let x = float(&d.sample(&mut rng).0);
                prop_assert!(x >= lo && x <= lo * ratio, "{x} outside [{lo}, {}]", lo * ratio);
            }
        }

        #[test]
        fn int_uniform_samples_are_integers_in_bounds(seed: u64, min in -1000i64..1000, span in 0i64..1000) {
            let d = Distribution::IntUniform { min, max: min + span };
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            for _ in 0..50 {
                let x = d.sample(&mut rng).0.as_i64().unwrap();
                prop_assert!(x >= min && x <= min + span);
            }
        }
    }
}
