//! The registry of verifier kinds: the one list `verdict.toml`, `verdict verifiers --kinds`,
//! gRPC `ListVerifiers` and [`crate::Config::needs_sandbox`] all read.
//!
//! Each [`Kind`] has a name (the `kind = "…"` of a `[[verifier]]` table), a one-line
//! description, whether it needs the shared sandbox, the kinds that must come before it in a
//! chain, and a build function that turns the step's own settings into a [`Verifier`] with the
//! shared resources of a [`BuildContext`].
//!
//! A library user adds kinds of their own and builds a chain from a `verdict.toml` that names
//! them:
//!
//! ```
//! use verdict::registry::{Kind, Registry};
//! use verdict::{Config, Context, Rollout, Verdict, Verifier};
//!
//! struct Short;
//!
//! #[async_trait::async_trait]
//! impl Verifier for Short {
//!     fn kind(&self) -> &'static str {
//!         "short"
//!     }
//!     async fn verify(&self, rollout: &Rollout, _ctx: &mut Context) -> Verdict {
//!         let score = if rollout.completion.len() < 100 { 1.0 } else { 0.0 };
//!         Verdict::pass(score, serde_json::json!({}))
//!     }
//! }
//!
//! let mut registry = Registry::builtin();
//! registry
//!     .register(Kind::new("short", "prefers short completions", |_settings, _cx| {
//!         Ok(Box::new(Short))
//!     }))
//!     .unwrap();
//! let config = Config::parse("[[verifier]]\nkind = \"short\"\n", "example").unwrap();
//! let chain = config.build_in(&registry).unwrap();
//! assert_eq!(chain.steps()[0].verifier.kind(), "short");
//! ```

use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::sandbox::Sandbox;
use crate::testgen::Testgen;
use crate::verifiers::format::FormatConfig;
use crate::verifiers::parse::ParseConfig;
use crate::verifiers::tests::TestsConfig;
use crate::verifiers::timing::TimingConfig;
use crate::verifiers::Verifier;

/// The shared resources a build function may use.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuildContext<'a> {
    sandbox: Option<&'a Sandbox>,
    testgen: Option<&'a Testgen>,
}

impl<'a> BuildContext<'a> {
    /// A context with the given sandbox (or none).
    pub fn new(sandbox: Option<&'a Sandbox>) -> Self {
        BuildContext {
            sandbox,
            testgen: None,
        }
    }

    /// The same context with the test generator (the `[testgen]` section's endpoint).
    pub fn with_testgen(mut self, testgen: Option<&'a Testgen>) -> Self {
        self.testgen = testgen;
        self
    }

    /// The test generator, or the error for `kind` that needs it where none is configured.
    pub fn testgen(&self, kind: &str) -> Result<&'a Testgen, BuildError> {
        self.testgen.ok_or_else(|| {
            BuildError(format!(
                "`{kind}` needs an LLM endpoint: set testgen.model and testgen.base_url \
                 (or OPENAI_BASE_URL)"
            ))
        })
    }

    /// The shared sandbox, or the error for `kind` that needs it where there is none.
    pub fn sandbox(&self, kind: &str) -> Result<&'a Sandbox, BuildError> {
        self.sandbox.ok_or_else(|| {
            BuildError(format!(
                "`{kind}` needs the sandbox, which is not available here"
            ))
        })
    }
}

/// Why a step could not be built: one line, reported with the step's position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BuildError(pub String);

impl From<String> for BuildError {
    fn from(s: String) -> Self {
        BuildError(s)
    }
}

/// A build function: the step's own settings (every key but the common ones) and the shared
/// resources → the verifier.
pub type BuildFn =
    dyn Fn(&toml::Table, &BuildContext<'_>) -> Result<Box<dyn Verifier>, BuildError> + Send + Sync;

/// One verifier kind.
#[derive(Clone)]
pub struct Kind {
    /// The `kind = "…"` of a `[[verifier]]` table.
    pub name: &'static str,
    /// One line for `verdict verifiers --kinds` and `ListVerifiers`.
    pub description: &'static str,
    /// Whether it runs code, so a chain with it starts the sandbox.
    pub needs_sandbox: bool,
    /// Kinds that must come earlier in the chain (e.g. `timing` reads what `tests` left).
    pub requires: &'static [&'static str],
    build: Arc<BuildFn>,
}

impl std::fmt::Debug for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kind")
            .field("name", &self.name)
            .field("needs_sandbox", &self.needs_sandbox)
            .field("requires", &self.requires)
            .finish_non_exhaustive()
    }
}

