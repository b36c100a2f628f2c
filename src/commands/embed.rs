//! `fairlab embed`: image (and text) features of any backbone, written to a safetensors file for
//! reuse, through the same extraction code as the runner's feature cache.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use fairlab_framework::config::PluginSpec;
use fairlab_framework::{features, tensor_io, ConfigError, Registry};
use serde_norway::{Mapping, Value};

/// Image extensions a folder of images is read for.
const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// Columns an image CSV may name its image paths in, tried in this order.
const IMAGE_COLUMNS: [&str; 3] = ["path", "file", "image"];

/// Arguments of `fairlab embed`.
#[derive(Debug, Clone, Args)]
pub struct EmbedArgs {
    /// Backbone plugin kind (`fairlab plugins` lists them), e.g. clip or blip.
    #[arg(long)]
    pub backbone: String,

    /// Hub repo id or local folder in Hugging Face layout (the backbone's `model` setting).
    #[arg(long)]
    pub model: Option<String>,

    /// Branch, tag or commit of a Hub model.
    #[arg(long)]
    pub revision: Option<String>,

    /// auto, cpu, cuda or cuda:N.
    #[arg(long)]
    pub device: Option<String>,

    /// f32, f16 or bf16.
    #[arg(long)]
    pub dtype: Option<String>,

    /// A folder of images (taken in sorted file-name order) or a CSV with a header and an image
    /// column (`--image-col`; default the first of path, file, image).
    #[arg(long)]
    pub images: PathBuf,

    /// The CSV column holding image paths.
    #[arg(long, value_name = "COLUMN")]
    pub image_col: Option<String>,

    /// The folder CSV image paths are relative to (default: the CSV's folder).
    #[arg(long, value_name = "DIR")]
    pub image_root: Option<PathBuf>,

    /// A text file, one text per line, whose texts are embedded too (backbones with a text tower).
    #[arg(long)]
    pub texts: Option<PathBuf>,

    /// Output safetensors file: `image_embeds` [N, D] (and `text_embeds` [M, D]) in f32.
    #[arg(long)]
    pub out: PathBuf,

    /// Images per forward pass.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
}

/// Build the backbone, embed the images (and texts) and write `args.out`. Bad arguments and inputs
/// are [`ConfigError`]s (exit code 2).
pub fn run(args: &EmbedArgs, registry: &Registry, out: &mut dyn std::io::Write) -> anyhow::Result<()> {
    if args.batch_size == 0 {
        return Err(ConfigError::at_key("--batch-size", "must be at least 1").into());
    }
    let images = image_paths(args)?;
    let texts = args.texts.as_deref().map(read_texts).transpose()?;
    let backbone = registry.backbone(&backbone_spec(args))?;
    if texts.is_some() && !backbone.has_text_encoder() {
        return Err(ConfigError::at_key("--texts", format!("backbone `{}` has no text encoder", args.backbone)).into());
    }
    let bar = fairlab_framework::progress::bar(images.len() as u64, "embedding images");
    let image_embeds = features::encode_images(
        backbone.as_ref(),
        images.len(),
        args.batch_size,
        |i| {
            image::open(&images[i])
                .map_err(|e| ConfigError::new(format!("{}: cannot read the image: {e}", images[i].display())).into())
        },
        |n| bar.inc(n as u64),
    )?;
    bar.finish_and_clear();
    let mut tensors = vec![("image_embeds", image_embeds)];
    let mut metadata = HashMap::from([
        ("backbone".to_string(), backbone.fingerprint()),
        ("preprocessing".to_string(), backbone.preprocessing().fingerprint()),
        ("dtype".to_string(), format!("{:?}", backbone.dtype()).to_lowercase()),
        ("images".to_string(), serde_json::to_string(&images)?),
    ]);
    if let Some(texts) = &texts {
        let embeds = backbone
            .encode_texts(texts)?
            .context("the backbone stopped offering text embeddings")?;
        tensors.push((
            "text_embeds",
            embeds
                .to_dtype(candle_core::DType::F32)?
                .to_device(&candle_core::Device::Cpu)?,
        ));
        metadata.insert("texts".to_string(), serde_json::to_string(texts)?);
    }
    let named: Vec<(&str, &candle_core::Tensor)> = tensors.iter().map(|(n, t)| (*n, t)).collect();
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    tensor_io::write_atomic(&args.out, &tensor_io::to_safetensors(&named, metadata)?)?;
    for (name, tensor) in &tensors {
        writeln!(out, "{name}: {:?}", tensor.dims())?;
    }
    writeln!(out, "wrote {}", args.out.display())?;
    Ok(())
}

