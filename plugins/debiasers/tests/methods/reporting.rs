//! What the shared probe training loop reports: as the target model, as an auxiliary model under
//! a prefix, and the extra per-epoch values of group DRO; and the settings errors of the
//! group-aware methods.

use candle_core::Tensor;
use fairlab_framework::debiaser::DataAccess;
use fairlab_framework::probe::{train_probe_with, Batch, BatchLoss, ProbeConfig, ProbeTraining};
use fairlab_framework::{ConfigError, RunFailure, Split};

use crate::support;

fn probe_config(epochs: usize) -> ProbeConfig {
    let yaml = format!("{{epochs: {epochs}, batch_size: 16, optimizer: {{kind: sgd, lr: 0.1}}}}");
    serde_norway::from_str(&yaml).unwrap()
}

#[test]
fn an_auxiliary_probe_logs_its_prefixed_loss_and_leaves_the_target_metrics_alone() {
    let data = support::small_data();
    let labels = data.split(Split::Train).labels.clone();
    let features = data.features(Split::Train).unwrap();
    let train = |training| {
        let (probe, recorder) = support::with_context(&data, 4, |ctx| {
            train_probe_with(ctx, &probe_config(3), &features, &labels, training)
        });
        (probe.unwrap(), recorder)
    };
    let (_, target) = train(ProbeTraining::target(None));
    let (_, aux) = train(ProbeTraining::auxiliary("sa_"));
    assert!(aux.epochs.is_empty() && aux.progress.is_empty());
    assert_eq!(target.progress, [(1, 3), (2, 3), (3, 3)]);
    let target_losses: Vec<(usize, f64)> = target.epochs.iter().map(|e| (e.0, e.1)).collect();
    assert_eq!(aux.series("sa_train_loss"), target_losses);
    assert_eq!(aux.logs.len(), 3);
}

/// A loss that is NaN on every batch.
struct NanLoss;

impl BatchLoss for NanLoss {
    fn loss(&mut self, batch: &Batch<'_>) -> anyhow::Result<Tensor> {
        Ok((batch.logits.sum_all()? * f64::NAN)?)
    }
}

#[test]
fn a_non_finite_auxiliary_loss_is_logged_then_fails_the_run() {
    let data = support::small_data();
    let labels = data.split(Split::Train).labels.clone();
    let features = data.features(Split::Train).unwrap();
    let (result, recorder) = support::with_context(&data, 0, |ctx| {
        let training = ProbeTraining::auxiliary("sa_").with_loss(NanLoss);
        train_probe_with(ctx, &probe_config(3), &features, &labels, training)
    });
    let error = result.err().expect("a NaN loss must fail");
    let logged = recorder.series("sa_train_loss");
    assert!(logged.len() == 1 && logged[0].1.is_nan(), "{logged:?}");
    assert!(error.is::<RunFailure>(), "{error:#}");
    assert!(error.to_string().contains("`sa_` probe is NaN at epoch 1"), "{error:#}");
}

#[test]
fn group_dro_logs_group_weights_and_losses_every_epoch() {
    let settings = "{epochs: 4, batch_size: 16, step_size: 0.5, optimizer: {kind: sgd, lr: 0.1}}";
    let (fitted, rec) = support::fit("group-dro", settings, &support::small_data(), 0);
    fitted.unwrap();
    assert_eq!(rec.epochs.len(), 4);
    let cells = ["a_y0", "a_y1", "b_y0", "b_y1"];
    for epoch in 1..=4 {
        let at = |stem: &str| -> Vec<f64> {
            let names: Vec<String> = cells.iter().map(|c| format!("{stem}_{c}")).collect();
            let values: Vec<f64> = rec
                .logs
                .iter()
                .filter(|l| l.0 == epoch && names.contains(&l.1))
                .map(|l| l.2)
                .collect();
            assert_eq!(values.len(), 4, "{stem} at epoch {epoch}: {:?}", rec.logs);
            values
        };
        assert!((at("dro_weight").iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!(at("dro_loss").iter().all(|l| *l > 0.0 && l.is_finite()));
    }
}

fn config_error(method: &str, settings: &str) -> ConfigError {
    let error = support::fit(method, settings, &support::small_data(), 0)
        .0
        .err()
        .expect("the settings must be rejected");
    error.downcast::<ConfigError>().expect("a ConfigError")
}

#[test]
fn an_unknown_attribute_is_a_config_error_listing_the_attributes() {
    for method in ["resampling", "group-dro"] {
        let error = config_error(method, "{attribute: race}");
        assert_eq!(error.key.as_deref(), Some("debiaser.attribute"));
        assert!(
            error.message.contains("`race`") && error.message.contains("`grp`"),
            "{error}"
        );
    }
}

#[test]
fn bad_settings_are_config_errors() {
    let typo = config_error("resampling", "{epoch: 3}");
    assert!(typo.message.contains("unknown field `epoch`"), "{typo}");
    let by = config_error("resampling", "{by: label}");
    assert_eq!(by.key.as_deref(), Some("debiaser.by"), "{by}");
    let step = config_error("group-dro", "{step_size: -1}");
    assert_eq!(step.key.as_deref(), Some("debiaser.step_size"));
    let typo = config_error("group-dro", "{groups: attribute, stepsize: 1}");
    assert!(typo.message.contains("unknown field `stepsize`"), "{typo}");
}
