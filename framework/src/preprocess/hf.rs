//! [`Preprocessing`] from a Hugging Face image-processor config: `preprocessor_config.json`, or the
//! `image_processor` object of the `processor_config.json` that transformers 5 writes. The result
//! reproduces transformers' PIL `CLIPImageProcessor` and `BlipImageProcessor` (the 4.x classes,
//! `CLIPImageProcessorPil` / `BlipImageProcessorPil` in transformers 5).

use std::fmt::Display;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use serde_json::{Map, Value};

use super::{Preprocessing, Resize};

/// OpenAI CLIP's per-channel mean, transformers' default for both processors.
pub const OPENAI_CLIP_MEAN: [f64; 3] = [0.48145466, 0.4578275, 0.40821073];
/// OpenAI CLIP's per-channel standard deviation, transformers' default for both processors.
pub const OPENAI_CLIP_STD: [f64; 3] = [0.26862954, 0.26130258, 0.27577711];

/// Keys that only name the processor or its owner (`_valid_processor_keys` is a list that some
/// transformers 4.4x releases saved by mistake).
const DESCRIPTIVE_KEYS: [&str; 4] = [
    "image_processor_type",
    "feature_extractor_type",
    "processor_class",
    "_valid_processor_keys",
];

/// The transformers image processor a config describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Processor {
    /// `CLIPImageProcessor`: resize (by default the shortest edge), then a center crop.
    Clip,
    /// `BlipImageProcessor`: resize to `height × width`, no crop.
    Blip,
}

impl Processor {
    /// The processor an `image_processor_type` or `feature_extractor_type` names. The fast
    /// (torchvision) variants are read as the PIL ones, which they follow to within one 8-bit level.
    fn named(name: &str) -> Option<Self> {
        match name {
            "CLIPImageProcessor" | "CLIPImageProcessorPil" | "CLIPImageProcessorFast" | "CLIPFeatureExtractor" => {
                Some(Processor::Clip)
            }
            "BlipImageProcessor" | "BlipImageProcessorPil" | "BlipImageProcessorFast" => Some(Processor::Blip),
            _ => None,
        }
    }

    /// The class name, for messages.
    fn class(self) -> &'static str {
        match self {
            Processor::Clip => "CLIPImageProcessor",
            Processor::Blip => "BlipImageProcessor",
        }
    }

    /// Whether the processor reads the setting `key`.
    fn reads(self, key: &str) -> bool {
        const COMMON: [&str; 9] = [
            "do_resize",
            "size",
            "resample",
            "do_rescale",
            "rescale_factor",
            "do_normalize",
            "image_mean",
            "image_std",
            "do_convert_rgb",
        ];
        COMMON.contains(&key) || (self == Processor::Clip && ["do_center_crop", "crop_size"].contains(&key))
    }
}

/// A `size` or `crop_size` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Size {
    /// `{"shortest_edge": n}`.
    ShortestEdge(usize),
    /// `{"height": h, "width": w}`.
    Exact(usize, usize),
}

