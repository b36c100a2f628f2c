//! Device and dtype selection from the strings of an experiment file (`device: auto|cpu|cuda|cuda:N`,
//! `dtype: f32|f16|bf16`). Bad values are [`ConfigError`]s, so the CLI exits with code 2.

use candle_core::{DType, Device};

use crate::error::ConfigError;

/// The device a `device:` setting names.
///
/// - `auto`: the first CUDA GPU when fairlab was built with `--features cuda` and one is present,
///   otherwise the CPU;
/// - `cpu`;
/// - `cuda` (GPU 0) or `cuda:N` (GPU `N`): an error when fairlab was built without CUDA or the GPU
///   cannot be opened.
pub fn select_device(spec: &str) -> anyhow::Result<Device> {
    let ordinal = match spec {
        "cpu" => return Ok(Device::Cpu),
        "auto" => {
            return Ok(if candle_core::utils::cuda_is_available() {
                Device::new_cuda(0).unwrap_or(Device::Cpu)
            } else {
                Device::Cpu
            })
        }
        "cuda" => 0,
        _ => match spec.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => n,
            _ => {
                return Err(ConfigError::new(format!(
                    "unknown device `{spec}`; expected one of auto, cpu, cuda, cuda:N (N = GPU index)"
                ))
                .into())
            }
        },
    };
    if !candle_core::utils::cuda_is_available() {
        return Err(ConfigError::new(format!(
            "device `{spec}` needs CUDA, but this fairlab was built without it; rebuild with `--features cuda` \
             (or use `device: cpu` / `device: auto`)"
        ))
        .into());
    }
    Device::new_cuda(ordinal)
        .map_err(|e| ConfigError::new(format!("cannot open CUDA device {ordinal} (`{spec}`): {e}")).into())
}

/// The floating-point type a `dtype:` setting names: `f32`, `f16` or `bf16`.
pub fn parse_dtype(spec: &str) -> anyhow::Result<DType> {
    match spec {
        "f32" => Ok(DType::F32),
        "f16" => Ok(DType::F16),
        "bf16" => Ok(DType::BF16),
        _ => Err(ConfigError::new(format!("unknown dtype `{spec}`; expected one of f32, f16, bf16")).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_message(err: anyhow::Error) -> String {
        err.downcast::<ConfigError>().expect("a ConfigError").message
    }

    #[test]
    fn cpu_and_auto_resolve() {
        assert!(select_device("cpu").unwrap().is_cpu());
        let auto = select_device("auto").unwrap();
        assert_eq!(
            auto.is_cuda(),
            candle_core::utils::cuda_is_available() && Device::new_cuda(0).is_ok()
        );
    }

    #[test]
    fn unknown_device_is_a_config_error() {
        for spec in ["gpu", "cuda:", "cuda:x", "CPU", ""] {
            let message = config_message(select_device(spec).unwrap_err());
            assert!(message.contains("auto, cpu, cuda, cuda:N"), "{spec}: {message}");
        }
    }

    #[test]
    fn cuda_without_cuda_build_says_how_to_rebuild() {
        if candle_core::utils::cuda_is_available() {
            return;
        }
        for spec in ["cuda", "cuda:1"] {
            let message = config_message(select_device(spec).unwrap_err());
            assert!(message.contains("--features cuda"), "{message}");
        }
    }

    #[test]
    fn dtypes() {
        assert_eq!(parse_dtype("f32").unwrap(), DType::F32);
        assert_eq!(parse_dtype("f16").unwrap(), DType::F16);
        assert_eq!(parse_dtype("bf16").unwrap(), DType::BF16);
        assert!(config_message(parse_dtype("float64").unwrap_err()).contains("f32, f16, bf16"));
    }
}
