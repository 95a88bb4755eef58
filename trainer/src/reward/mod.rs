//! verdict as the reward: the client that scores each GRPO group ([`client`]) and the embedded
//! `verdict serve` it talks to when no endpoint is given ([`server`]). Below both the GRPO loop
//! ([`crate::grpo`]) and held-out evaluation ([`crate::eval`]), which score through it alike.

pub mod client;
pub mod server;

pub use client::{quantile, Reading, RewardError, RewardSummary, Rewards};
