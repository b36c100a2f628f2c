//! `sweep.execution`: how the trials are run. None of it changes what a trial computes, so none of it
//! enters trial or sweep ids, and the command line may change it on every run (`--jobs`,
//! `--executor`, or `--set sweep.execution.KEY=VALUE`).
//!
//! ```yaml
//! sweep:
//!   execution:
//!     executor: slurm   # local (default) | slurm
//!     jobs: 4           # trials at once: local child processes, or the array's %4 throttle
//!     timeout: 30m      # per attempt: 90s, 30m, 2h, 1d, 1h30m or seconds; default none
//!     retries: 1        # more attempts for a trial that failed (not for one that was killed)
//!     slurm: {partition: gpu, time: "00:40:00", cpus_per_task: 4, mem: 16G, gpus: 1}
//! ```

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ConfigError;

/// Which executor runs the trials.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKind {
    /// Child processes on this machine.
    #[default]
    Local,
    /// A Slurm job array.
    Slurm,
}

impl fmt::Display for ExecutorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Local => "local",
            Self::Slurm => "slurm",
        })
    }
}

/// `sweep.execution`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Execution {
    /// `local` or `slurm`.
    pub executor: ExecutorKind,
    /// Trials at once (at least 1).
    pub jobs: usize,
    /// Longest one attempt may run before it is stopped and counted as failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Further attempts for a failed trial.
    pub retries: u32,
    /// `sbatch` settings, used by the `slurm` executor.
    pub slurm: SlurmSettings,
}

impl Default for Execution {
    fn default() -> Self {
        Self {
            executor: ExecutorKind::Local,
            jobs: 1,
            timeout: None,
            retries: 0,
            slurm: SlurmSettings::default(),
        }
    }
}

/// `sweep.execution.slurm`: what each array task asks Slurm for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlurmSettings {
    /// `--partition`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// `--time`, in Slurm's formats (`MM`, `HH:MM:SS`, `D-HH:MM`, ...). Default: the timeout plus
    /// two minutes, rounded up to minutes, or the partition's default when there is no timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// `--cpus-per-task`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus_per_task: Option<u32>,
    /// `--mem`, e.g. `8G` (a number with an optional K, M, G or T suffix).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem: Option<String>,
    /// GPUs per task: `--gres=gpu:N`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpus: Option<u32>,
    /// `--account`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// `--qos`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qos: Option<String>,
    /// More `sbatch` options, each a `--flag` or `--flag=value`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_args: Vec<String>,
    /// How often the queue is polled, in seconds (default 2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll_seconds: Option<f64>,
}

impl Execution {
    /// Check the values serde cannot: errors name the `sweep.execution.` key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let key = |k: &str| format!("sweep.execution.{k}");
        if self.jobs == 0 {
            return Err(ConfigError::at_key(key("jobs"), "must be at least 1"));
        }
        let s = &self.slurm;
        if let Some(time) = &s.time {
            if !is_slurm_time(time) {
                return Err(ConfigError::at_key(
                    key("slurm.time"),
                    format!("`{time}` is not a Slurm time limit: use MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS"),
                ));
            }
        }
        if let Some(mem) = &s.mem {
            let digits = mem.trim_end_matches(['K', 'M', 'G', 'T', 'k', 'm', 'g', 't']);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || mem.len() - digits.len() > 1 {
                return Err(ConfigError::at_key(
                    key("slurm.mem"),
                    format!("`{mem}` is not a memory size: a whole number with an optional K, M, G or T suffix"),
                ));
            }
        }
        if s.cpus_per_task == Some(0) {
            return Err(ConfigError::at_key(key("slurm.cpus_per_task"), "must be at least 1"));
        }
        for (name, value) in [("partition", &s.partition), ("account", &s.account), ("qos", &s.qos)] {
            if value
                .as_deref()
                .is_some_and(|v| v.trim().is_empty() || v.contains(char::is_whitespace))
            {
                return Err(ConfigError::at_key(
                    key(&format!("slurm.{name}")),
                    "must be a single non-empty word",
                ));
            }
        }
        if let Some((i, arg)) = s.extra_args.iter().enumerate().find(|(_, a)| !a.starts_with("--")) {
            return Err(ConfigError::at_key(
                key(&format!("slurm.extra_args.{i}")),
                format!("`{arg}` is not an sbatch option: write `--flag` or `--flag=value`"),
            ));
        }
        if let Some(p) = s.poll_seconds {
            if !(p.is_finite() && p > 0.0) {
                return Err(ConfigError::at_key(
                    key("slurm.poll_seconds"),
                    "must be a positive number",
                ));
            }
        }
        Ok(())
    }

    /// The `sbatch --time` of each task: the configured one, else the timeout plus two minutes of
    /// margin for start-up and cleanup, in whole minutes.
    pub fn slurm_time(&self) -> Option<String> {
        self.slurm.time.clone().or_else(|| {
            self.timeout
                .map(|t| (t.as_secs() + 120).div_ceil(60))
                .map(|minutes| minutes.to_string())
        })
    }
}

