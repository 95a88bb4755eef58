//! Streaming JSONL scoring: one [`Score`] line out per [`Rollout`] line in, in input order.
//!
//! - Memory is bounded: at most `jobs × 4` lines are read ahead of the writer, whatever the file
//!   size.
//! - Work runs in parallel (each rollout is a tokio task), output order is input order.
//! - A malformed line becomes an `invalid_input` record naming the line and the problem; the rest
//!   of the file is still scored.
//! - Each record is written with one `write` of the whole line, so a run killed at any moment
//!   leaves at most one torn line at the end. `--resume` drops a torn tail, checks that the lines
//!   already written belong to the same input (same ids, in order) and scores only the rest.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::chain::Chain;
use crate::rollout::Rollout;
use crate::score::{Outcome, Score};

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
    /// For chains with groupwise steps: how many consecutive lines form one window in which the
    /// rollouts of a `problem_id` are compared. Default (CLI): 512.
    pub group_window: usize,
}

/// What a batch run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Lines scored in this run (including invalid ones).
    pub scored: usize,
    /// Lines found already scored in the output and skipped (`--resume`).
    pub resumed: usize,
    /// Lines of this run that could not be scored (`invalid_input`).
    pub invalid: usize,
    /// `invalid_input` records among the resumed lines.
    pub resumed_invalid: usize,
    /// Mean reward over the valid lines scored in this run.
    pub mean_reward: f64,
    /// How many lines got each outcome.
    pub outcomes: BTreeMap<Outcome, usize>,
    /// Wall time of the run.
    #[serde(skip)]
    pub elapsed: Duration,
    #[serde(skip)]
    reward_sum: f64,
}

impl Summary {
    /// An empty summary of a run that resumed after `resumed` records, `resumed_invalid` of them
    /// `invalid_input`.
    pub fn resuming(resumed: usize, resumed_invalid: usize) -> Self {
        Summary {
            resumed,
            resumed_invalid,
            ..Summary::default()
        }
    }

    /// Count one written record.
    pub fn record(&mut self, score: &Score) {
        self.scored += 1;
        *self.outcomes.entry(score.outcome).or_default() += 1;
        if score.outcome == Outcome::InvalidInput {
            self.invalid += 1;
        } else {
            self.reward_sum += score.reward;
        }
        let valid = self.scored - self.invalid;
        self.mean_reward = if valid > 0 {
            self.reward_sum / valid as f64
        } else {
            0.0
        };
    }

    /// Whether any line of the output (this run or resumed) is an `invalid_input` record.
    pub fn any_invalid(&self) -> bool {
        self.invalid + self.resumed_invalid > 0
    }

    /// Rollouts per second over this run.
    pub fn throughput(&self) -> f64 {
        self.scored as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "scored {} rollouts in {:.2}s ({:.1}/s), mean reward {:.3}",
            self.scored,
            self.elapsed.as_secs_f64(),
            self.throughput(),
            self.mean_reward
        )?;
        if self.resumed > 0 {
            write!(f, ", {} already scored (resumed)", self.resumed)?;
        }
        if self.invalid + self.resumed_invalid > 0 {
            write!(f, ", {} invalid", self.invalid + self.resumed_invalid)?;
        }
        let hist: Vec<String> = self
            .outcomes
            .iter()
            .map(|(o, n)| format!("{o}={n}"))
            .collect();
        write!(f, "\noutcomes: {}", hist.join(" "))
    }
}

/// Parse one input line (1-based `line_no`) into a rollout, or the error record for it.
pub fn parse_line(line: &str, line_no: usize) -> Result<Rollout, Box<Score>> {
    match Rollout::from_json(line) {
        Ok(r) if r.id.is_empty() => Err(Box::new(Score::invalid(
            format!("line-{line_no}"),
            format!("line {line_no}: field `id` is empty"),
        ))),
        Ok(r) => Ok(r),
        Err(e) => {
            let id = serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v.get("id").and_then(|id| id.as_str().map(str::to_string)))
                .unwrap_or_else(|| format!("line-{line_no}"));
            Err(Box::new(Score::invalid(
                id,
                format!("line {line_no}: {}", without_position(&e)),
            )))
        }
    }
}

/// serde_json's message without its " at line 1 column N" suffix (the line is ours to name).
fn without_position(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    match msg.rfind(" at line ") {
        Some(i) => format!("{} (column {})", &msg[..i], e.column()),
        None => msg,
    }
}

