//! Identities. A trial's id is the first 16 hex digits of the SHA-256 of its resolved config in
//! canonical JSON: mapping keys sorted at every level, no whitespace, integers as integers and
//! floats in their shortest round-trip form. YAML key order, comments, and defaults written out or
//! left implicit therefore do not change an id; any resolved value does. A sweep's id is the same
//! digest of its sorted trial ids: two plans with the same set of trials are the same sweep.

use serde_json::{Map, Number};
use serde_norway::Value;
use sha2::{Digest, Sha256};

use crate::config::{inline_yaml, ExperimentConfig};

/// Hex digits kept of a SHA-256.
const ID_HEX: usize = 16;

/// A value as canonical JSON (keys sorted). Fails on what JSON cannot hold: NaN, infinities and
/// YAML tags.
pub(crate) fn to_json(value: &Value) -> Result<serde_json::Value, String> {
    Ok(match value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Number(n) => serde_json::Value::Number(if let Some(u) = n.as_u64() {
            u.into()
        } else if let Some(i) = n.as_i64() {
            i.into()
        } else {
            let x = n.as_f64().unwrap_or(f64::NAN);
            Number::from_f64(x).ok_or_else(|| format!("{x} cannot be stored in a sweep plan (JSON)"))?
        }),
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Sequence(items) => serde_json::Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Value::Mapping(map) => {
            let mut entries = map
                .iter()
                .map(|(k, v)| {
                    let k = k.as_str().map_or_else(|| inline_yaml(k), str::to_string);
                    Ok((k, to_json(v)?))
                })
                .collect::<Result<Vec<_>, String>>()?;
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(entries.into_iter().collect::<Map<_, _>>())
        }
        Value::Tagged(t) => return Err(format!("the YAML tag {} cannot be stored in a sweep plan", t.tag)),
    })
}

/// A resolved config as canonical JSON.
pub(crate) fn config_json(config: &ExperimentConfig) -> Result<serde_json::Value, String> {
    to_json(&serde_norway::to_value(config).expect("an experiment config always serialises"))
}

/// The id of a trial, from its config's canonical JSON.
pub(crate) fn trial_id(config_json: &serde_json::Value) -> String {
    short_digest(config_json.to_string().as_bytes())
}

/// The id of a sweep: the digest of its trial ids, sorted, one per line.
pub(crate) fn sweep_id<'a>(trial_ids: impl Iterator<Item = &'a str>) -> String {
    let mut ids: Vec<&str> = trial_ids.collect();
    ids.sort_unstable();
    short_digest(ids.join("\n").as_bytes())
}

fn short_digest(bytes: &[u8]) -> String {
    let mut hex = hex::encode(Sha256::digest(bytes));
    hex.truncate(ID_HEX);
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_does_not_matter_and_values_do() {
        let a: Value = serde_norway::from_str("b: {y: 1, x: [1.5, two]}\na: null\n").unwrap();
        let b: Value = serde_norway::from_str("a: null\nb: {x: [1.5, two], y: 1}\n").unwrap();
        let c: Value = serde_norway::from_str("a: null\nb: {x: [1.5, two], y: 1.0}\n").unwrap();
        let (a, b, c) = (to_json(&a).unwrap(), to_json(&b).unwrap(), to_json(&c).unwrap());
        assert_eq!(a.to_string(), r#"{"a":null,"b":{"x":[1.5,"two"],"y":1}}"#);
        assert_eq!(trial_id(&a), trial_id(&b));
        assert_ne!(trial_id(&a), trial_id(&c));
        assert_eq!(trial_id(&a).len(), 16);
        assert!(to_json(&Value::from(f64::NAN)).is_err());
    }

    #[test]
    fn a_sweep_id_is_the_set_of_its_trials() {
        assert_eq!(sweep_id(["a", "b"].into_iter()), sweep_id(["b", "a"].into_iter()));
        assert_ne!(sweep_id(["a", "b"].into_iter()), sweep_id(["a"].into_iter()));
    }
}
