//! Checkpoints: a directory holding `model.safetensors` (weights, burn-store), `config.json`
//! (the whole [`TrainConfig`]), `state.json` ([`TrainerState`]) and, for resuming, `optim.bin`
//! and `resume-model.bin` (burn records: optimizer moments keyed by parameter id, and the ids).
//!
//! Loading builds the model from the `config.json` beside the weights and then checks that every
//! tensor name and shape matches; any mismatch fails with the list of offending tensors.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn_store::{ModuleSnapshot, SafetensorsStore};
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, TrainConfig};
use crate::model::MoeTransformer;

/// Weights file name inside a checkpoint directory.
pub const WEIGHTS: &str = "model.safetensors";
/// Config file name inside a checkpoint directory.
pub const CONFIG: &str = "config.json";
/// Trainer-state file name inside a checkpoint directory.
pub const STATE: &str = "state.json";
/// Optimizer-state file name (burn's binary recorder appends `.bin`).
pub const OPTIM: &str = "optim";
/// burn's own record of the model (parameter ids included, which the optimizer state is keyed
/// by), written for resuming; `.bin` appended.
pub const RESUME_MODEL: &str = "resume-model";

/// Errors from saving or loading a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// A file could not be read or written.
    #[error("checkpoint I/O at {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The weights file could not be written or read.
    #[error("safetensors at {path}: {message}")]
    Store {
        /// The weights file.
        path: PathBuf,
        /// What the store reported.
        message: String,
    },
    /// The weights do not fit the model built from the config beside them.
    #[error("weights at {path} do not match the model in its config.json:\n  {}", .problems.join("\n  "))]
    Mismatch {
        /// The weights file.
        path: PathBuf,
        /// One line per missing, unexpected or mis-shaped tensor.
        problems: Vec<String>,
    },
    /// The config beside the weights is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `state.json` is malformed.
    #[error("trainer state at {path}: {source}")]
    State {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// The optimizer state could not be saved or restored.
    #[error("optimizer state at {path}: {message}")]
    Optimizer {
        /// The file.
        path: PathBuf,
        /// What the recorder reported.
        message: String,
    },
}

/// Where a stage stands, saved with each checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// `pretrain` or `sft`.
    pub stage: String,
    /// Optimizer steps completed.
    pub step: usize,
    /// Training tokens consumed (loss-bearing targets).
    pub tokens: u64,
    /// Wall-clock seconds spent training so far (across resumes).
    pub elapsed_s: f64,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Directory name of the checkpoint at `step`.
pub fn step_dir(checkpoints: &Path, step: usize) -> PathBuf {
    checkpoints.join(format!("step-{step:07}"))
}

/// Whether `dir` holds a complete checkpoint (its `state.json`, written last, is there).
pub fn is_complete(dir: &Path) -> bool {
    dir.join(STATE).is_file()
}

/// The checkpoint with the highest step under `checkpoints`, if any is complete.
pub fn latest(checkpoints: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(checkpoints).ok()?;
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| is_complete(p))
        .filter_map(|p| {
            let step = p
                .file_name()?
                .to_str()?
                .strip_prefix("step-")?
                .parse::<usize>()
                .ok()?;
            Some((step, p))
        })
        .max_by_key(|(step, _)| *step)
        .map(|(_, p)| p)
}

/// Write weights, config and state into `dir` (created if needed). `state.json` is written last,
/// so a directory with a state file is complete.
pub fn save<B: Backend>(
    dir: &Path,
    model: &MoeTransformer<B>,
    config: &TrainConfig,
    state: &TrainerState,
) -> Result<(), CheckpointError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let weights = dir.join(WEIGHTS);
    let mut store = SafetensorsStore::from_file(&weights);
    model
        .save_into(&mut store)
        .map_err(|e| CheckpointError::Store {
            path: weights.clone(),
            message: e.to_string(),
        })?;
    let config_path = dir.join(CONFIG);
    config.save(&config_path).map_err(io(&config_path))?;
    let state_path = dir.join(STATE);
    let json = serde_json::to_string_pretty(state).map_err(|source| CheckpointError::State {
        path: state_path.clone(),
        source,
    })?;
    std::fs::write(&state_path, json).map_err(io(&state_path))
}

