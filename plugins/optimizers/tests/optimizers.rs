//! The optimisers against hand-computed PyTorch-semantics updates and on a convex problem.

use candle_core::{DType, Device, Tensor, Var};
use fairlab_framework::config::PluginSpec;
use fairlab_framework::{Optimizer, Registry};

fn build(kind: &str, yaml: &str, init: &[f64]) -> (Box<dyn Optimizer>, Var) {
    let mut registry = Registry::new();
    fairlab_optimizers::register(&mut registry);
    let var = Var::from_vec(init.to_vec(), init.len(), &Device::Cpu).unwrap();
    let spec = PluginSpec::new("opt", kind, serde_norway::from_str(yaml).unwrap());
    (registry.optimizer(&spec, vec![var.clone()], 0).unwrap(), var)
}

/// One step on loss = sum(x^2 / 2), whose gradient is x itself.
fn step(opt: &mut dyn Optimizer, var: &Var) -> Vec<f64> {
    let v = var.clone();
    let report = opt.step(&mut |_| Ok((v.as_tensor().sqr()?.sum_all()? * 0.5)?)).unwrap();
    assert_eq!((report.forward_passes, report.backward_passes), (1, 1));
    var.as_tensor().to_vec1::<f64>().unwrap()
}

fn close(a: &[f64], b: &[f64]) {
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-12, "{a:?} vs {b:?}");
    }
}

#[test]
fn sgd_momentum_nesterov_and_weight_decay_follow_pytorch() {
    let (mut opt, x) = build("sgd", "{lr: 0.1, momentum: 0.9}", &[1.0]);
    close(&step(opt.as_mut(), &x), &[0.9]); // buf = 1, x = 1 - 0.1
    close(&step(opt.as_mut(), &x), &[0.9 - 0.1 * (0.9 + 0.9)]); // buf = 0.9*1 + 0.9
    let (mut opt, x) = build(
        "sgd",
        "{lr: 0.1, momentum: 0.9, nesterov: true, weight_decay: 0.5}",
        &[2.0],
    );
    // d = 2 + 0.5*2 = 3; buf = 3; nesterov d = 3 + 0.9*3 = 5.7
    close(&step(opt.as_mut(), &x), &[2.0 - 0.57]);
}

#[test]
fn adam_first_step_moves_by_the_learning_rate() {
    let (mut opt, x) = build("adam", "{lr: 0.01}", &[1.0, -2.0]);
    let after = step(opt.as_mut(), &x);
    close(
        &after,
        &[1.0 - 0.01 * (1.0 / (1.0 + 1e-8)), -2.0 + 0.01 * (2.0 / (2.0 + 1e-8))],
    );
}

#[test]
fn adamw_decouples_weight_decay_and_adam_couples_it() {
    let (mut w, xw) = build("adamw", "{lr: 0.1, weight_decay: 0.5}", &[1.0]);
    // theta * (1 - lr*wd) - lr * m_hat/(sqrt(v_hat)+eps) with g = 1
    close(&step(w.as_mut(), &xw), &[0.95 - 0.1 / (1.0 + 1e-8)]);
    let (mut a, xa) = build("adam", "{lr: 0.1, weight_decay: 0.5}", &[1.0]);
    // g = 1 + 0.5 = 1.5; update = 1.5 / (1.5 + eps)
    close(&step(a.as_mut(), &xa), &[1.0 - 0.1 * 1.5 / (1.5 + 1e-8)]);
}

#[test]
fn every_optimizer_minimises_a_quadratic() {
    for (kind, cfg) in [
        ("sgd", "{lr: 0.1, momentum: 0.5}"),
        ("adam", "{lr: 0.05}"),
        ("adamw", "{lr: 0.05, weight_decay: 0.0}"),
    ] {
        let (mut opt, x) = build(kind, cfg, &[3.0, -4.0]);
        let target = Tensor::new(&[1.0f64, 2.0], &Device::Cpu).unwrap();
        for _ in 0..500 {
            let v = x.clone();
            let t = target.clone();
            opt.step(&mut |_| Ok((v.as_tensor() - &t)?.sqr()?.sum_all()?)).unwrap();
        }
        let got = x.as_tensor().to_vec1::<f64>().unwrap();
        assert!(
            (got[0] - 1.0).abs() < 1e-3 && (got[1] - 2.0).abs() < 1e-3,
            "{kind}: {got:?}"
        );
        assert_eq!(x.dtype(), DType::F64);
    }
}

#[test]
fn unknown_settings_are_config_errors() {
    let mut registry = Registry::new();
    fairlab_optimizers::register(&mut registry);
    let var = Var::from_vec(vec![0.0f64], 1, &Device::Cpu).unwrap();
    let spec = PluginSpec::new(
        "debiaser.optimizer",
        "adamw",
        serde_norway::from_str("{lr: 0.1, momentun: 0.9}").unwrap(),
    );
    let err = registry.optimizer(&spec, vec![var.clone()], 0).err().unwrap();
    let err = err.downcast::<fairlab_framework::ConfigError>().unwrap();
    assert_eq!(err.key.as_deref(), Some("debiaser.optimizer.momentun"));
    let spec = PluginSpec::new("debiaser.optimizer", "adamx", Default::default());
    let err = registry.optimizer(&spec, vec![var], 0).err().unwrap().to_string();
    assert!(
        err.contains("unknown optimizer kind `adamx`") && err.contains("did you mean `adam"),
        "{err}"
    );
}
