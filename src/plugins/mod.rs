//! Verifier plug-ins declared in `verdict.toml`: a Python function ([`python`], through an
//! embedded CPython) or a WebAssembly component ([`wasm`], under wasmtime with fuel, memory and
//! time limits). Each `[plugins.NAME]` table declares a verifier kind `NAME`; `[[verifier]]`
//! steps then use it like a built-in kind, and their other keys reach the plug-in as its
//! settings.
//!
//! ```toml
//! [plugins.brevity]                 # a Python function in a file
//! python = "rewards/brevity.py"     # relative to this file's directory
//! function = "score"
//! timeout_ms = 2000
//!
//! [plugins.repetition]              # a wasm component (`verdict plugin build`)
//! wasm = "plugins/repetition.wasm"
//! memory_mb = 128
//!
//! [[verifier]]
//! kind = "brevity"
//! max_words = 300                   # the plug-in's own setting
//! ```
//!
//! ## Trust
//! A **Python** plug-in is trusted configuration: it runs in verdict's process with verdict's
//! privileges (files, network, environment, threads). Give it only code you would run
//! yourself. A **wasm** plug-in is not trusted: it sees no file, network, environment or
//! clock of the host, and its fuel, memory and wall time are capped; whatever it does, the
//! rollout gets the `error` outcome and the service keeps serving.
//!
//! ## What a plug-in sees
//! The rollout and what the steps before it found ([`Input`]): the extracted code, reasoning
//! and answer text, the parse class, the test report, and the step's settings. It answers a
//! score in [0, 1] with optional details. A plug-in that fails — an exception, a wrong type,
//! NaN, a timeout, a trap — gives that rollout the `error` outcome with no reward (verdict
//! could not judge it), never a 0 that reads as a wrong answer.

pub mod build;
#[cfg(feature = "python")]
pub mod python;
pub mod wasm;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::registry::{BuildError, Kind, Origin};
use crate::rollout::Rollout;
use crate::sandbox::SandboxConfig;
use crate::verifiers::{Context, Verdict};

/// The largest `details` a plug-in may return, in bytes of JSON.
pub const MAX_DETAILS_BYTES: usize = 64 << 10;

/// How a Python function is called.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CallStyle {
    /// `fn(input: dict) -> float | {"score": float, "details": dict}` (batch: a list in, a
    /// list out).
    #[default]
    Verdict,
    /// TRL reward functions: `fn(prompts=[…], completions=[…], **columns) -> list[float]`;
    /// `columns` are the rollouts' other fields (`answer`, `solution`, dataset columns).
    Trl,
    /// verl `compute_score(data_source, solution_str, ground_truth, extra_info)` →
    /// `float | {"score": float, …}`; `data_source` and `extra_info` come from the rollout's
    /// fields of those names, `ground_truth` from `ground_truth` or `answer`.
    Verl,
}

/// One `[plugins.NAME]` table.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// A Python file defining the function (relative to the config file's directory).
    #[serde(default)]
    pub python: Option<PathBuf>,
    /// An importable Python module defining the function (found on `PYTHONPATH` / `sys.path`).
    #[serde(default)]
    pub module: Option<String>,
    /// A WebAssembly component exporting `verdict:plugin/verifier@0.1.0`.
    #[serde(default)]
    pub wasm: Option<PathBuf>,
    /// Python: the function's name. Default: `score`.
    #[serde(default)]
    pub function: Option<String>,
    /// Python: the calling convention. Default: `verdict`.
    #[serde(default)]
    pub call: CallStyle,
    /// Python: the function takes a list of inputs and returns a list of results; calls that
    /// arrive while one runs are batched together (up to `max_batch`). `trl` functions are
    /// batch functions by nature.
    #[serde(default)]
    pub batch: bool,
    /// Python: the largest batch. Default: 64.
    #[serde(default)]
    pub max_batch: Option<usize>,
    /// Wall-clock limit of one call, in milliseconds. Default: 5000.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Wasm: fuel (≈ instructions) per call. Default: 2e9.
    #[serde(default)]
    pub fuel: Option<u64>,
    /// Wasm: linear-memory cap per call, in MiB. Default: 256.
    #[serde(default)]
    pub memory_mb: Option<u64>,
    /// The one-line description `verdict verifiers --kinds` shows.
    #[serde(default)]
    pub description: Option<String>,
}

/// Default per-call wall-clock limit.
pub const DEFAULT_TIMEOUT_MS: u64 = 5000;