/// Names and shapes in a safetensors file, read from its JSON header.
fn file_shapes(weights: &Path) -> Result<Vec<(String, Vec<usize>)>, CheckpointError> {
    use std::io::Read;
    let store_err = |message: String| CheckpointError::Store {
        path: weights.to_path_buf(),
        message,
    };
    let mut file = std::fs::File::open(weights).map_err(io(weights))?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len).map_err(io(weights))?;
    let len = u64::from_le_bytes(len);
    if len > 100_000_000 {
        return Err(store_err(format!("header of {len} bytes is not plausible")));
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header).map_err(io(weights))?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(|e| store_err(e.to_string()))?;
    Ok(header
        .into_iter()
        .filter(|(name, _)| name != "__metadata__")
        .map(|(name, info)| {
            let shape = info["shape"]
                .as_array()
                .map(|dims| {
                    dims.iter()
                        .filter_map(|d| d.as_u64())
                        .map(|d| d as usize)
                        .collect()
                })
                .unwrap_or_default();
            (name, shape)
        })
        .collect())
}

/// Compare the tensors a model expects with those a file holds; one line per problem.
fn shape_problems(
    expected: &[(String, Vec<usize>)],
    found: &[(String, Vec<usize>)],
) -> Vec<String> {
    let found_map: std::collections::HashMap<&str, &Vec<usize>> =
        found.iter().map(|(n, s)| (n.as_str(), s)).collect();
    let expected_names: std::collections::HashSet<&str> =
        expected.iter().map(|(n, _)| n.as_str()).collect();
    let mut problems = Vec::new();
    for (name, shape) in expected {
        match found_map.get(name.as_str()) {
            None => problems.push(format!("missing from the file: {name} {shape:?}")),
            Some(&file_shape) if file_shape != shape => problems.push(format!(
                "shape of {name}: file {file_shape:?}, model {shape:?}"
            )),
            Some(_) => {}
        }
    }
    for (name, shape) in found {
        if !expected_names.contains(name.as_str()) {
            problems.push(format!("not in the model: {name} {shape:?}"));
        }
    }
    problems
}

/// Load `weights` into `model`, failing on any missing, unexpected or mis-shaped tensor.
pub fn load_weights<B: Backend>(
    mut model: MoeTransformer<B>,
    weights: &Path,
) -> Result<MoeTransformer<B>, CheckpointError> {
    let expected: Vec<(String, Vec<usize>)> = model
        .collect(None, None, false)
        .iter()
        .map(|t| (t.full_path(), t.shape.to_vec()))
        .collect();
    let problems = shape_problems(&expected, &file_shapes(weights)?);
    if !problems.is_empty() {
        return Err(CheckpointError::Mismatch {
            path: weights.to_path_buf(),
            problems,
        });
    }
    let mut store = SafetensorsStore::from_file(weights)
        .validate(true)
        .allow_partial(false);
    let result = model
        .load_from(&mut store)
        .map_err(|e| CheckpointError::Store {
            path: weights.to_path_buf(),
            message: e.to_string(),
        })?;
    let problems: Vec<String> = result.errors.iter().map(|e| e.to_string()).collect();
    if problems.is_empty() {
        Ok(model)
    } else {
        Err(CheckpointError::Mismatch {
            path: weights.to_path_buf(),
            problems,
        })
    }
}

/// A loaded checkpoint.
#[derive(Debug)]
pub struct Loaded<B: Backend> {
    /// The model with the saved weights.
    pub model: MoeTransformer<B>,
    /// The config saved beside them.
    pub config: TrainConfig,
    /// The trainer state saved beside them.
    pub state: TrainerState,
}

