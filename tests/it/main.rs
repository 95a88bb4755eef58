//! Integration tests: each module drives the real `verdict` binary or library end to end.

/// `verdict score` on fixture files: one file per class, malformed lines, kill and resume.
mod cli;
/// The gRPC service on an ephemeral port: every RPC, deadlines, cancellation, overload, shutdown.
mod grpc;
/// The host-side assertion guard parses to the same AST as the harness's own.
mod guard;
/// Hostile programs: each gets reward 0 with the right outcome, the service stays healthy.
mod hostile;
/// Property tests: extraction, the parse classifier, JSONL and proto decoding never panic,
/// overflow or take long, on arbitrary and adversarial input.
mod props;
/// The sandbox end to end: test kinds, verdicts, limits, determinism, adapters, verifier.
mod sandbox;
/// The timing verifier: deterministic fuel, complexity pairs ordered in every trial.
mod timing;
