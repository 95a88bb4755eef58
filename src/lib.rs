//! verdict turns LLM rollouts into rewards nobody has to label by hand.
//!
//! # Layout
//! - [`rollout`]: what comes in — a [`Rollout`] and its [`TestCase`]s.
//! - [`json`]: JSON values read digit for digit (call tests' `args` and `expected`).
//! - [`score`]: what goes out — a [`Score`] with its per-verifier breakdown.
//! - [`extract`]: completion → [`extract::Answer`] (reasoning, code, fences).
//! - [`pysource`]: Python source: the per-thread tree-sitter parser and the parse classifier.
//! - [`verifiers`]: the [`Verifier`] trait and the built-in verifiers.
//! - [`sandbox`]: sandboxed Python (wasmtime + pre-initialized CPython): runs code against tests.
//! - [`columns`]: trainer fields (TRL columns, verl `ground_truth`, OpenRLHF labels) → [`Rollout`].
//! - [`adapters`]: dataset fields (HumanEval, verl, open-r1, LiveCodeBench) → tests.
//! - [`tolerance`]: a float tolerance stated in a problem's text → its tests' rule.
//! - [`testgen`]: LLM-generated tests: OpenAI-compatible client, extraction, validation, cache.
//! - [`chain`]: runs verifiers in order, gates, weighs, aggregates.
//! - [`registry`]: the verifier kinds a chain may name; library users add their own.
//! - [`plugins`]: verifier kinds from `verdict.toml`: Python functions (pyo3) and wasm
//!   components (wasmtime, `wit/plugin.wit`).
//! - [`config`]: `verdict.toml` → [`Chain`], with every problem reported at once.
//! - [`batch`]: the one JSONL loop (local or remote), ordered output, crash-safe resume.
//! - [`pb`]: the generated protobuf/gRPC code for `proto/verdict/v1/reward.proto`.
//! - [`convert`]: wire messages ↔ [`Rollout`] / [`Score`].
//! - [`service`]: the tonic `RewardService` (admission, deadlines, cancellation) and its HTTP/JSON gateway.
//! - [`server`]: [`server::run`] — reward service + health + reflection + metrics, graceful shutdown.
//! - [`metrics`]: Prometheus series and the `/metrics` endpoint.
//! - [`client`]: a client with retries, deadlines and load balancing over replicas.
//! - [`cli`]: the `verdict` command line, callable with a registry of your own kinds.
#![deny(missing_docs)]

pub mod adapters;
pub mod batch;
pub mod chain;
pub mod cli;
pub mod client;
pub mod columns;
pub mod config;
pub mod convert;
pub mod extract;
pub mod metrics;
pub mod pb;
pub mod plugins;
pub mod pysource;
pub mod registry;
pub mod server;
pub mod service;
pub mod testgen;
pub mod tolerance;
pub mod verifiers;

pub use verdict_contract::{decode, depth, field_error, json, rollout, score, FieldError};
pub use verdict_sandbox as sandbox;

pub use chain::Chain;
pub use config::{Config, ConfigError};
pub use registry::{BuildContext, Kind, Registry};
pub use rollout::{Compare, CompareMode, Limits, ProblemKey, Rollout, TestCase};
pub use score::{Cost, Outcome, Score, TestReport, TestResult, VerifierScore};
pub use verifiers::{Context, GroupInput, GroupMember, Verdict, Verifier};
