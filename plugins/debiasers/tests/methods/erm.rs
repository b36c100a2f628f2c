//! ERM's results are pinned: refactoring the shared probe training loop must not change them.
//! The expected numbers were produced by the training loop before it was generalised.

use fairlab_framework::Split;

use crate::support;

fn close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-9, "{got:?} vs {want:?}");
    }
}

#[test]
fn erm_training_is_unchanged_by_the_shared_loop() {
    let settings = "{epochs: 3, batch_size: 8, optimizer: {kind: adamw, lr: 0.05, weight_decay: 0.01}}";
    let data = support::small_data();
    let (predictor, rec) = support::fit("erm", settings, &data, 3);
    let predictor = predictor.unwrap();
    let losses: Vec<f64> = rec.epochs.iter().map(|e| e.1).collect();
    let val = rec.epochs.last().unwrap().2.clone().unwrap();
    let test = predictor.predict(&data, Split::Test).unwrap();
    assert_eq!(rec.epochs.iter().map(|e| e.0).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(rec.progress, [(1, 3), (2, 3), (3, 3)]);
    assert!(rec.logs.is_empty());
    close(&losses, &[0.6643795113305788, 0.5760615178056665, 0.5267422795295715]);
    close(
        &val[..4],
        &[
            0.7563883662223816,
            0.8216657042503357,
            0.2748557925224304,
            0.2666013538837433,
        ],
    );
    close(
        &test[..4],
        &[
            0.4105185270309448,
            0.32117462158203125,
            0.29595422744750977,
            0.6480576992034912,
        ],
    );
}
