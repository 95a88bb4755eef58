//! Score one rollout with the library: build the built-in chain, score, print the record.
//!
//! `cargo run --example score_one` (the first run installs the sandbox runtime, about a minute).
#![allow(clippy::print_stdout)]

use verdict::{Config, Rollout, TestCase};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let chain = Config::default_config().build()?;
    let rollout = Rollout {
        id: "add-1".into(),
        completion: "<think>sum them</think>\n```python\ndef add(a, b):\n    return a + b\n```"
            .into(),
        tests: vec![TestCase::Assert {
            code: "assert add(1, 2) == 3".into(),
            timing: false,
        }],
        ..Rollout::default()
    };
    let score = chain.score(&rollout).await;
    // `reward` is None only for the `error` outcome: verdict could not judge; mask it out.
    println!("{} {:?} {:?}", score.id, score.outcome, score.reward);
    println!("{}", serde_json::to_string_pretty(&score)?);
    Ok(())
}