impl Kind {
    /// A kind that needs no sandbox and no earlier step.
    pub fn new(
        name: &'static str,
        description: &'static str,
        build: impl Fn(&toml::Table, &BuildContext<'_>) -> Result<Box<dyn Verifier>, BuildError>
            + Send
            + Sync
            + 'static,
    ) -> Self {
        Kind {
            name,
            description,
            needs_sandbox: false,
            requires: &[],
            build: Arc::new(build),
        }
    }

    /// The same kind, needing the sandbox.
    pub fn with_sandbox(mut self) -> Self {
        self.needs_sandbox = true;
        self
    }

    /// The same kind, needing steps of `kinds` before it.
    pub fn requiring(mut self, kinds: &'static [&'static str]) -> Self {
        self.requires = kinds;
        self
    }

    /// Build a verifier of this kind from its settings.
    pub fn build(
        &self,
        settings: &toml::Table,
        cx: &BuildContext<'_>,
    ) -> Result<Box<dyn Verifier>, BuildError> {
        (self.build)(settings, cx)
    }
}

/// Why a kind could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// A kind of that name is already registered.
    #[error("a verifier kind named `{0}` is already registered")]
    Duplicate(String),
}

/// The verifier kinds a chain may name, in registration order.
#[derive(Debug, Clone)]
pub struct Registry {
    kinds: Vec<Kind>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Registry {
    /// A registry with no kinds.
    pub fn empty() -> Self {
        Registry { kinds: Vec::new() }
    }

    /// The built-in kinds: `format`, `parse`, `tests`, `timing`, `generated`.
    pub fn builtin() -> Self {
        let kinds = vec![
            Kind::new(
                "format",
                "R1 <think>…</think> structure and reasoning language consistency",
                |settings, _| Ok(Box::new(settings_of::<FormatConfig>(settings)?.build()?)),
            ),
            Kind::new(
                "parse",
                "the answer is Python that parses (tree-sitter-python); a gate by default",
                |settings, _| Ok(Box::new(settings_of::<ParseConfig>(settings)?.build())),
            ),
            Kind::new(
                "tests",
                "runs the code against the rollout's tests in the wasm sandbox; pass fraction",
                |settings, cx| {
                    let sandbox = cx.sandbox("tests")?;
                    let verifier = settings_of::<TestsConfig>(settings)?
                        .build(sandbox)
                        .map_err(|e| BuildError(e.to_string()))?;
                    Ok(Box::new(verifier))
                },
            )
            .with_sandbox(),
            Kind::new(
                "timing",
                "among correct programs, prefers the cheaper one (deterministic wasm fuel)",
                |settings, cx| {
                    let sandbox = cx.sandbox("timing")?;
                    Ok(Box::new(
                        settings_of::<TimingConfig>(settings)?.build(sandbox)?,
                    ))
                },
            )
            .with_sandbox()
            .requiring(&["tests"]),
            Kind::new(
                "generated",
                "no tests? runs validated LLM-generated tests ([testgen]); pass fraction",
                crate::verifiers::generated::build,
            )
            .with_sandbox(),
        ];
        Registry { kinds }
    }

    /// Add a kind; its name must be new.
    pub fn register(&mut self, kind: Kind) -> Result<&mut Self, RegistryError> {
        if self.get(kind.name).is_some() {
            return Err(RegistryError::Duplicate(kind.name.to_string()));
        }
        self.kinds.push(kind);
        Ok(self)
    }

    /// The kind called `name`.
    pub fn get(&self, name: &str) -> Option<&Kind> {
        self.kinds.iter().find(|k| k.name == name)
    }

    /// Every kind, in registration order.
    pub fn kinds(&self) -> &[Kind] {
        &self.kinds
    }

    /// The names, comma-separated (for error messages).
    pub fn names(&self) -> String {
        self.kinds
            .iter()
            .map(|k| k.name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Deserialize a step's own settings into a verifier's config type (unknown keys are errors
/// where the type denies them).
pub fn settings_of<T: DeserializeOwned>(settings: &toml::Table) -> Result<T, BuildError> {
    T::deserialize(toml::Value::Table(settings.clone()))
        .map_err(|e| BuildError(e.message().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_kinds_say_what_they_need() {
        let r = Registry::builtin();
        let names: Vec<_> = r.kinds().iter().map(|k| k.name).collect();
        assert_eq!(names, ["format", "parse", "tests", "timing", "generated"]);
        assert!(!r.get("format").unwrap().needs_sandbox);
        assert!(r.get("tests").unwrap().needs_sandbox);
        assert_eq!(r.get("timing").unwrap().requires, ["tests"]);
    }

    #[test]
    fn a_kind_name_is_registered_once() {
        let mut r = Registry::builtin();
        let again = Kind::new("parse", "again", |s, _| {
            Ok(Box::new(settings_of::<ParseConfig>(s)?.build()))
        });
        assert_eq!(
            r.register(again).unwrap_err(),
            RegistryError::Duplicate("parse".into())
        );
    }
}
