//! The registry of verifier kinds: the one list `verdict.toml`, `verdict verifiers --kinds`,
//! gRPC `ListVerifiers` and [`crate::Config::needs_sandbox`] all read.
//!
//! Each [`Kind`] has a name (the `kind = "…"` of a `[[verifier]]` table), a one-line
//! description, where it came from ([`Origin`]: built in, a library user's Rust, a Python file
//! or module, a wasm component), whether it needs the shared sandbox, the kinds that must come
//! before it in a chain, and a build function that turns the step's own settings into a
//! [`Verifier`] with the shared resources of a [`BuildContext`].
//!
//! Three ways in, one registry:
//! - **Rust**: [`Registry::register`] a [`Kind`] (below; `examples/custom_server.rs` serves
//!   one over gRPC). Its origin is [`Origin::Rust`].
//! - **Python** and **WebAssembly**: a `[plugins.NAME]` table of `verdict.toml` declares a kind
//!   `NAME` backed by a Python function or a wasm component ([`crate::plugins`]);
//!   [`crate::Config::registry_in`] adds it to a copy of the registry the file is built with.
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

pub use crate::verifiers::kind::{settings_of, BuildContext, BuildError, BuildFn, Kind, Origin};
use crate::verifiers::{format, generated, matcher, parse, tests as tests_step, timing};

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

    /// The built-in kinds: `format`, `parse`, `match`, `tests`, `timing`, `generated`.
    pub fn builtin() -> Self {
        let kinds = vec![
            format::kind(),
            parse::kind(),
            matcher::kind(),
            tests_step::kind(),
            timing::kind(),
            generated::kind(),
        ];
        Registry {
            kinds: kinds
                .into_iter()
                .map(|k| k.with_origin(Origin::BuiltIn))
                .collect(),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_kinds_say_what_they_need() {
        let r = Registry::builtin();
        let names: Vec<_> = r.kinds().iter().map(|k| k.name).collect();
        assert_eq!(
            names,
            ["format", "parse", "match", "tests", "timing", "generated"]
        );
        assert!(r.kinds().iter().all(|k| k.origin == Origin::BuiltIn));
        assert!(!r.get("format").unwrap().needs_sandbox);
        assert!(r.get("tests").unwrap().needs_sandbox);
        assert_eq!(r.get("timing").unwrap().requires, ["tests"]);
    }

    #[test]
    fn a_kind_name_is_registered_once() {
        let mut r = Registry::builtin();
        let again = Kind::new("parse", "again", |s, _| {
            Ok(Box::new(
                settings_of::<crate::verifiers::parse::ParseConfig>(s)?
                    .build(&BuildContext::default())?,
            ))
        });
        assert_eq!(
            r.register(again).unwrap_err(),
            RegistryError::Duplicate("parse".into())
        );
    }
}
