//! A reward server of your own: verdict's command line (`score`, `serve`, `verifiers`, …) with
//! one more verifier kind, `keywords`, that a `verdict.toml` names like any built-in kind.
//!
//! ```sh
//! cargo run --example custom_server -- verifiers --kinds --config examples/custom_server.toml
//! cargo run --example custom_server -- serve --config examples/custom_server.toml
//! ```
//!
//! `serve` answers gRPC on 127.0.0.1:50051; `ListVerifiers` reports `keywords` with the origin
//! `RUST`, next to the built-in kinds and the file's Python and wasm plug-ins.

use std::process::ExitCode;

use verdict::registry::{settings_of, BuildError, Kind, Registry};
use verdict::{Context, Rollout, Verdict, Verifier};

/// `[[verifier]] kind = "keywords"`: the share of `words` the answer mentions.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Keywords {
    /// Words the answer (outside `<think>…</think>`) should mention.
    words: Vec<String>,
    /// Compare with case. Default: no.
    #[serde(default)]
    case_sensitive: bool,
}

#[async_trait::async_trait]
impl Verifier for Keywords {
    fn kind(&self) -> &'static str {
        "keywords"
    }

    fn describe(&self) -> String {
        format!("words={:?}", self.words)
    }

    async fn verify(&self, _rollout: &Rollout, ctx: &mut Context) -> Verdict {
        let fold = |s: &str| {
            if self.case_sensitive {
                s.to_string()
            } else {
                s.to_lowercase()
            }
        };
        let text = fold(&ctx.answer.text);
        let missing: Vec<&String> = self
            .words
            .iter()
            .filter(|w| !text.contains(&fold(w)))
            .collect();
        let found = self.words.len() - missing.len();
        Verdict::pass(
            found as f64 / self.words.len() as f64,
            serde_json::json!({ "found": found, "missing": missing }),
        )
    }
}

fn keywords_kind() -> Kind {
    Kind::new(
        "keywords",
        "the share of required words the answer mentions",
        |settings, _cx| {
            let keywords: Keywords = settings_of(settings)?;
            if keywords.words.is_empty() {
                return Err(BuildError("`words` must name at least one word".into()));
            }
            Ok(Box::new(keywords))
        },
    )
}

fn main() -> ExitCode {
    let mut registry = Registry::builtin();
    registry
        .register(keywords_kind())
        .expect("`keywords` is not a built-in kind");
    verdict::cli::main_with(registry)
}
