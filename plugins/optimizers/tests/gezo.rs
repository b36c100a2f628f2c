//! GeZO: gradient-free descent, the released code's and the paper's selection/acceptance/momentum
//! rules on scripted losses, determinism, settings errors and registration.

use candle_core::{DType, Device, Tensor, Var};
use fairlab_framework::config::PluginSpec;
use fairlab_framework::registry::PluginKind;
use fairlab_framework::{ConfigError, Optimizer, Registry, StepReport};

fn registry() -> Registry {
    let mut registry = Registry::new();
    fairlab_optimizers::register(&mut registry);
    registry
}

fn spec(yaml: &str) -> PluginSpec {
    PluginSpec::new("debiaser.optimizer", "gezo", serde_norway::from_str(yaml).unwrap())
}

fn build(yaml: &str, init: &[f64], seed: u64) -> (Box<dyn Optimizer>, Var) {
    let var = Var::from_vec(init.to_vec(), init.len(), &Device::Cpu).unwrap();
    (registry().optimizer(&spec(yaml), vec![var.clone()], seed).unwrap(), var)
}

fn values(var: &Var) -> Vec<f64> {
    var.as_tensor()
        .to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// `0.5 ‖x‖²` over all the vars.
fn half_square(vars: &[Var]) -> candle_core::Result<Tensor> {
    let mut total = Tensor::new(0.0f64, &Device::Cpu)?;
    for var in vars {
        total = (total + var.as_tensor().to_dtype(DType::F64)?.sqr()?.sum_all()?)?;
    }
    total * 0.5
}

fn step_on_half_square(opt: &mut dyn Optimizer) -> StepReport {
    let vars = opt.vars().to_vec();
    opt.step(&mut |_| Ok(half_square(&vars)?)).unwrap()
}

/// One step whose objective ignores the vars and returns `script`'s losses in order, recording the
/// slot and the var's values at every call. Fails when the step does not use the whole script.
fn scripted_step(opt: &mut dyn Optimizer, var: &Var, script: &[f64]) -> (StepReport, Vec<(usize, Vec<f64>)>) {
    let mut calls = Vec::new();
    let mut losses = script.iter();
    let report = opt
        .step(&mut |slot| {
            calls.push((slot, values(var)));
            let loss = losses.next().ok_or_else(|| anyhow::anyhow!("script exhausted"))?;
            Ok(Tensor::new(*loss, &Device::Cpu)?)
        })
        .unwrap();
    assert_eq!(calls.len(), script.len(), "the step made {} calls", calls.len());
    (report, calls)
}

fn close(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= tol, "{a:?} vs {b:?}");
    }
}

fn sub(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x - y).collect()
}

#[test]
fn both_variants_reduce_a_quadratic_without_gradients() {
    // as-coded: 10 candidates × 2 slots × 2 signs; paper: the same plus 2 baseline evaluations.
    for (yaml, passes) in [("{}", 40), ("{variant: paper}", 42)] {
        let (mut opt, x) = build(yaml, &[1.0; 50], 3);
        let start = half_square(std::slice::from_ref(&x))
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        let mut previous = start;
        for _ in 0..300 {
            let report = step_on_half_square(opt.as_mut());
            assert_eq!((report.forward_passes, report.backward_passes), (passes, 0), "{yaml}");
            assert!(report.loss.is_finite());
            if yaml.contains("paper") {
                // Only an evaluated improvement is accepted, and the step moves exactly there.
                let now = half_square(std::slice::from_ref(&x))
                    .unwrap()
                    .to_scalar::<f64>()
                    .unwrap();
                assert!(now <= previous && now == report.loss, "{now} after {previous}");
                previous = now;
            }
        }
        let end = half_square(std::slice::from_ref(&x))
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert_eq!(start, 25.0);
        assert!(end < 0.05 * start, "{yaml}: 0.5‖x‖² went from {start} to {end}");
    }
}

