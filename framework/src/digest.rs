//! Content digests for fingerprints and cache keys.

use std::fs::File;
use std::path::Path;

use anyhow::Context;
use sha2::{Digest, Sha256};

/// Lower-case hex SHA-256 of the bytes of `paths`, in order (one file: its usual `sha256sum`).
pub fn sha256_files(paths: &[impl AsRef<Path>]) -> anyhow::Result<String> {
    let mut hasher = Sha256::new();
    for path in paths {
        let path = path.as_ref();
        let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        std::io::copy(&mut file, &mut hasher).with_context(|| format!("cannot read {}", path.display()))?;
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_sha256sum_and_concatenates_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, b"abc").unwrap();
        std::fs::write(&b, b"").unwrap();
        // sha256("abc")
        assert_eq!(
            sha256_files(&[&a]).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(sha256_files(&[&a, &b]).unwrap(), sha256_files(&[&a]).unwrap());
        assert!(sha256_files(&[dir.path().join("missing")])
            .unwrap_err()
            .to_string()
            .contains("cannot open"));
    }
}