impl Preprocessing {
    /// The preprocessing of a Hugging Face CLIP or BLIP image processor, exactly as transformers'
    /// PIL processors compute `pixel_values` (Pillow's resampling is reproduced bit for bit on
    /// 8-bit images).
    ///
    /// `path` is a `preprocessor_config.json`, a `processor_config.json` whose `image_processor`
    /// object holds the settings, or a model folder (its `preprocessor_config.json`, else its
    /// `processor_config.json`). The processor is named by `image_processor_type` (or the older
    /// `feature_extractor_type`): `CLIPImageProcessor`, `CLIPFeatureExtractor`, `BlipImageProcessor`,
    /// or their `Fast` / `Pil` variants. Settings missing or `null` take transformers' defaults:
    /// - `size`: for CLIP `{"shortest_edge": n}` (or a plain int `n`, the older form) keeps the
    ///   aspect ratio (see [`Preprocessing::shortest_edge`]) and needs the center crop; for either,
    ///   `{"height": h, "width": w}` resizes straight to `h × w`; for BLIP a plain int `n` means
    ///   `n × n`. Defaults: CLIP shortest edge 224, BLIP 384 × 384.
    /// - `do_center_crop` (CLIP, default true) and `crop_size` (`{"height", "width"}` or a plain
    ///   int for a square, default 224): the output size.
    /// - `resample`: 3 (Pillow bicubic, the default) → [`Resize::Bicubic`], 2 (Pillow bilinear) →
    ///   [`Resize::BilinearAntialias`].
    /// - `do_rescale` must be true and `rescale_factor` 1/255; `do_resize` must be true.
    /// - `do_normalize` (default true) with `image_mean` / `image_std` (3 values or one for all
    ///   channels; default OpenAI CLIP's); when false, mean 0 and std 1.
    /// - `do_convert_rgb`: images always become RGB here (gray replicated, alpha dropped, as
    ///   Pillow's `convert("RGB")` does), so false changes nothing for the RGB images transformers
    ///   would then accept.
    ///
    /// # Errors
    /// When the file cannot be read or parsed, names no supported processor, holds a setting this
    /// loader does not know (not `null`), or a value or combination it does not support; the
    /// message names the file and the key.
    pub fn from_hf_processor_config(path: &Path) -> anyhow::Result<Preprocessing> {
        let file = config_file(path)?;
        let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        let value: Value =
            serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", file.display()))?;
        from_value(&value, &file)
    }
}

/// The config file `path` names: `path` itself, or in a folder its `preprocessor_config.json`,
/// else its `processor_config.json`.
fn config_file(path: &Path) -> anyhow::Result<PathBuf> {
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    ["preprocessor_config.json", "processor_config.json"]
        .iter()
        .map(|name| path.join(name))
        .find(|file| file.is_file())
        .ok_or_else(|| {
            anyhow!(
                "{}: the folder has neither a preprocessor_config.json nor a processor_config.json",
                path.display()
            )
        })
}

/// [`Preprocessing::from_hf_processor_config`] of the parsed contents of `file`.
fn from_value(value: &Value, file: &Path) -> anyhow::Result<Preprocessing> {
    let Value::Object(top) = value else {
        bail!("{}: expected a JSON object", file.display());
    };
    let settings = match top.get("image_processor") {
        Some(Value::Object(map)) => Settings {
            file,
            prefix: "image_processor.",
            map,
        },
        Some(other) => bail!("{}: `image_processor` is not an object: {other}", file.display()),
        None => Settings {
            file,
            prefix: "",
            map: top,
        },
    };
    settings.preprocessing()
}

/// The settings object of one config file, read with messages that name the file and the key.
struct Settings<'a> {
    /// The config file.
    file: &'a Path,
    /// `"image_processor."` when the settings are nested in `processor_config.json`.
    prefix: &'static str,
    /// The settings.
    map: &'a Map<String, Value>,
}