/// What an interrupted run already wrote (see [`prepare_resume`]).
#[derive(Debug, Clone, Default)]
pub struct Resumed {
    /// The ids of the records already written, in order.
    pub ids: Vec<String>,
    /// How many of them are `invalid_input` records.
    pub invalid: usize,
}

/// Prepare `path` for `--resume`: drop a torn last line and return what is already scored.
/// A missing file resumes from the start.
pub fn prepare_resume(path: &Path) -> Result<Resumed, BatchError> {
    let resume_err = |reason: String| BatchError::Resume {
        path: path.to_path_buf(),
        reason,
    };
    let mut file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Resumed::default()),
        Err(e) => return Err(resume_err(e.to_string())),
    };
    let mut text = Vec::new();
    file.read_to_end(&mut text)
        .map_err(|e| resume_err(e.to_string()))?;
    let complete = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if complete < text.len() {
        file.set_len(complete as u64)
            .map_err(|e| resume_err(e.to_string()))?;
        file.seek(SeekFrom::End(0))
            .map_err(|e| resume_err(e.to_string()))?;
        tracing::info!(bytes = text.len() - complete, "Dropped a torn last line.");
    }
    let mut resumed = Resumed::default();
    for (i, line) in text[..complete].split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_slice(line)
            .map_err(|e| resume_err(format!("output line {} is not a score record: {e}", i + 1)))?;
        let id = v
            .get("id")
            .and_then(|id| id.as_str())
            .ok_or_else(|| resume_err(format!("output line {} has no `id`", i + 1)))?;
        resumed.ids.push(id.to_string());
        if v.get("outcome").and_then(|o| o.as_str()) == Some(Outcome::InvalidInput.as_str()) {
            resumed.invalid += 1;
        }
    }
    Ok(resumed)
}

/// Consume the first `already.len()` input lines, checking that they carry the ids of the
/// records already written (in order): resuming onto the output of another input is refused.
pub fn skip_resumed(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
    already: &[String],
) -> Result<(), BatchError> {
    for (i, expected) in already.iter().enumerate() {
        let line = match lines.next() {
            Some(l) => l.map_err(BatchError::Read)?,
            None => {
                return Err(BatchError::NotSameInput(format!(
                    "the output has {} records but the input only {i} lines",
                    already.len()
                )))
            }
        };
        let got = recorded_id(&line, i + 1);
        if &got != expected {
            return Err(BatchError::NotSameInput(format!(
                "output record {} has id `{expected}` but input line {} has id `{got}`",
                i + 1,
                i + 1
            )));
        }
    }
    Ok(())
}

/// Write one record as one line, with a single `write` (no torn lines but at the very end).
pub fn write_record(output: &mut impl Write, score: &Score) -> std::io::Result<()> {
    let mut record = serde_json::to_vec(score).expect("scores serialize");
    record.push(b'\n');
    output.write_all(&record)?;
    output.flush()
}

/// The id an input line would be recorded under (for matching on resume).
fn recorded_id(line: &str, line_no: usize) -> String {
    match parse_line(line, line_no) {
        Ok(r) => r.id,
        Err(s) => s.id,
    }
}

