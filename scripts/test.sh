#!/usr/bin/env bash
# The whole test suite, as the README gives it: formatting, lints, every Rust test.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
