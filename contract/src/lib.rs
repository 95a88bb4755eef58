//! What comes into verdict and what goes out, shared by the sandbox crate, the service, the
//! command line, the Python binding and the trainer. It depends on no transport (tonic, axum,
//! pyo3) and no engine (wasmtime, rusqlite).
//!
//! - [`rollout`]: what comes in — a [`Rollout`] and its [`TestCase`]s.
//! - [`decode`]: the one text decoder ([`Rollout::from_json`] on every path).
//! - [`field_error`]: the one error of intake, a [`FieldError`] naming the field's path.
//! - [`depth`]: the one depth scanner and every nesting limit.
//! - [`json`]: JSON values read digit for digit (call tests' `args` and `expected`).
//! - [`score`]: what goes out — a [`Score`] with its per-verifier breakdown and [`Outcome`]s.
#![deny(missing_docs)]

pub mod decode;
pub mod depth;
pub mod field_error;
pub mod json;
pub mod rollout;
pub mod score;

pub use field_error::FieldError;
pub use json::Json;
pub use rollout::{Compare, CompareMode, Limits, ProblemKey, Rollout, SuiteStyle, TestCase};
pub use score::{
    Cost, Outcome, Score, TestReport, TestResult, VerifierScore, REWARD_SEMANTICS,
    UNVERSIONED_SEMANTICS,
};
