//! fairlab's built-in debiasing methods and baselines: `erm` (the plain linear probe every method
//! is compared with), `dne` (debiased noise editing, white-box or GeZO), `fairclip` (FairCLIP's
//! Sinkhorn regulariser, on a linear probe or, with `target: clip`, fine-tuning the CLIP backbone
//! with the contrastive loss and evaluating zero-shot), `resampling`, `group-dro` and `zero-shot`
//! (CLIP prompts, no training).

mod batched;
pub mod dne;
pub mod erm;
pub mod fairclip;
pub mod group_dro;
pub mod resampling;
pub mod zero_shot;

use fairlab_framework::Registry;

/// Register the built-in debiasers.
pub fn register(registry: &mut Registry) {
    registry.register_debiaser(
        "erm",
        "empirical risk minimisation: a logistic-regression probe on frozen backbone features",
        Box::new(|spec| Ok(Box::new(erm::Erm::new(spec.parse()?)))),
    );
    registry.register_debiaser(
        "dne",
        "debiased noise editing (Jin et al. 2024): a universal input noise that hides the sensitive attribute, \
         trained white-box or with GeZO, then a probe on noised features",
        Box::new(|spec| Ok(Box::new(dne::Dne::new(spec.parse()?)))),
    );
    registry.register_debiaser(
        fairclip::KIND,
        "FairCLIP (Luo et al. 2024): a Sinkhorn regulariser between the overall and per-group score distributions; \
         `target: probe` on a linear probe's logits, `target: clip` fine-tuning CLIP (contrastive loss, \
         backbone.trainable) with zero-shot evaluation",
        Box::new(fairclip::from_spec),
    );
    registry.register_debiaser(
        "resampling",
        "group-balanced resampling: an ERM probe on batches drawn with equal mass per group (or group x label)",
        Box::new(|spec| Ok(Box::new(resampling::Resampling::new(spec.parse()?)))),
    );
    registry.register_debiaser(
        "group-dro",
        "group DRO (Sagawa et al. 2020): a probe minimising the worst group's loss by online group reweighting",
        Box::new(|spec| Ok(Box::new(group_dro::GroupDro::new(spec.parse()?)?))),
    );
    registry.register_debiaser(
        zero_shot::KIND,
        "zero-shot classification by image-prompt similarity (backbones with a text encoder, e.g. clip), as FairCLIP evaluates",
        Box::new(|spec| Ok(Box::new(zero_shot::ZeroShot::new(spec.parse()?)?))),
    );
}
