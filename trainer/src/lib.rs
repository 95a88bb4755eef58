//! verdict-trainer: a DeepSeekMoE policy in Rust (burn), its tokenizer, generation, the base
//! (pretraining) and SFT stages, and GRPO with verdict's rewards.
//!
//! # Layout
//! - [`config`]: [`TrainConfig`] `{ policy: MoeConfig, optim, data, run }` and the presets.
//! - [`params`]: total and activated parameter counts from a config alone.
//! - [`model`]: the decoder — RoPE, MHA/MLA attention with a KV cache, SwiGLU, DeepSeekMoE.
//! - [`backend`]: the CPU backend and, behind the `cuda` feature, the CUDA one.
//! - [`tokenizer`]: byte-level BPE trained on the corpus, with `<think>`/`</think>`/EOS.
//! - [`data`]: the seeded Python problem generator, its splits, prompt templates (plain,
//!   R1-Zero), base corpus and SFT set.
//! - [`batches`]: token windows and SFT examples turned into tensors.
//! - [`generate`]: batched sampling (temperature, top-p, stop tokens) and token log-probs.
//! - [`checkpoint`]: safetensors weights with `config.json` beside them; checked loading.
//! - [`metrics`]: the JSONL metrics log and its SVG plots (smoothed, legend beside the chart).
//! - [`train`]: the supervised loop shared by `pretrain` and `sft` (resume, checkpoints).
//! - [`grad_norm`]: gradient clipping by the global norm over all parameters.
//! - [`reward`]: verdict as the reward: the gRPC client that scores each group, and the embedded
//!   `verdict serve` (below both [`grpo`] and [`eval`]).
//! - [`grpo`]: GRPO with verdict's rewards (objective, step phases, the loop).
//! - [`eval`]: held-out parse rate, and pass rate / mean reward scored by verdict.
//! - [`python`]: the Python parse check used by the evaluation.
#![deny(missing_docs)]

pub mod backend;
pub mod batches;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod eval;
pub mod generate;
pub mod grad_norm;
pub mod grpo;
pub mod metrics;
pub mod model;
pub mod params;
pub mod python;
pub mod reward;
pub mod tokenizer;
pub mod train;

pub use config::{MoeConfig, TrainConfig};
pub use model::MoeTransformer;
