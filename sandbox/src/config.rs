//! [`SandboxConfig`]: the `[sandbox]` section of `verdict.toml`.
//!
//! Every limit here is both the default and the ceiling: a rollout's own `limits` may ask for
//! less, never for more.

use std::path::PathBuf;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use crate::error::SandboxError;
use verdict_contract::rollout::{Compare, CompareMode, Limits};

/// Settings of the shared [`Sandbox`](crate::Sandbox).
///
/// In `verdict.toml` they come in four parts, by concern: limits in `[sandbox]`, the runtime
/// install in `[sandbox.runtime]`, engine sizing and worker processes in `[sandbox.engine]`,
/// the comparison defaults and the checkers' budget in `[sandbox.judge]`:
///
/// ```toml
/// [sandbox]
/// time_ms = 10000
/// memory_mb = 512
///
/// [sandbox.runtime]
/// auto_install = true
///
/// [sandbox.engine]
/// max_instances = 32
/// workers = 2
///
/// [sandbox.judge]
/// rel_tol = 1e-6
/// mode = "lines"
/// ```
///
/// Each section is read by plain serde into its own type. A runtime or engine key written
/// directly under `[sandbox]` (where it was before the split), or the old `float_rel_tol`/
/// `float_abs_tol`, is an error that names the key's place now.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "SandboxTable", into = "SandboxTable")]
pub struct SandboxConfig {
    /// `[sandbox]`: the limits of every run (defaults and caps) and the seed.
    pub limits: LimitsConfig,
    /// `[sandbox.judge]`: how results are compared unless a rollout or test says otherwise,
    /// and the checkers' budget.
    pub judge: JudgeConfig,
    /// `[sandbox.engine]`: engine sizing and worker processes.
    pub engine: EngineConfig,
    /// `[sandbox.runtime]`: where the runtime lives and how it is installed.
    pub runtime: RuntimeConfig,
}

/// `[sandbox]`: the limits of every run. Each is the default *and* the cap of a rollout's own
/// `limits`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimitsConfig {
    /// Wall-clock budget for all the tests of one rollout, in milliseconds. By default `10000`.
    pub time_ms: u64,
    /// Linear-memory cap of one interpreter, in MiB. By default `512`.
    pub memory_mb: u64,
    /// Cap on what one test may write to stdout plus stderr, in KiB. By default `1024`.
    pub output_kb: u64,
    /// Fuel (≈ WebAssembly instructions) one test may burn. Deterministic, unlike `time_ms`.
    /// By default `20000000000` (several seconds of work).
    pub fuel: u64,
    /// Most tests run per rollout; further tests are ignored (and not counted). By default `100`.
    pub max_tests: usize,
    /// Seed for Python's `random` in every run. By default unset: each rollout's seed is derived
    /// from its id (the first 8 bytes of `sha256("verdict-seed:" + id)`), so reruns of a rollout
    /// see the same random numbers and different rollouts see different ones.
    pub seed: Option<u64>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            time_ms: 10_000,
            memory_mb: 512,
            output_kb: 1024,
            fuel: 20_000_000_000,
            max_tests: 100,
            seed: None,
        }
    }
}

/// `[sandbox.engine]`: how many interpreters, where they run. Read by the process that builds
/// the [`Sandbox`](crate::Sandbox); a worker process gets the rest of the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Most interpreters alive at once across all concurrent runs; further runs wait for a
    /// slot. Sizes the pooling allocator. By default `32`.
    pub max_instances: u32,
    /// Fresh interpreters instantiated ahead of demand (in addition to `max_instances`), so a
    /// rollout does not wait for instantiation, about a millisecond. Each serves one rollout
    /// only, exactly as one instantiated on demand would; under full load they make no
    /// difference. `0` turns this off. By default `2`.
    pub prewarm: u32,
    /// Run rollouts in this many `verdict sandbox-worker` processes instead of in this
    /// process (`0`: in this process). Guests in one multi-threaded process make the kernel
    /// interrupt every other core on each copy-on-write fault (TLB shootdowns); one process per
    /// core avoids that (1.07–1.44× the throughput of threads in `cargo bench --bench
    /// sandbox`). `max_instances` and `prewarm` then apply per worker. Unset: `verdict score`
    /// and `verdict serve` start one worker per core (none on a single core); a program that
    /// embeds the library runs rollouts in its own process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<u32>,
    /// The executable started as a worker: a `verdict` binary. By default the running
    /// executable, which is right for `verdict score` and `verdict serve`; programs that embed
    /// the library must point this at a `verdict` binary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_exe: Option<PathBuf>,
    /// The arguments the worker executable is started with. By default `["sandbox-worker"]`
    /// (`verdict sandbox-worker`); the Python package starts `python -m verdict._worker`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_args: Option<Vec<String>>,
    /// Use wasmtime's pooling allocator (pre-reserved slots, copy-on-write memory images).
    /// Turning it off is slower; it exists for hosts with little virtual address space.
    /// By default `true`.
    pub pooling: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_instances: 32,
            prewarm: 2,
            workers: None,
            worker_exe: None,
            worker_args: None,
            pooling: true,
        }
    }
}

