//! The persistent cache of generated tests: what it holds, and the interface a store implements
//! ([`TestCache`]). The store verdict ships is SQLite ([`super::sqlite::SqliteCache`]).
//!
//! **Key** ([`CacheKey`]): sha256 of the problem text, the entry point, the model, the prompt
//! template's version, the seed, N and the test shape. Anything else (temperature, max tokens)
//! does not make a new key: change the template version to regenerate.
//!
//! **What an entry holds** ([`Generated`]): the key's parts, the model's raw answer, the tests
//! extracted from it and the candidates dropped while reading it (text and reason). Beside it
//! the store keeps the problem names (`problem_id`, else the rollout's `id`) that used the
//! entry, and what validation decided about its candidates ([`Validation`]: kept, dropped and
//! why), so that `verdict tests show` can say what was kept and why the rest was dropped.
//! Validation results are recorded for reading, not reused for scoring: they depend on the
//! reference or the group's rollouts, and are cheap next to a generation.
//!
//! **Sharing**: the first entry stored under a key wins; a process that generated the same key
//! at the same time gets the stored entry back from [`TestCache::put`], so every process scores
//! with the same tests.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::extract::{DropReason, Extraction};
use super::prompt::Shape;

/// What identifies one generation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CacheKey {
    /// sha256 of the problem text (the rollout's prompt), hex.
    pub problem_sha256: String,
    /// The entry point, if any.
    pub entry_point: Option<String>,
    /// The model.
    pub model: String,
    /// The prompt template's version.
    pub prompt_version: String,
    /// The sampling seed.
    pub seed: u64,
    /// Tests asked for.
    pub n: usize,
    /// The shape asked for.
    pub shape: Shape,
}

impl CacheKey {
    /// The key's digest (hex sha256 of its JSON): the entry's id in the store.
    pub fn digest(&self) -> String {
        let json = serde_json::to_string(self).expect("a key serializes");
        hex::encode(Sha256::digest(json.as_bytes()))
    }

    /// sha256 of a problem text, hex.
    pub fn hash_problem(text: &str) -> String {
        hex::encode(Sha256::digest(text.as_bytes()))
    }
}

/// One cached generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generated {
    /// Its key.
    pub key: CacheKey,
    /// The model's raw answer.
    pub answer: String,
    /// `finish_reason` of the answer (`length` means it was cut off).
    pub finish_reason: Option<String>,
    /// The tests read from it and what was dropped.
    pub extraction: Extraction,
}

/// How a validation judged the candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The problem's reference solution ran them (two seeds).
    Reference,
    /// Dual agreement among the rollouts of one group.
    Agreement,
}

impl Method {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Reference => "reference",
            Method::Agreement => "agreement",
        }
    }
}

/// What one validation decided about the candidates of a generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validation {
    /// The generation's key digest.
    pub key: String,
    /// The problem it was validated for (`problem_id`, else the rollout's `id`).
    pub problem: String,
    /// How.
    pub method: Method,
    /// What it was judged against: for a reference, sha256 of the reference and setup; for
    /// agreement, the problem. The store keeps the latest validation per (key, method, basis).
    pub basis: String,
    /// Indices (into the generation's tests) kept.
    pub kept: Vec<usize>,
    /// Indices dropped, and why.
    pub dropped: Vec<(usize, DropReason)>,
    /// A remark (for agreement: how many rollouts agreed, or why none did).
    pub note: Option<String>,
    /// When it was recorded (unix seconds); set by the store.
    #[serde(default)]
    pub at: u64,
}

/// A generation with what the store knows about it, for `verdict tests show`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The key's digest.
    pub digest: String,
    /// When it was stored (unix seconds).
    pub created_at: u64,
    /// The generation.
    pub generated: Generated,
    /// The problem names that used it.
    pub problems: Vec<String>,
    /// Its validations, newest first.
    pub validations: Vec<Validation>,
}

/// Why the cache could not be used: the store's path (or address) and what went wrong.
#[derive(Debug, Clone, thiserror::Error)]
#[error("generated-tests cache {location}: {reason}")]
pub struct CacheError {
    /// The file (or address) of the store.
    pub location: String,
    /// What went wrong.
    pub reason: String,
}

/// A persistent store of generated tests, shared by every rollout, batch and process that
/// uses it. Implementations must not block the async runtime's worker threads.
///
/// [`super::Testgen`] asks [`get`](TestCache::get) on a miss in memory and
/// [`put`](TestCache::put) after a generation; failures of either are reported and the
/// generation goes on uncached. Single-flight is the generator's, in process; across processes
/// the store only has to keep the first entry per key.
#[async_trait::async_trait]
pub trait TestCache: Send + Sync + 'static {
    /// Where the store is (a path, an address), for messages.
    fn location(&self) -> String;

    /// The entry of `key`, if there is one.
    async fn get(&self, key: &CacheKey) -> Result<Option<Generated>, CacheError>;

    /// Store `generated` unless its key is already there, and name `problem` as one of its
    /// users; the stored entry (another process's if it was first).
    async fn put(&self, generated: &Generated, problem: &str) -> Result<Generated, CacheError>;

    /// Record a validation (and its problem name). Queued: never waits; written before the
    /// store is dropped. A failure is logged.
    fn record(&self, validation: Validation);

    /// The entries `problem` used (by problem name, or a key digest), newest first, at most
    /// `limit`.
    async fn entries(&self, problem: &str, limit: usize) -> Result<Vec<Entry>, CacheError>;
}

/// The current time in unix seconds.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
