//! Per-call overhead of plug-in verifiers against a built-in Rust verifier, in one run.
//!
//! ```text
//! cargo bench --profile dev --bench plugins -- [--calls 2000] [--rounds 5] [--batch 64]
//! ```
//!
//! Four one-step chains score the same rollout, one call after another (`Chain::score`):
//! - `rust`: the built-in `match` verifier (the baseline);
//! - `python`: a Python function that returns 1.0 (`fixtures/plugins/verifiers.py:constant`);
//! - `wasm`: a componentize-py component that returns at once (`fixtures/plugins/hostile.py`,
//!   built as `verdict plugin build` does on first run, cached after; its instance is reused
//!   from call to call, as in service);
//! - `python batch`: `Chain::score_batch` of `--batch` rollouts through the batch form
//!   (`constants`, `batch = true`), per rollout, next to the same batch one call each.
//!
//! Prints the median per-call time of each over `--rounds` rounds, its ratio to `rust` and the
//! time it adds; the ratios are what to compare across machines (absolute times drift on a
//! noisy machine).
#![allow(clippy::print_stdout, missing_docs)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use verdict::sandbox::SandboxConfig;
use verdict::{Chain, Config, Registry, Rollout};

/// Command-line options (`cargo bench -- --help`).
#[derive(clap::Parser)]
struct Args {
    /// Calls per round for each chain.
    #[arg(long, default_value_t = 2000)]
    calls: usize,
    /// Rounds; the median round is reported.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Rollouts per `score_batch` call of the batch form.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn args() -> Args {
    clap::Parser::parse()
}

fn chain(text: &str) -> Arc<Chain> {
    Arc::new(
        Config::parse(text, "bench")
            .unwrap()
            .build_in(&Registry::builtin())
            .unwrap(),
    )
}

fn rollout(i: usize) -> Rollout {
    Rollout {
        id: format!("r{i}"),
        prompt: "fine".into(),
        // `ok` for the wasm fixture, which scores 1 when the completion mentions it.
        completion: "<think>ok, 6*7</think>So the answer is \\boxed{42}.".into(),
        answer: Some("42".into()),
        ..Rollout::default()
    }
}

/// Median over rounds of the mean time per call of `calls` sequential `Chain::score`s.
async fn per_call(chain: &Chain, calls: usize, rounds: usize) -> Duration {
    let r = rollout(0);
    for _ in 0..calls.min(100) {
        assert!(chain.score(&r).await.reward.is_some());
    }
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds.max(1) {
        let start = Instant::now();
        for _ in 0..calls {
            let s = chain.score(&r).await;
            assert_eq!(s.reward, Some(1.0), "{s:?}");
        }
        times.push(start.elapsed() / calls as u32);
    }
    times.sort();
    times[times.len() / 2]
}

/// Median over rounds of the time per rollout of `Chain::score_batch` of `batch` rollouts.
async fn per_rollout_in_batch(chain: &Arc<Chain>, batch: usize, rounds: usize) -> Duration {
    let rollouts: Vec<Rollout> = (0..batch).map(rollout).collect();
    let mut times = Vec::new();
    for _ in 0..rounds.max(3) {
        let start = Instant::now();
        let scores = chain.score_batch(rollouts.clone()).await;
        assert!(scores.iter().all(|s| s.reward == Some(1.0)));
        times.push(start.elapsed() / batch as u32);
    }
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let args = args();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixtures = root.join("fixtures/plugins");
    let wasm = std::env::temp_dir().join(format!("verdict-bench-{}.wasm", std::process::id()));
    let built = verdict::plugins::build::build_python(
        &SandboxConfig::default(),
        &fixtures.join("hostile.py"),
        &wasm,
    )
    .expect("building the wasm plug-in");
    let py = fixtures.join("verifiers.py");
    let rust = chain("[[verifier]]\nkind = \"match\"\n");
    let python = chain(&format!(
        "[plugins.p]\npython = \"{}\"\nfunction = \"constant\"\n[[verifier]]\nkind = \"p\"\n",
        py.display()
    ));
    let python_batch = chain(&format!(
        "[plugins.p]\npython = \"{}\"\nfunction = \"constants\"\nbatch = true\n\
         [[verifier]]\nkind = \"p\"\n",
        py.display()
    ));
    let wasm_chain = chain(&format!(
        "[plugins.w]\nwasm = \"{}\"\n[[verifier]]\nkind = \"w\"\nmode = \"fine\"\n",
        built.output.display()
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (calls, rounds) = (args.calls, args.rounds);
        let t_rust = per_call(&rust, calls, rounds).await;
        let t_python = per_call(&python, calls, rounds).await;
        let t_wasm = per_call(&wasm_chain, calls, rounds).await;
        let t_batch_single = per_rollout_in_batch(&python, args.batch, rounds).await;
        let t_batch = per_rollout_in_batch(&python_batch, args.batch, rounds).await;
        let t_rust_batch = per_rollout_in_batch(&rust, args.batch, rounds).await;
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let ratio = |d: Duration, base: Duration| d.as_secs_f64() / base.as_secs_f64();
        let added = |d: Duration| us(d) - us(t_rust);
        println!("Chain::score, one call after another, median of {rounds} rounds of {calls} calls");
        println!("(every chain also extracts the answer, which the rust row is mostly made of):");
        println!("  rust   (built-in match)   {:>9.1} µs/call   1.0×", us(t_rust));
        println!(
            "  python (constant)          {:>9.1} µs/call {:>6.1}× rust (adds {:.1} µs)",
            us(t_python),
            ratio(t_python, t_rust),
            added(t_python)
        );
        println!(
            "  wasm   (componentize-py)   {:>9.1} µs/call {:>6.1}× rust (adds {:.1} µs)",
            us(t_wasm),
            ratio(t_wasm, t_rust),
            added(t_wasm)
        );
        println!("score_batch of {} rollouts, per rollout:", args.batch);
        println!("  rust   (built-in match) {:>10.1} µs   1.0×", us(t_rust_batch));
        println!(
            "  python one call each    {:>10.1} µs {:>6.1}× rust",
            us(t_batch_single),
            ratio(t_batch_single, t_rust_batch)
        );
        println!(
            "  python batch form       {:>10.1} µs {:>6.1}× rust ({:.1}× faster than one call each)",
            us(t_batch),
            ratio(t_batch, t_rust_batch),
            ratio(t_batch_single, t_batch)
        );
    });
    let _ = std::fs::remove_file(&wasm);
}
