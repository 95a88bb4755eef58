//! The `[testgen]` section of `verdict.toml`: where the LLM is, how to ask it, where the cache is.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::prompt::ShapeChoice;

/// The `[testgen]` section. Test generation is active only when both an endpoint
/// (`base_url`, else `$OPENAI_BASE_URL`) and a `model` are known; otherwise nothing changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TestgenConfig {
    /// Turn generation off even where an endpoint is configured. Default `true`.
    pub enabled: bool,
    /// Base URL of an OpenAI-compatible API, up to and including `/v1`
    /// (`http://localhost:8000/v1` for vLLM, `http://localhost:11434/v1` for Ollama). Default:
    /// `$OPENAI_BASE_URL`.
    pub base_url: Option<String>,
    /// API key, sent as `Authorization: Bearer …`. Default: `$OPENAI_API_KEY`; none for local
    /// servers that need none.
    pub api_key: Option<String>,
    /// The model name the endpoint serves. Required for generation.
    pub model: Option<String>,
    /// Sampling temperature. Default 0.2.
    pub temperature: f64,
    /// Sampling seed sent with each request (servers that honour it answer reproducibly); part
    /// of the cache key. Default 0.
    pub seed: u64,
    /// Tests asked for per problem (N); part of the cache key. Default 8.
    pub n: usize,
    /// `max_tokens` of each request. Default 2048.
    pub max_tokens: u32,
    /// The whole budget of one generation in seconds, every attempt and backoff included:
    /// past it the rollout gets the `error` outcome. Default 60.
    pub timeout_secs: f64,
    /// Requests to the endpoint in flight at once, over all problems. Default 4.
    pub max_concurrent: usize,
    /// Retries after the first attempt, on 429, 5xx, timeouts and connection errors. Default 3.
    pub max_retries: u32,
    /// First backoff in milliseconds, doubled per retry (a `Retry-After` header overrides it).
    /// Default 500.
    pub backoff_ms: u64,
    /// Failed generations in a row after which the circuit opens: generations fail at once
    /// for `breaker_cooldown_secs`, then one is let through. Default 3.
    pub breaker_failures: u32,
    /// How long an open circuit stays open, in seconds. Default 30.
    pub breaker_cooldown_secs: f64,
    /// `assert`, `stdio`, or `auto` (from the prompt and `entry_point`). Default `auto`.
    pub shape: ShapeChoice,
    /// The prompt template (see [`super::prompt`]); default: the built-in one.
    pub template: Option<String>,
    /// The template's version, part of the cache key. Required with `template`.
    pub template_version: Option<String>,
    /// The directory of the generated-tests cache file (`generated-tests.sqlite3`). Default:
    /// `testgen/` in the verdict cache directory (`sandbox.cache_dir`, `$VERDICT_CACHE_DIR`,
    /// `$XDG_CACHE_HOME/verdict`, `~/.cache/verdict`).
    pub cache_dir: Option<PathBuf>,
    /// Add a `generated` step after `tests` to a chain that has none, when generation is
    /// active. Default `true`.
    pub auto_step: bool,
}

impl Default for TestgenConfig {
    fn default() -> Self {
        TestgenConfig {
            enabled: true,
            base_url: None,
            api_key: None,
            model: None,
            temperature: 0.2,
            seed: 0,
            n: 8,
            max_tokens: 2048,
            timeout_secs: 60.0,
            max_concurrent: 4,
            max_retries: 3,
            backoff_ms: 500,
            breaker_failures: 3,
            breaker_cooldown_secs: 30.0,
            shape: ShapeChoice::Auto,
            template: None,
            template_version: None,
            cache_dir: None,
            auto_step: true,
        }
    }
}

/// Where and as whom to send requests: the section with the environment filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// Base URL without a trailing slash.
    pub base_url: String,
    /// Bearer token, if any.
    pub api_key: Option<String>,
    /// Model name.
    pub model: String,
}

