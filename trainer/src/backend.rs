//! The burn backends the trainer runs on: ndarray on the CPU (always built) and CUDA behind the
//! `cuda` cargo feature (cubecl-cuda; kernels compiled at run time by NVRTC).

use serde::{Deserialize, Serialize};

/// The CPU backend.
pub type CpuBackend = burn::backend::NdArray<f32>;
/// The CPU backend with autodiff, for training.
pub type CpuTrainBackend = burn::backend::Autodiff<CpuBackend>;

/// The CUDA backend.
#[cfg(feature = "cuda")]
pub type CudaBackend = burn::backend::Cuda<f32, i32>;
/// The CUDA backend with autodiff, for training.
#[cfg(feature = "cuda")]
pub type CudaTrainBackend = burn::backend::Autodiff<CudaBackend>;

/// Which device a command runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// ndarray on the CPU.
    #[default]
    Cpu,
    /// The first CUDA GPU (needs the `cuda` feature).
    Cuda,
}
