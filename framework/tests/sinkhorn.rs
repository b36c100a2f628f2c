//! `sinkhorn_divergence` against geomloss's own numbers (`tests/fixtures/sinkhorn`, float64) and against the
//! properties a Sinkhorn divergence must have.

use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use fairlab_framework::sinkhorn::{bounding_diameter, sinkhorn_divergence, SinkhornConfig};
use proptest::prelude::*;
use serde::Deserialize;

/// One `case_NN.json` (see the fixtures' README).
#[derive(Deserialize)]
struct Case {
    name: String,
    params: Params,
    weights: String,
    x: Vec<Vec<f64>>,
    y: Vec<Vec<f64>>,
    a: Vec<f64>,
    b: Vec<f64>,
    loss: f64,
    grad_x: Vec<Vec<f64>>,
    debug: Schedule,
}

/// The `params` of a case.
#[derive(Deserialize)]
struct Params {
    blur: f64,
    scaling: f64,
}

/// The part of a case's `debug` that records geomloss's ε-scaling schedule.
#[derive(Deserialize)]
struct Schedule {
    diameter: f64,
    eps_list: Vec<f64>,
}

impl Case {
    fn config(&self) -> SinkhornConfig {
        SinkhornConfig {
            blur: self.params.blur,
            scaling: self.params.scaling,
        }
    }

    /// The weights as geomloss received them: `None` for a `loss(x, y)` call.
    fn weights(&self, dtype: DType) -> (Option<Tensor>, Option<Tensor>) {
        match self.weights.as_str() {
            "uniform" => (None, None),
            "explicit" => (Some(vector(&self.a, dtype)), Some(vector(&self.b, dtype))),
            other => panic!("{}: unknown weights {other:?}", self.name),
        }
    }
}

fn cases() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sinkhorn");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("case_"))
        .collect();
    paths.sort();
    assert_eq!(paths.len(), 7, "expected the 7 geomloss cases in {}", dir.display());
    paths
        .iter()
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect()
}

fn vector(values: &[f64], dtype: DType) -> Tensor {
    Tensor::new(values, &Device::Cpu).unwrap().to_dtype(dtype).unwrap()
}