impl PluginConfig {
    /// The call's wall-clock limit.
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS))
    }

    /// Every problem with the table, as lines.
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let sources = [
            self.python.is_some(),
            self.module.is_some(),
            self.wasm.is_some(),
        ];
        match sources.iter().filter(|s| **s).count() {
            1 => {}
            0 => problems.push("set one of `python` (a file), `module` or `wasm`".into()),
            _ => problems.push("set only one of `python`, `module` and `wasm`".into()),
        }
        let is_python = self.python.is_some() || self.module.is_some();
        if self.wasm.is_some() {
            for (key, set) in [
                ("function", self.function.is_some()),
                ("call", self.call != CallStyle::Verdict),
                ("batch", self.batch),
                ("max_batch", self.max_batch.is_some()),
            ] {
                if set {
                    problems.push(format!("`{key}` applies to Python plug-ins only"));
                }
            }
        }
        if is_python {
            for (key, set) in [
                ("fuel", self.fuel.is_some()),
                ("memory_mb", self.memory_mb.is_some()),
            ] {
                if set {
                    problems.push(format!("`{key}` applies to wasm plug-ins only"));
                }
            }
        }
        if self.timeout_ms == Some(0) {
            problems.push("timeout_ms must be at least 1".into());
        }
        if self.max_batch == Some(0) {
            problems.push("max_batch must be at least 1".into());
        }
        if self.memory_mb == Some(0) {
            problems.push("memory_mb must be at least 1".into());
        }
        problems
    }
}

/// A kind name made `'static` (the registry's and [`crate::Verifier::kind`]'s type): one small
/// string per `[plugins.NAME]` table of a configuration loaded, kept for the process's life.
fn intern(name: &str) -> &'static str {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static NAMES: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    let set = names.get_or_insert_with(HashSet::new);
    if let Some(known) = set.get(name) {
        return known;
    }
    let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
    set.insert(leaked);
    leaked
}

/// Whether `name` may name a kind: a letter, then letters, digits, `_` or `-`.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && name.len() <= 64
}

/// Load the plug-in of table `name` (paths relative to `base_dir`) and make its kind. Python
/// functions are imported and wasm components compiled here, once; every step of the kind
/// shares them.
pub fn load_kind(
    name: &str,
    config: &PluginConfig,
    base_dir: &Path,
    sandbox: &SandboxConfig,
) -> Result<Kind, Vec<String>> {
    let mut problems = config.problems();
    if !valid_name(name) {
        problems.push(
            "a plug-in name starts with a letter and has only letters, digits, `_` and `-`"
                .to_string(),
        );
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let name = intern(name);
    let resolve = |p: &Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base_dir.join(p)
        }
    };
    if let Some(path) = &config.wasm {
        let path = resolve(path);
        let plugin = wasm::WasmPlugin::load(name, &path, config, sandbox).map_err(|e| vec![e])?;
        let plugin = Arc::new(plugin);
        let description = describe(config, "WebAssembly plug-in");
        return Ok(Kind::new(name, description, move |settings, _cx| {
            Ok(Box::new(plugin.verifier(settings_json(settings)?)))
        })
        .with_origin(Origin::WasmFile(path)));
    }
    python_kind(name, config, resolve)
}

#[cfg(feature = "python")]
fn python_kind(
    name: &'static str,
    config: &PluginConfig,
    resolve: impl Fn(&Path) -> PathBuf,
) -> Result<Kind, Vec<String>> {
    let (source, origin) = match (&config.python, &config.module) {
        (Some(file), _) => {
            let file = resolve(file);
            (python::Source::File(file.clone()), Origin::PythonFile(file))
        }
        (None, Some(module)) => (
            python::Source::Module(module.clone()),
            Origin::PythonModule(module.clone()),
        ),
        (None, None) => unreachable!("checked by PluginConfig::problems"),
    };
    let plugin = Arc::new(python::PythonPlugin::load(name, source, config).map_err(|e| vec![e])?);
    let description = describe(config, "Python plug-in");
    Ok(Kind::new(name, description, move |settings, _cx| {
        Ok(Box::new(plugin.verifier(settings_json(settings)?)))
    })
    .with_origin(origin))
}

#[cfg(not(feature = "python"))]
fn python_kind(
    _name: &'static str,
    _config: &PluginConfig,
    _resolve: impl Fn(&Path) -> PathBuf,
) -> Result<Kind, Vec<String>> {
    Err(vec![
        "this verdict was built without the `python` feature, so it cannot load Python \
         plug-ins (rebuild with the default features, or use a wasm plug-in)"
            .into(),
    ])
}

fn describe(config: &PluginConfig, what: &str) -> &'static str {
    let text = config
        .description
        .clone()
        .unwrap_or_else(|| what.to_string());
    intern(&text)
}

/// A step's own settings as a JSON object.
fn settings_json(settings: &toml::Table) -> Result<Map<String, Value>, BuildError> {
    match serde_json::to_value(settings) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(BuildError("settings must be a table".into())),
        Err(e) => Err(BuildError(format!("settings: {e}"))),
    }
}

