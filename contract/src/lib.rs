//! What comes into verdict and what goes out, shared by the sandbox crate, the service, the
//! command line, the Python binding and the trainer. It depends on no transport (tonic, axum,
//! pyo3) and no engine (wasmtime, rusqlite).
//!
//! - [`rollout`]: what comes in — a [`Rollout`] and its [`TestCase`]s, the depth scanner.
//! - [`json`]: JSON values read digit for digit (call tests' `args` and `expected`).
//! - [`score`]: what goes out — a [`Score`] with its per-verifier breakdown and [`Outcome`]s.
#![deny(missing_docs)]

pub mod json;
pub mod rollout;
pub mod score;

pub use json::Json;
pub use rollout::{Compare, CompareMode, Limits, Rollout, TestCase};
pub use score::{
    Cost, Outcome, Score, TestReport, TestResult, VerifierScore, REWARD_SEMANTICS,
    UNVERSIONED_SEMANTICS,
};