impl Settings<'_> {
    /// The preprocessing these settings describe.
    fn preprocessing(&self) -> anyhow::Result<Preprocessing> {
        let processor = self.processor()?;
        // Processor classes gain settings over transformers releases (and the fast processors save
        // their call defaults): an unknown key is reported, not fatal, so a newer Hub config still
        // loads; the settings that change the pixels are all read above.
        let unknown: Vec<&str> = self
            .map
            .iter()
            .filter(|(key, value)| {
                !value.is_null() && !DESCRIPTIVE_KEYS.contains(&key.as_str()) && !processor.reads(key)
            })
            .map(|(key, _)| key.as_str())
            .collect();
        if !unknown.is_empty() {
            tracing::warn!(
                file = %self.file.display(),
                "ignoring {} settings this loader does not read: {}{}",
                processor.class(),
                self.prefix,
                unknown.join(&format!(", {}", self.prefix))
            );
        }
        if !self.flag("do_resize", true)? {
            bail!(self.error(
                "do_resize",
                "= false is not supported: images of different sizes would give inputs of different sizes"
            ));
        }
        if !self.flag("do_rescale", true)? {
            bail!(self.error(
                "do_rescale",
                "= false is not supported: pixels are always scaled to [0, 1]"
            ));
        }
        if let Some(factor) = self.number("rescale_factor")? {
            if (factor * 255.0 - 1.0).abs() > 1e-9 {
                bail!(self.error(
                    "rescale_factor",
                    format_args!("= {factor} is not supported: only 1/255 is")
                ));
            }
        }
        let resize = match self.get("resample") {
            None => Resize::Bicubic,
            Some(value) => match value.as_u64() {
                Some(2) => Resize::BilinearAntialias,
                Some(3) => Resize::Bicubic,
                _ => bail!(self.error(
                    "resample",
                    format_args!("= {value} is not supported: only 2 (Pillow bilinear) and 3 (Pillow bicubic) are")
                )),
            },
        };
        let (mean, std) = if self.flag("do_normalize", true)? {
            let mean = self.channels("image_mean")?.unwrap_or(OPENAI_CLIP_MEAN);
            let std = self.channels("image_std")?.unwrap_or(OPENAI_CLIP_STD);
            if std.iter().any(|&s| s <= 0.0) {
                bail!(self.error("image_std", format_args!("= {std:?} must be positive")));
            }
            (mean.map(|m| m as f32), std.map(|s| s as f32))
        } else {
            ([0.0; 3], [1.0; 3])
        };
        self.flag("do_convert_rgb", true)?;
        let (height, width, shortest_edge) = match processor {
            Processor::Blip => match self.size("size", false)?.unwrap_or(Size::Exact(384, 384)) {
                Size::Exact(height, width) => (height, width, None),
                Size::ShortestEdge(_) => bail!(self.error(
                    "size",
                    "must be {\"height\", \"width\"} or an int: BlipImageProcessor has no shortest-edge resize"
                )),
            },
            Processor::Clip => self.clip_geometry()?,
        };
        Ok(Preprocessing {
            height,
            width,
            resize,
            shortest_edge,
            mean,
            std,
        })
    }

    /// CLIP's output `(height, width)` and shortest edge, from `size`, `do_center_crop` and `crop_size`.
    fn clip_geometry(&self) -> anyhow::Result<(usize, usize, Option<usize>)> {
        let size = self.size("size", true)?.unwrap_or(Size::ShortestEdge(224));
        let crop = if self.flag("do_center_crop", true)? {
            match self.size("crop_size", false)?.unwrap_or(Size::Exact(224, 224)) {
                Size::Exact(height, width) => Some((height, width)),
                Size::ShortestEdge(_) => bail!(self.error("crop_size", "must be {\"height\", \"width\"} or an int")),
            }
        } else {
            None
        };
        match (size, crop) {
            (Size::ShortestEdge(short), Some((height, width))) => Ok((height, width, Some(short))),
            (Size::ShortestEdge(_), None) => bail!(self.error(
                "do_center_crop",
                "= false with a shortest-edge `size` is not supported: the output size would depend on each image's aspect ratio"
            )),
            (Size::Exact(height, width), None) => Ok((height, width, None)),
            (Size::Exact(height, width), Some(crop)) if crop == (height, width) => Ok((height, width, None)),
            (Size::Exact(height, width), Some((crop_h, crop_w))) => bail!(self.error(
                "crop_size",
                format_args!(
                    "= {crop_h}×{crop_w} after a resize to {height}×{width} is not supported: only a crop after a shortest-edge resize is"
                )
            )),
        }
    }

    /// The processor that `image_processor_type` (else `feature_extractor_type`) names.
    fn processor(&self) -> anyhow::Result<Processor> {
        for key in ["image_processor_type", "feature_extractor_type"] {
            if let Some(value) = self.get(key) {
                let name = value.as_str().ok_or_else(|| self.error(key, "is not a string"))?;
                return Processor::named(name).ok_or_else(|| {
                    self.error(
                        key,
                        format_args!("= {name:?} is not supported: only CLIP and BLIP image processors are"),
                    )
                });
            }
        }
        bail!(
            "{}: neither `{p}image_processor_type` nor `{p}feature_extractor_type` is set{}, so the \
             image processor is unknown",
            self.file.display(),
            if self.prefix.is_empty() {
                " (nor an `image_processor` object)"
            } else {
                ""
            },
            p = self.prefix,
        )
    }

    /// An error about `key`.
    fn error(&self, key: &str, message: impl Display) -> anyhow::Error {
        anyhow!("{}: `{}{key}` {message}", self.file.display(), self.prefix)
    }

    /// The value of `key`; `None` when absent or `null` (transformers' default then).
    fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|value| !value.is_null())
    }

    /// The boolean `key`, or `default`.
    fn flag(&self, key: &str, default: bool) -> anyhow::Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(value) => value
                .as_bool()
                .ok_or_else(|| self.error(key, format_args!("= {value} is not a boolean"))),
        }
    }

    /// The number `key`, if set.
    fn number(&self, key: &str) -> anyhow::Result<Option<f64>> {
        self.get(key)
            .map(|value| {
                value
                    .as_f64()
                    .ok_or_else(|| self.error(key, format_args!("= {value} is not a number")))
            })
            .transpose()
    }

    /// `image_mean` or `image_std`: three numbers, or one for every channel.
    fn channels(&self, key: &str) -> anyhow::Result<Option<[f64; 3]>> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let numbers: Option<Vec<f64>> = match value {
            Value::Number(n) => n.as_f64().map(|v| vec![v; 3]),
            Value::Array(items) => items.iter().map(Value::as_f64).collect(),
            _ => None,
        };
        match numbers.as_deref() {
            Some(&[r, g, b]) => Ok(Some([r, g, b])),
            _ => Err(self.error(key, format_args!("= {value} is not 3 numbers (or one)"))),
        }
    }

    /// `size` or `crop_size`: a plain int (the shortest edge when `int_is_shortest_edge`, else a
    /// square), `{"shortest_edge": n}` or `{"height": h, "width": w}` (`null` entries are absent).
    fn size(&self, key: &str, int_is_shortest_edge: bool) -> anyhow::Result<Option<Size>> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let pixels = |name: &str, value: &Value| -> anyhow::Result<usize> {
            value
                .as_u64()
                .filter(|&n| n > 0)
                .map(|n| n as usize)
                .ok_or_else(|| self.error(name, format_args!("= {value} is not a positive integer")))
        };
        let size = match value {
            Value::Number(_) => {
                let n = pixels(key, value)?;
                if int_is_shortest_edge {
                    Size::ShortestEdge(n)
                } else {
                    Size::Exact(n, n)
                }
            }
            Value::Object(entries) => {
                let set: Vec<&str> = entries
                    .iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, _)| k.as_str())
                    .collect();
                let entry = |name: &str| pixels(&format!("{key}.{name}"), &entries[name]);
                match set.as_slice() {
                    ["shortest_edge"] => Size::ShortestEdge(entry("shortest_edge")?),
                    ["height", "width"] | ["width", "height"] => Size::Exact(entry("height")?, entry("width")?),
                    _ => bail!(self.error(
                        key,
                        format_args!(
                            "= {value} is not supported: expected {{\"shortest_edge\": n}} or {{\"height\": h, \"width\": w}}"
                        )
                    )),
                }
            }
            _ => bail!(self.error(key, format_args!("= {value} is not an integer or an object"))),
        };
        Ok(Some(size))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(value: Value) -> anyhow::Result<Preprocessing> {
        from_value(&value, Path::new("model/preprocessor_config.json"))
    }

    fn error(value: Value) -> String {
        format!("{:#}", parse(value).unwrap_err())
    }

    /// The fields of openai/clip-vit-base-patch32's `preprocessor_config.json` (the older form).
    fn old_clip() -> Value {
        json!({
            "crop_size": 224,
            "do_center_crop": true,
            "do_normalize": true,
            "do_resize": true,
            "feature_extractor_type": "CLIPFeatureExtractor",
            "image_mean": [0.48145466, 0.4578275, 0.40821073],
            "image_std": [0.26862954, 0.26130258, 0.27577711],
            "resample": 3,
            "size": 224
        })
    }

    /// The same settings in the form transformers writes today.
    fn new_clip() -> Value {
        json!({
            "crop_size": {"height": 224, "width": 224},
            "do_center_crop": true,
            "do_convert_rgb": true,
            "do_normalize": true,
            "do_rescale": true,
            "do_resize": true,
            "image_mean": [0.48145466, 0.4578275, 0.40821073],
            "image_processor_type": "CLIPImageProcessor",
            "image_std": [0.26862954, 0.26130258, 0.27577711],
            "processor_class": "CLIPProcessor",
            "resample": 3,
            "rescale_factor": 0.00392156862745098,
            "size": {"shortest_edge": 224}
        })
    }

    fn with(mut value: Value, key: &str, setting: Value) -> Value {
        value[key] = setting;
        value
    }

    #[test]
    fn old_and_new_clip_forms_agree() {
        let new = parse(new_clip()).unwrap();
        assert_eq!(parse(old_clip()).unwrap(), new);
        assert_eq!(
            new,
            Preprocessing {
                height: 224,
                width: 224,
                resize: Resize::Bicubic,
                shortest_edge: Some(224),
                mean: OPENAI_CLIP_MEAN.map(|m| m as f32),
                std: OPENAI_CLIP_STD.map(|s| s as f32),
            }
        );
        // transformers' defaults are the same settings.
        assert_eq!(
            parse(json!({"image_processor_type": "CLIPImageProcessor"})).unwrap(),
            new
        );
        // A non-square crop and a different shortest edge.
        let p = parse(with(
            with(old_clip(), "crop_size", json!({"height": 200, "width": 180})),
            "size",
            json!(256),
        ))
        .unwrap();
        assert_eq!((p.height, p.width, p.shortest_edge), (200, 180, Some(256)));
    }

    #[test]
    fn blip_resizes_straight_to_height_and_width() {
        // Salesforce/blip-image-captioning-base stores `size` as a plain int: a square for BLIP.
        let old = json!({
            "do_normalize": true,
            "do_resize": true,
            "image_mean": [0.48145466, 0.4578275, 0.40821073],
            "image_processor_type": "BlipImageProcessor",
            "image_std": [0.26862954, 0.26130258, 0.27577711],
            "processor_class": "BlipProcessor",
            "size": 384
        });
        let p = parse(old.clone()).unwrap();
        assert_eq!(
            (p.height, p.width, p.shortest_edge, p.resize),
            (384, 384, None, Resize::Bicubic)
        );
        assert_eq!(
            parse(with(old.clone(), "size", json!({"height": 384, "width": 384}))).unwrap(),
            p
        );
        let rect = parse(with(old.clone(), "size", json!({"width": 30, "height": 20}))).unwrap();
        assert_eq!((rect.height, rect.width), (20, 30));
        assert!(error(with(old.clone(), "size", json!({"shortest_edge": 384}))).contains("`size`"));
        // BlipImageProcessor does not crop; like transformers, a crop setting changes nothing.
        assert_eq!(parse(with(old, "crop_size", json!(224))).unwrap(), p);
    }

    #[test]
    fn nested_image_processor_settings_are_read() {
        let nested = json!({"image_processor": new_clip(), "processor_class": "CLIPProcessor"});
        assert_eq!(parse(nested).unwrap(), parse(new_clip()).unwrap());
        let bad = json!({"image_processor": with(new_clip(), "resample", json!(1))});
        assert!(error(bad).contains("`image_processor.resample` = 1"));
    }

    #[test]
    fn resample_values() {
        let bilinear = parse(with(new_clip(), "resample", json!(2))).unwrap();
        assert_eq!(bilinear.resize, Resize::BilinearAntialias);
        let message = error(with(new_clip(), "resample", json!(0)));
        assert!(
            message.starts_with("model/preprocessor_config.json: `resample` = 0 is not supported"),
            "{message}"
        );
        assert!(error(with(new_clip(), "resample", json!("bicubic"))).contains("`resample` = \"bicubic\""));
    }

    #[test]
    fn normalisation_settings() {
        let off = parse(with(new_clip(), "do_normalize", json!(false))).unwrap();
        assert_eq!((off.mean, off.std), ([0.0; 3], [1.0; 3]));
        let single = parse(with(
            with(new_clip(), "image_mean", json!(0.5)),
            "image_std",
            json!([0.5, 0.25, 0.125]),
        ))
        .unwrap();
        assert_eq!((single.mean, single.std), ([0.5; 3], [0.5, 0.25, 0.125]));
        assert!(error(with(new_clip(), "image_mean", json!([0.5, 0.5]))).contains("`image_mean`"));
        assert!(error(with(new_clip(), "image_std", json!([0.5, 0.0, 0.5]))).contains("`image_std`"));
    }

    #[test]
    fn unknown_settings_are_ignored() {
        assert_eq!(
            parse(with(new_clip(), "use_square_size", json!(true))).unwrap(),
            parse(new_clip()).unwrap()
        );
    }

    #[test]
    fn unsupported_settings_are_errors_naming_the_key() {
        let cases = [
            ("do_rescale", json!(false), "`do_rescale` = false"),
            ("rescale_factor", json!(1.0), "`rescale_factor` = 1"),
            ("do_resize", json!(false), "`do_resize` = false"),
            ("do_center_crop", json!(false), "`do_center_crop` = false"),
            ("do_resize", json!("yes"), "`do_resize` = \"yes\" is not a boolean"),
            ("size", json!({"shortest_edge": 224, "longest_edge": 300}), "`size` = "),
            (
                "size",
                json!({"shortest_edge": 0}),
                "`size.shortest_edge` = 0 is not a positive integer",
            ),
            ("crop_size", json!({"shortest_edge": 224}), "`crop_size`"),
            (
                "image_processor_type",
                json!("SiglipImageProcessor"),
                "\"SiglipImageProcessor\" is not supported",
            ),
        ];
        for (key, value, want) in cases {
            let message = error(with(new_clip(), key, value));
            assert!(message.contains("model/preprocessor_config.json"), "{message}");
            assert!(message.contains(want), "{key}: {message}");
        }
        // A fixed-size resize followed by a different crop.
        let message = error(with(new_clip(), "size", json!({"height": 256, "width": 256})));
        assert!(
            message.contains("`crop_size` = 224×224 after a resize to 256×256"),
            "{message}"
        );
        assert!(error(json!({"size": 224})).contains("neither `image_processor_type`"));
    }

    #[test]
    fn null_settings_take_the_defaults() {
        let p = parse(json!({
            "image_processor_type": "CLIPImageProcessorFast",
            "size": {"shortest_edge": 224, "height": null, "width": null},
            "crop_pct": null,
            "resample": null
        }))
        .unwrap();
        assert_eq!(p, parse(new_clip()).unwrap());
    }

    #[test]
    fn clip_fixed_size_without_crop_resizes_straight() {
        let p = parse(with(
            with(new_clip(), "size", json!({"height": 64, "width": 48})),
            "do_center_crop",
            json!(false),
        ))
        .unwrap();
        assert_eq!((p.height, p.width, p.shortest_edge), (64, 48, None));
        let same_crop = parse(with(
            with(new_clip(), "size", json!({"height": 224, "width": 224})),
            "crop_size",
            json!(224),
        ))
        .unwrap();
        assert_eq!(
            (same_crop.height, same_crop.width, same_crop.shortest_edge),
            (224, 224, None)
        );
    }

    #[test]
    fn folders_files_and_read_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = Preprocessing::from_hf_processor_config(dir.path()).unwrap_err();
        assert!(format!("{missing:#}").contains("neither a preprocessor_config.json"));
        let processor = dir.path().join("processor_config.json");
        std::fs::write(&processor, json!({"image_processor": old_clip()}).to_string()).unwrap();
        let from_dir = Preprocessing::from_hf_processor_config(dir.path()).unwrap();
        assert_eq!(from_dir, parse(old_clip()).unwrap());
        // preprocessor_config.json wins over processor_config.json.
        std::fs::write(
            dir.path().join("preprocessor_config.json"),
            with(old_clip(), "size", json!(256)).to_string(),
        )
        .unwrap();
        assert_eq!(
            Preprocessing::from_hf_processor_config(dir.path())
                .unwrap()
                .shortest_edge,
            Some(256)
        );
        assert_eq!(Preprocessing::from_hf_processor_config(&processor).unwrap(), from_dir);
        std::fs::write(&processor, "{").unwrap();
        let invalid = format!("{:#}", Preprocessing::from_hf_processor_config(&processor).unwrap_err());
        assert!(invalid.contains("processor_config.json is not valid JSON"), "{invalid}");
    }
}
