//! fairlab's built-in backbones: `efficientnet-lite0` (ImageNet EfficientNet-Lite0, 1280-d
//! features).

pub mod efficientnet_lite0;

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
}
