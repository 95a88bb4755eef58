//! Prometheus metrics for the service, served in the text format over HTTP (`GET /metrics`, on
//! the server's HTTP listener).
//!
//! Each server owns a [`Metrics`] (its own registry, so tests can run several servers in one
//! process). The sandbox gauges are read from the chain's [`Sandbox`] at each scrape
//! ([`Metrics::watch_sandbox`]; the sandbox crate keeps no metrics of its own). Process-wide
//! series — the process collector (RSS, CPU, open fds), cache lookups and test generation, which
//! other modules update without a handle — live in the default registry and are appended to
//! every scrape.
//!
//! | series | kind | labels |
//! |---|---|---|
//! | `verdict_grpc_requests_total` | counter | `method`, `code` |
//! | `verdict_grpc_request_duration_seconds` | histogram | `method` |
//! | `verdict_rollouts_total` | counter | `outcome` (every outcome; `error` = verdict could not judge: alert on it) |
//! | `verdict_rollout_duration_seconds` | histogram | – (chain wall time) |
//! | `verdict_scoring_in_flight` / `_queued` / `_slots` / `_utilisation` | gauges | – |
//! | `verdict_rejected_total` | counter | `reason` (`overloaded`, `deadline`, `cancelled`) |
//! | `verdict_cache_lookups_total` | counter | `cache`, `result` (`hit`, `miss`) |
//! | `verdict_sandbox_queue_depth` / `_busy` / `_slots` | gauges | – |
//! | `verdict_testgen_requests_total` | counter | `result` (`ok`, `retryable`, `refused`, `timeout`) |
//! | `verdict_testgen_request_duration_seconds` | histogram | – (one HTTP attempt) |
//! | `verdict_testgen_tests_total` | counter | `fate` (`kept`, or the drop reason) |
//! | `process_resident_memory_bytes`, … | process collector | – |

use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use crate::sandbox::Sandbox;

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

/// Latency buckets from 100 µs to 60 s.
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0,
];