#[test]
fn every_var_is_perturbed_jointly_and_keeps_its_dtype() {
    let a = Var::from_vec(vec![1.0f32; 3], 3, &Device::Cpu).unwrap();
    let b = Var::from_vec(vec![-1.0f32; 4], (2, 2), &Device::Cpu).unwrap();
    let mut opt = registry()
        .optimizer(&spec("{variant: paper}"), vec![a.clone(), b.clone()], 0)
        .unwrap();
    for _ in 0..100 {
        step_on_half_square(opt.as_mut());
    }
    assert_eq!(
        (a.dtype(), b.dtype(), b.dims()),
        (DType::F32, DType::F32, &[2usize, 2][..])
    );
    let end = half_square(&[a, b]).unwrap().to_scalar::<f64>().unwrap();
    assert!(end < 0.5, "0.5‖x‖² went from 3.5 to {end}");
}

#[test]
fn as_coded_keeps_the_best_plus_sign_loss_always_moves_and_forgets_its_velocity() {
    let (mut opt, x) = build("{candidates: 3}", &[1.0, -2.0, 0.5], 11);
    // Calls: candidate k, sign (−, +), slot (0, 1). The −δ losses are the lowest but only +δ
    // competes; (k1, +, slot 0) = 3 is the best single-batch loss although k1's mean (4.5) is not.
    let script = [0.1, 0.1, 4.0, 4.0, 0.1, 0.1, 3.0, 6.0, 0.1, 0.1, 7.0, 8.0];
    let origin = values(&x);
    let (report, calls) = scripted_step(opt.as_mut(), &x, &script);
    assert_eq!(
        report,
        StepReport {
            loss: 3.0,
            forward_passes: 12,
            backward_passes: 0
        }
    );
    let slots: Vec<usize> = calls.iter().map(|(slot, _)| *slot).collect();
    assert_eq!(slots, [0, 1].repeat(6));
    for k in 0..3 {
        let (minus, plus) = (&calls[4 * k].1, &calls[4 * k + 2].1);
        assert_eq!(minus, &calls[4 * k + 1].1, "both slots see the same point");
        assert_eq!(plus, &calls[4 * k + 3].1);
        close(&sub(plus, &origin), &sub(&origin, minus), 1e-12);
        assert_ne!(plus, &origin);
    }
    // No baseline was evaluated: the step moves to the winner whatever the current loss is.
    let eps1 = values(&x);
    assert_eq!(eps1, calls[6].1);
    // The velocity is re-created every step: the next step moves by exactly its own winner δ.
    let script = [0.1, 0.1, 2.0, 1.0, 0.1, 0.1, 3.0, 6.0, 0.1, 0.1, 7.0, 8.0];
    let (report, calls) = scripted_step(opt.as_mut(), &x, &script);
    assert_eq!(report.loss, 1.0);
    assert_eq!(values(&x), calls[3].1);
    assert_eq!(opt.learning_rate(), 0.03);
}

/// The midpoint of a candidate's −δ and +δ points: where its search was centred.
fn centre(minus: &[f64], plus: &[f64]) -> Vec<f64> {
    minus.iter().zip(plus).map(|(m, p)| (m + p) / 2.0).collect()
}

/// `a + factor · b`.
fn axpy(a: &[f64], factor: f64, b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x + factor * y).collect()
}

#[test]
fn paper_keeps_either_sign_looks_ahead_with_its_velocity_and_rejects_without_improvement() {
    let (mut opt, x) = build("{variant: paper, candidates: 2}", &[1.0, -2.0, 0.5], 5);
    let eps0 = values(&x);
    // Calls: the current point on slots 0 and 1, then candidate k, sign (−, +), slots (0, 1).
    // k0's −δ has the lowest mean (1.5); k0's +δ has the lowest single loss (0.5) but mean 4.75.
    let (report, calls) = scripted_step(opt.as_mut(), &x, &[5.0, 5.0, 1.0, 2.0, 0.5, 9.0, 3.0, 3.0, 4.0, 4.0]);
    assert_eq!(
        report,
        StepReport {
            loss: 1.5,
            forward_passes: 10,
            backward_passes: 0
        }
    );
    assert_eq!((&calls[0].1, &calls[1].1), (&eps0, &eps0));
    close(&centre(&calls[2].1, &calls[4].1), &eps0, 1e-12);
    let eps1 = values(&x);
    assert_eq!(eps1, calls[2].1);
    // The velocity v1 = eps1 − eps0 persists: the candidates are centred on eps1 + μ v1 and the
    // step moves exactly to the winner, k1's +δ.
    let v1 = sub(&eps1, &eps0);
    let (report, calls) = scripted_step(opt.as_mut(), &x, &[1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 0.25, 0.75]);
    assert_eq!(report.loss, 0.5);
    assert_eq!(calls[0].1, eps1);
    close(&centre(&calls[2].1, &calls[4].1), &axpy(&eps1, 0.9, &v1), 1e-12);
    close(&centre(&calls[6].1, &calls[8].1), &axpy(&eps1, 0.9, &v1), 1e-12);
    let eps2 = values(&x);
    assert_eq!(eps2, calls[8].1);
    // Nothing beats the current mean loss 1 (a tie is no improvement): stay, decay the step size
    // and forget the velocity.
    let (report, _) = scripted_step(opt.as_mut(), &x, &[1.0, 1.0, 2.0, 2.0, 0.5, 9.0, 3.0, 3.0, 1.0, 1.0]);
    assert_eq!(
        report,
        StepReport {
            loss: 1.0,
            forward_passes: 10,
            backward_passes: 0
        }
    );
    assert_eq!(values(&x), eps2);
    assert!((opt.learning_rate() - 0.03 * 0.95).abs() < 1e-15);
    let (report, calls) = scripted_step(opt.as_mut(), &x, &[1.0, 1.0, 0.5, 0.5, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0]);
    assert_eq!(report.loss, 0.5);
    close(&centre(&calls[2].1, &calls[4].1), &eps2, 1e-12);
    assert_eq!(values(&x), calls[2].1);
}

