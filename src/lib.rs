//! verdict turns LLM rollouts into rewards nobody has to label by hand.
//!
//! # Layout
//! - [`rollout`]: what comes in — a [`Rollout`] and its [`TestCase`]s.
//! - [`score`]: what goes out — a [`Score`] with its per-verifier breakdown.
//! - [`extract`]: completion → [`extract::Answer`] (reasoning, code, fences).
//! - [`verifiers`]: the [`Verifier`] trait and the built-in verifiers.
//! - [`chain`]: runs verifiers in order, gates, weighs, aggregates.
//! - [`config`]: `verdict.toml` → [`Chain`], with every problem reported at once.
//! - [`batch`]: streaming JSONL scoring with ordered output and crash-safe resume.
#![deny(missing_docs)]

pub mod batch;
pub mod chain;
pub mod config;
pub mod extract;
pub mod rollout;
pub mod score;
pub mod verifiers;

pub use chain::Chain;
pub use config::{Config, ConfigError};
pub use rollout::{Limits, Rollout, TestCase};
pub use score::{Cost, Outcome, Score, TestReport, TestResult, VerifierScore};
pub use verifiers::{Context, Verdict, Verifier};
