//! `verdict-trainer`: the command line of the trainer (parse arguments, set up tracing, dispatch).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::tensor::backend::AutodiffBackend;
use clap::{Parser, Subcommand};
use verdict_trainer::backend::DeviceKind;
use verdict_trainer::batches::BatchSource;
use verdict_trainer::checkpoint;
use verdict_trainer::config::TrainConfig;
use verdict_trainer::eval;
use verdict_trainer::generate::SamplingConfig;
use verdict_trainer::grpo::{self, GrpoOptions};
use verdict_trainer::params;
use verdict_trainer::train::{self, Stage, StageOptions};

#[derive(Parser)]
#[command(
    version,
    about = "DeepSeekMoE policy: pretraining, SFT, GRPO with verdict's rewards, sampling (burn)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print total and activated parameters of a config (preset name or JSON path).
    Params {
        /// `tiny`, `small`, `deepseek-v3` or a path.
        config: String,
    },
    /// Generate the problems (rollout JSONL) and train the tokenizer into the run directory.
    Data(RunArgs),
    /// Next-token pretraining on the base corpus (resumes from the newest checkpoint).
    Pretrain(StageArgs),
    /// Supervised fine-tuning from the pretrained checkpoint (resumes likewise).
    Sft(StageArgs),
    /// GRPO from the SFT (or base) checkpoint with rewards from verdict over gRPC; starts a local
    /// `verdict serve` unless --reward-endpoint is given (resumes from the newest checkpoint).
    Grpo(GrpoArgs),
    /// Score held-out answers with verdict: pass rate by tests, parse rate, mean reward.
    Eval(EvalArgs),
    /// Sample answers for held-out problems and report the Python parse rate.
    Sample(SampleArgs),
    /// Time training steps on random tokens and report ms/step and tokens/s.
    Bench(BenchArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// Preset name or config path.
    #[arg(long, default_value = "tiny")]
    config: String,
    /// Run directory (tokenizer, problems, stage outputs).
    #[arg(long, default_value = "runs/tiny")]
    run_dir: PathBuf,
}

#[derive(clap::Args)]
struct StageArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Total steps (default: the config's `run` section).
    #[arg(long)]
    steps: Option<usize>,
    /// Stop after this many steps in this invocation (resume later).
    #[arg(long)]
    stop_after: Option<usize>,
    /// Start from these weights (a checkpoint directory) instead of the default.
    #[arg(long)]
    init: Option<PathBuf>,
    /// Discard this stage's checkpoints and start over.
    #[arg(long)]
    fresh: bool,
    /// Device to train on.
    #[arg(long, value_enum, default_value_t = DeviceKind::Cpu)]
    device: DeviceKind,
}

#[derive(clap::Args)]
struct GrpoArgs {
    #[command(flatten)]
    run: RunArgs,
    /// verdict serve endpoints, comma-separated (load-balanced). Default: the config's
    /// `grpo.reward.endpoints`, else a local `verdict serve` on a free port for the run.
    #[arg(long, value_delimiter = ',')]
    reward_endpoint: Vec<String>,
    /// Total steps (default: `grpo.steps`).
    #[arg(long)]
    steps: Option<usize>,
    /// Stop after this many steps in this invocation (resume later).
    #[arg(long)]
    stop_after: Option<usize>,
    /// Discard GRPO's checkpoints and metrics and start over from `grpo.init`.
    #[arg(long)]
    fresh: bool,
    /// Device to train on.
    #[arg(long, value_enum, default_value_t = DeviceKind::Cpu)]
    device: DeviceKind,
}

/// Which stage's newest checkpoint a command reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CheckpointStage {
    Pretrain,
    Sft,
    Grpo,
}

impl CheckpointStage {
    fn name(self) -> &'static str {
        match self {
            CheckpointStage::Pretrain => "pretrain",
            CheckpointStage::Sft => "sft",
            CheckpointStage::Grpo => "grpo",
        }
    }
}