/// `[sandbox.runtime]`: where the runtime lives and how it is installed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Where the runtime lives: the componentize-py virtual environment, the built component
    /// and its compiled form. By default `$VERDICT_CACHE_DIR`, else `$XDG_CACHE_HOME/verdict`,
    /// else `~/.cache/verdict`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_dir: Option<PathBuf>,
    /// The Python interpreter used to create the virtual environment that runs componentize-py
    /// at build time (programs never run on it). By default `python3`.
    pub python: String,
    /// Whether [`Sandbox::new`](crate::Sandbox::new) may install and build the runtime when it
    /// is missing (this takes a minute and needs PyPI). By default `true`.
    pub auto_install: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: None,
            python: "python3".to_string(),
            auto_install: true,
        }
    }
}

/// `[sandbox.judge]`: the comparison defaults (every rule a rollout's or a test's `compare`
/// may change; README, "Comparison rules") and the budget of checkers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JudgeConfig {
    /// Relative float tolerance (stdio tokens that are floats, returned floats of call tests
    /// where a float is expected). By default `1e-6`.
    pub rel_tol: f64,
    /// Absolute float tolerance. By default `1e-6`.
    pub abs_tol: f64,
    /// How stdout is compared: `lines`, `tokens` or `exact`. By default `lines`.
    pub mode: CompareMode,
    /// Compare stdout tokens and lines up to case. By default `false`.
    pub case_insensitive: bool,
    /// Lines (stdio) or a returned sequence (call) in any order. By default `false`.
    pub unordered: bool,
    /// A returned dict's keys match the expected object's only when they are strings (call).
    /// By default `false`: an `int` key also matches its canonical decimal spelling, as JSON
    /// datasets write keys (`{1: 1}` matches `{"1": 1}`).
    pub strict_keys: bool,
    /// Fuel a checker may burn per test. By default `5000000000`.
    pub checker_fuel: u64,
    /// Wall-clock budget of a checker per test, in milliseconds (apart from the rollout's own
    /// `time_ms`). By default `10000`.
    pub checker_time_ms: u64,
}

impl Default for JudgeConfig {
    fn default() -> Self {
        JudgeConfig {
            rel_tol: 1e-6,
            abs_tol: 1e-6,
            mode: CompareMode::Lines,
            case_insensitive: false,
            unordered: false,
            strict_keys: false,
            checker_fuel: 5_000_000_000,
            checker_time_ms: 10_000,
        }
    }
}

impl JudgeConfig {
    /// The defaults as a [`Compare`] rule with every field set (the last fallback).
    pub fn compare(&self) -> Compare {
        Compare {
            rel_tol: Some(self.rel_tol),
            abs_tol: Some(self.abs_tol),
            mode: Some(self.mode),
            case_insensitive: Some(self.case_insensitive),
            unordered: Some(self.unordered),
            unwrap_single: None,
            strict_keys: Some(self.strict_keys),
        }
    }
}

/// The `[sandbox]` table as written: the limits, the three sections, and the keys that moved
/// out of it (read only to say where they went).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct SandboxTable {
    time_ms: u64,
    memory_mb: u64,
    output_kb: u64,
    fuel: u64,
    max_tests: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    judge: JudgeConfig,
    engine: EngineConfig,
    runtime: RuntimeConfig,
    #[serde(skip_serializing)]
    cache_dir: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    python: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    auto_install: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    max_instances: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    prewarm: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    workers: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    worker_exe: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    worker_args: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    pooling: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    float_rel_tol: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    float_abs_tol: Option<IgnoredAny>,
}

impl Default for SandboxTable {
    fn default() -> Self {
        SandboxTable::from(SandboxConfig::default())
    }
}

impl TryFrom<SandboxTable> for SandboxConfig {
    type Error = String;