/// The metrics of one server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Finished RPCs by method and gRPC status code name.
    pub requests: IntCounterVec,
    /// RPC latency by method (for streams: the whole stream).
    pub request_seconds: HistogramVec,
    /// Scored rollouts by outcome.
    pub rollouts: IntCounterVec,
    /// Chain wall time per rollout.
    pub rollout_seconds: Histogram,
    /// Rollouts being scored now.
    pub in_flight: IntGauge,
    /// Rollouts admitted and waiting for a scoring slot.
    pub queued: IntGauge,
    /// Scoring slots (`max_in_flight`).
    pub slots: IntGauge,
    /// `in_flight / slots`, refreshed at each scrape.
    pub utilisation: Gauge,
    /// Work refused or abandoned, by reason.
    pub rejected: IntCounterVec,
    /// Sandbox runs waiting for a slot, read from the watched sandbox at each scrape.
    sandbox_queue_depth: IntGauge,
    /// Sandbox slots running a program, read at each scrape.
    sandbox_busy: IntGauge,
    /// Sandbox slots, read at each scrape.
    sandbox_slots: IntGauge,
    /// The sandbox whose load the gauges show.
    sandbox: Mutex<Option<Sandbox>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set of series in a registry of its own.
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("verdict_grpc_requests_total", "Finished gRPC calls."),
            &["method", "code"],
        )
        .expect("valid metric");
        let request_seconds = HistogramVec::new(
            HistogramOpts::new(
                "verdict_grpc_request_duration_seconds",
                "gRPC call latency (for streams: the whole stream).",
            )
            .buckets(BUCKETS.to_vec()),
            &["method"],
        )
        .expect("valid metric");
        let rollouts = IntCounterVec::new(
            Opts::new("verdict_rollouts_total", "Scored rollouts by outcome."),
            &["outcome"],
        )
        .expect("valid metric");
        let rollout_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "verdict_rollout_duration_seconds",
                "Chain wall time per rollout.",
            )
            .buckets(BUCKETS.to_vec()),
        )
        .expect("valid metric");
        let in_flight = IntGauge::new("verdict_scoring_in_flight", "Rollouts being scored now.")
            .expect("valid");
        let queued = IntGauge::new(
            "verdict_scoring_queued",
            "Rollouts admitted and waiting for a scoring slot.",
        )
        .expect("valid");
        let slots = IntGauge::new("verdict_scoring_slots", "Scoring slots (max_in_flight).")
            .expect("valid");
        let utilisation = Gauge::new(
            "verdict_scoring_utilisation",
            "Busy share of the scoring slots (in_flight / slots).",
        )
        .expect("valid");
        let rejected = IntCounterVec::new(
            Opts::new(
                "verdict_rejected_total",
                "Work refused (overloaded) or abandoned (deadline, cancelled).",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let sandbox_queue_depth = IntGauge::new(
            "verdict_sandbox_queue_depth",
            "Sandbox runs waiting for a slot.",
        )
        .expect("valid");
        let sandbox_busy =
            IntGauge::new("verdict_sandbox_busy", "Sandbox slots running a program.")
                .expect("valid");
        let sandbox_slots =
            IntGauge::new("verdict_sandbox_slots", "Sandbox slots.").expect("valid");
        // Every outcome is a series from the start, so `error` reads 0 rather than absent.
        for outcome in crate::score::Outcome::ALL {
            rollouts.with_label_values(&[outcome.as_str()]);
        }
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(request_seconds.clone()),
            Box::new(rollouts.clone()),
            Box::new(rollout_seconds.clone()),
            Box::new(in_flight.clone()),
            Box::new(queued.clone()),
            Box::new(slots.clone()),
            Box::new(utilisation.clone()),
            Box::new(rejected.clone()),
            Box::new(sandbox_queue_depth.clone()),
            Box::new(sandbox_busy.clone()),
            Box::new(sandbox_slots.clone()),
        ] {
            registry.register(c).expect("unique metric names");
        }
        Metrics {
            registry,
            requests,
            request_seconds,
            rollouts,
            rollout_seconds,
            in_flight,
            queued,
            slots,
            utilisation,
            rejected,
            sandbox_queue_depth,
            sandbox_busy,
            sandbox_slots,
            sandbox: Mutex::new(None),
        }
    }

    /// Count one scored rollout: by outcome (`error`, verdict's own failure, apart from
    /// `failed`), and its chain wall time.
    pub fn record_rollout(&self, score: &crate::score::Score) {
        self.rollouts
            .with_label_values(&[score.outcome.as_str()])
            .inc();
        self.rollout_seconds.observe(score.cost.wall_ms / 1000.0);
    }

    /// Shows `sandbox`'s load in the `verdict_sandbox_*` gauges from now on (read at each
    /// scrape), and counts its component cache lookup.
    pub fn watch_sandbox(&self, sandbox: &Sandbox) {
        record_cache_lookup("component", sandbox.load().component_cached);
        *self.sandbox.lock().unwrap_or_else(PoisonError::into_inner) = Some(sandbox.clone());
    }

    /// Everything in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let slots = self.slots.get().max(1) as f64;
        self.utilisation.set(self.in_flight.get() as f64 / slots);
        if let Some(sandbox) = &*self.sandbox.lock().unwrap_or_else(PoisonError::into_inner) {
            let load = sandbox.load();
            self.sandbox_queue_depth.set(load.waiting as i64);
            self.sandbox_busy.set(load.busy as i64);
            self.sandbox_slots.set(load.slots as i64);
        }
        LazyLock::force(&GLOBAL);
        let mut families = self.registry.gather();
        families.extend(prometheus::gather());
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&families, &mut out)
            .expect("text encoding cannot fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

/// Process-wide series other modules update without a handle to the server.
struct Global {
    cache_lookups: IntCounterVec,
    testgen_requests: IntCounterVec,
    testgen_seconds: Histogram,
    testgen_tests: IntCounterVec,
}

static GLOBAL: LazyLock<Global> = LazyLock::new(|| {
    let cache_lookups = IntCounterVec::new(
        Opts::new(
            "verdict_cache_lookups_total",
            "Cache lookups by cache and result.",
        ),
        &["cache", "result"],
    )
    .expect("valid metric");
    let testgen_requests = IntCounterVec::new(
        Opts::new(
            "verdict_testgen_requests_total",
            "HTTP attempts to the test-generation LLM, by result.",
        ),
        &["result"],
    )
    .expect("valid metric");
    let testgen_seconds = Histogram::with_opts(
        HistogramOpts::new(
            "verdict_testgen_request_duration_seconds",
            "Latency of one HTTP attempt to the test-generation LLM.",
        )
        .buckets(BUCKETS.to_vec()),
    )
    .expect("valid metric");
    let testgen_tests = IntCounterVec::new(
        Opts::new(
            "verdict_testgen_tests_total",
            "Generated tests kept, or dropped by reason.",
        ),
        &["fate"],
    )
    .expect("valid metric");
    let r = prometheus::default_registry();
    let _ = r.register(Box::new(testgen_requests.clone()));
    let _ = r.register(Box::new(testgen_seconds.clone()));
    let _ = r.register(Box::new(testgen_tests.clone()));
    // Registration only fails for a duplicate name, which this one-time initialiser rules out.
    let _ = r.register(Box::new(cache_lookups.clone()));
    Global {
        cache_lookups,
        testgen_requests,
        testgen_seconds,
        testgen_tests,
    }
});

/// Count one HTTP attempt to the test-generation endpoint and its latency.
pub fn record_testgen_request(result: &str, elapsed: std::time::Duration) {
    GLOBAL.testgen_requests.with_label_values(&[result]).inc();
    GLOBAL.testgen_seconds.observe(elapsed.as_secs_f64());
}

/// Count `count` generated tests that were kept (`fate = "kept"`) or dropped for `fate`.
pub fn record_testgen_tests(fate: &str, count: usize) {
    GLOBAL
        .testgen_tests
        .with_label_values(&[fate])
        .inc_by(count as u64);
}

/// Count one lookup in the cache called `cache` (e.g. `component`, `generated_tests`).
pub fn record_cache_lookup(cache: &str, hit: bool) {
    GLOBAL
        .cache_lookups
        .with_label_values(&[cache, if hit { "hit" } else { "miss" }])
        .inc();
}

/// The `GET /metrics` route, served by the server's HTTP listener beside the JSON gateway.
pub fn router(metrics: Arc<Metrics>) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    metrics.render(),
                )
            }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_has_every_series() {
        let m = Metrics::new();
        m.requests.with_label_values(&["Score", "Ok"]).inc();
        m.rollouts.with_label_values(&["passed"]).inc_by(3);
        m.slots.set(4);
        m.in_flight.set(1);
        record_cache_lookup("component", true);
        let text = m.render();
        assert!(
            text.contains(r#"verdict_grpc_requests_total{code="Ok",method="Score"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"verdict_rollouts_total{outcome="passed"} 3"#));
        assert!(text.contains("verdict_scoring_utilisation 0.25"));
        assert!(text.contains(r#"verdict_cache_lookups_total{cache="component",result="hit"}"#));
        assert!(text.contains("verdict_sandbox_queue_depth"));
        assert!(text.contains("process_resident_memory_bytes"), "{text}");
    }
}
