use super::*;

const EXP: &str = "\
name: quick
seed: 3
dataset:
  kind: csv-images
  root: data/nih1000
backbone: {kind: efficientnet-lite0, device: cpu}
debiaser:
  kind: erm
  epochs: 5
  optimizer:
    kind: adamw
    lr: 0.001
";

fn load(text: &str, overrides: &[&str]) -> Result<Experiment, ConfigError> {
    let overrides = overrides
        .iter()
        .map(|o| Override::parse(o))
        .collect::<Result<Vec<_>, _>>()?;
    Experiment::from_str("exp.yaml", text, overrides)
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Erm {
    epochs: usize,
    optimizer: PluginSpec,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Adam {
    lr: f64,
}

#[test]
fn loads_plugin_sections_with_their_paths() {
    let e = load(EXP, &[]).unwrap();
    assert_eq!(e.config.seed, 3);
    assert_eq!(e.config.backbone.kind, "efficientnet-lite0");
    assert_eq!(e.config.debiaser.path, "debiaser");
    let erm: Erm = e.config.debiaser.parse().unwrap();
    assert_eq!(erm.epochs, 5);
    assert_eq!(erm.optimizer.path, "debiaser.optimizer");
    assert_eq!(erm.optimizer.kind, "adamw");
}

#[test]
fn unknown_top_level_key_has_line_and_column() {
    let err = load(&EXP.replace("seed: 3", "sed: 3"), &[]).unwrap_err();
    let loc = err.location.clone().unwrap();
    assert_eq!((loc.line, loc.column), (Some(2), Some(1)), "{err}");
    assert_eq!(err.key.as_deref(), Some("sed"));
    assert!(
        err.to_string().starts_with("exp.yaml:2:1: `sed`: unknown field `sed`"),
        "{err}"
    );
}

#[test]
fn wrong_type_points_at_the_key() {
    let err = load(&EXP.replace("seed: 3", "seed: three"), &[]).unwrap_err();
    assert_eq!(err.location.as_ref().unwrap().line, Some(2), "{err}");
    assert!(err.to_string().contains("invalid type"), "{err}");
}

#[test]
fn plugin_setting_errors_are_located_in_the_file() {
    let e = load(&EXP.replace("    lr: 0.001", "    lr: 0.001\n    betas: [0.9]"), &[]).unwrap();
    let erm: Erm = e.config.debiaser.parse().unwrap();
    let err = e.locate(erm.optimizer.parse::<Adam>().unwrap_err());
    assert_eq!(err.key.as_deref(), Some("debiaser.optimizer.betas"));
    let loc = err.location.clone().unwrap();
    assert_eq!((loc.line, loc.column), (Some(13), Some(5)), "{err}");
}

#[test]
fn overrides_change_values_and_are_named_in_errors() {
    let e = load(EXP, &["debiaser.epochs=2", "seed=9"]).unwrap();
    assert_eq!(e.config.seed, 9);
    assert_eq!(e.config.debiaser.parse::<Erm>().unwrap().epochs, 2);
    let err = load(EXP, &["seed=x"]).unwrap_err();
    assert_eq!(err.location.unwrap().source, "--set seed=x");
    let err = load(EXP, &["nope=1"]).unwrap_err();
    assert!(err.to_string().contains("--set nope=1"), "{err}");
}

#[test]
fn missing_kind_and_bad_yaml_are_clear() {
    let err = load(&EXP.replace("kind: csv-images", "root2: x"), &[]).unwrap_err();
    assert!(err.to_string().contains("missing `kind`"), "{err}");
    assert_eq!(err.location.unwrap().line, Some(3));
    let err = load("name: [unclosed\n", &[]).unwrap_err();
    assert!(err.to_string().contains("invalid YAML"), "{err}");
    assert!(err.location.unwrap().line.is_some());
}

#[test]
fn redacted_yaml_round_trips_and_flattens() {
    let e = load(EXP, &["debiaser.epochs=7"]).unwrap();
    let again = load(&e.redacted_yaml(), &[]).unwrap();
    assert_eq!(again.config, e.config);
    let params = e.flat_params();
    assert_eq!(params["debiaser.epochs"], "7");
    assert_eq!(params["debiaser.optimizer.kind"], "adamw");
    assert_eq!(params["features.batch_size"], "64");
    assert!(!params.keys().any(|k| k.contains("__fairlab")));
}

#[test]
fn redacted_yaml_hides_secrets_and_flat_params_keep_them() {
    let e = load(EXP, &["tracking.tags.hf_token=hf_abc", "tracking.tags.owner=me"]).unwrap();
    let yaml = e.redacted_yaml();
    assert!(!yaml.contains("hf_abc"), "{yaml}");
    assert!(yaml.contains("hf_token: '***'") && yaml.contains("owner: me"), "{yaml}");
    assert_eq!(e.flat_params()["tracking.tags.hf_token"], "hf_abc");
}

#[test]
fn a_secret_set_flag_is_shown_without_its_value() {
    let err = load(EXP, &["tracking.tags.hf_token=[unclosed"])
        .unwrap_err()
        .to_string();
    assert!(!err.contains("unclosed"), "{err}");
    assert!(err.contains("--set tracking.tags.hf_token=***"), "{err}");
}
