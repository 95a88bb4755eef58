//! The `format` verifier: R1 structure and language consistency of the reasoning.
//!
//! ## What it checks
//! - **Structure**, as in DeepSeek-R1-Zero's format reward: the reasoning sits inside exactly one
//!   `<think>…</think>` pair at the start, followed by a non-empty answer. With
//!   `prompt_opens_think = true` (templates that end the prompt with `<think>`), a completion that
//!   only closes the tag counts as well formed.
//! - **Language consistency**, as in DeepSeek-R1 §2.3.3: the share of the reasoning's words that
//!   are in the target language. The reasoning is split into sentences; each sentence's language
//!   is detected with `whatlang`; where detection is unreliable (short sentences, formulas) the
//!   sentence counts as target language when its script is the target's script. Words are
//!   whitespace-separated tokens holding a letter, and each CJK character counts as one word.
//!
//! ## Reward
//! `score = (1 - language_weight) * structure + language_weight * consistency`, where structure
//! is 1 for a well-formed completion and 0 otherwise, and consistency is in [0, 1] (0 when there
//! is no reasoning). The verdict's outcome is always `passed`: format is a soft score unless the
//! chain step is a gate with a `min_score`.
//!
//! ## Failure modes
//! No tags, an unclosed `<think>`, several pairs, text before `<think>`, an empty answer, or
//! reasoning in another language all lower the score; none is an error.
//!
//! ## Example
//! ```toml
//! [[verifier]]
//! kind = "format"
//! weight = 0.2
//! language = "eng"
//! language_weight = 0.5
//! ```

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::json;
use whatlang::Lang;

use super::kind::{settings_of, BuildContext, BuildError, Kind};
use super::{Context, Verdict, Verifier};
use crate::extract::ThinkTags;
use crate::rollout::Rollout;

/// Settings of the `format` verifier.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FormatConfig {
    /// Target language of the reasoning, as an ISO 639-3 code (`eng`, `cmn`, `fra`, …).
    /// Default: `"eng"`.
    pub language: String,
    /// Share of the score given to language consistency, in [0, 1]. Default: `0.5`.
    pub language_weight: f64,
    /// The prompt template already opened `<think>`, so a completion that only closes it is well
    /// formed. Default: `false`.
    pub prompt_opens_think: bool,
}

impl Default for FormatConfig {
    fn default() -> Self {
        FormatConfig {
            language: "eng".into(),
            language_weight: 0.5,
            prompt_opens_think: false,
        }
    }
}

/// The `format` kind.
pub fn kind() -> Kind {
    Kind::new(
        "format",
        "R1 <think>…</think> structure and reasoning language consistency",
        |settings, cx| Ok(Box::new(settings_of::<FormatConfig>(settings)?.build(cx)?)),
    )
}

impl FormatConfig {
    /// Validate the settings and build the verifier.
    pub fn build(&self, _cx: &BuildContext<'_>) -> Result<FormatVerifier, BuildError> {
        let target = Lang::from_code(&self.language).ok_or_else(|| {
            BuildError::from(format!(
                "unknown language `{}` (use an ISO 639-3 code such as `eng`, `cmn`, `fra`)",
                self.language
            ))
        })?;
        if !(0.0..=1.0).contains(&self.language_weight) {
            return Err(BuildError(format!(
                "language_weight must be in [0, 1], got {}",
                self.language_weight
            )));
        }
        Ok(FormatVerifier {
            target,
            language_weight: self.language_weight,
            prompt_opens_think: self.prompt_opens_think,
        })
    }
}

/// The `format` verifier (see the module docs).
#[derive(Debug, Clone)]
pub struct FormatVerifier {
    target: Lang,
    language_weight: f64,
    prompt_opens_think: bool,
}

#[async_trait]
impl Verifier for FormatVerifier {
    fn kind(&self) -> &'static str {
        "format"
    }

    async fn verify(&self, _rollout: &Rollout, ctx: &mut Context) -> Verdict {
        let answer = &ctx.answer;
        let tags_ok = match answer.think {
            ThinkTags::WellFormed => true,
            ThinkTags::CloseOnly => self.prompt_opens_think,
            _ => false,
        };
        let answer_present = !answer.text.trim().is_empty();
        let structure = if tags_ok && answer_present { 1.0 } else { 0.0 };
        // A reasoning with no words (`0.</think>` before the code) is no reasoning: 0, as for
        // none at all. Scored 1 it paid half the format reward for the shape alone, which an
        // R1-Zero policy learned (verdict-trainer's `tiny-zero`).
        let consistency = answer
            .thinking
            .as_deref()
            .filter(|t| count_words(t) > 0)
            .map_or(0.0, |t| language_consistency(t, self.target));
        let score = (1.0 - self.language_weight) * structure + self.language_weight * consistency;
        Verdict::pass(
            score,
            json!({
                "think": answer.think,
                "answer_present": answer_present,
                "structure": structure,
                "language": self.target.code(),
                "consistency": round3(consistency),
            }),
        )
    }

    fn describe(&self) -> String {
        format!(
            "language={} language_weight={} prompt_opens_think={}",
            self.target.code(),
            self.language_weight,
            self.prompt_opens_think
        )
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Share of the words of `text` written in `target`, in [0, 1]. Text with no words scores 1.
pub fn language_consistency(text: &str, target: Lang) -> f64 {
    let target_script = whatlang::detect(target_sample(target)).map(|i| i.script());
    let mut total = 0usize;
    let mut in_target = 0usize;
    for sentence in text.split(['.', '!', '?', '\n', '。', '！', '？', '；', ';']) {
        let words = count_words(sentence);
        if words == 0 {
            continue;
        }
        total += words;
        let is_target = match whatlang::detect(sentence) {
            Some(info) if info.is_reliable() => info.lang() == target,
            _ => match whatlang::detect_script(sentence) {
                Some(script) => Some(script) == target_script,
                None => true,
            },
        };
        if is_target {
            in_target += words;
        }
    }
    if total == 0 {
        1.0
    } else {
        in_target as f64 / total as f64
    }
}

/// A phrase in the target language, used only to learn its script.
fn target_sample(target: Lang) -> &'static str {
    match target.code() {
        "cmn" => "这是一个中文句子",
        "jpn" => "これは日本語の文です",
        "kor" => "이것은 한국어 문장입니다",
        "rus" | "ukr" | "bul" => "это предложение",
        "ara" | "pes" | "urd" => "هذه جملة",
        "heb" => "זה משפט",
        "hin" | "mar" | "nep" => "यह एक वाक्य है",
        "ell" => "αυτή είναι μια πρόταση",
        _ => "this is a sentence",
    }
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF)
}