    fn try_from(t: SandboxTable) -> Result<SandboxConfig, String> {
        let moved = [
            (
                "cache_dir",
                t.cache_dir.is_some(),
                "[sandbox.runtime] cache_dir",
            ),
            ("python", t.python.is_some(), "[sandbox.runtime] python"),
            (
                "auto_install",
                t.auto_install.is_some(),
                "[sandbox.runtime] auto_install",
            ),
            (
                "max_instances",
                t.max_instances.is_some(),
                "[sandbox.engine] max_instances",
            ),
            ("prewarm", t.prewarm.is_some(), "[sandbox.engine] prewarm"),
            ("workers", t.workers.is_some(), "[sandbox.engine] workers"),
            (
                "worker_exe",
                t.worker_exe.is_some(),
                "[sandbox.engine] worker_exe",
            ),
            (
                "worker_args",
                t.worker_args.is_some(),
                "[sandbox.engine] worker_args",
            ),
            ("pooling", t.pooling.is_some(), "[sandbox.engine] pooling"),
            (
                "float_rel_tol",
                t.float_rel_tol.is_some(),
                "[sandbox.judge] rel_tol",
            ),
            (
                "float_abs_tol",
                t.float_abs_tol.is_some(),
                "[sandbox.judge] abs_tol",
            ),
        ];
        let problems: Vec<String> = moved
            .iter()
            .filter(|(_, set, _)| *set)
            .map(|(key, _, now)| format!("`{key}` under [sandbox] has moved: write it as {now}"))
            .collect();
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        Ok(SandboxConfig {
            limits: LimitsConfig {
                time_ms: t.time_ms,
                memory_mb: t.memory_mb,
                output_kb: t.output_kb,
                fuel: t.fuel,
                max_tests: t.max_tests,
                seed: t.seed,
            },
            judge: t.judge,
            engine: t.engine,
            runtime: t.runtime,
        })
    }
}

impl From<SandboxConfig> for SandboxTable {
    fn from(c: SandboxConfig) -> SandboxTable {
        let SandboxConfig {
            limits: l,
            judge,
            engine,
            runtime,
        } = c;
        SandboxTable {
            time_ms: l.time_ms,
            memory_mb: l.memory_mb,
            output_kb: l.output_kb,
            fuel: l.fuel,
            max_tests: l.max_tests,
            seed: l.seed,
            judge,
            engine,
            runtime,
            cache_dir: None,
            python: None,
            auto_install: None,
            max_instances: None,
            prewarm: None,
            workers: None,
            worker_exe: None,
            worker_args: None,
            pooling: None,
            float_rel_tol: None,
            float_abs_tol: None,
        }
    }
}

/// The limits one run actually gets: the configuration, lowered by the rollout's own asks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EffectiveLimits {
    /// Wall-clock budget for the whole run.
    pub time_ms: u64,
    /// Linear-memory cap, in bytes.
    pub memory_bytes: usize,
    /// Output cap (stdout and stderr each), in bytes.
    pub output_bytes: usize,
    /// Fuel per test.
    pub fuel: u64,
}

