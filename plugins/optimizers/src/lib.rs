//! fairlab's built-in optimisers: `sgd` (momentum, Nesterov, weight decay), `adam` (L2 weight
//! decay) and `adamw` (decoupled weight decay), which implement the framework's closure-based
//! [`Optimizer`](fairlab_framework::Optimizer) interface through [`gradient::GradientOptimizer`],
//! and `gezo` ([`gezo::Gezo`]), DNE's zeroth-order optimiser, which never backpropagates.

pub mod adam;
pub mod gezo;
pub mod gradient;
pub mod sgd;

use fairlab_framework::Registry;

/// Register the built-in optimisers.
pub fn register(registry: &mut Registry) {
    registry.register_optimizer(
        "sgd",
        "stochastic gradient descent with momentum, Nesterov and weight decay (PyTorch semantics)",
        Box::new(|spec, vars, _seed| {
            Ok(Box::new(gradient::GradientOptimizer::new(
                "sgd",
                vars,
                sgd::Sgd::new(spec.parse()?),
            )))
        }),
    );
    registry.register_optimizer(
        "adam",
        "Adam (Kingma & Ba) with L2 weight decay added to the gradient (PyTorch torch.optim.Adam)",
        Box::new(|spec, vars, _seed| {
            Ok(Box::new(gradient::GradientOptimizer::new(
                "adam",
                vars,
                adam::Adam::new(spec.parse()?, false),
            )))
        }),
    );
    registry.register_optimizer(
        "adamw",
        "AdamW (Loshchilov & Hutter) with decoupled weight decay (PyTorch torch.optim.AdamW)",
        Box::new(|spec, vars, _seed| {
            Ok(Box::new(gradient::GradientOptimizer::new(
                "adamw",
                vars,
                adam::Adam::new(spec.parse()?, true),
            )))
        }),
    );
    registry.register_optimizer(
        "gezo",
        "GeZO (DNE): gradient-free search over Gaussian directions with momentum; `variant: as-coded | paper`",
        Box::new(|spec, vars, seed| {
            let settings = spec.parse::<gezo::GezoConfig>()?.resolve(&spec.path)?;
            Ok(Box::new(gezo::Gezo::new(settings, vars, seed)?))
        }),
    );
}
