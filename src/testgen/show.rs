//! `verdict tests show PROBLEM_ID`: what the cache holds for a problem — each generation (newest
//! first) with its key, the tests kept, and why every other candidate was dropped.
//!
//! A problem is found by the name its rollouts gave it (`problem_id`, else the rollout's `id`)
//! or by a generation's key digest (the `cache_key` in a score's `generated` details). A
//! candidate is listed once per validation recorded for it: a reference's (the tests the
//! reference passes under two seeds) or a group's dual agreement (the latest per problem).
//! Candidates dropped while reading the answer (syntax, not a test, duplicates, …) are listed
//! with their text.

use std::fmt::Write as _;

use serde::Serialize;

use super::cache::{Entry, Method, Validation};
use crate::rollout::TestCase;

/// The most generations shown for one problem.
pub const MAX_ENTRIES: usize = 20;

/// The report `--json` prints.
#[derive(Debug, Serialize)]
pub struct ShowReport<'a> {
    /// What was asked for.
    pub problem: &'a str,
    /// The cache file.
    pub cache: &'a str,
    /// Its generations, newest first.
    pub entries: &'a [Entry],
}

/// A test in one line (an assert's code, or a stdio case).
pub fn one_line(test: &TestCase) -> String {
    match test {
        TestCase::Assert { code, .. } => code.replace('\n', " "),
        TestCase::Stdio { stdin, stdout, .. } => {
            format!("stdin {stdin:?} → stdout {stdout:?}")
        }
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

fn time(unix: u64) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp(unix as i64)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("{unix} (unix time)"))
}

fn validation_line(v: &Validation) -> String {
    let what = match v.method {
        Method::Reference => format!("reference (sha256 {}…)", &v.basis[..v.basis.len().min(12)]),
        Method::Agreement => "dual agreement among the group's rollouts".to_string(),
    };
    let mut line = format!(
        "{what} for {}, {}: {} kept, {} dropped",
        v.problem,
        time(v.at),
        v.kept.len(),
        v.dropped.len()
    );
    if let Some(note) = &v.note {
        let _ = write!(line, " ({note})");
    }
    line
}

/// The text report of `entries` for `problem` in the cache at `cache`.
pub fn render(problem: &str, cache: &str, entries: &[Entry]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{problem}: {} cached generation{} (newest first) in {cache}",
        entries.len(),
        if entries.len() == 1 { "" } else { "s" }
    );
    for (i, e) in entries.iter().enumerate() {
        let g = &e.generated;
        let k = &g.key;
        let _ = writeln!(out, "\ngeneration {} of {}", i + 1, entries.len());
        let _ = writeln!(out, "  key        {}", e.digest);
        let _ = writeln!(
            out,
            "  model      {}, prompt {}, {} tests asked, shape {}, entry point {}, seed {}",
            k.model,
            k.prompt_version,
            k.n,
            k.shape.as_str(),
            k.entry_point.as_deref().unwrap_or("-"),
            k.seed
        );
        let _ = writeln!(
            out,
            "  stored     {} (finish_reason {})",
            time(e.created_at),
            g.finish_reason.as_deref().unwrap_or("-")
        );
        let _ = writeln!(out, "  problems   {}", e.problems.join(", "));
        let tests = &g.extraction.tests;
        let dropped_reading: usize = g.extraction.dropped.values().sum();
        let _ = writeln!(
            out,
            "  read       {} candidate test{} from the answer, {} dropped while reading it",
            tests.len(),
            if tests.len() == 1 { "" } else { "s" },
            dropped_reading
        );
        if e.validations.is_empty() {
            let _ = writeln!(
                out,
                "  validation none recorded yet (candidates are validated when rollouts are \
                 scored, or by `verdict tests generate`)"
            );
            for (t, test) in tests.iter().enumerate() {
                let _ = writeln!(out, "    [{t}] candidate  {}", one_line(test));
            }
        }
        for v in &e.validations {
            let _ = writeln!(out, "  validation {}", validation_line(v));
            for (t, test) in tests.iter().enumerate() {
                let (status, why) = if v.kept.contains(&t) {
                    ("kept    ", String::new())
                } else if let Some((_, reason)) = v.dropped.iter().find(|(d, _)| *d == t) {
                    (
                        "dropped ",
                        format!("  ({}: {})", reason.as_str(), reason.explain()),
                    )
                } else {
                    ("not kept", String::new())
                };
                let _ = writeln!(out, "    [{t}] {status} {}{why}", one_line(test));
            }
        }
        if dropped_reading > 0 {
            let _ = writeln!(out, "  dropped while reading the answer:");
            for r in &g.extraction.rejected {
                let _ = writeln!(
                    out,
                    "    {}: {} ({})",
                    r.reason.as_str(),
                    r.text.replace('\n', "⏎"),
                    r.reason.explain()
                );
            }
            let listed = g.extraction.rejected.len();
            if listed < dropped_reading {
                let _ = writeln!(out, "    … and {} more", dropped_reading - listed);
            }
        }
    }
    out
}
