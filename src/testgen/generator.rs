//! [`Testgen`]: generated tests per problem, once — from memory, the persistent cache
//! ([`TestCache`]), or one LLM request shared by every rollout that asks at the same time
//! (single-flight).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::future::{BoxFuture, FutureExt, Shared};

use super::cache::{CacheKey, Generated, TestCache, Validation};
use super::client::{ChatClient, LlmError};
use super::config::{Endpoint, TestgenConfig};
use super::extract::extract_tests;
use super::prompt::{self, infer_shape, Shape, ShapeChoice};
use crate::rollout::Rollout;

/// The problem tests are generated for: what the cache key is made of, besides the settings,
/// and the name the cache files it under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Its name: the rollout's `problem_id`, else its `id` (not part of the key: the cache
    /// records every name that used an entry, for `verdict tests show`).
    pub name: String,
    /// The problem text (the rollout's prompt).
    pub text: String,
    /// The function to test, for assert tests.
    pub entry_point: Option<String>,
    /// The shape of test asked for.
    pub shape: Shape,
}

impl Problem {
    /// The problem of `rollout`, with the shape `choice` says (or inferred).
    pub fn of(rollout: &Rollout, choice: ShapeChoice) -> Self {
        let (inferred, function) = infer_shape(&rollout.prompt, rollout.entry_point.as_deref());
        let shape = match choice {
            ShapeChoice::Auto => inferred,
            ShapeChoice::Assert => Shape::Assert,
            ShapeChoice::Stdio => Shape::Stdio,
        };
        Problem {
            name: rollout.problem_name().to_string(),
            text: rollout.prompt.clone(),
            entry_point: match shape {
                Shape::Assert => function.or_else(|| Some("solution".into())),
                Shape::Stdio => None,
            },
            shape,
        }
    }
}

/// Why tests could not be generated: verdict's failure, so the rollout gets `error`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TestgenError {
    /// The endpoint failed.
    #[error(transparent)]
    Llm(#[from] LlmError),
    /// The generation task ended without an answer.
    #[error("internal error in test generation: {0}")]
    Internal(String),
}

/// Counters of one [`Testgen`], for reports and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Generations sent to the endpoint (each may take several HTTP attempts).
    pub generations: u64,
    /// Problems answered from the persistent cache.
    pub disk_hits: u64,
    /// Problems answered from memory (an earlier generation in this process).
    pub memory_hits: u64,
}

type Flight = Shared<BoxFuture<'static, Result<Arc<Generated>, TestgenError>>>;

/// Generates, caches and shares tests. Cheap to clone.
#[derive(Clone)]
pub struct Testgen {
    inner: Arc<Inner>,
}

struct Inner {
    client: ChatClient,
    cache: Arc<dyn TestCache>,
    template: String,
    version: String,
    n: usize,
    seed: u64,
    shape: ShapeChoice,
    flights: Mutex<HashMap<String, Flight>>,
    memory: Mutex<HashMap<String, Arc<Generated>>>,
    generations: AtomicU64,
    disk_hits: AtomicU64,
    memory_hits: AtomicU64,
}

impl std::fmt::Debug for Testgen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Testgen")
            .field("url", &self.inner.client.url())
            .field("model", &self.inner.client.model())
            .field("cache", &self.inner.cache.location())
            .finish_non_exhaustive()
    }
}

impl Testgen {
    /// A generator for `endpoint` with the settings of `config`, caching in `cache`.
    pub fn new(
        endpoint: Endpoint,
        config: &TestgenConfig,
        cache: Arc<dyn TestCache>,
    ) -> Result<Self, String> {
        let (template, version) = match (&config.template, &config.template_version) {
            (Some(t), Some(v)) => (t.clone(), v.clone()),
            (Some(_), None) => return Err("testgen.template_version is required".into()),
            (None, _) => (
                prompt::DEFAULT_TEMPLATE.to_string(),
                prompt::DEFAULT_VERSION.to_string(),
            ),
        };
        Ok(Testgen {
            inner: Arc::new(Inner {
                client: ChatClient::new(endpoint, config)?,
                cache,
                template,
                version,
                n: config.n,
                seed: config.seed,
                shape: config.shape,
                flights: Mutex::default(),
                memory: Mutex::default(),
                generations: AtomicU64::new(0),
                disk_hits: AtomicU64::new(0),
                memory_hits: AtomicU64::new(0),
            }),
        })
    }

    /// The shape setting.
    pub fn shape_choice(&self) -> ShapeChoice {
        self.inner.shape
    }

    /// Tests asked for per problem.
    pub fn n(&self) -> usize {
        self.inner.n
    }

