//! `verdict.toml` → [`Chain`]. Every problem in a file is reported at once.
//!
//! The built-in default (`src/default.toml`, printed by `verdict verifiers --default-config`) is
//! used when no file is given. A file overrides the defaults it names and keeps the rest: its
//! `[[verifier]]` steps, if it has any, are the whole chain, else the built-in chain applies (a
//! file holding only `[testgen]` or `[sandbox]` changes just those); every section it leaves
//! out has its defaults. Which kinds a file may name, what each needs and how it is built
//! comes from a [`Registry`] ([`Registry::builtin`] unless a library user passes their own to
//! [`Config::build_in`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::chain::{Chain, Step};
use crate::plugins::PluginConfig;
use crate::registry::{BuildContext, Registry};
use crate::sandbox::{Sandbox, SandboxConfig, SandboxError};
use crate::testgen::{Testgen, TestgenConfig};

/// The built-in configuration, used when no file is given.
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

/// Why a configuration could not be loaded or built.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not have the expected shape.
    #[error("invalid config {origin}: {message}")]
    Syntax {
        /// The file, or `built-in default`.
        origin: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The sandbox the chain needs could not be started.
    #[error("starting the sandbox: {0}")]
    Sandbox(#[from] SandboxError),
    /// The file parsed but some settings are wrong; each problem is listed.
    #[error("invalid config {origin}:\n{}", .problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// The file, or `built-in default`.
        origin: String,
        /// Every problem found.
        problems: Vec<String>,
    },
}

/// A whole `verdict.toml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The chain's steps, in order (`[[verifier]]` tables); the built-in chain's when a file
    /// has none.
    #[serde(default, rename = "verifier")]
    pub verifiers: Vec<StepConfig>,
    /// The `[sandbox]` section: runtime location and the limits of every run (defaults and caps).
    #[serde(default)]
    pub sandbox: SandboxConfig,
    /// The `[testgen]` section: the LLM endpoint that writes tests for problems without any.
    #[serde(default)]
    pub testgen: TestgenConfig,
    /// `[plugins.NAME]` tables: verifier kinds backed by a Python function or a wasm component
    /// ([`crate::plugins`]), by name.
    #[serde(default)]
    pub plugins: std::collections::BTreeMap<String, PluginConfig>,
    /// Where the configuration came from (not part of the file).
    #[serde(skip)]
    pub origin: String,
    /// The directory plug-in paths are relative to: the file's own directory (the working
    /// directory for text parsed with [`Config::parse`]).
    #[serde(skip)]
    pub base_dir: Option<PathBuf>,
}

/// One `[[verifier]]` table: the common keys plus the verifier's own settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct StepConfig {
    /// Which verifier.
    pub kind: String,
    /// Name shown in scores. Default: the kind.
    #[serde(default)]
    pub name: Option<String>,
    /// Weight in the reward, ≥ 0. Default: 1.0.
    #[serde(default)]
    pub weight: Option<f64>,
    /// A failure ends the chain with reward 0. Default: false.
    #[serde(default)]
    pub gate: bool,
    /// For gates, a score below this also fails the gate. Default: 1.0.
    #[serde(default)]
    pub min_score: Option<f64>,
    /// The verifier's own settings (checked by the verifier's config type).
    #[serde(flatten)]
    pub settings: toml::Table,
}

impl Config {
    /// The built-in default configuration.
    pub fn default_config() -> Self {
        Self::parse(DEFAULT_CONFIG, "built-in default").expect("the built-in config is valid")
    }

