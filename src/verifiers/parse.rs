//! The `parse` verifier: is the answer Python, and does it parse?
//!
//! ## What it checks
//! The code candidate found by extraction is classified with tree-sitter-python plus heuristics
//! into one of: not code, code of another language, Python with a syntax error, valid Python.
//!
//! ## Reward
//! 1 for valid Python, 0 otherwise. It is a gate in the default chain: nothing after it runs for
//! prose, other languages or broken Python.
//!
//! ## Failure modes
//! `not_code` (empty, prose, only reasoning), `not_python` (with the guessed language),
//! `syntax_error` (with line, column and a snippet of the first error).
//!
//! The classification itself lives in [`crate::pysource`] (shared with extraction, the sandbox's
//! guard and the trainer); this module is the verifier around it.
//!
//! ## Example
//! ```toml
//! [[verifier]]
//! kind = "parse"
//! gate = true
//! ```

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::kind::{settings_of, BuildContext, BuildError, Kind};
use super::{Context, Verdict, Verifier};
pub use crate::pysource::{classify, parses_as_python, Classification};
use crate::pysource::{classify_within, Budget};
use crate::rollout::Rollout;
use crate::score::Outcome;

/// Settings of the `parse` verifier.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ParseConfig {
    /// The longest code candidate judged, in bytes; longer code is `not_code` ("too large to
    /// judge"). Default 1 MiB.
    pub max_code_bytes: usize,
    /// How long the parse may take, in milliseconds (0: no limit); a longer one is abandoned and
    /// the code is `not_code` ("too costly to judge"). Default 2000.
    pub max_parse_ms: u64,
}

impl Default for ParseConfig {
    fn default() -> Self {
        let budget = Budget::default();
        ParseConfig {
            max_code_bytes: budget.max_bytes,
            max_parse_ms: budget.max_parse_ms,
        }
    }
}

/// The `parse` kind.
pub fn kind() -> Kind {
    Kind::new(
        "parse",
        "the answer is Python that parses (tree-sitter-python); a gate by default",
        |settings, cx| Ok(Box::new(settings_of::<ParseConfig>(settings)?.build(cx)?)),
    )
}

impl ParseConfig {
    /// Build the verifier.
    pub fn build(&self, _cx: &BuildContext<'_>) -> Result<ParseVerifier, BuildError> {
        Ok(ParseVerifier {
            budget: Budget {
                max_bytes: self.max_code_bytes,
                max_parse_ms: self.max_parse_ms,
            },
        })
    }
}

/// The `parse` verifier (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct ParseVerifier {
    budget: Budget,
}

#[async_trait]
impl Verifier for ParseVerifier {
    fn kind(&self) -> &'static str {
        "parse"
    }

    fn describe(&self) -> String {
        format!(
            "max_code_bytes={} max_parse_ms={}",
            self.budget.max_bytes, self.budget.max_parse_ms
        )
    }

    async fn verify(&self, _rollout: &Rollout, ctx: &mut Context) -> Verdict {
        let answer = &ctx.answer;
        let class = match &answer.code {
            None => Classification::NotCode {
                reason: if let Some(why) = &answer.skipped {
                    why.clone()
                } else if answer.thinking.is_some() {
                    "only reasoning, no answer".into()
                } else {
                    "empty".into()
                },
            },
            Some(code) => classify_within(code, answer.fence_lang.as_deref(), &self.budget),
        };
        // The class's own fields (`class`, `language`, `line`, …) sit at the top of the details.
        let mut details = serde_json::to_value(&class).expect("classes serialize");
        let extraction = json!({
            "source": answer.source,
            "fence_lang": answer.fence_lang,
            "blocks": answer.blocks,
            "reasoning_chars": answer.thinking.as_ref().map_or(0, |t| t.chars().count()),
        });
        if let (Some(d), serde_json::Value::Object(e)) = (details.as_object_mut(), extraction) {
            d.extend(e);
        }
        let outcome = class.outcome();
        ctx.parse = Some(class);
        if outcome == Outcome::Passed {
            Verdict::pass(1.0, details)
        } else {
            Verdict::fail(outcome, 0.0, details)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::Answer;

    #[tokio::test]
    async fn the_configured_budget_decides_and_says_why() {
        let config: ParseConfig = toml::from_str("max_code_bytes = 8").expect("settings");
        let verifier = config.build(&BuildContext::default()).unwrap();
        assert!(verifier.describe().contains("max_code_bytes=8"));
        let mut ctx = Context {
            answer: Answer {
                code: Some("print(123)\n".into()),
                ..Answer::default()
            },
            ..Context::default()
        };
        let verdict = verifier.verify(&Rollout::default(), &mut ctx).await;
        assert_eq!(verdict.outcome, Outcome::NotCode);
        let reason = verdict.details["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("too large to judge"), "{reason}");

        // A completion extraction did not read: the reason is extraction's.
        ctx.answer = crate::extract::extract_within("print(1)", 4, |_| true);
        let verdict = ParseVerifier::default()
            .verify(&Rollout::default(), &mut ctx)
            .await;
        assert_eq!(verdict.outcome, Outcome::NotCode);
        let reason = verdict.details["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("a completion of 8 bytes"), "{reason}");
    }

    #[tokio::test]
    async fn verifier_reports_only_reasoning_as_not_code() {
        let mut ctx = Context {
            answer: Answer {
                thinking: Some("hmm".into()),
                ..Answer::default()
            },
            ..Context::default()
        };
        let verdict = ParseVerifier::default()
            .verify(&Rollout::default(), &mut ctx)
            .await;
        assert_eq!(verdict.outcome, Outcome::NotCode);
        assert_eq!(verdict.details["class"], "not_code");
        assert_eq!(verdict.details["reason"], "only reasoning, no answer");
        assert!(matches!(ctx.parse, Some(Classification::NotCode { .. })));

        ctx.answer.code = Some("print(1)\n".into());
        let verdict = ParseVerifier::default()
            .verify(&Rollout::default(), &mut ctx)
            .await;
        assert_eq!(verdict.outcome, Outcome::Passed);
        assert_eq!(verdict.score, 1.0);
        assert_eq!(ctx.parse, Some(Classification::Python));
    }
}