/// Whether `text` is one of Slurm's time formats: `MM`, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM`,
/// `D-HH:MM:SS` (or `UNLIMITED`).
fn is_slurm_time(text: &str) -> bool {
    if text.eq_ignore_ascii_case("unlimited") || text.eq_ignore_ascii_case("infinite") {
        return true;
    }
    let number = |s: &str| !s.is_empty() && s.len() <= 6 && s.bytes().all(|b| b.is_ascii_digit());
    let (days, clock) = match text.split_once('-') {
        Some((d, rest)) => (Some(d), rest),
        None => (None, text),
    };
    let parts: Vec<&str> = clock.split(':').collect();
    days.is_none_or(number) && (1..=3).contains(&parts.len()) && parts.iter().all(|p| number(p))
}

/// A length of time written `90s`, `30m`, `2h`, `1d`, `1h30m` (units d, h, m, s) or as a number of
/// seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duration(std::time::Duration);

impl Duration {
    /// Whole seconds.
    pub fn as_secs(self) -> u64 {
        self.0.as_secs()
    }

    /// As a standard duration.
    pub fn to_std(self) -> std::time::Duration {
        self.0
    }

    /// Parse the written form; errors say what is expected.
    pub fn parse(text: &str) -> Result<Duration, String> {
        let expected = || format!("`{text}` is not a duration: write e.g. 90s, 30m, 2h, 1d, 1h30m, or seconds");
        let text = text.trim();
        if let Ok(seconds) = text.parse::<u64>() {
            return Ok(Duration(std::time::Duration::from_secs(seconds)));
        }
        let mut total = 0u64;
        let mut digits = String::new();
        for c in text.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let unit = match c {
                'd' => 86_400,
                'h' => 3_600,
                'm' => 60,
                's' => 1,
                _ => return Err(expected()),
            };
            let n: u64 = digits.parse().map_err(|_| expected())?;
            total = total.saturating_add(n.saturating_mul(unit));
            digits.clear();
        }
        if !digits.is_empty() || text.is_empty() {
            return Err(expected());
        }
        Ok(Duration(std::time::Duration::from_secs(total)))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.as_secs();
        if rest == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
            if rest >= size {
                write!(f, "{}{unit}", rest / size)?;
                rest %= size;
            }
        }
        Ok(())
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Seconds(u64),
            Text(String),
        }
        match Written::deserialize(deserializer)? {
            Written::Seconds(s) => Ok(Duration(std::time::Duration::from_secs(s))),
            Written::Text(t) => Duration::parse(&t).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print_in_their_short_form() {
        for (text, secs, shown) in [
            ("90", 90, "1m30s"),
            ("90s", 90, "1m30s"),
            ("30m", 1800, "30m"),
            ("1h30m", 5400, "1h30m"),
            ("2d", 172_800, "2d"),
        ] {
            let d = Duration::parse(text).unwrap();
            assert_eq!(d.as_secs(), secs, "{text}");
            assert_eq!(d.to_string(), shown);
            assert_eq!(Duration::parse(shown).unwrap(), d);
        }
        for bad in ["", "m", "5x", "1.5h", "10 m", "h5"] {
            assert!(Duration::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn slurm_time_formats_are_checked() {
        for good in ["30", "30:00", "01:30:00", "1-0", "1-12:00", "2-00:00:00", "UNLIMITED"] {
            assert!(is_slurm_time(good), "{good}");
        }
        for bad in ["", "1h", "1:2:3:4", "-5", "1-", "a:00"] {
            assert!(!is_slurm_time(bad), "{bad}");
        }
    }

    #[test]
    fn the_slurm_time_limit_defaults_to_the_timeout_plus_a_margin() {
        let mut e = Execution {
            timeout: Some(Duration::parse("30m").unwrap()),
            ..Execution::default()
        };
        assert_eq!(e.slurm_time().as_deref(), Some("32"));
        e.slurm.time = Some("01:00:00".to_string());
        assert_eq!(e.slurm_time().as_deref(), Some("01:00:00"));
        e.timeout = None;
        e.slurm.time = None;
        assert_eq!(e.slurm_time(), None);
    }

    #[test]
    fn validation_names_the_key() {
        let mut e = Execution::default();
        e.slurm.mem = Some("8 GB".to_string());
        assert_eq!(
            e.validate().unwrap_err().key.as_deref(),
            Some("sweep.execution.slurm.mem")
        );
        e.slurm.mem = Some("8G".to_string());
        e.slurm.extra_args = vec!["-N1".to_string()];
        assert_eq!(
            e.validate().unwrap_err().key.as_deref(),
            Some("sweep.execution.slurm.extra_args.0")
        );
        e.slurm.extra_args.clear();
        e.jobs = 0;
        assert_eq!(e.validate().unwrap_err().key.as_deref(), Some("sweep.execution.jobs"));
    }
}