/// What a plug-in gets for one rollout: the rollout, what the steps before it found, and its
/// step's settings. Python functions (call style `verdict`) receive exactly this as a dict:
///
/// ```json
/// {"rollout": {"id": "…", "prompt": "…", "completion": "…", "answer": "…", …},
///  "code": "…" | null, "reasoning": "…" | null, "text": "…",
///  "parse": {"class": "python"} | null, "tests": {"passed": 3, "total": 4, "results": […]} | null,
///  "settings": {…}}
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct Input {
    /// The rollout, as in JSONL (unknown fields at the top level).
    pub rollout: Value,
    /// The extracted code, if any.
    pub code: Option<String>,
    /// The reasoning inside `<think>…</think>`, if any.
    pub reasoning: Option<String>,
    /// The answer part of the completion (outside the reasoning).
    pub text: String,
    /// The parse classification, once `parse` ran (`{"class": "python"}`, …).
    pub parse: Option<Value>,
    /// The test report, once `tests` ran.
    pub tests: Option<Value>,
    /// The step's own settings.
    pub settings: Map<String, Value>,
}

impl Input {
    /// The input for `rollout` after the steps that built `ctx`.
    pub fn new(rollout: &Rollout, ctx: &Context, settings: &Map<String, Value>) -> Self {
        Input {
            rollout: serde_json::to_value(rollout).unwrap_or(Value::Null),
            code: ctx.answer.code.clone(),
            reasoning: ctx.answer.thinking.clone(),
            text: ctx.answer.text.clone(),
            parse: ctx
                .parse
                .as_ref()
                .and_then(|c| serde_json::to_value(c).ok()),
            tests: ctx
                .tests
                .as_ref()
                .and_then(|t| serde_json::to_value(t).ok()),
            settings: settings.clone(),
        }
    }
}

/// The verdict of a plug-in's answer, or why it is refused: the one place that checks what a
/// plug-in returned (score finite and in [0, 1]). The caller names the plug-in in the error.
pub fn checked_verdict(score: f64, details: Value) -> Result<Verdict, String> {
    if !score.is_finite() {
        return Err(format!(
            "returned the score {score}, which is not a finite number"
        ));
    }
    if !(0.0..=1.0).contains(&score) {
        return Err(format!("returned the score {score}, outside [0, 1]"));
    }
    let details = match details {
        Value::Null => json!({}),
        Value::Object(map) => Value::Object(map),
        other => json!({ "value": other }),
    };
    Ok(Verdict::pass(score, details))
}

/// A plug-in's `details` JSON text as a value: an object, at most [`MAX_DETAILS_BYTES`] and
/// [`crate::depth::MAX_ROLLOUT_DEPTH`] deep (empty text: `{}`).
pub fn parse_details(text: &str) -> Result<Value, String> {
    if text.len() > MAX_DETAILS_BYTES {
        return Err(format!(
            "returned {} KiB of details, more than the {} KiB allowed",
            text.len() >> 10,
            MAX_DETAILS_BYTES >> 10
        ));
    }
    if text.trim().is_empty() {
        return Ok(json!({}));
    }
    if crate::depth::deeper_than(text.as_bytes(), crate::depth::MAX_ROLLOUT_DEPTH).is_some() {
        return Err(format!(
            "returned details nested deeper than {} levels",
            crate::depth::MAX_ROLLOUT_DEPTH
        ));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err("returned details that are not a JSON object".into()),
        Err(e) => Err(format!("returned details that are not JSON: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> PluginConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn a_table_names_one_source_and_only_its_own_keys() {
        assert!(table("python = \"a.py\"").problems().is_empty());
        assert_eq!(
            table("function = \"f\"").problems(),
            ["set one of `python` (a file), `module` or `wasm`"]
        );
        let p = table("wasm = \"a.wasm\"\nmodule = \"m\"\nbatch = true").problems();
        assert!(p.contains(&"set only one of `python`, `module` and `wasm`".into()));
        assert!(p.contains(&"`batch` applies to Python plug-ins only".into()));
        assert_eq!(
            table("python = \"a.py\"\nfuel = 5").problems(),
            ["`fuel` applies to wasm plug-ins only"]
        );
        assert!(toml::from_str::<PluginConfig>("pyhton = \"a.py\"").is_err());
    }

    #[test]
    fn verdicts_from_plugins_are_checked() {
        assert_eq!(checked_verdict(0.5, Value::Null).unwrap().score, 0.5);
        for bad in [f64::NAN, f64::INFINITY, -0.1, 1.5] {
            assert!(checked_verdict(bad, Value::Null).is_err(), "{bad}");
        }
        assert!(parse_details("{not json").is_err());
        assert!(parse_details("[1]").is_err());
        assert!(parse_details(&"[".repeat(200)).is_err());
        assert!(parse_details(&" ".repeat(MAX_DETAILS_BYTES + 1)).is_err());
        assert_eq!(parse_details("").unwrap(), json!({}));
    }

    #[test]
    fn names_are_interned_once() {
        assert!(std::ptr::eq(intern("same-name"), intern("same-name")));
        assert!(valid_name("my_check-2"));
        assert!(!valid_name("2fast"));
        assert!(!valid_name("a b"));
    }
}