impl TestgenConfig {
    /// The endpoint, when generation is active: `enabled`, a base URL (config or
    /// `$OPENAI_BASE_URL`) and a model. `env` reads the environment (tests pass their own).
    pub fn endpoint_with(&self, env: impl Fn(&str) -> Option<String>) -> Option<Endpoint> {
        if !self.enabled {
            return None;
        }
        let model = self.model.clone().filter(|m| !m.is_empty())?;
        let base_url = self
            .base_url
            .clone()
            .or_else(|| env("OPENAI_BASE_URL"))
            .filter(|u| !u.is_empty())?;
        let api_key = self
            .api_key
            .clone()
            .or_else(|| env("OPENAI_API_KEY"))
            .filter(|k| !k.is_empty());
        Some(Endpoint {
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key,
            model,
        })
    }

    /// [`TestgenConfig::endpoint_with`] the process environment.
    pub fn endpoint(&self) -> Option<Endpoint> {
        self.endpoint_with(|k| std::env::var(k).ok())
    }

    /// Every problem with the settings, one line each.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let mut need = |ok: bool, msg: &str| {
            if !ok {
                p.push(format!("testgen.{msg}"));
            }
        };
        need(self.n >= 1 && self.n <= 100, "n must be in 1..=100");
        need(
            self.timeout_secs.is_finite() && self.timeout_secs > 0.0,
            "timeout_secs must be > 0",
        );
        need(self.max_concurrent >= 1, "max_concurrent must be ≥ 1");
        need(self.max_tokens >= 1, "max_tokens must be ≥ 1");
        need(
            self.temperature.is_finite() && (0.0..=2.0).contains(&self.temperature),
            "temperature must be in [0, 2]",
        );
        need(
            self.breaker_cooldown_secs.is_finite() && self.breaker_cooldown_secs >= 0.0,
            "breaker_cooldown_secs must be ≥ 0",
        );
        need(
            self.template.is_none() || self.template_version.is_some(),
            "template_version is required with template (it is part of the cache key)",
        );
        if let Some(t) = &self.template {
            need(t.contains("{problem}"), "template must contain {problem}");
        }
        if self.base_url.is_some() && self.model.is_none() && self.enabled {
            p.push("testgen.model is required where testgen.base_url is set".into());
        }
        if let Some(url) = &self.base_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                p.push(format!(
                    "testgen.base_url must start with http:// or https://, got {url:?}"
                ));
            }
        }
        p
    }

    /// The whole budget of one generation.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn generation_needs_an_endpoint_and_a_model() {
        let none = TestgenConfig::default();
        assert_eq!(
            none.endpoint_with(env(&[("OPENAI_BASE_URL", "http://x/v1")])),
            None
        );
        let with_model = TestgenConfig {
            model: Some("m".into()),
            ..TestgenConfig::default()
        };
        assert_eq!(with_model.endpoint_with(env(&[])), None);
        let e = with_model
            .endpoint_with(env(&[
                ("OPENAI_BASE_URL", "http://x/v1/"),
                ("OPENAI_API_KEY", "k"),
            ]))
            .unwrap();
        assert_eq!(e.base_url, "http://x/v1");
        assert_eq!(e.api_key.as_deref(), Some("k"));
        let off = TestgenConfig {
            enabled: false,
            ..with_model.clone()
        };
        assert_eq!(
            off.endpoint_with(env(&[("OPENAI_BASE_URL", "http://x")])),
            None
        );
    }

    #[test]
    fn bad_settings_are_all_reported() {
        let c: TestgenConfig =
            toml::from_str("n = 0\ntimeout_secs = 0\ntemplate = \"x\"\nbase_url = \"ftp://h\"")
                .unwrap();
        let p = c.problems().join("\n");
        assert!(p.contains("n must be"), "{p}");
        assert!(p.contains("timeout_secs"), "{p}");
        assert!(p.contains("template_version is required"), "{p}");
        assert!(p.contains("{problem}"), "{p}");
        assert!(p.contains("model is required"), "{p}");
        assert!(p.contains("http://"), "{p}");
        assert!(toml::from_str::<TestgenConfig>("modle = \"x\"").is_err());
    }
}
