//! What a verifier kind is, below the verifiers and the registry: a [`Kind`] (name,
//! description, [`Origin`], what it needs, one build function), the [`BuildContext`] of shared
//! resources a build function gets, and its [`BuildError`]. Each built-in verifier module
//! exports one `kind()` whose build function has the one signature [`BuildFn`]; the registry
//! ([`crate::registry`]) lists them.

use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::Verifier;
use crate::sandbox::Sandbox;
use crate::testgen::Testgen;

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

/// Where a verifier kind came from, as `verdict verifiers --kinds` and `ListVerifiers` report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// One of verdict's own kinds ([`Registry::builtin`]).
    BuiltIn,
    /// Registered from Rust by the program that embeds verdict ([`Registry::register`]).
    Rust,
    /// A Python function in a file (`[plugins.NAME] python = "…"`).
    PythonFile(std::path::PathBuf),
    /// A Python function in an importable module (`[plugins.NAME] module = "…"`).
    PythonModule(String),
    /// A WebAssembly component file (`[plugins.NAME] wasm = "…"`).
    WasmFile(std::path::PathBuf),
}

impl Origin {
    /// The short word for listings: `built-in`, `rust`, `python`, `wasm`.
    pub fn label(&self) -> &'static str {
        match self {
            Origin::BuiltIn => "built-in",
            Origin::Rust => "rust",
            Origin::PythonFile(_) | Origin::PythonModule(_) => "python",
            Origin::WasmFile(_) => "wasm",
        }
    }

    /// The file or module it was loaded from, if any.
    pub fn source(&self) -> Option<String> {
        match self {
            Origin::BuiltIn | Origin::Rust => None,
            Origin::PythonFile(p) | Origin::WasmFile(p) => Some(p.display().to_string()),
            Origin::PythonModule(m) => Some(m.clone()),
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::BuiltIn => f.write_str("built in"),
            Origin::Rust => f.write_str("Rust (registered by this program)"),
            Origin::PythonFile(p) => write!(f, "Python file {}", p.display()),
            Origin::PythonModule(m) => write!(f, "Python module {m}"),
            Origin::WasmFile(p) => write!(f, "wasm file {}", p.display()),
        }
    }
}

/// One verifier kind.
#[derive(Clone)]
pub struct Kind {
    /// The `kind = "…"` of a `[[verifier]]` table.
    pub name: &'static str,
    /// One line for `verdict verifiers --kinds` and `ListVerifiers`.
    pub description: &'static str,
    /// Where it came from. [`Kind::new`] says [`Origin::Rust`]; [`Registry::builtin`] marks its
    /// own kinds [`Origin::BuiltIn`]; plug-ins carry their file.
    pub origin: Origin,
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
            .field("origin", &self.origin)
            .field("needs_sandbox", &self.needs_sandbox)
            .field("requires", &self.requires)
            .finish_non_exhaustive()
    }
}

impl Kind {
    /// A kind that needs no sandbox and no earlier step, registered from Rust.
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
            origin: Origin::Rust,
            needs_sandbox: false,
            requires: &[],
            build: Arc::new(build),
        }
    }

    /// The same kind, from `origin`.
    pub fn with_origin(mut self, origin: Origin) -> Self {
        self.origin = origin;
        self
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

/// Deserialize a step's own settings into a verifier's config type (unknown keys are errors
/// where the type denies them).
pub fn settings_of<T: DeserializeOwned>(settings: &toml::Table) -> Result<T, BuildError> {
    T::deserialize(toml::Value::Table(settings.clone()))
        .map_err(|e| BuildError(e.message().to_string()))
}
