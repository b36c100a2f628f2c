//! Where a pretrained model's files come from: a local folder in Hugging Face layout, or a Hub repo
//! id resolved through `hf-hub` and the standard Hugging Face cache.
//!
//! The cache is the one `huggingface_hub` and `transformers` use, found the same way:
//! `HF_HUB_CACHE`, else `HUGGINGFACE_HUB_CACHE`, else `$HF_HOME/hub`, else
//! `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`. A file already in the cache is
//! used without any request. With `HF_HUB_OFFLINE=1` nothing is ever downloaded and a missing file
//! is an error that says where fairlab looked and how to provide the files; otherwise a missing
//! file is downloaded into the cache (`HF_ENDPOINT`, `HF_TOKEN` and the cached login token are
//! honoured).

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use hf_hub::{Cache, Repo, RepoType};

use crate::error::ConfigError;

/// The Hub's default address.
const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Where the Hub cache is and whether fairlab may go online, normally read from the environment
/// ([`HubSettings::from_env`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubSettings {
    /// The hub cache folder (the one holding `models--owner--name/`).
    pub cache_dir: PathBuf,
    /// Never make a request (`HF_HUB_OFFLINE`).
    pub offline: bool,
    /// The Hub's address (`HF_ENDPOINT`).
    pub endpoint: String,
    /// An access token for gated or private repos (`HF_TOKEN`, else the cached login token).
    pub token: Option<String>,
}

impl HubSettings {
    /// The settings `huggingface_hub` would use in this process's environment.
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// The settings for an environment given as a lookup function (testable without touching the
    /// process environment).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let cache_dir = var("HF_HUB_CACHE")
            .or_else(|| var("HUGGINGFACE_HUB_CACHE"))
            .map(PathBuf::from)
            .or_else(|| var("HF_HOME").map(|home| Path::new(&home).join("hub")))
            .or_else(|| var("XDG_CACHE_HOME").map(|xdg| Path::new(&xdg).join("huggingface/hub")))
            .or_else(|| var("HOME").map(|home| Path::new(&home).join(".cache/huggingface/hub")))
            .unwrap_or_else(|| PathBuf::from(".cache/huggingface/hub"));
        let offline = var("HF_HUB_OFFLINE").is_some_and(|v| is_true(&v));
        let endpoint = var("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        let token = var("HF_TOKEN").or_else(|| Cache::new(cache_dir.clone()).token());
        Self {
            cache_dir,
            offline,
            endpoint,
            token,
        }
    }
}

/// `huggingface_hub`'s reading of a boolean environment variable.
fn is_true(value: &str) -> bool {
    matches!(value.trim().to_ascii_uppercase().as_str(), "1" | "ON" | "YES" | "TRUE")
}

/// A model's files: a local folder, or one revision of a Hub repo.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    source: Source,
}

#[derive(Debug, Clone)]
enum Source {
    Local(PathBuf),
    Hub {
        repo_id: String,
        revision: String,
        settings: HubSettings,
    },
}

impl fmt::Display for ModelFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Source::Local(dir) => write!(f, "local folder {}", dir.display()),
            Source::Hub { repo_id, revision, .. } => write!(f, "Hub model {repo_id}@{revision}"),
        }
    }
}

impl ModelFiles {
    /// Resolve `model` (a folder in Hugging Face layout, or a Hub repo id `owner/name`) at
    /// `revision` (a branch, tag or commit; ignored for a folder) with the environment's
    /// [`HubSettings`].
    pub fn resolve(model: &str, revision: &str) -> anyhow::Result<Self> {
        Self::resolve_with(model, revision, HubSettings::from_env())
    }

