//! Integration tests: each module drives the real `verdict` binary or library end to end.

/// `verdict score` on fixture files: one file per class, malformed lines, kill and resume.
mod cli;