#[test]
fn paper_read_literally_moves_past_its_candidate_and_keeps_the_velocity_on_rejection() {
    let yaml = "{variant: paper, candidates: 2, momentum_lookahead: false, reset_velocity_on_reject: false}";
    let (mut opt, x) = build(yaml, &[1.0, -2.0, 0.5], 5);
    let eps0 = values(&x);
    scripted_step(opt.as_mut(), &x, &[5.0, 5.0, 1.0, 2.0, 0.5, 9.0, 3.0, 3.0, 4.0, 4.0]);
    let eps1 = values(&x);
    let (report, _) = scripted_step(opt.as_mut(), &x, &[1.0, 1.0, 2.0, 2.0, 0.5, 9.0, 3.0, 3.0, 1.0, 1.0]);
    assert_eq!((report.loss, values(&x)), (1.0, eps1.clone()));
    // The candidates are centred on the current point; the move adds the velocity kept from the
    // first step: μ (eps1 − eps0) + δ.
    let (report, calls) = scripted_step(opt.as_mut(), &x, &[1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 0.25, 0.75]);
    assert_eq!(report.loss, 0.5);
    close(&centre(&calls[6].1, &calls[8].1), &eps1, 1e-12);
    let delta = sub(&calls[8].1, &eps1);
    let moved = sub(&values(&x), &eps1);
    close(&moved, &axpy(&delta, 0.9, &sub(&eps1, &eps0)), 1e-12);
    assert!(moved.iter().zip(&delta).any(|(m, d)| (m - d).abs() > 1e-3));
}

#[test]
fn explicit_switches_override_the_variant() {
    // as-coded without the wasted −δ query: 3 candidates × 2 slots, only +δ points.
    let (mut opt, x) = build("{candidates: 3, query_discarded_sign: false}", &[0.0, 0.0], 1);
    let origin = values(&x);
    let (report, calls) = scripted_step(opt.as_mut(), &x, &[4.0, 4.0, 3.0, 3.0, 5.0, 5.0]);
    assert_eq!((report.loss, report.forward_passes), (3.0, 6));
    assert_eq!(values(&x), calls[2].1);
    assert!(calls[0].1 == calls[1].1 && calls[0].1 != calls[2].1 && calls[0].1 != origin);
    // The paper with per-batch scoring: (k0, +, slot 0) = 0.5 wins over k0's −δ mean of 1.5.
    let (mut opt, x) = build("{variant: paper, candidates: 2, candidate_loss: per-batch}", &[0.0], 2);
    let (report, calls) = scripted_step(opt.as_mut(), &x, &[5.0, 5.0, 1.0, 2.0, 0.5, 9.0, 3.0, 3.0, 4.0, 4.0]);
    assert_eq!((report.loss, report.forward_passes), (0.5, 10));
    assert_eq!(values(&x), calls[4].1);
    // A per-batch winner is compared with the current point on its own slot: 5 < 9 on slot 0 is
    // accepted although the current mean (4.75) is lower.
    let (mut opt, x) = build("{variant: paper, candidates: 1, candidate_loss: per-batch}", &[0.0], 2);
    let (report, calls) = scripted_step(opt.as_mut(), &x, &[9.0, 0.5, 5.0, 6.0, 7.0, 8.0]);
    assert_eq!(report.loss, 5.0);
    assert_eq!(values(&x), calls[2].1);
    // The paper without the acceptance test evaluates no baseline and moves to a worse point.
    let (mut opt, x) = build(
        "{variant: paper, candidates: 1, batches_per_candidate: 1, accept_only_if_improved: false}",
        &[0.0],
        2,
    );
    assert_eq!(opt.batches_per_step(), 1);
    let (report, calls) = scripted_step(opt.as_mut(), &x, &[9.0, 10.0]);
    assert_eq!((report.loss, report.forward_passes), (9.0, 2));
    assert_eq!(values(&x), calls[0].1);
}