#[derive(clap::Args)]
struct EvalArgs {
    /// Run directory.
    #[arg(long, default_value = "runs/tiny")]
    run_dir: PathBuf,
    /// Which stage's newest checkpoint to evaluate.
    #[arg(long, value_enum, default_value_t = CheckpointStage::Grpo)]
    stage: CheckpointStage,
    /// Evaluate this checkpoint directory instead.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// verdict serve endpoints, comma-separated. Default: as for `grpo`.
    #[arg(long, value_delimiter = ',')]
    reward_endpoint: Vec<String>,
    /// Held-out problems to score (0: all).
    #[arg(long, default_value_t = 0)]
    limit: usize,
    /// Sampling temperature (0: greedy).
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    /// Token budget per answer.
    #[arg(long, default_value_t = 96)]
    max_new_tokens: usize,
    /// Sampler seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Answers per problem (each with its own seed); the pass rate is then the sampled pass@1
    /// averaged over them. Use with `--temperature` > 0.
    #[arg(long, default_value_t = 1)]
    samples: usize,
}

#[derive(clap::Args)]
struct SampleArgs {
    /// Run directory.
    #[arg(long, default_value = "runs/tiny")]
    run_dir: PathBuf,
    /// Which stage's newest checkpoint to sample from.
    #[arg(long, value_enum, default_value_t = CheckpointStage::Sft)]
    stage: CheckpointStage,
    /// Held-out problems to sample (0: all).
    #[arg(long, default_value_t = 0)]
    limit: usize,
    /// Sampling temperature (0: greedy).
    #[arg(long, default_value_t = 0.7)]
    temperature: f32,
    /// Nucleus mass.
    #[arg(long, default_value_t = 0.95)]
    top_p: f32,
    /// Token budget per answer.
    #[arg(long, default_value_t = 96)]
    max_new_tokens: usize,
    /// Prompts per batch.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Sampler seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where to write the answers in rollout format (default: `<stage>/samples.jsonl`).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Preset name or config path.
    #[arg(long, default_value = "tiny")]
    config: String,
    /// Steps to time (after two warm-up steps).
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Override the batch size.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Override the sequence length.
    #[arg(long)]
    seq_len: Option<usize>,
    /// Device.
    #[arg(long, value_enum, default_value_t = DeviceKind::Cpu)]
    device: DeviceKind,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Print a JSON value on stdout (the commands' machine-readable output). A closed pipe
/// (`| head`) is not an error.
fn emit(value: &serde_json::Value) {
    use std::io::Write;
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Params { config } => {
            let config = TrainConfig::load(&config)?;
            let n = params::count(&config.policy);
            emit(&serde_json::json!({
                "total": n.total,
                "activated": n.activated,
                "total_billions": n.total as f64 / 1e9,
                "activated_billions": n.activated as f64 / 1e9,
            }));
            Ok(())
        }
        Command::Data(args) => {
            let config = TrainConfig::load(&args.config)?;
            let prepared = train::prepare(&config, &args.run_dir)?;
            emit(&serde_json::json!({
                "train_problems": prepared.train.len(),
                "heldout_problems": prepared.heldout.len(),
                "vocab_size": prepared.tokenizer.vocab_size(),
                "run_dir": args.run_dir,
            }));
            Ok(())
        }
        Command::Pretrain(args) => stage(Stage::Pretrain, args),
        Command::Sft(args) => stage(Stage::Sft, args),
        Command::Grpo(args) => grpo(args),
        Command::Eval(args) => eval_command(args),
        Command::Sample(args) => sample(args),
        Command::Bench(args) => match args.device {
            DeviceKind::Cpu => bench::<verdict_trainer::backend::CpuTrainBackend>(&args),
            DeviceKind::Cuda => cuda_bench(&args),
        },
    }
}

#[cfg(feature = "cuda")]
fn cuda_bench(args: &BenchArgs) -> Result<()> {
    bench::<verdict_trainer::backend::CudaTrainBackend>(args)
}

#[cfg(not(feature = "cuda"))]
fn cuda_bench(_: &BenchArgs) -> Result<()> {
    bail!("this binary was built without the `cuda` feature")
}

fn stage(stage: Stage, args: StageArgs) -> Result<()> {
    let config = TrainConfig::load(&args.run.config)?;
    let init = match (&args.init, stage) {
        (Some(init), _) => Some(init.clone()),
        (None, Stage::Sft) => {
            checkpoint::latest(&args.run.run_dir.join("pretrain").join("checkpoints"))
        }
        (None, Stage::Pretrain) => None,
    };
    let options = StageOptions {
        steps: args.steps,
        stop_after: args.stop_after,
        init,
        fresh: args.fresh,
        progress: true,
    };
    let report = match args.device {
        DeviceKind::Cpu => train::run_stage::<verdict_trainer::backend::CpuTrainBackend>(
            stage,
            &config,
            &args.run.run_dir,
            &options,
            &Default::default(),
        )?,
        DeviceKind::Cuda => cuda_stage(stage, &config, &args.run.run_dir, &options)?,
    };
    emit(&serde_json::to_value(&report)?);
    Ok(())
}

#[cfg(feature = "cuda")]
fn cuda_stage(
    stage: Stage,
    config: &TrainConfig,
    run_dir: &Path,
    options: &StageOptions,
) -> Result<train::StageReport> {
    Ok(train::run_stage::<
        verdict_trainer::backend::CudaTrainBackend,
    >(stage, config, run_dir, options, &Default::default())?)
}

#[cfg(not(feature = "cuda"))]
fn cuda_stage(_: Stage, _: &TrainConfig, _: &Path, _: &StageOptions) -> Result<train::StageReport> {
    bail!("this binary was built without the `cuda` feature")
}

fn grpo(args: GrpoArgs) -> Result<()> {
    let config = TrainConfig::load(&args.run.config)?;
    let options = GrpoOptions {
        steps: args.steps,
        stop_after: args.stop_after,
        fresh: args.fresh,
        endpoints: args.reward_endpoint,
        progress: true,
        handle_ctrl_c: true,
    };
    let report = match args.device {
        DeviceKind::Cpu => grpo::run_grpo::<verdict_trainer::backend::CpuTrainBackend>(
            &config,
            &args.run.run_dir,
            &options,
            &Default::default(),
        )?,
        DeviceKind::Cuda => cuda_grpo(&config, &args.run.run_dir, &options)?,
    };
    emit(&serde_json::to_value(&report)?);
    Ok(())
}

#[cfg(feature = "cuda")]
fn cuda_grpo(
    config: &TrainConfig,
    run_dir: &Path,
    options: &GrpoOptions,
) -> Result<grpo::GrpoReport> {
    Ok(
        grpo::run_grpo::<verdict_trainer::backend::CudaTrainBackend>(
            config,
            run_dir,
            options,
            &Default::default(),
        )?,
    )
}

#[cfg(not(feature = "cuda"))]
fn cuda_grpo(_: &TrainConfig, _: &Path, _: &GrpoOptions) -> Result<grpo::GrpoReport> {
    bail!("this binary was built without the `cuda` feature")
}

fn eval_command(args: EvalArgs) -> Result<()> {
    type B = verdict_trainer::backend::CpuBackend;
    let dir = match &args.checkpoint {
        Some(dir) => dir.clone(),
        None => {
            let stage_dir = args.run_dir.join(args.stage.name());
            checkpoint::latest(&stage_dir.join("checkpoints"))
                .with_context(|| format!("no checkpoint under {}", stage_dir.display()))?
        }
    };
    let device = Default::default();
    let loaded = checkpoint::load::<B>(&dir, &device)?;
    let prepared = train::prepare(&loaded.config, &args.run_dir)?;
    let mut problems = prepared.heldout.clone();
    if args.limit > 0 {
        problems.truncate(args.limit);
    }
    let (rewards, _server) = grpo::reward_service(
        &loaded.config.grpo.reward,
        &args.reward_endpoint,
        &args.run_dir,
    )?;
    let sampling = SamplingConfig {
        temperature: args.temperature,
        top_p: 1.0,
        max_new_tokens: args.max_new_tokens,
        stop_tokens: vec![prepared.tokenizer.eos()],
        seed: args.seed,
    };
    let report = eval::reward_eval(
        &loaded.model,
        &prepared.tokenizer,
        &problems,
        &sampling,
        args.samples,
        32,
        &rewards,
        &device,
    )?;
    emit(&serde_json::json!({
        "checkpoint": dir,
        "endpoints": rewards.endpoints(),
        "sampling": sampling,
        "report": report,
    }));
    Ok(())
}

fn sample(args: SampleArgs) -> Result<()> {
    type B = verdict_trainer::backend::CpuBackend;
    let stage_dir = args.run_dir.join(args.stage.name());
    let dir = checkpoint::latest(&stage_dir.join("checkpoints"))
        .with_context(|| format!("no checkpoint under {}", stage_dir.display()))?;
    let device = Default::default();
    let loaded = checkpoint::load::<B>(&dir, &device)?;
    let prepared = train::prepare(&loaded.config, &args.run_dir)?;
    let mut problems = prepared.heldout.clone();
    if args.limit > 0 {
        problems.truncate(args.limit);
    }
    let sampling = SamplingConfig {
        temperature: args.temperature,
        top_p: args.top_p,
        max_new_tokens: args.max_new_tokens,
        stop_tokens: vec![prepared.tokenizer.eos()],
        seed: args.seed,
    };
    let started = Instant::now();
    let answers = eval::sample_answers(
        &loaded.model,
        &prepared.tokenizer,
        &problems,
        &sampling,
        args.batch,
        &device,
    )?;
    let wall_s = started.elapsed().as_secs_f64();
    let out = args.out.unwrap_or_else(|| stage_dir.join("samples.jsonl"));
    let lines: Vec<String> = answers.iter().map(|a| a.rollout.to_string()).collect();
    std::fs::write(&out, lines.join("\n") + "\n")
        .with_context(|| format!("writing {}", out.display()))?;
    let report = eval::summarise(&answers);
    emit(&serde_json::json!({
        "checkpoint": dir,
        "report": report,
        "sampling": sampling,
        "wall_s": wall_s,
        "samples": out,
        "examples": answers.iter().take(3).map(|a| &a.completion).collect::<Vec<_>>(),
    }));
    Ok(())
}

fn bench<B: AutodiffBackend>(args: &BenchArgs) -> Result<()> {
    use burn::optim::AdamWConfig;
    use rand::SeedableRng;

    let mut config = TrainConfig::load(&args.config)?;
    if let Some(b) = args.batch_size {
        config.data.batch_size = b;
    }
    if let Some(s) = args.seq_len {
        config.data.seq_len = s;
    }
    let device = B::Device::default();
    let mut model = verdict_trainer::MoeTransformer::<B>::new(&config.policy, &device);
    let mut optim = AdamWConfig::new().init::<B, verdict_trainer::MoeTransformer<B>>();
    let (batch, seq) = (config.data.batch_size, config.data.seq_len);
    let vocab = config.policy.vocab_size as u32;
    let tokens: Vec<u32> = (0..(batch * seq * 64) as u32)
        .map(|i| i.wrapping_mul(2_654_435_761) % vocab)
        .collect();
    let corpus = verdict_trainer::batches::PackedCorpus::new([tokens]);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut times = Vec::new();
    for step in 0..args.steps + 2 {
        let host = corpus.sample(&mut rng, batch, seq);
        let t0 = Instant::now();
        let (next, stats) =
            train::supervised_step(model, &mut optim, host.to_device::<B>(&device), 1e-3, 1.0);
        model = next;
        let value = stats.loss;
        if !value.is_finite() {
            bail!("non-finite loss at step {step}");
        }
        if step >= 2 {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let n = params::count(&config.policy);
    emit(&serde_json::json!({
        "config": args.config,
        "device": args.device,
        "batch_size": batch,
        "seq_len": seq,
        "params_total": n.total,
        "params_activated": n.activated,
        "median_step_ms": median * 1e3,
        "tokens_per_s": (batch * seq) as f64 / median,
        "steps": args.steps,
    }));
    Ok(())
}
