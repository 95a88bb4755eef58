//! Load benchmark for `verdict serve`: N concurrent `ScoreStream` calls pipelining M trivial
//! rollouts (format + parse, no sandbox), against the real binary in its own process.
//!
//! ```text
//! cargo bench --bench load -- [--streams 8] [--rollouts 100000] [--window 32] [--unary 5000]
//! ```
//!
//! `VERDICT_BIN` overrides the server binary (default: the one cargo just built).
//!
//! Prints: in-process `Chain::score` p50 (the baseline), unary `Score` p50/p99 and the latency the
//! service adds over the baseline, stream throughput and per-rollout p50/p99 (send → answer),
//! and the server's RSS sampled every tenth of the run, with its peak (VmHWM).
#![allow(clippy::print_stdout, missing_docs)]

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::Semaphore;
use verdict::pb;
use verdict::pb::reward_service_client::RewardServiceClient;
use verdict::{Config, Rollout};

/// Command-line options (`cargo bench -- --help`).
#[derive(clap::Parser)]
struct Args {
    /// Concurrent streams.
    #[arg(long, default_value_t = 8)]
    streams: usize,
    /// Rollouts sent over the streams in all.
    #[arg(long, default_value_t = 100_000)]
    rollouts: usize,
    /// Rollouts in flight per stream.
    #[arg(long, default_value_t = 32)]
    window: usize,
    /// Unary `Score` calls, one after another (their latency against the in-process baseline).
    #[arg(long, default_value_t = 5000)]
    unary: usize,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn args() -> Args {
    clap::Parser::parse()
}

fn trivial(id: usize) -> Rollout {
    Rollout {
        id: id.to_string(),
        prompt: "Write add(a, b).".into(),
        completion:
            "<think>Add the two numbers.</think>\n```python\ndef add(a, b):\n    return a + b\n```"
                .into(),
        ..Rollout::default()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `VmRSS` and `VmHWM` of a process, in MiB.
fn rss_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server() -> anyhow::Result<(Server, String)> {
    let bin = std::env::var("VERDICT_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_verdict").into());
    let mut child = Command::new(bin)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .context("starting verdict serve")?;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("piped"))
        .read_line(&mut line)
        .context("reading the address")?;
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .context("no `listening on` line")?
        .to_string();
    Ok((Server(child), format!("http://{addr}")))
}

fn main() -> anyhow::Result<()> {
    let a = args();
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        // Baseline: the chain in-process, no RPC.
        let chain = Config::default_config().build()?;
        let mut direct = Vec::with_capacity(20_000);
        for i in 0..20_000 {
            let r = trivial(i);
            let t = Instant::now();
            std::hint::black_box(chain.score(&r).await);
            direct.push(t.elapsed());
        }
        direct.sort();
        let direct_p50 = percentile(&direct, 0.5);
        println!(
            "in-process Chain::score   p50 {:.3} ms  p99 {:.3} ms",
            ms(direct_p50),
            ms(percentile(&direct, 0.99))
        );

        let (server, url) = start_server()?;
        let pid = server.0.id();
        let channel = tonic::transport::Endpoint::from_shared(url)?
            .tcp_nodelay(true)
            .connect()
            .await?;
        let client = RewardServiceClient::new(channel);

        // Unary latency, one call at a time.
        let mut c = client.clone();
        let mut unary = Vec::with_capacity(a.unary);
        let mut unary_rss = Vec::new();
        for i in 0..a.unary {
            if a.unary >= 10 && i % (a.unary / 10) == 0 {
                unary_rss.push(format!("{}k:{:.1}", i / 1000, rss_mib(pid).0));
            }
            let req = pb::ScoreRequest {
                rollout: Some(pb::Rollout::from(&trivial(i))),
            };
            let t = Instant::now();
            c.score(req).await?;
            unary.push(t.elapsed());
        }
        unary.sort();
        let unary_p50 = percentile(&unary, 0.5);
        println!(
            "unary Score (1 in flight) p50 {:.3} ms  p99 {:.3} ms  -> service adds {:.3} ms p50",
            ms(unary_p50),
            ms(percentile(&unary, 0.99)),
            ms(unary_p50.saturating_sub(direct_p50))
        );
        unary_rss.push(format!("{}k:{:.1}", a.unary / 1000, rss_mib(pid).0));
        println!("server RSS MiB by unary calls done: {}", unary_rss.join(" "));

        // Streams.
        let (rss0, _) = rss_mib(pid);
        println!(
            "streams: {} x {} rollouts, window {} per stream; server RSS before {rss0:.1} MiB",
            a.streams,
            a.rollouts / a.streams,
            a.window
        );
        let epoch = Instant::now();
        let sent_at: Arc<Vec<AtomicU64>> =
            Arc::new((0..a.rollouts).map(|_| AtomicU64::new(0)).collect());
        let done = Arc::new(AtomicU64::new(0));
        let latencies = Arc::new(Mutex::new(Vec::with_capacity(a.rollouts)));
        let per_stream = a.rollouts / a.streams;
        let mut tasks = Vec::new();
        for s in 0..a.streams {
            let mut c = client.clone();
            let sent_at = sent_at.clone();
            let done = done.clone();
            let latencies = latencies.clone();
            let window = Arc::new(Semaphore::new(a.window));
            tasks.push(tokio::spawn(async move {
                let (tx, rx) = tokio::sync::mpsc::channel(a.window);
                let sender_window = window.clone();
                let sender_sent = sent_at.clone();
                tokio::spawn(async move {
                    for i in s * per_stream..(s + 1) * per_stream {
                        sender_window.acquire().await.expect("open").forget();
                        sender_sent[i].store(epoch.elapsed().as_nanos() as u64, Ordering::Relaxed);
                        let req = pb::ScoreRequest {
                            rollout: Some(pb::Rollout::from(&trivial(i))),
                        };
                        if tx.send(req).await.is_err() {
                            break;
                        }
                    }
                });
                let mut responses = c
                    .score_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
                    .await?
                    .into_inner();
                let mut local = Vec::with_capacity(per_stream);
                while let Some(r) = responses.message().await? {
                    let now = epoch.elapsed().as_nanos() as u64;
                    let id: usize = r.score.expect("score").id.parse()?;
                    local.push(Duration::from_nanos(
                        now - sent_at[id].load(Ordering::Relaxed),
                    ));
                    window.add_permits(1);
                    done.fetch_add(1, Ordering::Relaxed);
                }
                latencies.lock().expect("not poisoned").extend(local);
                anyhow::Ok(())
            }));
        }
        // Sample the server's RSS every tenth of the run.
        let total = (per_stream * a.streams) as u64;
        let mut samples = Vec::new();
        let mut next = total / 10;
        while done.load(Ordering::Relaxed) < total {
            tokio::time::sleep(Duration::from_millis(2)).await;
            if done.load(Ordering::Relaxed) >= next {
                samples.push((next, rss_mib(pid).0));
                next += total / 10;
            }
            if tasks.iter().all(|t| t.is_finished()) {
                break;
            }
        }
        for t in tasks {
            t.await??;
        }
        let elapsed = epoch.elapsed();
        let mut lat = std::mem::take(&mut *latencies.lock().expect("not poisoned"));
        lat.sort();
        println!(
            "throughput {:.0} rollouts/s ({} in {:.2} s); per-rollout p50 {:.3} ms  p99 {:.3} ms",
            lat.len() as f64 / elapsed.as_secs_f64(),
            lat.len(),
            elapsed.as_secs_f64(),
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.99))
        );
        let (rss, peak) = rss_mib(pid);
        let line: Vec<String> = samples
            .iter()
            .map(|(n, r)| format!("{}k:{r:.1}", n / 1000))
            .collect();
        println!("server RSS MiB by rollouts done: {}", line.join(" "));
        let first = samples.first().map_or(rss, |s| s.1);
        println!(
            "server RSS now {rss:.1} MiB, peak (VmHWM) {peak:.1} MiB, growth from first sample to end {:+.1} MiB",
            rss - first
        );
        drop(server);
        anyhow::Ok(())
    })
}
