//! Streaming JSONL scoring: one [`Score`] line out per [`Rollout`] line in, in input order.
//!
//! [`score_lines`] is the one JSONL loop, for local runs and `--remote` runs alike: it owns
//! reading ([`lines`]: what a line is), resume ([`resume`]), group windows, ordering, progress
//! and the [`Summary`]; the [`Scorer`] seam under it scores windows with the chain here or
//! through `verdict serve` replicas, so both write the same records.
//!
//! - Memory is bounded: a few windows (for chains without groupwise steps, `jobs × 4` lines)
//!   are read ahead of the writer, whatever the file size.
//! - Work runs in parallel (each rollout is a tokio task), output order is input order.
//! - A malformed line becomes an `invalid_input` record naming the line and the problem; the rest
//!   of the file is still scored.
//! - Each record is written with one `write` of the whole line, so a run killed at any moment
//!   leaves at most one torn line at the end. `--resume` drops a torn tail, checks that the lines
//!   already written belong to the same input (same ids, in order) and scores only the rest.

pub mod lines;
pub mod resume;
pub mod scorer;
pub mod summary;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Instant;

use futures::StreamExt;
use tokio::sync::mpsc;

use crate::client::ClientError;
use crate::rollout::Rollout;
use crate::score::Score;

pub use lines::{count_records, parse_line, records, Line};
pub use resume::{open_output, prepare_resume, skip_resumed, write_record, Resumed};
pub use scorer::Scorer;
pub use summary::Summary;

