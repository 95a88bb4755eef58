//! Integration tests: each module drives the real `verdict` binary or library end to end.

/// `verdict score` on fixture files: one file per class, malformed lines, kill and resume.
mod cli;
/// What crosses the sandbox boundary: answers read safely, values round-trip through both instances.
mod codec;
/// The host's judgement of plain values against CPython's `==` (python3 as the oracle).
mod differential;
/// When verdict itself fails: the `error` outcome and a maskable reward, never a fake 0.
mod errors;
/// The boundary against native Python (reference mode) on a corpus of real idioms.
mod fidelity;
/// The gRPC service on an ephemeral port: every RPC, deadlines, cancellation, overload, shutdown.
mod grpc;
/// Hostile programs: each gets reward 0 with the right outcome, the service stays healthy.
mod hostile;
/// Judging that is exactly right: comparison rules, exact integers, standard types, checkers,
/// dataset records.
mod judge;
/// Plug-in verifiers from `verdict.toml` (Python, wasm) in chains, through the CLI and gRPC.
mod plugins;
/// Property tests: extraction, the parse classifier, JSONL and proto decoding never panic,
/// overflow or take long, on arbitrary and adversarial input.
mod props;
/// A verifier kind registered by a library user, named in `verdict.toml`, through the CLI and gRPC.
mod registry;
/// The sandbox end to end: test kinds, verdicts, limits, determinism, adapters, verifier.
mod sandbox;
/// The `Score` records of the class fixtures, pinned as reviewed snapshots.
mod snapshots;
/// A stand-in OpenAI-compatible LLM server on a real socket, for the testgen tests.
mod standin;
/// LLM-generated tests: client failures, validation, single-flight, cache, `tests eval`.
mod testgen;
/// The timing verifier: deterministic fuel, complexity pairs ordered in every trial.
mod timing;
