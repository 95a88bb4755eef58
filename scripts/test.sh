#!/usr/bin/env bash
# The whole test suite, as the README gives it:
#   formatting, lints, the sandbox runtime (installed on first use: pip + componentize-py,
#   hash-pinned in sandbox/runtime.lock), every Rust test, and the Python tests (the grpcio
#   client test, and the `verdict` Python package built with maturin: tests/python/run.sh).
#
# Each stage prints its wall time against its budget (seconds, for a fresh clone with a cold
# target directory on the 2-core CI machine, 30 minutes in all); a stage over budget is named
# at the end, so a slow-down is seen long before CI's 90-minute limit. Budgets do not fail the
# run: this machine is noisy.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-$PWD/target}

over=()
stage() {
    local name=$1 budget=$2
    shift 2
    local start=$SECONDS
    "$@"
    local took=$((SECONDS - start))
    printf '[stage] %-8s %5d s (budget %d s)\n' "$name" "$took" "$budget"
    if [ "$took" -gt "$budget" ]; then
        over+=("$name ($took s > $budget s)")
    fi
}

stage fmt 30 cargo fmt --all -- --check
stage clippy 600 cargo clippy --workspace --all-targets --locked -- -D warnings
stage build 420 cargo build --workspace --all-targets --locked
# Install, build, compile and self-test the sandbox runtime once, before tests run in parallel.
stage runtime 180 "$target/debug/verdict" runtime install
stage rust 300 cargo test --workspace --locked
stage python 270 env VERDICT_BIN="$target/debug/verdict" bash tests/python/run.sh

if [ ${#over[@]} -gt 0 ]; then
    printf '[stage] over budget: %s\n' "${over[@]}"
fi
