//! Reading and writing safetensors files of candle tensors (probe weights, noise edits, cached
//! features), with string metadata.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

/// Serialise named tensors (moved to the CPU) and metadata into safetensors bytes.
pub fn to_safetensors(tensors: &[(&str, &Tensor)], metadata: HashMap<String, String>) -> anyhow::Result<Vec<u8>> {
    let cpu: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(k, t)| Ok((k.to_string(), t.to_device(&Device::Cpu)?)))
        .collect::<anyhow::Result<_>>()?;
    let metadata = if metadata.is_empty() { None } else { Some(metadata) };
    Ok(safetensors::serialize(cpu, metadata)?)
}

/// Write safetensors bytes atomically (temporary file in the same folder, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Load every tensor of a safetensors file onto `device`, with the file's metadata.
pub fn load(path: &Path, device: &Device) -> anyhow::Result<(HashMap<String, Tensor>, HashMap<String, String>)> {
    let bytes = std::fs::read(path)?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let tensors = candle_core::safetensors::load_buffer(&bytes, device)?;
    Ok((tensors, metadata))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_tensors_and_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/x.safetensors");
        let t = Tensor::new(&[[1.0f32, 2.0], [3.0, 4.0]], &Device::Cpu).unwrap();
        let bytes = to_safetensors(&[("t", &t)], HashMap::from([("k".to_string(), "v".to_string())])).unwrap();
        write_atomic(&path, &bytes).unwrap();
        let (tensors, meta) = load(&path, &Device::Cpu).unwrap();
        assert_eq!(
            tensors["t"].to_vec2::<f32>().unwrap(),
            vec![vec![1.0, 2.0], vec![3.0, 4.0]]
        );
        assert_eq!(meta["k"], "v");
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }
}