    /// The persistent cache.
    pub fn cache(&self) -> &dyn TestCache {
        &*self.inner.cache
    }

    /// Record what a validation of a generation decided (for `verdict tests show`); queued.
    pub fn record(&self, validation: Validation) {
        self.inner.cache.record(validation);
    }

    /// One line for `verdict verifiers`.
    pub fn describe(&self) -> String {
        format!(
            "{} at {}, {} tests per problem, prompt {}, cache {}",
            self.inner.client.model(),
            self.inner.client.url(),
            self.inner.n,
            self.inner.version,
            self.inner.cache.location()
        )
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        Stats {
            generations: self.inner.generations.load(Ordering::Relaxed),
            disk_hits: self.inner.disk_hits.load(Ordering::Relaxed),
            memory_hits: self.inner.memory_hits.load(Ordering::Relaxed),
        }
    }

    /// The cache key of `problem`.
    pub fn key(&self, problem: &Problem) -> CacheKey {
        CacheKey {
            problem_sha256: CacheKey::hash_problem(&problem.text),
            entry_point: problem.entry_point.clone(),
            model: self.inner.client.model().to_string(),
            prompt_version: self.inner.version.clone(),
            seed: self.inner.seed,
            n: self.inner.n,
            shape: problem.shape,
        }
    }

    /// The tests of `problem`: from memory, else the persistent cache, else one request to the LLM
    /// that every concurrent caller for the same key shares. The generation runs on a task of
    /// its own, so it completes (and is cached) even when every caller has gone.
    pub async fn generate(&self, problem: &Problem) -> Result<Arc<Generated>, TestgenError> {
        let key = self.key(problem);
        let digest = key.digest();
        if let Some(g) = lock(&self.inner.memory).get(&digest).cloned() {
            self.inner.memory_hits.fetch_add(1, Ordering::Relaxed);
            crate::metrics::record_cache_lookup("generated_tests", true);
            return Ok(g);
        }
        let flight = {
            let mut flights = lock(&self.inner.flights);
            match flights.get(&digest) {
                Some(f) => f.clone(),
                None => {
                    let this = self.clone();
                    let problem = problem.clone();
                    let task =
                        tokio::spawn(async move { this.load_or_generate(key, &problem).await });
                    let flight = async move {
                        task.await
                            .unwrap_or_else(|e| Err(TestgenError::Internal(e.to_string())))
                    }
                    .boxed()
                    .shared();
                    flights.insert(digest.clone(), flight.clone());
                    flight
                }
            }
        };
        let result = flight.clone().await;
        {
            let mut flights = lock(&self.inner.flights);
            if flights.get(&digest).is_some_and(|f| f.ptr_eq(&flight)) {
                flights.remove(&digest);
            }
        }
        if let Ok(g) = &result {
            lock(&self.inner.memory).insert(digest, Arc::clone(g));
        }
        result
    }

    async fn load_or_generate(
        &self,
        key: CacheKey,
        problem: &Problem,
    ) -> Result<Arc<Generated>, TestgenError> {
        let cached = match self.inner.cache.get(&key).await {
            Ok(g) => g,
            Err(e) => {
                // Reported once by the store when it cannot be opened; a miss here.
                tracing::debug!(error = %e, "Cache lookup failed.");
                None
            }
        };
        if let Some(g) = cached {
            self.inner.disk_hits.fetch_add(1, Ordering::Relaxed);
            crate::metrics::record_cache_lookup("generated_tests", true);
            return Ok(Arc::new(g));
        }
        crate::metrics::record_cache_lookup("generated_tests", false);
        self.inner.generations.fetch_add(1, Ordering::Relaxed);
        let user = prompt::render(
            &self.inner.template,
            &problem.text,
            self.inner.n,
            problem.shape,
            problem.entry_point.as_deref(),
        );
        let completion = self.inner.client.complete(prompt::SYSTEM, &user).await?;
        let extraction = extract_tests(
            &completion.text,
            problem.shape,
            problem.entry_point.as_deref(),
            self.inner.n,
        );
        tracing::debug!(
            tests = extraction.tests.len(),
            dropped = ?extraction.dropped,
            "Generated tests."
        );
        let generated = Generated {
            key,
            answer: completion.text,
            finish_reason: completion.finish_reason,
            extraction,
        };
        // Another process may have stored the key meanwhile: then its entry is used, so that
        // every process scores with the same tests.
        match self.inner.cache.put(&generated, &problem.name).await {
            Ok(stored) => Ok(Arc::new(stored)),
            Err(e) => {
                tracing::debug!(error = %e, "Generated tests not cached.");
                Ok(Arc::new(generated))
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