impl SandboxConfig {
    /// Checks the values; every problem is reported at once.
    pub fn validate(&self) -> Result<(), SandboxError> {
        let mut problems = Vec::new();
        if self.limits.time_ms == 0 {
            problems.push("time_ms must be positive");
        }
        if self.limits.memory_mb < 64 {
            problems.push("memory_mb must be at least 64 (the interpreter itself needs ~40 MiB)");
        }
        if self.limits.memory_mb > 16 * 1024 {
            problems.push("memory_mb must be at most 16384");
        }
        if self.limits.output_kb == 0 {
            problems.push("output_kb must be positive");
        }
        if self.limits.fuel == 0 {
            problems.push("fuel must be positive");
        }
        if self.limits.max_tests == 0 {
            problems.push("max_tests must be positive");
        }
        if self.engine.max_instances == 0 || self.engine.max_instances > 4096 {
            problems.push("max_instances must be between 1 and 4096");
        }
        if self.engine.prewarm > 64 {
            problems.push("prewarm must be at most 64");
        }
        if self.engine.workers.is_some_and(|w| w > 256) {
            problems.push("workers must be at most 256");
        }
        let bad_tol = |t: f64| !(t.is_finite() && t >= 0.0);
        if bad_tol(self.judge.rel_tol) || bad_tol(self.judge.abs_tol) {
            problems.push("judge.rel_tol and judge.abs_tol must be finite and non-negative");
        }
        if self.judge.checker_fuel == 0 || self.judge.checker_time_ms == 0 {
            problems.push("judge.checker_fuel and judge.checker_time_ms must be positive");
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SandboxError::Config(problems.join("; ")))
        }
    }

    /// The limits of one run: each of the rollout's asks, capped by this configuration.
    pub fn effective(&self, asked: Option<&Limits>) -> EffectiveLimits {
        let asked = asked.copied().unwrap_or_default();
        let cap = |ask: Option<u64>, max: u64| ask.map_or(max, |a| a.clamp(1, max));
        EffectiveLimits {
            time_ms: cap(asked.time_ms, self.limits.time_ms),
            memory_bytes: (cap(asked.memory_mb, self.limits.memory_mb) as usize) << 20,
            output_bytes: (cap(asked.output_kb, self.limits.output_kb) as usize) << 10,
            fuel: self.limits.fuel,
        }
    }

    /// The cache directory: the configured one, else `$VERDICT_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/verdict`, else `$HOME/.cache/verdict`.
    pub fn resolved_cache_dir(&self) -> Result<PathBuf, SandboxError> {
        if let Some(dir) = &self.runtime.cache_dir {
            return Ok(dir.clone());
        }
        let env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        if let Some(dir) = env("VERDICT_CACHE_DIR") {
            return Ok(dir);
        }
        if let Some(dir) = env("XDG_CACHE_HOME") {
            return Ok(dir.join("verdict"));
        }
        if let Some(home) = env("HOME") {
            return Ok(home.join(".cache").join("verdict"));
        }
        Err(SandboxError::Config(
            "no cache directory: set sandbox.cache_dir or VERDICT_CACHE_DIR".to_string(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollout_limits_are_capped_by_the_config() {
        let config = SandboxConfig::default();
        let asked = Limits {
            time_ms: Some(1_000_000),
            memory_mb: Some(100),
            output_kb: None,
        };
        let eff = config.effective(Some(&asked));
        assert_eq!(eff.time_ms, 10_000);
        assert_eq!(eff.memory_bytes, 100 << 20);
        assert_eq!(eff.output_bytes, 1024 << 10);
    }

    #[test]
    fn sections_by_concern_and_the_old_flat_keys_say_where_they_went() {
        let split: SandboxConfig = toml::from_str(
            "time_ms = 5000\n[runtime]\nauto_install = false\n[engine]\nworkers = 3\nprewarm = 0\n",
        )
        .unwrap();
        let err = toml::from_str::<SandboxConfig>(
            "time_ms = 5000\nauto_install = false\nworkers = 3\nprewarm = 0\n",
        )
        .unwrap_err()
        .to_string();
        for now in [
            "[sandbox.runtime] auto_install",
            "[sandbox.engine] workers",
            "[sandbox.engine] prewarm",
        ] {
            assert!(err.contains(now), "{err}");
        }
        assert_eq!(
            (
                split.limits.time_ms,
                split.engine.workers,
                split.engine.prewarm
            ),
            (5000, Some(3), 0)
        );
        assert!(!split.runtime.auto_install);
        let err = toml::from_str::<SandboxConfig>("workers = 1\n[engine]\nworkers = 2\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("[sandbox.engine]"), "{err}");
        let err = toml::from_str::<SandboxConfig>("[engine]\ntime_ms = 2\n").unwrap_err();
        assert!(err.to_string().contains("time_ms"), "{err}");
        // The comparison defaults: their own section, the old flat names still read.
        let judge: SandboxConfig =
            toml::from_str("[judge]\nrel_tol = 1e-9\nmode = \"tokens\"\n").unwrap();
        assert_eq!(judge.judge.rel_tol, 1e-9);
        assert_eq!(judge.judge.mode, CompareMode::Tokens);
        assert_eq!(judge.judge.abs_tol, 1e-6);
        assert!(!judge.judge.strict_keys);
        assert_eq!(judge.judge.compare().strict_keys, Some(false));
        let strict: SandboxConfig = toml::from_str("[judge]\nstrict_keys = true\n").unwrap();
        assert_eq!(strict.judge.compare().strict_keys, Some(true));
        let err = toml::from_str::<SandboxConfig>("float_rel_tol = 1e-9\n").unwrap_err();
        assert!(err.to_string().contains("[sandbox.judge] rel_tol"), "{err}");
        let err = toml::from_str::<SandboxConfig>("[judge]\nmode = \"fuzzy\"\n").unwrap_err();
        assert!(err.to_string().contains("fuzzy"), "{err}");
        // What the worker processes receive round-trips.
        let json = serde_json::to_string(&split).unwrap();
        assert_eq!(serde_json::from_str::<SandboxConfig>(&json).unwrap(), split);
    }

    #[test]
    fn unknown_fields_are_rejected_and_every_problem_reported() {
        let err = toml::from_str::<SandboxConfig>("time_limit = 3").unwrap_err();
        assert!(err.to_string().contains("time_limit"), "{err}");
        let config: SandboxConfig = toml::from_str("time_ms = 0\nmax_tests = 0").unwrap();
        let msg = config.validate().unwrap_err().to_string();
        assert!(
            msg.contains("time_ms") && msg.contains("max_tests"),
            "{msg}"
        );
    }
}