fn matrix(rows: &[Vec<f64>], dtype: DType) -> Tensor {
    Tensor::new(rows.to_vec(), &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

/// `S(x, y)` and its gradients w.r.t. `x` and `y`, as f64.
fn divergence_and_gradients(
    x: &Tensor,
    y: &Tensor,
    weights: (Option<Tensor>, Option<Tensor>),
    cfg: &SinkhornConfig,
) -> (f64, Vec<f64>, Vec<f64>) {
    let (x, y) = (Var::from_tensor(x).unwrap(), Var::from_tensor(y).unwrap());
    let loss = sinkhorn_divergence(&x, &y, weights.0.as_ref(), weights.1.as_ref(), cfg).unwrap();
    assert_eq!(loss.dims(), [] as [usize; 0]);
    assert_eq!(loss.dtype(), x.dtype());
    let grads = loss.backward().unwrap();
    let flat = |v: &Var| {
        let g = grads.get(v.as_tensor()).expect("a gradient");
        assert_eq!((g.dims(), g.dtype()), (v.dims(), v.dtype()));
        g.to_dtype(DType::F64)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap()
    };
    let value = loss.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap();
    (value, flat(&x), flat(&y))
}

fn divergence(x: &[f64], y: &[f64], dim: usize, cfg: &SinkhornConfig) -> f64 {
    let x = Tensor::from_slice(x, (x.len() / dim, dim), &Device::Cpu).unwrap();
    let y = Tensor::from_slice(y, (y.len() / dim, dim), &Device::Cpu).unwrap();
    sinkhorn_divergence(&x, &y, None, None, cfg)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}

fn max_abs(values: impl IntoIterator<Item = f64>) -> f64 {
    values.into_iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// The largest gap between two gradients, relative to the largest entry of `expected`.
fn gradient_error(got: &[f64], expected: &[f64]) -> f64 {
    assert_eq!(got.len(), expected.len());
    max_abs(got.iter().zip(expected).map(|(g, e)| g - e)) / max_abs(expected.iter().copied())
}

/// Checks every fixture in `dtype` against geomloss, printing the relative loss and gradient errors.
fn check_fixtures(dtype: DType, loss_tolerance: f64, gradient_tolerance: f64) {
    for case in cases() {
        let (x, y) = (matrix(&case.x, dtype), matrix(&case.y, dtype));
        let (loss, grad_x, _) = divergence_and_gradients(&x, &y, case.weights(dtype), &case.config());
        let loss_error = ((loss - case.loss) / case.loss).abs();
        let expected: Vec<f64> = case.grad_x.concat();
        let grad_error = gradient_error(&grad_x, &expected);
        println!(
            "{dtype:?} {}: loss rel. error {loss_error:.2e}, grad_x error {grad_error:.2e}",
            case.name
        );
        assert!(
            loss_error <= loss_tolerance,
            "{}: loss {loss} vs geomloss {}",
            case.name,
            case.loss
        );
        assert!(
            grad_error <= gradient_tolerance,
            "{}: grad_x off by {grad_error:e}",
            case.name
        );
    }
}

#[test]
fn matches_geomloss_in_f64() {
    check_fixtures(DType::F64, 1e-9, 1e-9);
}

#[test]
fn matches_geomloss_in_f32() {
    check_fixtures(DType::F32, 1e-5, 1e-4);
}

#[test]
fn one_dimensional_clouds_may_be_plain_vectors() {
    for case in cases().into_iter().filter(|c| c.x[0].len() == 1) {
        let (x, y) = (matrix(&case.x, DType::F64), matrix(&case.y, DType::F64));
        let cfg = case.config();
        let (columns, grad_columns, _) = divergence_and_gradients(&x, &y, case.weights(DType::F64), &cfg);
        let (x, y) = (x.flatten_all().unwrap(), y.flatten_all().unwrap());
        let (vectors, grad_vectors, _) = divergence_and_gradients(&x, &y, case.weights(DType::F64), &cfg);
        assert_eq!(columns, vectors, "{}", case.name);
        assert_eq!(grad_columns, grad_vectors, "{}", case.name);
    }
}

#[test]
fn schedule_matches_geomloss() {
    for case in cases() {
        let x = matrix(&case.x, DType::F64);
        let y = matrix(&case.y, DType::F64);
        let diameter = bounding_diameter(&x, &y).unwrap();
        assert!(
            (diameter - case.debug.diameter).abs() <= 1e-14 * case.debug.diameter,
            "{}",
            case.name
        );
        let schedule = case.config().epsilon_schedule(diameter);
        let expected = &case.debug.eps_list;
        assert_eq!(
            schedule.len(),
            expected.len(),
            "{}: {schedule:?} vs {expected:?}",
            case.name
        );
        assert!(
            (schedule[0] - schedule[1]).abs() <= 1e-14 * schedule[0],
            "{}: diameter² twice",
            case.name
        );
        assert_eq!(*schedule.last().unwrap(), case.params.blur * case.params.blur);
        for (got, want) in schedule.iter().zip(expected) {
            assert!(
                (got - want).abs() <= 1e-13 * want,
                "{}: ε {got} vs geomloss {want}",
                case.name
            );
        }
    }
}

#[test]
fn schedule_of_a_cloud_smaller_than_the_blur_has_no_middle() {
    let cfg = SinkhornConfig::default();
    assert_eq!(cfg.epsilon_schedule(0.01), vec![1e-4, cfg.epsilon()]);
    assert_eq!(cfg.epsilon_schedule(0.0), vec![cfg.epsilon(), cfg.epsilon()]);
}

#[test]
fn gradient_wrt_y_mirrors_the_gradient_wrt_x() {
    for case in cases() {
        let (x, y) = (matrix(&case.x, DType::F64), matrix(&case.y, DType::F64));
        let (a, b) = case.weights(DType::F64);
        let (loss, _, grad_y) = divergence_and_gradients(&x, &y, (a.clone(), b.clone()), &case.config());
        let (swapped, grad_first, _) = divergence_and_gradients(&y, &x, (b, a), &case.config());
        assert!(
            (loss - swapped).abs() <= 1e-12 * loss,
            "{}: {loss} vs swapped {swapped}",
            case.name
        );
        assert!(gradient_error(&grad_y, &grad_first) <= 1e-9, "{}", case.name);
    }
}

#[test]
fn gradients_match_finite_differences() {
    // The envelope-theorem gradient is the derivative of the *converged* divergence. geomloss's annealed loop lags
    // behind convergence by about (1 − scaling): on this case the gap to finite differences is 3e-3 of the largest
    // entry at scaling 0.99, 3e-4 at 0.999 and 3e-5 at 0.9999. A wrong factor, sign or missing term is far larger.
    let cfg = SinkhornConfig {
        blur: 1.0,
        scaling: 0.9999,
    };
    let x = [0.3, -1.2, 0.9, 0.4, -0.5, 1.1, 0.0, -0.2, 1.4, -0.8];
    let y = [0.8, 0.1, -0.6, -0.9, 0.2, 0.7, 1.5, -1.1];
    let a = [0.1, 0.3, 0.2, 0.25, 0.15];
    let b = [0.4, 0.1, 0.3, 0.2];
    let tensor = |v: &[f64]| Tensor::from_slice(v, (v.len() / 2, 2), &Device::Cpu).unwrap();
    let weights = || (Some(vector(&a, DType::F64)), Some(vector(&b, DType::F64)));
    let (_, grad_x, grad_y) = divergence_and_gradients(&tensor(&x), &tensor(&y), weights(), &cfg);
    let value = |x: &[f64], y: &[f64]| {
        let (a, b) = weights();
        let loss = sinkhorn_divergence(&tensor(x), &tensor(y), a.as_ref(), b.as_ref(), &cfg).unwrap();
        loss.to_scalar::<f64>().unwrap()
    };
    let h = 1e-5;
    let central = |points: &[f64], i: usize, at: &dyn Fn(&[f64]) -> f64| {
        let (mut up, mut down) = (points.to_vec(), points.to_vec());
        up[i] += h;
        down[i] -= h;
        (at(&up) - at(&down)) / (2.0 * h)
    };
    let fd_x: Vec<f64> = (0..x.len()).map(|i| central(&x, i, &|p| value(p, &y))).collect();
    let fd_y: Vec<f64> = (0..y.len()).map(|i| central(&y, i, &|p| value(&x, p))).collect();
    assert!(
        gradient_error(&grad_x, &fd_x) <= 1e-4,
        "grad_x {grad_x:?} vs finite differences {fd_x:?}"
    );
    assert!(
        gradient_error(&grad_y, &fd_y) <= 1e-4,
        "grad_y {grad_y:?} vs finite differences {fd_y:?}"
    );
}

#[test]
fn identical_points_give_zero_and_a_zero_gradient() {
    let x = Tensor::new(&[[1.5f64, -2.0]; 4], &Device::Cpu).unwrap();
    let y = Tensor::new(&[[1.5f64, -2.0]; 3], &Device::Cpu).unwrap();
    let (loss, grad_x, grad_y) = divergence_and_gradients(&x, &y, (None, None), &SinkhornConfig::default());
    assert!(loss.abs() <= 1e-15, "{loss}");
    assert!(max_abs(grad_x.into_iter().chain(grad_y)) <= 1e-15);
}

#[test]
fn zero_weights_drop_their_points() {
    let cfg = SinkhornConfig::default();
    let x = Tensor::new(&[0.0f64, 5.0, 1.0], &Device::Cpu).unwrap();
    let y = Tensor::new(&[0.5f64, 1.5], &Device::Cpu).unwrap();
    let a = Tensor::new(&[0.5f64, 0.0, 0.5], &Device::Cpu).unwrap();
    let weighted = sinkhorn_divergence(&x, &y, Some(&a), None, &cfg)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    let kept = divergence(&[0.0, 1.0], &[0.5, 1.5], 1, &cfg);
    assert!((weighted - kept).abs() <= 1e-12 * kept, "{weighted} vs {kept}");
}

#[test]
fn rejects_bad_input() {
    let cpu = &Device::Cpu;
    let x = Tensor::new(&[[0.0f64, 1.0], [2.0, 3.0]], cpu).unwrap();
    let y = Tensor::new(&[[1.0f64, 1.0]], cpu).unwrap();
    let cfg = SinkhornConfig::default();
    let error = |x: &Tensor, y: &Tensor, a: Option<&Tensor>, cfg: &SinkhornConfig| {
        sinkhorn_divergence(x, y, a, None, cfg).unwrap_err().to_string()
    };
    let expect = |message: String, needle: &str| assert!(message.contains(needle), "{message:?} lacks {needle:?}");
    expect(
        error(&x, &Tensor::new(&[[1.0f64]], cpu).unwrap(), None, &cfg),
        "dimension",
    );
    expect(
        error(&x, &Tensor::zeros((0, 2), DType::F64, cpu).unwrap(), None, &cfg),
        "at least one point",
    );
    expect(
        error(&x, &Tensor::zeros((1, 1, 2), DType::F64, cpu).unwrap(), None, &cfg),
        "[n, D]",
    );
    expect(
        error(&Tensor::new(&[[0.0f64, f64::NAN]], cpu).unwrap(), &y, None, &cfg),
        "x[0, 1] is NaN",
    );
    expect(
        error(&x, &Tensor::new(&[[f64::INFINITY, 0.0]], cpu).unwrap(), None, &cfg),
        "not finite",
    );
    for blur in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        expect(error(&x, &y, None, &SinkhornConfig { blur, ..cfg }), "blur");
    }
    for scaling in [0.0, 1.0, 1.5, f64::NAN] {
        expect(error(&x, &y, None, &SinkhornConfig { scaling, ..cfg }), "scaling");
    }
    expect(
        error(&x, &y, Some(&Tensor::new(&[1.0f64], cpu).unwrap()), &cfg),
        "shape [2]",
    );
    expect(
        error(&x, &y, Some(&Tensor::new(&[0.5f64, 0.6], cpu).unwrap()), &cfg),
        "sum to 1",
    );
    expect(
        error(&x, &y, Some(&Tensor::new(&[1.5f64, -0.5], cpu).unwrap()), &cfg),
        "nonnegative",
    );
    expect(
        error(&x, &y, Some(&Tensor::new(&[0.5f64, f64::NAN], cpu).unwrap()), &cfg),
        "nonnegative",
    );
}

#[test]
fn config_reads_from_yaml_with_geomloss_defaults() {
    let cfg: SinkhornConfig = serde_norway::from_str("blur: 1.0e-4").unwrap();
    assert_eq!(
        cfg,
        SinkhornConfig {
            blur: 1e-4,
            scaling: 0.5
        }
    );
    assert_eq!(
        serde_norway::from_str::<SinkhornConfig>("{}").unwrap(),
        SinkhornConfig::default()
    );
    let unknown = serde_norway::from_str::<SinkhornConfig>("p: 1")
        .unwrap_err()
        .to_string();
    assert!(unknown.contains("unknown field"), "{unknown}");
}

/// Two clouds of the same dimension (1 to 3) with 1 to 9 points each, and settings.
fn clouds() -> impl Strategy<Value = (Vec<f64>, Vec<f64>, usize, SinkhornConfig)> {
    (1usize..10, 1usize..10, 1usize..4, 0.02f64..1.0, 0.3f64..0.9).prop_flat_map(|(n, m, dim, blur, scaling)| {
        let coordinates = |count| prop::collection::vec(-2.0f64..2.0, count * dim);
        (
            coordinates(n),
            coordinates(m),
            Just(dim),
            Just(SinkhornConfig { blur, scaling }),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn divergence_of_a_cloud_with_itself_is_zero((x, _, dim, cfg) in clouds(), seed in any::<u64>()) {
        prop_assert!(divergence(&x, &x, dim, &cfg).abs() <= 1e-12);
        // The same cloud with its points in another order.
        let n = x.len() / dim;
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| (i as u64 + 1).wrapping_mul(seed | 1).rotate_left(17));
        let shuffled: Vec<f64> = order.iter().flat_map(|&i| x[i * dim..(i + 1) * dim].to_vec()).collect();
        let value = divergence(&x, &shuffled, dim, &cfg);
        prop_assert!(value.abs() <= 1e-12, "S(x, shuffled x) = {}", value);
    }

    #[test]
    fn two_single_points_are_half_their_squared_distance(
        (x, y) in (1usize..4).prop_flat_map(|d| (prop::collection::vec(-3.0f64..3.0, d), prop::collection::vec(-3.0f64..3.0, d))),
        blur in 0.001f64..1.0,
    ) {
        // With one point per cloud the loop is exact: S = ½‖x − y‖², ∇ₓS = x − y, ∇_yS = y − x.
        let cfg = SinkhornConfig { blur, scaling: 0.5 };
        let tensor = |v: &[f64]| Tensor::from_slice(v, (1, v.len()), &Device::Cpu).unwrap();
        let (value, grad_x, grad_y) = divergence_and_gradients(&tensor(&x), &tensor(&y), (None, None), &cfg);
        let half_squared: f64 = x.iter().zip(&y).map(|(a, b)| (a - b) * (a - b)).sum::<f64>() / 2.0;
        prop_assert!((value - half_squared).abs() <= 1e-12 * (1.0 + half_squared), "{} vs {}", value, half_squared);
        for ((gx, gy), (a, b)) in grad_x.iter().zip(&grad_y).zip(x.iter().zip(&y)) {
            prop_assert!((gx - (a - b)).abs() <= 1e-12 && (gy - (b - a)).abs() <= 1e-12);
        }
    }

    #[test]
    fn divergence_is_nonnegative((x, y, dim, cfg) in clouds()) {
        let value = divergence(&x, &y, dim, &cfg);
        prop_assert!(value >= -1e-12, "S = {}", value);
    }

    #[test]
    fn divergence_is_symmetric((x, y, dim, cfg) in clouds()) {
        let (forward, backward) = (divergence(&x, &y, dim, &cfg), divergence(&y, &x, dim, &cfg));
        prop_assert!((forward - backward).abs() <= 1e-12 * (1.0 + forward.abs()), "{} vs {}", forward, backward);
    }
}