/// The backbone section the arguments describe (only the settings given, so each plugin keeps its
/// defaults).
fn backbone_spec(args: &EmbedArgs) -> PluginSpec {
    let mut params = Mapping::new();
    for (key, value) in [
        ("model", &args.model),
        ("revision", &args.revision),
        ("device", &args.device),
        ("dtype", &args.dtype),
    ] {
        if let Some(value) = value {
            params.insert(Value::from(key), Value::from(value.as_str()));
        }
    }
    PluginSpec::new("backbone", &args.backbone, params)
}

/// The images to embed, in output order.
fn image_paths(args: &EmbedArgs) -> anyhow::Result<Vec<PathBuf>> {
    let source = &args.images;
    let paths = if source.is_dir() {
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(source).with_context(|| format!("cannot list {}", source.display()))? {
            let path = entry?.path();
            let is_image = path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
            if path.is_file() && is_image {
                paths.push(path);
            }
        }
        paths.sort();
        paths
    } else if source.is_file() {
        csv_image_paths(source, args.image_col.as_deref(), args.image_root.as_deref())?
    } else {
        return Err(ConfigError::at_key("--images", format!("`{}` not found", source.display())).into());
    };
    if paths.is_empty() {
        return Err(ConfigError::at_key(
            "--images",
            format!(
                "no image in `{}` (extensions: {})",
                source.display(),
                IMAGE_EXTENSIONS.join(", ")
            ),
        )
        .into());
    }
    Ok(paths)
}

/// The image paths of a CSV's image column, relative to `root` (default: the CSV's folder).
fn csv_image_paths(csv_path: &Path, column: Option<&str>, root: Option<&Path>) -> anyhow::Result<Vec<PathBuf>> {
    let mut reader = csv::Reader::from_path(csv_path).with_context(|| format!("cannot read {}", csv_path.display()))?;
    let headers = reader.headers()?.clone();
    let wanted: Vec<&str> = column.map_or(IMAGE_COLUMNS.to_vec(), |c| vec![c]);
    let Some(index) = wanted.iter().find_map(|w| headers.iter().position(|h| h == *w)) else {
        return Err(ConfigError::new(format!(
            "{}: no image column (looked for {}); the header has {}; name it with --image-col",
            csv_path.display(),
            wanted.join(", "),
            headers.iter().collect::<Vec<_>>().join(", ")
        ))
        .into());
    };
    let root = root.map_or_else(
        || csv_path.parent().unwrap_or(Path::new("")).to_path_buf(),
        Path::to_path_buf,
    );
    let mut paths = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{}: row {}", csv_path.display(), i + 2))?;
        let value = record.get(index).unwrap_or("").trim();
        if value.is_empty() {
            return Err(ConfigError::new(format!(
                "{}: row {}, column `{}`: empty image path",
                csv_path.display(),
                i + 2,
                &headers[index]
            ))
            .into());
        }
        paths.push(root.join(value));
    }
    Ok(paths)
}

/// The texts of a file, one per line; an empty line is an error naming it.
fn read_texts(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::at_key("--texts", format!("cannot read `{}`: {e}", path.display())))?;
    let mut texts = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            return Err(ConfigError::new(format!("{}:{}: empty text line", path.display(), i + 1)).into());
        }
        texts.push(line.to_string());
    }
    if texts.is_empty() {
        return Err(ConfigError::at_key("--texts", format!("`{}` holds no text", path.display())).into());
    }
    Ok(texts)
}
