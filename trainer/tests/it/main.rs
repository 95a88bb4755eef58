//! Integration tests of verdict-trainer (one binary; the f64 gradient checks live in
//! `tests/gradients.rs` because they need their own process).

// The shortened pretrain → SFT pipeline: finite decreasing loss, checkpoints, resume, sampling.
mod pipeline;
// The command line: `params` on the presets, errors on bad configs.
mod cli;
// GRPO against a real `verdict serve`: rewards, finite loss, ratio 1 in the first epoch, resume.
mod grpo;
// R1-Zero: GRPO from a base checkpoint with the R1-Zero template; the format reward rises.
mod zero;
