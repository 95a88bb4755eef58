//! The on-disk cache of generated tests: one JSON file per problem key.
//!
//! **Where**: `testgen.cache_dir`, by default `testgen/` in the verdict cache directory
//! (`$VERDICT_CACHE_DIR`, else `$XDG_CACHE_HOME/verdict`, else `~/.cache/verdict`).
//!
//! **Key** ([`CacheKey`]): sha256 of the problem text, the entry point, the model, the prompt
//! template's version, the seed, N and the test shape. Anything else (temperature, max tokens)
//! does not make a new key: change the template version to regenerate.
//!
//! **What a file holds** ([`Generated`]): the key's parts, the model's raw answer, the tests
//! extracted from it and the candidates dropped by reason. Validation (reference, agreement)
//! is not cached: it depends on the rollouts and is cheap next to a generation.
//!
//! **Sharing**: a file is written to a temporary file in the same directory and renamed into
//! place, so readers see a whole file or none, and several `verdict` processes (several
//! `verdict serve`s on one machine) may share the directory. Two processes that miss at once
//! both generate and the last rename wins; both results are valid. A file that cannot be read
//! is a miss (and is replaced).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::extract::Extraction;
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
    /// The key's digest (hex sha256 of its JSON), the file name.
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

/// The cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

/// Why the cache could not be written.
#[derive(Debug, thiserror::Error)]
#[error("writing the generated-tests cache {path}: {source}")]
pub struct CacheError {
    path: PathBuf,
    source: std::io::Error,
}

impl Cache {
    /// A cache in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Cache { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of `key`.
    pub fn path_of(&self, key: &CacheKey) -> PathBuf {
        self.dir.join(format!("{}.json", key.digest()))
    }

    /// The cached generation of `key`, if there is a readable one.
    pub fn get(&self, key: &CacheKey) -> Option<Generated> {
        let path = self.path_of(key);
        let bytes = std::fs::read(&path).ok()?;
        match serde_json::from_slice::<Generated>(&bytes) {
            Ok(g) if &g.key == key => Some(g),
            Ok(_) => {
                tracing::warn!(path = %path.display(), "Cached tests under another key; ignored.");
                None
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "Unreadable cached tests; ignored.");
                None
            }
        }
    }

    /// Store `generated` under its key, atomically.
    pub fn put(&self, generated: &Generated) -> Result<PathBuf, CacheError> {
        use std::io::Write as _;
        let path = self.path_of(&generated.key);
        let err = |source| CacheError {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(err)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(err)?;
        let json = serde_json::to_vec_pretty(generated).expect("a generation serializes");
        tmp.write_all(&json).map_err(err)?;
        tmp.as_file().sync_data().map_err(err)?;
        tmp.persist(&path).map_err(|e| err(e.error))?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: usize) -> CacheKey {
        CacheKey {
            problem_sha256: CacheKey::hash_problem("p"),
            entry_point: Some("f".into()),
            model: "m".into(),
            prompt_version: "v1".into(),
            seed: 0,
            n,
            shape: Shape::Assert,
        }
    }

    #[test]
    fn entries_round_trip_and_keys_differ_by_every_part() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("testgen"));
        assert_eq!(cache.get(&key(8)), None);
        let g = Generated {
            key: key(8),
            answer: "assert f(1) == 1".into(),
            finish_reason: Some("stop".into()),
            extraction: Extraction::default(),
        };
        cache.put(&g).unwrap();
        assert_eq!(cache.get(&key(8)), Some(g));
        assert_eq!(cache.get(&key(9)), None);
        assert_ne!(key(8).digest(), key(9).digest());
        std::fs::write(cache.path_of(&key(8)), b"{not json").unwrap();
        assert_eq!(cache.get(&key(8)), None, "a corrupt file is a miss");
    }
}