    /// [`ModelFiles::resolve`] with explicit settings. A path that does not exist and cannot be a
    /// repo id, or an empty revision, is a [`ConfigError`].
    pub fn resolve_with(model: &str, revision: &str, settings: HubSettings) -> anyhow::Result<Self> {
        let path = Path::new(model);
        if path.is_dir() {
            return Ok(Self {
                source: Source::Local(path.to_path_buf()),
            });
        }
        if path.exists() {
            return Err(ConfigError::new(format!(
                "`{model}` is a file; expected a folder in Hugging Face layout (config.json, model.safetensors, ...) \
                 or a Hub repo id such as openai/clip-vit-base-patch16"
            ))
            .into());
        }
        if !is_repo_id(model) {
            return Err(ConfigError::new(format!(
                "folder `{model}` not found, and it is not a Hub repo id (`owner/name` of letters, digits, `-`, `_`, `.`)"
            ))
            .into());
        }
        if revision.trim().is_empty() {
            return Err(ConfigError::new("the revision is empty; expected a branch, tag or commit (e.g. main)").into());
        }
        Ok(Self {
            source: Source::Hub {
                repo_id: model.to_string(),
                revision: revision.to_string(),
                settings,
            },
        })
    }

    /// The path of file `name`, which must exist: from the folder, from the Hub cache, or (online)
    /// downloaded into the cache. The error says where fairlab looked and how to provide the file.
    pub fn get(&self, name: &str) -> anyhow::Result<PathBuf> {
        match &self.source {
            Source::Local(dir) => {
                let path = dir.join(name);
                if path.is_file() {
                    Ok(path)
                } else {
                    Err(ConfigError::new(format!(
                        "`{}` not found: the model folder {} must hold it (Hugging Face layout, as `save_pretrained` writes)",
                        path.display(),
                        dir.display()
                    ))
                    .into())
                }
            }
            Source::Hub {
                repo_id,
                revision,
                settings,
            } => {
                if let Some(path) = cached_file(&settings.cache_dir, repo_id, revision, name) {
                    return Ok(path);
                }
                if settings.offline {
                    return Err(self
                        .not_cached(name, "HF_HUB_OFFLINE is set, so nothing is downloaded")
                        .into());
                }
                download(settings, repo_id, revision, name)
                    .map_err(|e| anyhow::Error::from(self.not_cached(name, &format!("downloading it failed: {e:#}"))))
            }
        }
    }

    /// The path of file `name`, or `None` when the model does not have it. For a Hub model that is
    /// not cached, "does not have it" is only known online (a download that finds no such file);
    /// offline, a file missing from a cached snapshot counts as absent.
    pub fn get_optional(&self, name: &str) -> anyhow::Result<Option<PathBuf>> {
        match &self.source {
            Source::Local(dir) => Ok(Some(dir.join(name)).filter(|p| p.is_file())),
            Source::Hub {
                repo_id,
                revision,
                settings,
            } => {
                if let Some(path) = cached_file(&settings.cache_dir, repo_id, revision, name) {
                    return Ok(Some(path));
                }
                if settings.offline {
                    return Ok(None);
                }
                Ok(download(settings, repo_id, revision, name).ok())
            }
        }
    }

    /// The safetensors files holding the weights: `model.safetensors`, or the shards listed by
    /// `model.safetensors.index.json` (each once, in the order of first appearance).
    pub fn safetensors(&self) -> anyhow::Result<Vec<PathBuf>> {
        if let Some(single) = self.get_optional("model.safetensors")? {
            return Ok(vec![single]);
        }
        let Some(index) = self.get_optional("model.safetensors.index.json")? else {
            return Err(self
                .not_cached(
                    "model.safetensors",
                    "neither model.safetensors nor model.safetensors.index.json (sharded weights) was found; \
                     only safetensors weights are read (convert pytorch_model.bin with `save_pretrained(safe_serialization=True)`)",
                )
                .into());
        };
        shard_names(&index)?.iter().map(|shard| self.get(shard)).collect()
    }