    /// Load `path`, or the built-in default when `None`.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        match path {
            None => Ok(Self::default_config()),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
                    path: path.to_path_buf(),
                    source,
                })?;
                let mut config = Self::parse(&text, &path.display().to_string())?;
                config.base_dir = path.parent().map(Path::to_path_buf);
                Ok(config)
            }
        }
    }

    /// Parse TOML text; `origin` names it in errors. Without `[[verifier]]` steps the chain is
    /// the built-in one: the text sets only the sections it has (`[testgen]`, `[sandbox]`, …).
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let mut config = Self::parse_as_written(text, origin)?;
        if config.verifiers.is_empty() {
            config.verifiers = Self::parse_as_written(DEFAULT_CONFIG, "built-in default")
                .expect("the built-in config is valid")
                .verifiers;
        }
        Ok(config)
    }

    /// The TOML text as it is, with no defaults filled in.
    fn parse_as_written(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        config.origin = origin.to_string();
        Ok(config)
    }

    /// Whether any step runs code (and so needs the sandbox runtime), with the built-in kinds.
    pub fn needs_sandbox(&self) -> bool {
        self.needs_sandbox_in(&Registry::builtin())
    }

    /// Whether any step is of a kind of `registry` that needs the sandbox.
    pub fn needs_sandbox_in(&self, registry: &Registry) -> bool {
        self.verifiers
            .iter()
            .any(|v| registry.get(&v.kind).is_some_and(|k| k.needs_sandbox))
    }

    /// Validate every step and build the chain from the built-in kinds; all problems are
    /// reported together. Starts the sandbox (installing its runtime on first use) when a step
    /// needs it.
    pub fn build(&self) -> Result<Chain, ConfigError> {
        self.build_in(&Registry::builtin())
    }

    /// `registry` plus the kinds this file's `[plugins.NAME]` tables declare, each with its
    /// origin (Python file or module, wasm file). Imports the Python functions and compiles the
    /// wasm components, once; every problem is reported at once.
    pub fn registry_in(&self, registry: &Registry) -> Result<Registry, ConfigError> {
        if self.plugins.is_empty() {
            return Ok(registry.clone());
        }
        let mut registry = registry.clone();
        let mut problems = Vec::new();
        let base = self.base_dir.clone().unwrap_or_else(|| PathBuf::from("."));
        for (name, plugin) in &self.plugins {
            let at = format!("[plugins.{name}]");
            if registry.get(name).is_some() {
                problems.push(format!(
                    "{at}: a verifier kind named `{name}` already exists; pick another name"
                ));
                continue;
            }
            match crate::plugins::load_kind(name, plugin, &base, &self.sandbox) {
                Ok(kind) => {
                    registry
                        .register(kind)
                        .expect("the name was checked to be new");
                }
                Err(errors) => problems.extend(errors.into_iter().map(|e| format!("{at}: {e}"))),
            }
        }
        if problems.is_empty() {
            Ok(registry)
        } else {
            Err(ConfigError::Invalid {
                origin: self.origin.clone(),
                problems,
            })
        }
    }

    /// [`Config::build`] with the kinds of `registry` (a library user's own among them) and
    /// this file's plug-ins ([`Config::registry_in`]).
    pub fn build_in(&self, registry: &Registry) -> Result<Chain, ConfigError> {
        self.build_registered(&self.registry_in(registry)?)
    }

    /// [`Config::build_in`] for a `registry` that already holds this file's plug-ins (the
    /// result of [`Config::registry_in`]), so they are not loaded twice: what `verdict serve`
    /// does, which reports the same registry in `ListVerifiers`.
    pub fn build_registered(&self, registry: &Registry) -> Result<Chain, ConfigError> {
        let invalid = |problems| ConfigError::Invalid {
            origin: self.origin.clone(),
            problems,
        };
        let problems = self.testgen.problems();
        if !problems.is_empty() {
            return Err(invalid(problems));
        }
        let testgen =
            crate::testgen::from_config(&self.testgen, || self.sandbox.resolved_cache_dir().ok())
                .map_err(|e| invalid(vec![format!("testgen: {e}")]))?;
        let config = self.with_generated_step(testgen.as_ref());
        let sandbox = if config.needs_sandbox_in(registry) {
            config.sandbox.validate()?;
            Some(Sandbox::new(&config.sandbox)?)
        } else {
            None
        };
        let chain = config.build_from(
            registry,
            &BuildContext::new(sandbox.as_ref()).with_testgen(testgen.as_ref()),
        )?;
        Ok(chain.with_sandbox(sandbox))
    }

    /// With a test generator and `testgen.auto_step`, a chain that has a `tests` step and no
    /// `generated` step gets one right after `tests` (weight 1, default settings), so rollouts
    /// without tests are judged by generated ones. Otherwise the chain as written.
    pub fn with_generated_step(&self, testgen: Option<&Testgen>) -> Config {
        let mut config = self.clone();
        let has = |k: &str| config.verifiers.iter().position(|v| v.kind == k);
        if let (Some(_), true, None, Some(at)) = (
            testgen,
            self.testgen.auto_step,
            has("generated"),
            has("tests"),
        ) {
            config.verifiers.insert(
                at + 1,
                StepConfig {
                    kind: "generated".into(),
                    name: None,
                    weight: Some(1.0),
                    gate: false,
                    min_score: None,
                    settings: toml::Table::new(),
                },
            );
        }
        config
    }

    /// Like [`Config::build`], with the sandbox given (or none: then steps that need it are
    /// reported as problems).
    pub fn build_with(&self, sandbox: Option<&Sandbox>) -> Result<Chain, ConfigError> {
        self.build_from(&Registry::builtin(), &BuildContext::new(sandbox))
    }

    /// Build the chain from the kinds of `registry` with the shared resources of `cx`.
    pub fn build_from(
        &self,
        registry: &Registry,
        cx: &BuildContext<'_>,
    ) -> Result<Chain, ConfigError> {
        let mut problems = Vec::new();
        let mut steps = Vec::new();
        let mut names = std::collections::HashSet::new();
        if self.verifiers.is_empty() {
            problems.push("the chain has no [[verifier]] steps".to_string());
        }
        for (i, sc) in self.verifiers.iter().enumerate() {
            let name = sc.name.clone().unwrap_or_else(|| sc.kind.clone());
            let at = format!("verifier #{} ({name})", i + 1);
            if !names.insert(name.clone()) {
                problems.push(format!(
                    "{at}: duplicate name `{name}` (set `name` to tell them apart)"
                ));
            }
            let weight = sc.weight.unwrap_or(1.0);
            if !weight.is_finite() || weight < 0.0 {
                problems.push(format!(
                    "{at}: weight must be a finite number ≥ 0, got {weight}"
                ));
            }
            let min_score = sc.min_score.unwrap_or(1.0);
            if !(0.0..=1.0).contains(&min_score) {
                problems.push(format!(
                    "{at}: min_score must be in [0, 1], got {min_score}"
                ));
            }
            if sc.min_score.is_some() && !sc.gate {
                problems.push(format!(
                    "{at}: min_score only applies to gates (set gate = true)"
                ));
            }
            let Some(kind) = registry.get(&sc.kind) else {
                problems.push(format!(
                    "{at}: unknown verifier kind `{}` (known: {})",
                    sc.kind,
                    registry.names()
                ));
                continue;
            };
            for required in kind.requires {
                if !self.verifiers[..i]
                    .iter()
                    .any(|earlier| earlier.kind == *required)
                {
                    problems.push(format!(
                        "{at}: `{}` needs a `{required}` step before it (it reads what \
                         `{required}` found)",
                        kind.name
                    ));
                }
            }
            match kind.build(&sc.settings, cx) {
                Ok(verifier) => steps.push(Step {
                    name,
                    verifier,
                    weight,
                    gate: sc.gate,
                    min_score,
                }),
                Err(e) => problems.push(format!("{at}: {e}")),
            }
        }
        if problems.is_empty() {
            Ok(Chain::new(steps))
        } else {
            Err(ConfigError::Invalid {
                origin: self.origin.clone(),
                problems,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_default_is_the_documented_chain() {
        let config = Config::default_config();
        let kinds: Vec<_> = config.verifiers.iter().map(|s| s.kind.as_str()).collect();
        assert_eq!(kinds, ["format", "parse", "tests", "timing"]);
        assert!(config.verifiers[1].gate);
        assert_eq!(config.verifiers[0].weight, Some(0.2));
        assert!(config.needs_sandbox());
        config.sandbox.validate().unwrap();
    }

    #[test]
    fn sandbox_kinds_without_a_sandbox_are_reported() {
        let text = "[[verifier]]\nkind = \"parse\"\n[[verifier]]\nkind = \"tests\"\n";
        let msg = Config::parse(text, "s")
            .unwrap()
            .build_with(None)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("`tests` needs the sandbox"), "{msg}");
    }

    #[test]
    fn unknown_sandbox_settings_are_rejected() {
        let text = "[sandbox]\ntime_mss = 5\n";
        let msg = Config::parse(text, "s").unwrap_err().to_string();
        assert!(msg.contains("unknown field `time_mss`"), "{msg}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = r#"
            [[verifier]]
            kind = "sparkle"
            [[verifier]]
            kind = "format"
            weight = -1
            colour = "red"
            [[verifier]]
            kind = "parse"
            min_score = 0.5
        "#;
        let err = Config::parse(text, "t.toml").unwrap().build().unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("unknown verifier kind `sparkle` (known: format, parse"),
            "{msg}"
        );
        assert!(
            msg.contains("weight must be a finite number ≥ 0, got -1"),
            "{msg}"
        );
        assert!(msg.contains("unknown field `colour`"), "{msg}");
        assert!(msg.contains("min_score only applies to gates"), "{msg}");
        match err {
            ConfigError::Invalid { problems, origin } => {
                assert_eq!(problems.len(), 4);
                assert_eq!(origin, "t.toml");
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn syntax_errors_name_the_file_and_line() {
        let err = Config::parse("[[verifier]\nkind=", "bad.toml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("invalid config bad.toml"), "{msg}");
        assert!(msg.contains("line 1"), "{msg}");
    }

    #[test]
    fn duplicate_names_are_rejected() {
        let text = "[[verifier]]\nkind = \"parse\"\n[[verifier]]\nkind = \"parse\"\n";
        let msg = Config::parse(text, "d")
            .unwrap()
            .build()
            .unwrap_err()
            .to_string();
        assert!(msg.contains("duplicate name `parse`"), "{msg}");
    }

    #[test]
    fn timing_without_tests_before_it_is_rejected() {
        let text = "[[verifier]]\nkind = \"timing\"\n[[verifier]]\nkind = \"tests\"\n";
        let msg = Config::parse(text, "t")
            .unwrap()
            .build_with(None)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("verifier #1 (timing): `timing` needs a `tests` step before it"),
            "{msg}"
        );
    }

    #[test]
    fn a_file_without_steps_keeps_the_built_in_chain() {
        let kinds = |c: &Config| {
            c.verifiers
                .iter()
                .map(|s| s.kind.clone())
                .collect::<Vec<_>>()
        };
        let default = Config::default_config();
        let testgen = Config::parse(
            "[testgen]\nmodel = \"m\"\nbase_url = \"http://127.0.0.1:9/v1\"\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(kinds(&testgen), kinds(&default));
        assert_eq!(testgen.testgen.model.as_deref(), Some("m"));
        assert_eq!(testgen.origin, "t.toml");
        let sandbox = Config::parse("[sandbox]\ntime_ms = 500\n", "s.toml").unwrap();
        assert_eq!(kinds(&sandbox), kinds(&default));
        assert_eq!(sandbox.sandbox.limits.time_ms, 500);
        // The chain builds (no sandbox here: its steps that need one say so, nothing else).
        let msg = sandbox.build_with(None).unwrap_err().to_string();
        assert!(!msg.contains("no [[verifier]] steps"), "{msg}");
        assert!(msg.contains("`tests` needs the sandbox"), "{msg}");
        // Steps given are the whole chain.
        let own = Config::parse("[[verifier]]\nkind = \"parse\"\n", "o.toml").unwrap();
        assert_eq!(kinds(&own), ["parse"]);
        assert!(own.build_with(None).is_ok());
    }

    #[test]
    fn missing_file_is_an_io_error() {
        let err = Config::load(Some(Path::new("/nonexistent/verdict.toml"))).unwrap_err();
        assert!(matches!(err, ConfigError::Io { .. }));
    }
}
