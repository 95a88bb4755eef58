//! Crash-safe output and `--resume`: records are written with one `write` per line, a torn
//! last line is dropped, and the records already written are checked against the input's first
//! records (same ids, in order) before only the rest is scored.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::lines::{recorded_id, Line};
use super::BatchError;
use crate::score::{Outcome, Score};

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

/// Consume the first `already.len()` input records, checking that they carry the ids of the
/// records already written (in order): resuming onto the output of another input is refused.
pub fn skip_resumed(
    lines: &mut impl Iterator<Item = std::io::Result<Line>>,
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
        let got = recorded_id(&line);
        if &got != expected {
            return Err(BatchError::NotSameInput(format!(
                "output record {} has id `{expected}` but input line {} has id `{got}`",
                i + 1,
                line.number
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
