//! fairlab's built-in backbones: `efficientnet-lite0` (ImageNet EfficientNet-Lite0, 1280-d
//! features), and `clip` and `blip` (Hugging Face checkpoints from the Hub cache or a local folder)
//! with their shared transformer building blocks, checkpoint loading and tokenizer.

pub mod blip;
pub mod clip;
pub mod efficientnet_lite0;
pub mod hub_checkpoint;
pub mod text_tokenizer;
pub mod transformer;

use fairlab_framework::Registry;

/// Register the built-in backbones.
pub fn register(registry: &mut Registry) {
    registry.register_backbone(
        efficientnet_lite0::KIND,
        "EfficientNet-Lite0, ImageNet-pretrained (TF weights): 1280-d globally pooled features at 224x224",
        Box::new(|spec| {
            Ok(Box::new(efficientnet_lite0::EfficientNetLite0Backbone::from_spec(
                spec,
            )?))
        }),
    );
    registry.register_backbone(
        clip::backbone::KIND,
        "CLIP (Hugging Face CLIPModel, Hub repo or local folder): projected image embeddings, text tower for zero-shot, \
         `trainable` weight prefixes for fine-tuning",
        Box::new(|spec| Ok(Box::new(clip::ClipBackbone::from_spec(spec)?))),
    );
    registry.register_backbone(
        blip::backbone::KIND,
        "BLIP (Hugging Face BlipForConditionalGeneration, Hub repo or local folder): the vision model's pooled output",
        Box::new(|spec| Ok(Box::new(blip::BlipBackbone::from_spec(spec)?))),
    );
}