    /// A [`ConfigError`] for a file that could not be had, with where fairlab looked and how to
    /// provide it.
    fn not_cached(&self, name: &str, why: &str) -> ConfigError {
        match &self.source {
            Source::Local(dir) => ConfigError::new(format!("`{name}` not found in {}: {why}", dir.display())),
            Source::Hub {
                repo_id,
                revision,
                settings,
            } => ConfigError::new(format!(
                "`{name}` of Hub model {repo_id}@{revision} is not in the Hugging Face cache ({why}). Looked in {} \
                 (refs/{revision} -> snapshots/<commit>/{name}); the cache is HF_HUB_CACHE, else $HF_HOME/hub, \
                 else ~/.cache/huggingface/hub. To provide it: on a machine with network run \
                 `huggingface-cli download {repo_id} --revision {revision}` and copy the cache folder here \
                 (or point HF_HOME at it), or set `model:` to a local folder saved with `save_pretrained`",
                settings.cache_dir.join(repo_folder(repo_id)).display()
            )),
        }
    }
}

/// Whether `model` can be a Hub repo id: `name` or `owner/name` of ASCII letters, digits, `-`, `_`
/// and `.`, not starting or ending with `.` or `-` (the Hub's naming rules).
fn is_repo_id(model: &str) -> bool {
    let parts: Vec<&str> = model.split('/').collect();
    parts.len() <= 2
        && parts.iter().all(|part| {
            !part.is_empty()
                && part.len() <= 96
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                && !part.starts_with(['.', '-'])
                && !part.ends_with(['.', '-'])
                && !part.contains("..")
        })
}

/// The cache folder name of a model repo (`models--owner--name`).
fn repo_folder(repo_id: &str) -> String {
    Repo::new(repo_id.to_string(), RepoType::Model).folder_name()
}

/// A file of the cache: the snapshot is `refs/<revision>` (trimmed; `huggingface_hub` writes no
/// newline, other tools may) or, for a commit hash, `snapshots/<revision>` itself.
fn cached_file(cache_dir: &Path, repo_id: &str, revision: &str, name: &str) -> Option<PathBuf> {
    let repo_dir = cache_dir.join(repo_folder(repo_id));
    let commit = std::fs::read_to_string(repo_dir.join("refs").join(revision))
        .map(|c| c.trim().to_string())
        .ok()
        .or_else(|| is_commit_hash(revision).then(|| revision.to_string()))?;
    let path = repo_dir.join("snapshots").join(commit).join(name);
    path.is_file().then_some(path)
}

/// Whether `revision` is a full 40-hex commit id.
fn is_commit_hash(revision: &str) -> bool {
    revision.len() == 40 && revision.chars().all(|c| c.is_ascii_hexdigit())
}

/// Download one file into the cache with `hf-hub` (which also writes `refs/<revision>`).
fn download(settings: &HubSettings, repo_id: &str, revision: &str, name: &str) -> anyhow::Result<PathBuf> {
    let api = hf_hub::api::sync::ApiBuilder::from_cache(Cache::new(settings.cache_dir.clone()))
        .with_endpoint(settings.endpoint.clone())
        .with_token(settings.token.clone())
        .with_progress(crate::progress::enabled())
        .build()
        .context("cannot set up the Hub client")?;
    let repo = Repo::with_revision(repo_id.to_string(), RepoType::Model, revision.to_string());
    tracing::info!(repo_id, revision, file = name, endpoint = %settings.endpoint, "downloading from the Hub");
    Ok(api.repo(repo).get(name)?)
}

