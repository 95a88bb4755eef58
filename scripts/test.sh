#!/usr/bin/env bash
# The whole test suite, as the README gives it:
#   formatting, lints, the sandbox runtime (installed on first use: pip + componentize-py,
#   hash-pinned in sandbox/runtime.lock), every Rust test, and the Python tests (the grpcio
#   client test, and the `verdict` Python package built with maturin: tests/python/run.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-$PWD/target}

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --workspace --all-targets --locked
# Install, build, compile and self-test the sandbox runtime once, before tests run in parallel.
"$target/debug/verdict" runtime install
cargo test --workspace --locked
VERDICT_BIN="$target/debug/verdict" bash tests/python/run.sh