/// Load the checkpoint in `dir`: build the model from its `config.json`, then load the weights.
pub fn load<B: Backend>(dir: &Path, device: &B::Device) -> Result<Loaded<B>, CheckpointError> {
    let config_path = dir.join(CONFIG);
    let config = TrainConfig::load(&config_path.to_string_lossy())?;
    let state_path = dir.join(STATE);
    let text = std::fs::read_to_string(&state_path).map_err(io(&state_path))?;
    let state = serde_json::from_str(&text).map_err(|source| CheckpointError::State {
        path: state_path,
        source,
    })?;
    let model = load_weights(
        MoeTransformer::new(&config.policy, device),
        &dir.join(WEIGHTS),
    )?;
    Ok(Loaded {
        model,
        config,
        state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::CpuBackend;

    type B = CpuBackend;

    fn config() -> TrainConfig {
        let mut config = TrainConfig::load("tiny").unwrap();
        config.policy.vocab_size = 30;
        config.policy.d_model = 16;
        config.policy.n_layers = 2;
        config.policy.n_heads = 2;
        config.policy.attention = crate::config::AttentionConfig::Mha { head_dim: 8 };
        config
    }

    fn logits(model: &MoeTransformer<B>) -> Vec<f32> {
        let tokens = Tensor::<B, 2, Int>::from_data(
            TensorData::new(vec![1i64, 5, 9, 2], [1, 4]),
            &Default::default(),
        );
        model.forward(tokens).logits.into_data().to_vec().unwrap()
    }

    #[test]
    fn round_trip_restores_weights_config_state_and_router_bias() {
        let dir = tempfile::tempdir().unwrap();
        let config = config();
        let device = Default::default();
        let mut model = MoeTransformer::<B>::new(&config.policy, &device);
        model.update_router_biases(&[vec![9, 0, 0, 0, 0, 0, 0, 0]]);
        let state = TrainerState {
            stage: "pretrain".into(),
            step: 12,
            tokens: 3456,
            elapsed_s: 1.5,
        };
        let ckpt = step_dir(dir.path(), 12);
        save(&ckpt, &model, &config, &state).unwrap();
        assert_eq!(latest(dir.path()), Some(ckpt.clone()));
        let loaded = load::<B>(&ckpt, &device).unwrap();
        assert_eq!(loaded.config, config);
        assert_eq!(loaded.state, state);
        assert_eq!(logits(&loaded.model), logits(&model));
        let fresh = MoeTransformer::<B>::new(&config.policy, &device);
        assert_ne!(logits(&fresh), logits(&model), "a fresh model differs");
    }

    #[test]
    fn loading_into_a_different_shape_names_the_tensors() {
        let dir = tempfile::tempdir().unwrap();
        let config = config();
        let device = Default::default();
        let model = MoeTransformer::<B>::new(&config.policy, &device);
        save(dir.path(), &model, &config, &TrainerState::default()).unwrap();
        let mut other = config.policy.clone();
        other.d_model = 24;
        other.n_layers = 3;
        let err = load_weights(
            MoeTransformer::<B>::new(&other, &device),
            &dir.path().join(WEIGHTS),
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, CheckpointError::Mismatch { .. }), "{message}");
        assert!(
            message.contains("missing from the file: blocks.2.attn.mha.wq.weight"),
            "{message}"
        );
        assert!(
            message.contains("shape of embed.weight: file [30, 16], model [30, 24]"),
            "{message}"
        );
    }

    #[test]
    fn latest_ignores_incomplete_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let config = config();
        let model = MoeTransformer::<B>::new(&config.policy, &Default::default());
        save(
            &step_dir(dir.path(), 5),
            &model,
            &config,
            &TrainerState::default(),
        )
        .unwrap();
        std::fs::create_dir_all(step_dir(dir.path(), 9)).unwrap();
        assert_eq!(latest(dir.path()), Some(step_dir(dir.path(), 5)));
    }
}
