//! fairlab's built-in debiasing methods and baselines. So far: `erm`, the plain linear probe every
//! debiasing method is compared against.

pub mod erm;

use fairlab_framework::Registry;

/// Register the built-in debiasers.
pub fn register(registry: &mut Registry) {
    registry.register_debiaser(
        "erm",
        "empirical risk minimisation: a logistic-regression probe on frozen backbone features",
        Box::new(|spec| Ok(Box::new(erm::Erm::new(spec.parse()?)))),
    );
}
