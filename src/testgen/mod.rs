//! LLM-generated unit tests for problems that ship none: ask an OpenAI-compatible endpoint
//! once per problem, read the tests out of its answer, validate them, cache them.
//!
//! # Files
//! - [`config`]: the `[testgen]` section ([`TestgenConfig`]); endpoint from `OPENAI_BASE_URL`,
//!   key from `OPENAI_API_KEY` when the file does not say.
//! - [`client`]: the chat-completions client: one budget per call, retries with backoff on 429,
//!   5xx and timeouts (honouring `Retry-After`), a circuit breaker, a cap on requests in flight.
//! - [`prompt`]: the template (built-in, versioned) and the test shape (assert or stdio).
//! - [`extract`]: tests picked out of the answer with tree-sitter; the rest dropped by reason.
//! - [`cache`]: the cache key, what an entry holds, and the store interface ([`TestCache`]).
//! - [`sqlite`]: the store: one SQLite file, shareable between processes.
//! - [`generator`]: [`Testgen`]: memory → store → one request per key however many rollouts
//!   ask at once (single-flight).
//! - [`validate`]: the sandbox runs that decide which tests are trusted (reference, two seeds).
//! - [`agreement`]: dual agreement over a group's rollouts when there is no reference.
//! - [`offline`]: `verdict tests generate`: validated tests written into a dataset.
//! - [`eval`]: precision and recall of generated tests against real ones (`verdict tests eval`).
//! - [`show`]: what the cache holds for a problem (`verdict tests show`).
//!
//! The `generated` verifier ([`crate::verifiers::generated`]) puts these together in a chain.

pub mod agreement;
pub mod cache;
pub mod client;
pub mod config;
pub mod eval;
pub mod extract;
pub mod generator;
pub mod offline;
pub mod prompt;
pub mod show;
pub mod sqlite;
pub mod validate;

pub use cache::{CacheError, CacheKey, Entry, Generated, Method, TestCache, Validation};
pub use client::{ChatClient, LlmError};
pub use config::{Endpoint, TestgenConfig};
pub use extract::{extract_tests, DropReason, Extraction, Rejected};
pub use generator::{Problem, Stats, Testgen, TestgenError};
pub use prompt::{Shape, ShapeChoice};
pub use sqlite::SqliteCache;

use std::path::PathBuf;
use std::sync::Arc;

/// The cache file `config` names: [`sqlite::FILE_NAME`] in `testgen.cache_dir`, else in
/// `testgen/` under `default_cache_root` (the verdict cache directory).
pub fn cache_file(
    config: &TestgenConfig,
    default_cache_root: impl FnOnce() -> Option<PathBuf>,
) -> Result<PathBuf, String> {
    let dir = match &config.cache_dir {
        Some(dir) => dir.clone(),
        None => default_cache_root()
            .ok_or("no cache directory for generated tests: set testgen.cache_dir")?
            .join("testgen"),
    };
    Ok(dir.join(sqlite::FILE_NAME))
}

/// The generator `config` describes, caching under `default_cache_root` unless the section
/// names a directory; `Ok(None)` when generation is not active (no endpoint or no model).
pub fn from_config(
    config: &TestgenConfig,
    default_cache_root: impl FnOnce() -> Option<PathBuf>,
) -> Result<Option<Testgen>, String> {
    let Some(endpoint) = config.endpoint() else {
        return Ok(None);
    };
    let file = cache_file(config, default_cache_root)?;
    let cache = Arc::new(SqliteCache::open(file, sqlite::Access::ReadWrite));
    Testgen::new(endpoint, config, cache).map(Some)
}