#[test]
fn a_seed_determines_the_run() {
    for variant in ["as-coded", "paper"] {
        let run = |seed| {
            let (mut opt, x) = build(&format!("{{variant: {variant}}}"), &[1.0; 8], seed);
            (0..5).for_each(|_| {
                step_on_half_square(opt.as_mut());
            });
            values(&x)
        };
        assert_eq!(run(7), run(7), "{variant}");
        assert_ne!(run(7), run(8), "{variant}");
    }
}

#[test]
fn a_step_without_a_finite_candidate_loss_fails() {
    let (mut opt, _) = build("{candidates: 2}", &[0.0], 0);
    let err = opt.step(&mut |_| Ok(Tensor::new(f64::NAN, &Device::Cpu)?)).unwrap_err();
    assert!(
        err.to_string().contains("no candidate direction had a finite loss"),
        "{err}"
    );
}

#[test]
fn bad_settings_are_keyed_config_errors() {
    let var = Var::from_vec(vec![0.0f64], 1, &Device::Cpu).unwrap();
    for (yaml, key, needle) in [
        ("{candidate: 3}", "candidate", "unknown field"),
        ("{variant: papr}", "variant", "as-coded"),
        ("{candidate_loss: median}", "candidate_loss", "per-batch"),
        ("{candidates: 0}", "candidates", "at least 1"),
        ("{step_size: 0}", "step_size", "positive"),
        ("{momentum: 1.0}", "momentum", "[0, 1)"),
        ("{momentum: -0.1}", "momentum", "[0, 1)"),
        ("{batches_per_candidate: 0}", "batches_per_candidate", "at least 1"),
        ("{step_decay: 0}", "step_decay", "(0, 1]"),
        ("{step_decay: 1.5}", "step_decay", "(0, 1]"),
    ] {
        let err = registry().optimizer(&spec(yaml), vec![var.clone()], 0).err().unwrap();
        let err = err.downcast::<ConfigError>().unwrap();
        assert_eq!(
            err.key.as_deref(),
            Some(format!("debiaser.optimizer.{key}").as_str()),
            "{yaml}"
        );
        assert!(err.message.contains(needle), "{yaml}: {err}");
    }
}

#[test]
fn gezo_is_registered_with_its_defaults() {
    let registry = registry();
    assert!(registry
        .list()
        .iter()
        .any(|p| p.kind == PluginKind::Optimizer && p.name == "gezo"));
    let var = Var::from_vec(vec![0.0f64], 1, &Device::Cpu).unwrap();
    let mut opt = registry.optimizer(&spec("{}"), vec![var.clone()], 0).unwrap();
    assert_eq!(
        (opt.kind(), opt.batches_per_step(), opt.learning_rate()),
        ("gezo", 2, 0.03)
    );
    opt.set_learning_rate(0.01);
    assert_eq!(opt.learning_rate(), 0.01);
    assert_eq!(opt.vars().len(), 1);
    let mut opt = registry
        .optimizer(&spec("{batches_per_candidate: 3}"), vec![var], 0)
        .unwrap();
    assert_eq!(opt.batches_per_step(), 3);
    let mut slots = Vec::new();
    opt.step(&mut |slot| {
        slots.push(slot);
        Ok(Tensor::new(1.0f64, &Device::Cpu)?)
    })
    .unwrap();
    assert_eq!(slots, [0, 1, 2].repeat(20));
}
