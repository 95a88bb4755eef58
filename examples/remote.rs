//! Score through a running `verdict serve` with the client (retries, deadlines, balancing).
//!
//! `verdict serve &` then `cargo run --example remote -- http://127.0.0.1:50051`.
#![allow(clippy::print_stdout)]

use verdict::client::{Client, ClientOptions};
use verdict::Rollout;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:50051".into());
    let client = Client::new(&[url], ClientOptions::default())?;
    let rollouts: Vec<Rollout> = ["x = 1", "I think the answer is 42."]
        .iter()
        .enumerate()
        .map(|(i, completion)| Rollout {
            id: format!("r{i}"),
            completion: completion.to_string(),
            ..Rollout::default()
        })
        .collect();
    // One ScoreBatch call: a GRPO group is compared within it; scores come back in order.
    for score in client.score_batch(&rollouts).await? {
        println!("{} {} {:?}", score.id, score.outcome, score.reward);
    }
    Ok(())
}