fn count_words(s: &str) -> usize {
    s.split_whitespace()
        .map(|w| {
            let cjk = w.chars().filter(|&c| is_cjk(c)).count();
            let other_letters = w.chars().any(|c| c.is_alphabetic() && !is_cjk(c));
            cjk + usize::from(other_letters)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::extract;

    fn score(completion: &str, cfg: FormatConfig) -> (f64, serde_json::Value) {
        let verifier = cfg.build(&BuildContext::default()).unwrap();
        let mut ctx = Context {
            answer: extract(completion, |_| true),
            ..Context::default()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let v = rt.block_on(verifier.verify(&Rollout::default(), &mut ctx));
        (v.score, v.details)
    }

    const ENGLISH: &str = "<think>We need to add the two numbers. The sum of a and b is returned directly, which is simple.</think>\n```python\ndef add(a, b):\n    return a + b\n```";

    #[test]
    fn well_formed_english_reasoning_scores_one() {
        let (s, d) = score(ENGLISH, FormatConfig::default());
        assert_eq!(s, 1.0, "{d}");
        assert_eq!(d["think"], "well_formed");
    }

    #[test]
    fn missing_tags_lose_structure() {
        let (s, _) = score("def add(a, b):\n    return a + b", FormatConfig::default());
        assert_eq!(s, 0.0);
        let (s, _) = score(
            "<think>I will add the two numbers together now.",
            FormatConfig::default(),
        );
        assert!(
            s <= 0.5,
            "unclosed think keeps at most the language half: {s}"
        );
    }

    #[test]
    fn a_reasoning_of_no_words_earns_no_consistency() {
        for c in [
            "0.</think>\ndef add(a, b):\n    return a + b\n",
            "<think> . </think>\nprint(1)",
        ] {
            let (s, d) = score(c, FormatConfig::default());
            assert_eq!(d["consistency"], 0.0, "{c}: {d}");
            assert!(s <= 0.5, "{c}: {s}");
        }
    }

    #[test]
    fn close_only_counts_when_template_opens_think() {
        let c = "We add the numbers together and return the result.</think>\nprint(1)";
        assert_eq!(score(c, FormatConfig::default()).0, 0.5);
        let opens = FormatConfig {
            prompt_opens_think: true,
            ..FormatConfig::default()
        };
        assert_eq!(score(c, opens).0, 1.0);
    }

    #[test]
    fn mixed_language_reasoning_scores_lower() {
        let mixed = "<think>We need to add the two numbers together. 我们需要把两个数字加起来然后返回结果，这个问题很简单。首先读取输入，然后计算总和。</think>\nprint(1)";
        let (s_mixed, d) = score(mixed, FormatConfig::default());
        let (s_en, _) = score(ENGLISH, FormatConfig::default());
        assert!(s_mixed < s_en, "mixed {s_mixed} vs english {s_en}: {d}");
        let c = d["consistency"].as_f64().unwrap();
        assert!(c > 0.1 && c < 0.6, "consistency {c}");
    }

    #[test]
    fn chinese_target_prefers_chinese_reasoning() {
        let zh = "<think>我们需要把两个数字加起来然后返回结果。这个问题很简单。</think>\nprint(1)";
        let cfg = FormatConfig {
            language: "cmn".into(),
            ..FormatConfig::default()
        };
        assert_eq!(score(zh, cfg.clone()).0, 1.0);
        assert!(score(ENGLISH, cfg).0 < 1.0);
    }

    #[test]
    fn formulas_do_not_count_against_the_target() {
        let c = language_consistency("Let x = 3. Then x + 1 = 4. So the answer is 4.", Lang::Eng);
        assert_eq!(c, 1.0);
    }

    #[test]
    fn bad_settings_are_rejected() {
        let err = FormatConfig {
            language: "klingon".into(),
            ..FormatConfig::default()
        }
        .build(&BuildContext::default())
        .unwrap_err();
        assert!(err.0.contains("klingon"));
        assert!(FormatConfig {
            language_weight: 1.5,
            ..FormatConfig::default()
        }
        .build(&BuildContext::default())
        .is_err());
    }
}