/// Why a batch run could not proceed (bad lines are not errors: they are `invalid_input` records).
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// Reading the input failed.
    #[error("reading input: {0}")]
    Read(std::io::Error),
    /// Writing the output failed.
    #[error("writing output: {0}")]
    Write(std::io::Error),
    /// `--resume` found records of another input in the output.
    #[error("cannot resume: {0}: not the same input")]
    NotSameInput(String),
    /// A remote call failed (after the client's retries).
    #[error("scoring remotely: {0}")]
    Remote(#[from] ClientError),
    /// `--resume` was asked for but the output cannot be resumed.
    #[error("cannot resume {path}: {reason}")]
    Resume {
        /// The output file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// How to run a batch.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// Rollouts scored concurrently.
    pub jobs: usize,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// For chains with groupwise steps: how many consecutive records form one window in which
    /// the rollouts of a `problem_id` are compared, locally and remotely alike (remotely, a
    /// window is one `ScoreBatch` call). Default (CLI): 512.
    pub group_window: usize,
}

/// Score every record of `input` with `scorer`, writing one record per line to `output` in
/// input order.
///
/// `already` is what [`prepare_resume`] found in the output: the first `already.ids.len()`
/// input records must carry those ids and are skipped. `total_hint` (the input's record count,
/// [`count_records`]) sizes the progress bar.
pub async fn score_lines<R, W>(
    scorer: Scorer,
    input: R,
    mut output: W,
    already: Resumed,
    options: &BatchOptions,
    total_hint: Option<u64>,
) -> Result<Summary, BatchError>
where
    R: Read + Send + 'static,
    W: Write,
{
    let started = Instant::now();
    let jobs = options.jobs.max(1);
    // Groupwise steps (e.g. timing against the group) compare the rollouts of one problem within
    // a window of consecutive records; other chains score windows as the scorer likes best.
    let window = if scorer.groupwise().await? {
        options.group_window.max(1)
    } else {
        scorer.plain_window()
    };
    let lookahead = match (&scorer, window) {
        (Scorer::Local { .. }, 1) => jobs,
        (Scorer::Local { .. }, _) => 2,
        (Scorer::Remote(_), _) => jobs,
    };
    let (tx, rx) = mpsc::channel::<std::io::Result<Vec<Line>>>(lookahead * 2);
    let skip = already.ids.len();
    let resumed_invalid = already.invalid;
    let already_ids = already.ids;
    let reader = tokio::task::spawn_blocking(move || -> Result<(), BatchError> {
        let mut records = records(input);
        skip_resumed(&mut records, &already_ids)?;
        let mut chunk = Vec::with_capacity(window);
        for line in records {
            match line {
                Ok(line) => chunk.push(line),
                Err(e) => {
                    let _ = tx.blocking_send(Ok(std::mem::take(&mut chunk)));
                    let _ = tx.blocking_send(Err(e));
                    return Ok(());
                }
            }
            if chunk.len() == window
                && tx
                    .blocking_send(Ok(std::mem::replace(
                        &mut chunk,
                        Vec::with_capacity(window),
                    )))
                    .is_err()
            {
                return Ok(());
            }
        }
        if !chunk.is_empty() {
            let _ = tx.blocking_send(Ok(chunk));
        }
        Ok(())
    });

    let progress = options
        .progress
        .then(|| progress_bar(total_hint, skip as u64));
    let mut summary = Summary::resuming(skip, resumed_invalid);
    let mut results = stream_from(rx)
        .map(|chunk| {
            let scorer = scorer.clone();
            async move {
                let items: Vec<Result<Rollout, Box<Score>>> = chunk
                    .map_err(BatchError::Read)?
                    .iter()
                    .map(parse_line)
                    .collect();
                if items.is_empty() {
                    return Ok(Vec::new());
                }
                scorer.score_window(items).await
            }
        })
        .buffered(lookahead);
    let mut failure = None;
    while let Some(window) = results.next().await {
        match window {
            Ok(scores) => {
                for score in scores {
                    write_record(&mut output, &score).map_err(BatchError::Write)?;
                    summary.record(&score);
                    if let Some(pb) = &progress {
                        pb.inc(1);
                    }
                }
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    drop(results);
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    let read = reader.await.expect("the reader thread does not panic");
    if let Some(e) = failure {
        return Err(e);
    }
    read?;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

fn stream_from<T: Send + 'static>(mut rx: mpsc::Receiver<T>) -> impl futures::Stream<Item = T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

fn progress_bar(total: Option<u64>, done: u64) -> indicatif::ProgressBar {
    let pb = match total {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::new_spinner(),
    };
    pb.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    let style = if total.is_some() {
        "{bar:40} {pos}/{len} rollouts  {per_sec}  ETA {eta}"
    } else {
        "{spinner} {pos} rollouts  {per_sec}"
    };
    pb.set_style(indicatif::ProgressStyle::with_template(style).expect("valid template"));
    pb.set_position(done);
    pb
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::Chain;
    use crate::config::Config;
    use std::sync::Arc;

    fn run(
        chain: Arc<Chain>,
        input: &str,
        already: Resumed,
        window: usize,
    ) -> (Vec<Score>, Summary) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let mut out = Vec::new();
        let summary = rt
            .block_on(score_lines(
                Scorer::local(chain, 4),
                std::io::Cursor::new(input.as_bytes().to_vec()),
                &mut out,
                already,
                &BatchOptions {
                    jobs: 4,
                    progress: false,
                    group_window: window,
                },
                None,
            ))
            .unwrap();
        let scores = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Score>(l).unwrap())
            .collect();
        (scores, summary)
    }

    fn parse_chain() -> Arc<Chain> {
        let text = "[[verifier]]\nkind = \"format\"\n[[verifier]]\nkind = \"parse\"\ngate = true\n";
        Arc::new(Config::parse(text, "t").unwrap().build().unwrap())
    }

    #[test]
    fn output_is_in_input_order_and_bad_lines_do_not_stop_the_batch() {
        let mut input = String::new();
        for i in 0..50 {
            if i % 7 == 3 {
                input.push_str("{broken\n");
            } else {
                input.push_str(&format!(
                    "{{\"id\": \"r{i}\", \"completion\": \"x = {i}\"}}\n"
                ));
            }
        }
        let (scores, summary) = run(parse_chain(), &input, Resumed::default(), 512);
        let ids: Vec<String> = scores.into_iter().map(|s| s.id).collect();
        let expected: Vec<String> = (0..50)
            .map(|i| {
                if i % 7 == 3 {
                    format!("input-{}", i + 1)
                } else {
                    format!("r{i}")
                }
            })
            .collect();
        assert_eq!(ids, expected);
        assert_eq!(summary.scored, 50);
        assert_eq!(summary.invalid, 7);
    }

    #[test]
    fn resume_skips_records_not_lines() {
        let input = "{\"id\":\"a\",\"completion\":\"x = 1\"}\r\n\r\n{broken\r\n{\"id\":\"c\",\"completion\":\"y\"}";
        let (full, _) = run(parse_chain(), input, Resumed::default(), 512);
        let ids: Vec<&str> = full.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["a", "input-3", "c"]);
        let already = Resumed {
            ids: vec!["a".into(), "input-3".into()],
            invalid: 1,
        };
        let (rest, summary) = run(parse_chain(), input, already, 512);
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].id, "c");
        assert_eq!(summary.resumed, 2);
        assert!(summary.any_invalid());
    }
}