/// The shard file names of a `model.safetensors.index.json` (its `weight_map` values), each once.
fn shard_names(index: &Path) -> anyhow::Result<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct Index {
        weight_map: std::collections::BTreeMap<String, String>,
    }
    let text = std::fs::read_to_string(index).with_context(|| format!("cannot read {}", index.display()))?;
    let parsed: Index = serde_json::from_str(&text).map_err(|e| {
        ConfigError::new(format!(
            "{}: not a safetensors index (`weight_map`): {e}",
            index.display()
        ))
    })?;
    let mut shards: Vec<String> = Vec::new();
    for shard in parsed.weight_map.into_values() {
        if shard.contains("..") || Path::new(&shard).is_absolute() {
            return Err(ConfigError::new(format!("{}: bad shard name `{shard}`", index.display())).into());
        }
        if !shards.contains(&shard) {
            shards.push(shard);
        }
    }
    anyhow::ensure!(
        !shards.is_empty(),
        ConfigError::new(format!("{}: `weight_map` lists no shard", index.display()))
    );
    Ok(shards)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(cache_dir: &Path, offline: bool) -> HubSettings {
        HubSettings {
            cache_dir: cache_dir.to_path_buf(),
            offline,
            endpoint: "http://127.0.0.1:9".to_string(),
            token: None,
        }
    }

    /// A cache with one repo `owner/model` whose `main` points at a snapshot holding `files`.
    fn cache_with(files: &[(&str, &str)], ref_text: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("models--owner--model");
        let commit = "0123456789abcdef0123456789abcdef01234567";
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), ref_text.replace("{commit}", commit)).unwrap();
        let snapshot = repo.join("snapshots").join(commit);
        std::fs::create_dir_all(&snapshot).unwrap();
        for (name, text) in files {
            std::fs::write(snapshot.join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn cache_location_follows_huggingface_hub() {
        let env = |pairs: &[(&str, &str)]| {
            let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            HubSettings::from_vars(move |k| map.get(k).cloned())
        };
        assert_eq!(env(&[("HOME", "/h")]).cache_dir, Path::new("/h/.cache/huggingface/hub"));
        assert_eq!(
            env(&[("HOME", "/h"), ("XDG_CACHE_HOME", "/x")]).cache_dir,
            Path::new("/x/huggingface/hub")
        );
        assert_eq!(
            env(&[("HOME", "/h"), ("HF_HOME", "/hf")]).cache_dir,
            Path::new("/hf/hub")
        );
        assert_eq!(
            env(&[("HF_HOME", "/hf"), ("HF_HUB_CACHE", "/c")]).cache_dir,
            Path::new("/c")
        );
        assert_eq!(
            env(&[("HF_HOME", "/hf"), ("HUGGINGFACE_HUB_CACHE", "/legacy")]).cache_dir,
            Path::new("/legacy")
        );
        assert!(env(&[("HF_HUB_OFFLINE", "1")]).offline);
        assert!(env(&[("HF_HUB_OFFLINE", "true")]).offline);
        assert!(!env(&[("HF_HUB_OFFLINE", "0")]).offline);
        assert!(!env(&[]).offline);
        assert_eq!(env(&[]).endpoint, DEFAULT_ENDPOINT);
        assert_eq!(env(&[("HF_TOKEN", "hf_x")]).token.as_deref(), Some("hf_x"));
    }

    #[test]
    fn repo_ids_and_paths_are_told_apart() {
        for ok in [
            "openai/clip-vit-base-patch16",
            "gpt2",
            "Salesforce/blip-image-captioning-base",
            "a.b/c_d",
        ] {
            assert!(is_repo_id(ok), "{ok}");
        }
        for bad in [
            "",
            "/abs/path",
            "./rel",
            "../up",
            "a/b/c",
            "a//b",
            "owner/.hidden",
            "x y/z",
            "a/b-",
        ] {
            assert!(!is_repo_id(bad), "{bad}");
        }
        let dir = tempfile::tempdir().unwrap();
        let err = ModelFiles::resolve_with("./no/such/folder", "main", settings(dir.path(), true)).unwrap_err();
        assert!(err.to_string().contains("folder `./no/such/folder` not found"), "{err}");
        let err = ModelFiles::resolve_with("owner/model", " ", settings(dir.path(), true)).unwrap_err();
        assert!(err.to_string().contains("revision is empty"), "{err}");
    }

    #[test]
    fn cached_files_resolve_offline_by_ref_or_commit() {
        // A trailing newline in refs/main is tolerated.
        let cache = cache_with(&[("config.json", "{}")], "{commit}\n");
        let files = ModelFiles::resolve_with("owner/model", "main", settings(cache.path(), true)).unwrap();
        let config = files.get("config.json").unwrap();
        assert!(config.ends_with("snapshots/0123456789abcdef0123456789abcdef01234567/config.json"));
        let pinned = ModelFiles::resolve_with(
            "owner/model",
            "0123456789abcdef0123456789abcdef01234567",
            settings(cache.path(), true),
        )
        .unwrap();
        assert_eq!(pinned.get("config.json").unwrap(), config);
        assert_eq!(files.get_optional("tokenizer.json").unwrap(), None);
        assert_eq!(files.to_string(), "Hub model owner/model@main");
    }

    #[test]
    fn a_missing_file_offline_says_where_and_how() {
        let cache = cache_with(&[("config.json", "{}")], "{commit}");
        let files = ModelFiles::resolve_with("owner/model", "main", settings(cache.path(), true)).unwrap();
        let err = files.get("model.safetensors").unwrap_err();
        let config_error = err.downcast_ref::<ConfigError>().expect("a ConfigError");
        let msg = &config_error.message;
        assert!(msg.contains("HF_HUB_OFFLINE"), "{msg}");
        assert!(
            msg.contains(&cache.path().join("models--owner--model").display().to_string()),
            "{msg}"
        );
        assert!(
            msg.contains("huggingface-cli download owner/model --revision main"),
            "{msg}"
        );
        let other = ModelFiles::resolve_with("owner/other", "main", settings(cache.path(), true)).unwrap();
        assert!(other
            .get("config.json")
            .unwrap_err()
            .to_string()
            .contains("models--owner--other"));
    }

    #[test]
    fn online_failures_are_reported_with_the_same_guidance() {
        let cache = tempfile::tempdir().unwrap();
        // Port 9 (discard) on loopback refuses connections: a network failure without a network.
        let files = ModelFiles::resolve_with("owner/model", "main", settings(cache.path(), false)).unwrap();
        let err = files.get("config.json").unwrap_err().to_string();
        assert!(err.contains("downloading it failed"), "{err}");
        assert!(err.contains("huggingface-cli download owner/model"), "{err}");
        assert_eq!(files.get_optional("config.json").unwrap(), None);
    }

    #[test]
    fn local_folders_and_sharded_weights() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("model.safetensors.index.json"),
            r#"{"metadata": {}, "weight_map": {"b": "model-00002-of-00002.safetensors",
                "a": "model-00001-of-00002.safetensors", "c": "model-00002-of-00002.safetensors"}}"#,
        )
        .unwrap();
        let files = ModelFiles::resolve_with(dir.path().to_str().unwrap(), "main", settings(dir.path(), true)).unwrap();
        // Shards are listed once each; a missing shard is an error naming it.
        let err = files.safetensors().unwrap_err().to_string();
        assert!(err.contains("model-00001-of-00002.safetensors"), "{err}");
        for shard in ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"] {
            std::fs::write(dir.path().join(shard), b"x").unwrap();
        }
        let shards = files.safetensors().unwrap();
        assert_eq!(shards.len(), 2);
        assert!(shards[0].ends_with("model-00001-of-00002.safetensors"));
        std::fs::write(dir.path().join("model.safetensors"), b"x").unwrap();
        assert_eq!(files.safetensors().unwrap(), vec![dir.path().join("model.safetensors")]);
        let empty = tempfile::tempdir().unwrap();
        let files =
            ModelFiles::resolve_with(empty.path().to_str().unwrap(), "main", settings(dir.path(), true)).unwrap();
        assert!(files
            .safetensors()
            .unwrap_err()
            .to_string()
            .contains("model.safetensors.index.json"));
        assert!(files
            .get("config.json")
            .unwrap_err()
            .to_string()
            .contains("save_pretrained"));
    }
}
