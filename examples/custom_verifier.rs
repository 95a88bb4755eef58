//! A verifier of your own: registered in the registry, named in a `verdict.toml`, and served by
//! verdict's own server (`ListVerifiers` lists it, every RPC scores with it).
//!
//! `cargo run --example custom_verifier` serves on 127.0.0.1:50051 until Ctrl-C.

use std::sync::Arc;

use verdict::registry::{settings_of, Kind, Registry};
use verdict::server::{run, shutdown_signal, ServeOptions};
use verdict::{Config, Context, Rollout, Verdict, Verifier};

/// `[[verifier]] kind = "max_length"`: 1 for completions of at most `chars` characters.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MaxLength {
    chars: usize,
}

#[async_trait::async_trait]
impl Verifier for MaxLength {
    fn kind(&self) -> &'static str {
        "max_length"
    }

    async fn verify(&self, rollout: &Rollout, _ctx: &mut Context) -> Verdict {
        let n = rollout.completion.chars().count();
        let score = if n <= self.chars { 1.0 } else { 0.0 };
        Verdict::pass(
            score,
            serde_json::json!({ "chars": n, "limit": self.chars }),
        )
    }
}

const CONFIG: &str = "[[verifier]]\nkind = \"parse\"\ngate = true\nweight = 0.0\n\n\
                      [[verifier]]\nkind = \"max_length\"\nchars = 2000\n";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut registry = Registry::builtin();
    registry.register(Kind::new(
        "max_length",
        "prefers completions under a length",
        |settings, _cx| Ok(Box::new(settings_of::<MaxLength>(settings)?)),
    ))?;
    let chain = Config::parse(CONFIG, "custom_verifier example")?.build_in(&registry)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:50051").await?;
    let opts = ServeOptions {
        registry,
        config_origin: "custom_verifier example".into(),
        ..ServeOptions::default()
    };
    run(listener, Arc::new(chain), opts, shutdown_signal()).await?;
    Ok(())
}