/// Score every line of `input`, writing one record per line to `output` in input order.
///
/// `already` is what [`prepare_resume`] found in the output: the first `already.ids.len()`
/// input lines must carry those ids and are skipped.
pub async fn score_lines<R, W>(
    chain: Arc<Chain>,
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
    let (tx, rx) = mpsc::channel::<std::io::Result<(usize, String)>>(jobs * 4);
    let skip = already.ids.len();
    let resumed_invalid = already.invalid;
    let already = already.ids;
    let reader = tokio::task::spawn_blocking(move || -> Result<(), BatchError> {
        let mut lines = BufReader::new(input).lines();
        skip_resumed(&mut lines, &already)?;
        for (i, line) in lines.enumerate() {
            let item = line.map(|l| (skip + i + 1, l));
            let failed = item.is_err();
            if tx.blocking_send(item).is_err() || failed {
                break;
            }
        }
        Ok(())
    });

    let progress = options
        .progress
        .then(|| progress_bar(total_hint, skip as u64));
    let mut summary = Summary::resuming(skip, resumed_invalid);
    let mut read_error = None;
    let mut results = tokio_stream_from(rx)
        .filter_map(|item| {
            let out = match item {
                Ok((line_no, line)) if line.trim().is_empty() => {
                    // Blank lines (e.g. a trailing newline) carry no rollout.
                    let _ = line_no;
                    None
                }
                Ok((line_no, line)) => Some(Ok((line_no, line))),
                Err(e) => Some(Err(e)),
            };
            futures::future::ready(out)
        })
        .map(|item| {
            let chain = chain.clone();
            tokio::spawn(async move {
                let (line_no, line) = item?;
                Ok(match parse_line(&line, line_no) {
                    Ok(rollout) => (chain.score(&rollout).await, rollout.problem_id),
                    Err(invalid) => (*invalid, None),
                })
            })
        })
        .buffered(jobs);

    // Groupwise steps (e.g. timing against the group) compare the rollouts of one problem within
    // a window of consecutive lines; other chains write each record as soon as it is in order.
    let window = if chain.has_groupwise_steps() {
        options.group_window.max(1)
    } else {
        1
    };
    let mut pending: Vec<Score> = Vec::with_capacity(window);
    let mut groups: Vec<Option<String>> = Vec::with_capacity(window);
    loop {
        let next = results.next().await;
        let done = next.is_none();
        if let Some(joined) = next {
            match joined {
                Ok(Ok((score, group))) => {
                    pending.push(score);
                    groups.push(group);
                }
                Ok(Err(e)) => read_error = Some(BatchError::Read(e)),
                Err(join) => std::panic::resume_unwind(join.into_panic()),
            }
        }
        let stop = done || read_error.is_some();
        if pending.len() < window && !stop {
            continue;
        }
        chain.rescore_groups(&mut pending, &groups);
        groups.clear();
        for score in pending.drain(..) {
            write_record(&mut output, &score).map_err(BatchError::Write)?;
            summary.record(&score);
            if let Some(pb) = &progress {
                pb.inc(1);
            }
        }
        if stop {
            break;
        }
    }
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    reader.await.expect("the reader thread does not panic")?;
    if let Some(e) = read_error {
        return Err(e);
    }
    summary.elapsed = started.elapsed();
    Ok(summary)
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> {
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

/// Open the output for a run: append after resumed records, or create/truncate.
pub fn open_output(path: &Path, resume: bool) -> Result<File, BatchError> {
    let mut opts = OpenOptions::new();
    opts.create(true);
    if resume {
        opts.append(true);
    } else {
        opts.write(true).truncate(true);
    }
    opts.open(path).map_err(BatchError::Write)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn malformed_lines_name_the_line_and_field() {
        let err = parse_line(r#"{"id": "a", "prompt": "p"}"#, 12).unwrap_err();
        assert_eq!(err.id, "a");
        assert_eq!(err.outcome, Outcome::InvalidInput);
        let msg = err.error.unwrap();
        assert!(
            msg.starts_with("line 12: missing field `completion`"),
            "{msg}"
        );

        let err = parse_line(r#"{"id": "b", "completion": 5}"#, 3).unwrap_err();
        assert!(err
            .error
            .unwrap()
            .contains("invalid type: integer `5`, expected a string"));

        let err = parse_line("{not json", 7).unwrap_err();
        assert_eq!(err.id, "line-7");
        assert!(err.error.unwrap().starts_with("line 7: "));
    }

    #[test]
    fn output_is_in_input_order_and_bad_lines_do_not_stop_the_batch() {
        let text = "[[verifier]]\nkind = \"format\"\n[[verifier]]\nkind = \"parse\"\ngate = true\n";
        let chain = Arc::new(Config::parse(text, "t").unwrap().build().unwrap());
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
        let rt = tokio::runtime::Runtime::new().unwrap();
        let mut out = Vec::new();
        let summary = rt
            .block_on(score_lines(
                chain,
                std::io::Cursor::new(input.into_bytes()),
                &mut out,
                Resumed::default(),
                &BatchOptions {
                    jobs: 4,
                    progress: false,
                    group_window: 512,
                },
                None,
            ))
            .unwrap();
        let ids: Vec<String> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Score>(l).unwrap().id)
            .collect();
        let expected: Vec<String> = (0..50)
            .map(|i| {
                if i % 7 == 3 {
                    format!("line-{}", i + 1)
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
    fn resume_drops_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        std::fs::write(&path, "{\"id\":\"a\",\"reward\":1}\n{\"id\":\"b\",\"rew").unwrap();
        let resumed = prepare_resume(&path).unwrap();
        assert_eq!(resumed.ids, ["a"]);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"id\":\"a\",\"reward\":1}\n"
        );
    }
}
