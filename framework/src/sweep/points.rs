//! The points of a sweep before they become trials: the grid product of its axes, or seeded random
//! draws. A point is the list of [`Override`]s it applies, each remembering where in the file its
//! value is written so that errors about it point there.

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};

use super::distribution::below;
use super::{Method, SweepSpec, ZipGroup};
use crate::config::Override;

/// One axis's points (grid) or draws (random), each the overrides it applies.
type Axis = Vec<Vec<Override>>;

impl SweepSpec {
    /// Every trial's overrides, in plan order; the axes are the parameters in file order, then the
    /// zip groups. Grid: the Cartesian product, the first axis varying slowest. Random: `run_cap`
    /// draws, each axis from its own ChaCha20 stream keyed by `seed` and the axis's paths, so that
    /// adding, removing or reordering parameters leaves the other parameters' draws unchanged.
    pub(crate) fn points(&self) -> Vec<Vec<Override>> {
        match self.method {
            Method::Grid => {
                let mut axes: Vec<Axis> = self
                    .parameters
                    .iter()
                    .map(|p| {
                        let key = format!("sweep.parameters.{}", p.path);
                        let values = p.distribution.grid_values().expect("grid parameters are validated");
                        values
                            .into_iter()
                            .map(|(value, at)| vec![Override::from_file(&p.path, value, format!("{key}{at}"))])
                            .collect()
                    })
                    .collect();
                axes.extend(
                    self.zip
                        .iter()
                        .enumerate()
                        .map(|(g, group)| (0..group.points.len()).map(|i| zip_point(g, group, i)).collect()),
                );
                axes.iter().fold(vec![Vec::new()], |prefixes, axis| {
                    prefixes
                        .iter()
                        .flat_map(|prefix| axis.iter().map(move |point| [prefix.as_slice(), point].concat()))
                        .collect()
                })
            }
            Method::Random => {
                let n = self.run_cap.expect("random sweeps are validated to have a run_cap");
                let mut axes: Vec<Axis> = self
                    .parameters
                    .iter()
                    .map(|p| {
                        let key = format!("sweep.parameters.{}", p.path);
                        let mut rng = axis_rng(self.seed, &p.path);
                        (0..n)
                            .map(|_| {
                                let (value, at) = p.distribution.sample(&mut rng);
                                vec![Override::from_file(&p.path, value, format!("{key}{at}"))]
                            })
                            .collect()
                    })
                    .collect();
                axes.extend(self.zip.iter().enumerate().map(|(g, group)| {
                    let mut rng = axis_rng(self.seed, &group.paths.join(","));
                    (0..n)
                        .map(|_| zip_point(g, group, below(&mut rng, group.points.len() as u64) as usize))
                        .collect()
                }));
                (0..n as usize)
                    .map(|t| axes.iter().flat_map(|axis| axis[t].iter().cloned()).collect())
                    .collect()
            }
        }
    }
}

/// The overrides of point `i` of zip group `g`.
fn zip_point(g: usize, group: &ZipGroup, i: usize) -> Vec<Override> {
    group
        .paths
        .iter()
        .zip(&group.points[i])
        .map(|(path, value)| Override::from_file(path, value.clone(), format!("sweep.zip.{g}.{path}.{i}")))
        .collect()
}

/// The generator of one axis: `seed` selects the key, the axis's paths select the stream.
fn axis_rng(seed: u64, axis: &str) -> ChaCha20Rng {
    let digest = Sha256::digest(axis.as_bytes());
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    rng.set_stream(u64::from_le_bytes(
        digest[..8].try_into().expect("a SHA-256 has 32 bytes"),
    ));
    rng
}
