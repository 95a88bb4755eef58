//! The gRPC service end to end: the real server (`verdict::server::run`) on 127.0.0.1:0,
//! called through the generated client and `verdict::client`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tonic::Code;

use verdict::chain::{Chain, Step};
use verdict::client::{Client, ClientOptions};
use verdict::metrics::Metrics;
use verdict::pb;
use verdict::pb::reward_service_client::RewardServiceClient;
use verdict::server::{run, ServeError, ServeOptions};
use verdict::{Config, Context, Rollout, Score, TestCase, Verdict, Verifier};

/// Counts what the slow verifier did: started, finished, and dropped before finishing.
#[derive(Default)]
struct Counters {
    started: AtomicUsize,
    finished: AtomicUsize,
    dropped: AtomicUsize,
    running: AtomicUsize,
    peak: AtomicUsize,
}

impl Counters {
    fn get(&self) -> (usize, usize, usize) {
        (
            self.started.load(Ordering::SeqCst),
            self.finished.load(Ordering::SeqCst),
            self.dropped.load(Ordering::SeqCst),
        )
    }
}

/// A test verifier that sleeps for the milliseconds in the rollout's prompt (`sleep:MS`, else
/// not at all), standing in for a sandbox run. A drop guard counts runs cancelled mid-way.
struct SlowVerifier(Arc<Counters>);

struct DropGuard(Option<Arc<Counters>>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            c.dropped.fetch_add(1, Ordering::SeqCst);
            c.running.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

#[async_trait]
impl Verifier for SlowVerifier {
    fn kind(&self) -> &'static str {
        "slow"
    }

    async fn verify(&self, rollout: &Rollout, _ctx: &mut Context) -> Verdict {
        self.0.started.fetch_add(1, Ordering::SeqCst);
        let now = self.0.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.0.peak.fetch_max(now, Ordering::SeqCst);
        let mut guard = DropGuard(Some(self.0.clone()));
        let ms: u64 = rollout
            .prompt
            .strip_prefix("sleep:")
            .and_then(|ms| ms.parse().ok())
            .unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        guard.0 = None;
        self.0.running.fetch_sub(1, Ordering::SeqCst);
        self.0.finished.fetch_add(1, Ordering::SeqCst);
        Verdict::pass(1.0, json!({ "slept_ms": ms }))
    }
}

fn slow_chain() -> (Arc<Chain>, Arc<Counters>) {
    let counters = Arc::new(Counters::default());
    let chain = Chain::new(vec![Step {
        name: "slow".into(),
        verifier: Box::new(SlowVerifier(counters.clone())),
        weight: 1.0,
        gate: false,
        min_score: 1.0,
    }]);
    (Arc::new(chain), counters)
}

fn default_chain() -> Arc<Chain> {
    Arc::new(Config::default_config().build().unwrap())
}

struct TestServer {
    addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), ServeError>>,
    metrics: Arc<Metrics>,
}

impl TestServer {
    async fn start(chain: Arc<Chain>, opts: ServeOptions) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = opts.metrics.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(run(listener, chain, opts, async {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            stop: Some(stop),
            task,
            metrics,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn client(&self) -> RewardServiceClient<Channel> {
        RewardServiceClient::connect(self.url()).await.unwrap()
    }

    /// Begin shutdown and wait for `run` to return.
    async fn shutdown(mut self) -> Result<(), ServeError> {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap()
    }
}

fn rollout(id: &str, completion: &str) -> Rollout {
    Rollout {
        id: id.into(),
        completion: completion.into(),
        ..Rollout::default()
    }
}

fn slow(id: &str, ms: u64) -> pb::Rollout {
    pb::Rollout::from(&Rollout {
        id: id.into(),
        prompt: format!("sleep:{ms}"),
        completion: "x = 1".into(),
        ..Rollout::default()
    })
}

fn request(r: pb::Rollout) -> pb::ScoreRequest {
    pb::ScoreRequest { rollout: Some(r) }
}

/// A score without its wall times (which differ from run to run).
fn timeless(mut s: Score) -> Score {
    s.cost.wall_ms = 0.0;
    if let Some(t) = s.tests.as_mut() {
        for r in &mut t.results {
            r.wall_ms = 0.0;
        }
    }
    s
}

/// The sandbox cache of this test process, handed to binaries run with a cleared environment.
fn cache_dir() -> std::path::PathBuf {
    verdict::sandbox::SandboxConfig::default()
        .resolved_cache_dir()
        .expect("the test environment has a cache directory")
}

/// Poll `cond` until it holds, or fail after `within`.
async fn eventually(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < within, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn samples() -> Vec<Rollout> {
    vec![
        rollout(
            "good",
            "<think>add them</think>\n```python\ndef add(a, b):\n    return a + b\n```",
        ),
        rollout("prose", "I think the answer is 42."),
        rollout("broken", "```python\ndef f(:\n```"),
        Rollout {
            tests: vec![TestCase::Call {
                function: "add".into(),
                args: vec![json!(1).into(), json!(2.5).into()],
                expected: json!(3.5).into(),
                timing: false,
                compare: None,
            }],
            ..rollout("with-tests", "def add(a, b):\n    return a + b")
        },
    ]
}

#[tokio::test]
async fn every_rpc_gives_the_same_scores_as_the_library() {
    let chain = default_chain();
    let server = TestServer::start(chain.clone(), ServeOptions::default()).await;
    let mut client = server.client().await;

    for r in samples() {
        let got = client
            .score(request(pb::Rollout::from(&r)))
            .await
            .unwrap()
            .into_inner()
            .score
            .unwrap();
        // Every score says which reward semantics it was computed under.
        assert_eq!(got.semantics, verdict::score::REWARD_SEMANTICS, "{}", r.id);
        let got = Score::try_from(got).unwrap();
        assert_eq!(timeless(got), timeless(chain.score(&r).await), "{}", r.id);
    }

    // ScoreBatch: request order, and a bad rollout answered in its own slot.
    let mut rollouts: Vec<pb::Rollout> = samples().iter().map(pb::Rollout::from).collect();
    let mut bad = pb::Rollout::from(&rollout("bad", "x"));
    bad.extra = "not json".into();
    rollouts.insert(2, bad);
    let scores = client
        .score_batch(pb::ScoreBatchRequest { rollouts })
        .await
        .unwrap()
        .into_inner()
        .scores;
    let ids: Vec<&str> = scores.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["good", "prose", "bad", "broken", "with-tests"]);
    assert_eq!(scores[2].outcome, pb::Outcome::InvalidInput as i32);
    assert!(
        scores
            .iter()
            .all(|s| s.semantics == verdict::score::REWARD_SEMANTICS),
        "{scores:?}"
    );
    assert!(
        scores[2]
            .error
            .as_deref()
            .unwrap()
            .starts_with("rollouts[2].extra: not JSON text"),
        "{:?}",
        scores[2].error
    );
    let good: Vec<&pb::Score> = scores.iter().filter(|s| s.id != "bad").collect();
    for (got, expected) in good.into_iter().zip(samples()) {
        let got = Score::try_from(got.clone()).unwrap();
        assert_eq!(timeless(got), timeless(chain.score(&expected).await));
    }

    // ListVerifiers: the effective chain and the known kinds.
    let list = client
        .list_verifiers(pb::ListVerifiersRequest {})
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = list.chain.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["format", "parse", "tests", "timing"]);
    assert!(list.chain[1].gate);
    assert!(list.kinds.iter().any(|k| k.kind == "parse"));
    assert_eq!(list.config_origin, "built-in default");

    // Health: the service and the server as a whole are SERVING.
    let channel = Channel::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    for service in ["", "verdict.v1.RewardService"] {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(
            status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "{service:?}"
        );
    }

    // Reflection lists the service, so generic tools need no .proto file.
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    let mut reflection = ServerReflectionClient::new(channel);
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        }]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer {response:?}");
    };
    let services: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        services.contains(&"verdict.v1.RewardService".to_string()),
        "{services:?}"
    );
    assert!(
        services.contains(&"grpc.health.v1.Health".to_string()),
        "{services:?}"
    );

    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_stream_of_hundreds_of_rollouts_is_answered_by_id() {
    let chain = default_chain();
    let server = TestServer::start(
        chain.clone(),
        ServeOptions {
            stream_window: 16,
            ..ServeOptions::default()
        },
    )
    .await;
    let mut client = server.client().await;
    let n = 300;
    let sent: Vec<Rollout> = (0..n)
        .map(|i| {
            let s = &samples()[i % 4];
            Rollout {
                id: format!("r{i}"),
                ..s.clone()
            }
        })
        .collect();
    let mut requests: Vec<pb::ScoreRequest> =
        sent.iter().map(|r| request(pb::Rollout::from(r))).collect();
    requests.push(pb::ScoreRequest { rollout: None });
    let mut responses = client
        .score_stream(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let mut got: HashMap<String, Score> = HashMap::new();
    while let Some(response) = responses.message().await.unwrap() {
        let score = Score::try_from(response.score.unwrap()).unwrap();
        assert!(
            got.insert(score.id.clone(), score).is_none(),
            "one answer per id"
        );
    }
    assert_eq!(got.len(), n + 1);
    let missing = &got["input-301"];
    assert_eq!(
        missing.error.as_deref(),
        Some("requests[300].rollout: is required")
    );
    for r in &sent {
        let expected = timeless(chain.score(r).await);
        assert_eq!(timeless(got[&r.id].clone()), expected);
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_client_pipelines_a_stream() {
    use futures::StreamExt;
    let chain = default_chain();
    let server = TestServer::start(chain.clone(), ServeOptions::default()).await;
    let client = Client::new(&[server.url()], ClientOptions::default()).unwrap();
    let sent: Vec<Rollout> = (0..50)
        .map(|i| Rollout {
            id: format!("c{i}"),
            ..samples()[i % 4].clone()
        })
        .collect();
    let scores: Vec<Score> = client
        .score_stream(futures::stream::iter(sent.clone()))
        .await
        .unwrap()
        .map(|s| s.unwrap())
        .collect()
        .await;
    let by_id: HashMap<String, Score> = scores.into_iter().map(|s| (s.id.clone(), s)).collect();
    assert_eq!(by_id.len(), 50);
    for r in &sent {
        assert_eq!(
            timeless(by_id[&r.id].clone()),
            timeless(chain.score(r).await)
        );
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_expiring_deadline_stops_the_work_and_frees_the_slots() {
    let (chain, counters) = slow_chain();
    let server = TestServer::start(
        chain,
        ServeOptions {
            max_in_flight: 2,
            max_queued: 0,
            ..ServeOptions::default()
        },
    )
    .await;
    let mut client = server.client().await;

    let mut req = tonic::Request::new(pb::ScoreBatchRequest {
        rollouts: vec![slow("a", 0), slow("b", 10_000), slow("c", 10_000)],
    });
    req.set_timeout(Duration::from_millis(500));
    let started = Instant::now();
    // Three rollouts do not fit in 2 slots + 0 queue: overloaded, not queued.
    let err = client.score_batch(req).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");

    let mut req = tonic::Request::new(pb::ScoreBatchRequest {
        rollouts: vec![slow("a", 0), slow("b", 10_000)],
    });
    req.set_timeout(Duration::from_millis(500));
    let err = client.score_batch(req).await.unwrap_err();
    let waited = started.elapsed();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    assert!(err.message().contains("1 of 2"), "{}", err.message());
    assert!(waited < Duration::from_secs(2), "answered after {waited:?}");
    // The slow run was dropped, not left running.
    eventually(Duration::from_secs(2), "the slow run is dropped", || {
        counters.get() == (2, 1, 1)
    })
    .await;

    // Unary too.
    let mut req = tonic::Request::new(request(slow("u", 10_000)));
    req.set_timeout(Duration::from_millis(500));
    let err = client.score(req).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    eventually(Duration::from_secs(2), "the unary run is dropped", || {
        counters.get() == (3, 1, 2)
    })
    .await;

    // Both slots are free again: a full-width batch is admitted and scored.
    let scores = client
        .score_batch(pb::ScoreBatchRequest {
            rollouts: vec![slow("d", 10), slow("e", 10)],
        })
        .await
        .unwrap()
        .into_inner()
        .scores;
    assert_eq!(scores.len(), 2);
    assert_eq!(server.metrics.in_flight.get(), 0);
    let rendered = server.metrics.render();
    assert!(
        rendered.contains(r#"verdict_rejected_total{reason="deadline"} 2"#),
        "{rendered}"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_cancelled_stream_stops_its_work() {
    let (chain, counters) = slow_chain();
    let server = TestServer::start(chain, ServeOptions::default()).await;
    let mut client = server.client().await;
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    for i in 0..5 {
        tx.send(request(slow(&format!("s{i}"), 10_000)))
            .await
            .unwrap();
    }
    tx.send(request(slow("quick", 0))).await.unwrap();
    let mut responses = client
        .score_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    // The quick one is answered while the slow ones still run (pipelined, by id).
    let first = responses.message().await.unwrap().unwrap();
    assert_eq!(first.score.unwrap().id, "quick");
    eventually(Duration::from_secs(2), "all six started", || {
        counters.get().0 == 6
    })
    .await;
    // The client goes away mid-stream.
    drop(responses);
    drop(tx);
    eventually(
        Duration::from_secs(2),
        "the five slow runs are dropped",
        || counters.get() == (6, 1, 5),
    )
    .await;
    eventually(Duration::from_secs(2), "no rollout in flight", || {
        server.metrics.in_flight.get() == 0
    })
    .await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_stream_deadline_ends_the_stream_with_deadline_exceeded() {
    let (chain, counters) = slow_chain();
    let server = TestServer::start(chain, ServeOptions::default()).await;
    let mut client = server.client().await;
    let mut req = tonic::Request::new(tokio_stream::iter(vec![
        request(slow("fast", 0)),
        request(slow("slow", 10_000)),
    ]));
    req.set_timeout(Duration::from_millis(500));
    let mut responses = client.score_stream(req).await.unwrap().into_inner();
    let first = responses.message().await.unwrap().unwrap();
    assert_eq!(first.score.unwrap().id, "fast");
    let err = responses.message().await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    eventually(Duration::from_secs(2), "the slow run is dropped", || {
        counters.get() == (2, 1, 1)
    })
    .await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn overload_is_answered_quickly_and_the_client_retries_through_it() {
    let (chain, counters) = slow_chain();
    let server = TestServer::start(
        chain,
        ServeOptions {
            max_in_flight: 2,
            max_queued: 2,
            ..ServeOptions::default()
        },
    )
    .await;
    let mut client = server.client().await;
    // Fill every admission slot: 2 scoring, 2 queued.
    let mut busy = client.clone();
    let filler = tokio::spawn(async move {
        busy.score_batch(pb::ScoreBatchRequest {
            rollouts: (0..4).map(|i| slow(&format!("f{i}"), 400)).collect(),
        })
        .await
    });
    eventually(Duration::from_secs(2), "two runs started", || {
        counters.get().0 == 2
    })
    .await;
    let started = Instant::now();
    let err = client.score(request(slow("late", 0))).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(
        err.message().contains("0 of 4 admission slots free"),
        "{}",
        err.message()
    );
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );

    // verdict::client backs off and retries until there is room.
    let retrying = Client::new(
        &[server.url()],
        ClientOptions {
            retries: 20,
            backoff: Duration::from_millis(50),
            ..ClientOptions::default()
        },
    )
    .unwrap();
    let score = retrying.score(&rollout("patient", "x = 1")).await.unwrap();
    assert_eq!(score.id, "patient");
    assert!(retrying.calls_per_endpoint()[0].1 > 1, "it had to retry");
    let filled = filler.await.unwrap().unwrap().into_inner().scores;
    assert_eq!(filled.len(), 4);
    assert_eq!(counters.get().1, 5);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_stream_past_capacity_waits_instead_of_failing() {
    let (chain, counters) = slow_chain();
    let server = TestServer::start(
        chain,
        ServeOptions {
            max_in_flight: 2,
            max_queued: 1,
            ..ServeOptions::default()
        },
    )
    .await;
    let mut client = server.client().await;
    let requests: Vec<_> = (0..12)
        .map(|i| request(slow(&format!("w{i}"), 30)))
        .collect();
    let mut responses = client
        .score_stream(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let mut n = 0;
    while let Some(r) = responses.message().await.unwrap() {
        assert_eq!(r.score.unwrap().reward, Some(1.0));
        n += 1;
    }
    assert_eq!(n, 12);
    assert_eq!(counters.get(), (12, 12, 0));
    let peak = counters.peak.load(Ordering::SeqCst);
    assert_eq!(peak, 2, "never more than max_in_flight rollouts at once");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn invalid_requests_get_invalid_argument_naming_the_field() {
    let server = TestServer::start(
        default_chain(),
        ServeOptions {
            max_message_bytes: 4096,
            max_batch: 3,
            ..ServeOptions::default()
        },
    )
    .await;
    let mut client = server.client().await;
    let err = client
        .score(pb::ScoreRequest { rollout: None })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(err.message(), "rollout: is required");

    let mut no_id = pb::Rollout::from(&rollout("x", "y"));
    no_id.id.clear();
    let err = client.score(request(no_id)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(err.message(), "rollout.id: is empty");

    let mut bad_test = pb::Rollout::from(&rollout("x", "y"));
    bad_test.tests.push(pb::TestCase {
        kind: Some(pb::test_case::Kind::Call(pb::CallTest {
            r#fn: "f".into(),
            args: vec![],
            expected: "{".into(),
            timing: false,
            compare: String::new(),
        })),
    });
    let err = client.score(request(bad_test)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message()
            .starts_with("rollout.tests[0].call.expected: not JSON text"),
        "{}",
        err.message()
    );

    let err = client
        .score_batch(pb::ScoreBatchRequest { rollouts: vec![] })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(err.message(), "rollouts: is empty");
    let err = client
        .score_batch(pb::ScoreBatchRequest {
            rollouts: (0..4)
                .map(|i| pb::Rollout::from(&rollout(&format!("{i}"), "x")))
                .collect(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("exceed the server's max_batch of 3"),
        "{}",
        err.message()
    );

    // Too large for the configured limit: a clear status, and the server carries on.
    let err = client
        .score(request(pb::Rollout::from(&rollout(
            "big",
            &"x".repeat(8192),
        ))))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::OutOfRange, "{err:?}");
    assert!(
        err.message().contains("message length too large"),
        "{}",
        err.message()
    );
    let ok = client
        .score(request(pb::Rollout::from(&rollout("small", "x = 1"))))
        .await;
    assert!(ok.is_ok());
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_while_busy_finishes_work_in_flight() {
    let (chain, counters) = slow_chain();
    let server = TestServer::start(chain, ServeOptions::default()).await;
    let mut client = server.client().await;
    let call = tokio::spawn(async move { client.score(request(slow("busy", 300))).await });
    eventually(Duration::from_secs(2), "the call is running", || {
        counters.get().0 == 1
    })
    .await;
    let addr = server.addr;
    let started = Instant::now();
    server.shutdown().await.unwrap();
    let score = call.await.unwrap().unwrap().into_inner().score.unwrap();
    assert_eq!(score.id, "busy");
    assert_eq!(score.reward, Some(1.0));
    assert_eq!(counters.get(), (1, 1, 0));
    assert!(started.elapsed() < Duration::from_secs(5));
    // No longer accepting.
    assert!(RewardServiceClient::connect(format!("http://{addr}"))
        .await
        .is_err());
}

#[tokio::test]
async fn shutdown_cancels_what_outlives_the_grace_period() {
    let (chain, counters) = slow_chain();
    let server = TestServer::start(
        chain,
        ServeOptions {
            grace: Duration::from_millis(200),
            ..ServeOptions::default()
        },
    )
    .await;
    let mut client = server.client().await;
    let call = tokio::spawn(async move { client.score(request(slow("stuck", 60_000))).await });
    eventually(Duration::from_secs(2), "the call is running", || {
        counters.get().0 == 1
    })
    .await;
    let started = Instant::now();
    server.shutdown().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let err = call.await.unwrap().unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(err.message().contains("shut down"), "{}", err.message());
    eventually(Duration::from_secs(2), "the run is dropped", || {
        counters.get() == (1, 0, 1)
    })
    .await;
}

#[tokio::test]
async fn the_client_balances_over_replicas_and_skips_a_dead_one() {
    let a = TestServer::start(default_chain(), ServeOptions::default()).await;
    let b = TestServer::start(default_chain(), ServeOptions::default()).await;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let client = Arc::new(
        Client::new(
            &[a.url(), dead.to_string(), b.url()],
            ClientOptions {
                backoff: Duration::from_millis(5),
                ..ClientOptions::default()
            },
        )
        .unwrap(),
    );
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .score_batch(&[
                        rollout(&format!("r{i}"), "x = 1"),
                        rollout("p", "I think the answer is 42."),
                    ])
                    .await
            })
        })
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        let scores = t.await.unwrap().unwrap();
        assert_eq!(scores[0].id, format!("r{i}"));
        assert_eq!(scores[1].id, "p");
    }
    let calls = client.calls_per_endpoint();
    assert!(
        calls[0].1 >= 5 && calls[2].1 >= 5,
        "both live replicas get work: {calls:?}"
    );
    let served = |s: &TestServer| {
        s.metrics
            .requests
            .with_label_values(&["ScoreBatch", "Ok"])
            .get()
    };
    assert_eq!(served(&a) + served(&b), 40);
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test]
async fn metrics_are_served_in_the_prometheus_text_format() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let http_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_addr = http_listener.local_addr().unwrap();
    let server = TestServer::start(
        default_chain(),
        ServeOptions {
            http_listener: Some(http_listener),
            ..ServeOptions::default()
        },
    )
    .await;
    let mut client = server.client().await;
    let r = rollout("m", "I think the answer is 42.");
    let outcome = default_chain().score(&r).await.outcome;
    client.score(request(pb::Rollout::from(&r))).await.unwrap();
    let scored = format!(r#"verdict_rollouts_total{{outcome="{outcome}"}} 1"#);
    let mut conn = tokio::net::TcpStream::connect(metrics_addr).await.unwrap();
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    conn.read_to_string(&mut body).await.unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    for needle in [
        r#"verdict_grpc_requests_total{code="Ok",method="Score"} 1"#,
        &scored,
        "verdict_grpc_request_duration_seconds_bucket",
        "verdict_scoring_slots 256",
        "process_resident_memory_bytes",
    ] {
        assert!(body.contains(needle), "missing {needle}:\n{body}");
    }
    server.shutdown().await.unwrap();
}

/// What the HTTP gateway answers, status and JSON body.
async fn post_json(
    url: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> (u16, serde_json::Value) {
    let mut request = reqwest::Client::new().post(url).body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let declared = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(declared, "application/json", "status {status}");
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn the_http_gateway_answers_as_its_openapi_description_says() {
    let http_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", http_listener.local_addr().unwrap());
    let (chain, _) = slow_chain();
    let server = TestServer::start(
        chain,
        ServeOptions {
            http_listener: Some(http_listener),
            max_message_bytes: 4096,
            ..ServeOptions::default()
        },
    )
    .await;
    let json = Some("application/json");
    let score = format!("{base}/v1/score");
    let rollout = |limits: serde_json::Value| {
        json!({"id": "h", "completion": "x = 1", "prompt": null, "limits": limits,
               "tests": [{"kind": "assert", "code": "assert x == 1", "expected": null,
                          "timing": null, "stdin": null, "compare": null}]})
        .to_string()
    };

    // An integral float is an integer, as JSON Schema's `integer` says; nulls are absent.
    let (status, body) = post_json(&score, json, rollout(json!({"time_ms": 1000.0}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"], "passed", "{body}");
    assert_eq!(
        body["semantics"],
        verdict::score::REWARD_SEMANTICS,
        "{body}"
    );
    let (status, body) = post_json(
        &score,
        Some("application/json; charset=utf-8"),
        rollout(json!({"time_ms": null, "memory_mb": 64.0})),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // `minimum: 1`.
    let (status, body) = post_json(&score, json, rollout(json!({"memory_mb": 0}))).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "limits.memory_mb", "{body}");

    // A body declared as something else is refused; an undeclared one is read as JSON.
    let (status, body) = post_json(
        &score,
        Some("application/x-www-form-urlencoded"),
        rollout(json!(null)),
    )
    .await;
    assert_eq!(status, 415, "{body}");
    assert_eq!(body["error"]["code"], "unsupported_media_type", "{body}");
    let (status, body) = post_json(&score, None, rollout(json!(null))).await;
    assert_eq!(status, 200, "{body}");

    // Over the size limit: the same JSON error shape as every other status.
    let big = json!({"id": "big", "completion": "x".repeat(8192)}).to_string();
    let (status, body) = post_json(&score, json, big).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--max-message-bytes"),
        "{body}"
    );
    let too_large = server
        .metrics
        .requests
        .with_label_values(&["POST /v1/score", "ResourceExhausted"])
        .get();
    assert_eq!(too_large, 1);

    // OpenRLHF without a label key sends `labels: None`.
    let (status, body) = post_json(
        &format!("{base}/v1/openrlhf"),
        json,
        json!({"query": ["x = 1"], "prompts": null, "labels": null}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rewards"].as_array().unwrap().len(), 1, "{body}");
    server.shutdown().await.unwrap();
}

/// OpenRLHF labels are read as their JSON text, as `/v1/score_batch` reads rollouts: a call
/// test expecting an integer beyond 64 bits is judged digit for digit in every form a label
/// takes, so a program one off (or returning the float) fails on both routes alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openrlhf_labels_keep_integers_beyond_64_bits_exact() {
    let http_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", http_listener.local_addr().unwrap());
    let server = TestServer::start(
        default_chain(),
        ServeOptions {
            http_listener: Some(http_listener),
            ..ServeOptions::default()
        },
    )
    .await;
    let json = Some("application/json");
    let text = |s: &str| serde_json::to_string(s).unwrap();
    let big = "123456789012345678901234567890";
    let test = format!(r#"{{"kind": "call", "fn": "f", "args": [], "expected": {big}}}"#);
    let object = format!(r#"{{"tests": [{test}]}}"#);
    let list = format!("[{test}]");
    // The label forms OpenRLHF may send: an object, a list, JSON text of either.
    let labels = [object.clone(), list.clone(), text(&object), text(&list)];
    let answers = [
        (big.to_string(), true),
        ("123456789012345678901234567891".to_string(), false),
        (format!("{big}.0"), false),
    ];
    let completion = |answer: &str| {
        format!("<think>return the number</think>\n```python\ndef f():\n    return {answer}\n```")
    };
    let (mut queries, mut sent_labels, mut rollouts, mut expected) =
        (vec![], vec![], vec![], vec![]);
    for label in &labels {
        for (answer, passes) in &answers {
            queries.push(text(&completion(answer)));
            sent_labels.push(label.clone());
            rollouts.push(format!(
                r#"{{"id": "r{}", "completion": {}, "tests": [{test}]}}"#,
                rollouts.len(),
                text(&completion(answer))
            ));
            expected.push(u8::from(*passes));
        }
    }
    let (status, openrlhf) = post_json(
        &format!("{base}/v1/openrlhf"),
        json,
        format!(
            r#"{{"query": [{}], "prompts": null, "labels": [{}]}}"#,
            queries.join(", "),
            sent_labels.join(", ")
        ),
    )
    .await;
    assert_eq!(status, 200, "{openrlhf}");
    assert_eq!(
        openrlhf["extra_logs"]["verdict_passed"],
        json!(expected),
        "{openrlhf}"
    );
    assert_eq!(
        openrlhf["extra_logs"]["verdict_error"],
        json!(vec![0; expected.len()]),
        "{openrlhf}"
    );

    // The same rollouts on the batch route: the same outcomes and rewards.
    let (status, batch) = post_json(
        &format!("{base}/v1/score_batch"),
        json,
        format!(r#"{{"rollouts": [{}]}}"#, rollouts.join(", ")),
    )
    .await;
    assert_eq!(status, 200, "{batch}");
    let scores = batch["scores"].as_array().unwrap();
    let passed: Vec<u8> = scores
        .iter()
        .map(|s| u8::from(s["outcome"] == "passed"))
        .collect();
    assert_eq!(passed, expected, "{batch}");
    assert!(
        scores[1..3].iter().all(|s| s["outcome"] == "failed"),
        "{batch}"
    );
    let batch_rewards: Vec<&serde_json::Value> = scores.iter().map(|s| &s["reward"]).collect();
    let openrlhf_rewards: Vec<&serde_json::Value> =
        openrlhf["rewards"].as_array().unwrap().iter().collect();
    assert_eq!(openrlhf_rewards, batch_rewards, "{openrlhf}\n{batch}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn score_remote_writes_what_local_scoring_writes() {
    let server = TestServer::start(default_chain(), ServeOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let mut text = String::new();
    for (i, r) in samples().iter().cycle().take(150).enumerate() {
        let r = Rollout {
            id: format!("r{i}"),
            ..r.clone()
        };
        text.push_str(&serde_json::to_string(&r).unwrap());
        text.push('\n');
        if i == 70 {
            text.push_str("{broken\n");
        }
    }
    std::fs::write(&input, text).unwrap();
    let url = server.url();
    // Runs `verdict score` (locally, or through the server twice-listed as a fleet) and returns
    // the records written, without wall times.
    let run_cli = move |remote: Option<String>, out: &str, resume: bool| {
        let input = input.clone();
        let out = input.with_file_name(out);
        tokio::task::spawn_blocking(move || {
            let mut cmd = assert_cmd::Command::cargo_bin("verdict").unwrap();
            cmd.env_clear()
                .env("VERDICT_CACHE_DIR", cache_dir())
                .arg("score")
                .arg(&input)
                .arg("-o")
                .arg(&out);
            if let Some(url) = remote {
                cmd.arg("--remote").arg(format!("{url},{url}"));
            }
            if resume {
                cmd.arg("--resume");
            }
            cmd.assert().code(1);
            let text = std::fs::read_to_string(&out).unwrap();
            text.lines()
                .map(|l| timeless(serde_json::from_str::<Score>(l).unwrap()))
                .collect::<Vec<_>>()
        })
    };
    let local = run_cli(None, "local.jsonl", false).await.unwrap();
    let remote = run_cli(Some(url.clone()), "remote.jsonl", false)
        .await
        .unwrap();
    assert_eq!(local.len(), 151);
    assert_eq!(remote, local);

    // A remote run cut short (40 records and a torn line) resumes to the same output.
    let remote_text = std::fs::read_to_string(dir.path().join("remote.jsonl")).unwrap();
    let mut cut: String = remote_text
        .lines()
        .take(40)
        .map(|l| format!("{l}\n"))
        .collect();
    cut.push_str("{\"id\": \"r4");
    std::fs::write(dir.path().join("resumed.jsonl"), cut).unwrap();
    let resumed = run_cli(Some(url), "resumed.jsonl", true).await.unwrap();
    assert_eq!(resumed, local);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verdict_serve_answers_and_exits_0_on_sigterm() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("verdict"))
        .args(["serve", "--addr", "127.0.0.1:0", "--grace-secs", "5"])
        .env_clear()
        .env("VERDICT_CACHE_DIR", cache_dir())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .expect(&line)
        .to_string();
    let mut client = RewardServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let score = client
        .score(request(pb::Rollout::from(&rollout("cli", "x = 1"))))
        .await
        .unwrap()
        .into_inner()
        .score
        .unwrap();
    assert_eq!(score.id, "cli");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

/// A verifier with a bug: it panics on rollouts whose prompt is `panic`.
struct Buggy;

#[async_trait]
impl Verifier for Buggy {
    fn kind(&self) -> &'static str {
        "buggy"
    }

    async fn verify(&self, rollout: &Rollout, _ctx: &mut Context) -> Verdict {
        assert!(rollout.prompt != "panic", "a bug in a verifier");
        Verdict::pass(1.0, json!({}))
    }
}

#[tokio::test]
async fn a_panic_while_scoring_is_that_rollouts_error_and_the_server_keeps_serving() {
    let chain = Arc::new(Chain::new(vec![Step {
        name: "buggy".into(),
        verifier: Box::new(Buggy),
        weight: 1.0,
        gate: false,
        min_score: 1.0,
    }]));
    let metrics = Arc::new(Metrics::new());
    let server = TestServer::start(
        chain,
        ServeOptions {
            metrics: metrics.clone(),
            ..ServeOptions::default()
        },
    )
    .await;
    let mut client = server.client().await;
    let bad = Rollout {
        prompt: "panic".into(),
        ..rollout("bad", "x = 1")
    };
    let good = rollout("good", "x = 1");
    let one = client
        .score(request(pb::Rollout::from(&bad)))
        .await
        .expect("the call succeeds: the failure is in the score")
        .into_inner()
        .score
        .unwrap();
    assert_eq!(one.outcome, pb::Outcome::Error as i32);
    assert_eq!(one.reward, None, "no reward a trainer could mistake for 0");
    assert!(one.error.unwrap().contains("a bug in a verifier"));
    let batch = client
        .score_batch(pb::ScoreBatchRequest {
            rollouts: vec![pb::Rollout::from(&good), pb::Rollout::from(&bad)],
        })
        .await
        .unwrap()
        .into_inner()
        .scores;
    assert_eq!(batch[0].reward, Some(1.0));
    assert_eq!(batch[1].outcome, pb::Outcome::Error as i32);
    assert_eq!(batch[1].reward, None);
    let score = Score::try_from(batch[1].clone()).unwrap();
    assert_eq!(score.reward, None);
    let text = metrics.render();
    assert!(
        text.contains(r#"verdict_rollouts_total{outcome="error"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"verdict_rollouts_total{outcome="failed"} 0"#),
        "{text}"
    );
    assert!(
        text.contains(r#"verdict_rollouts_total{outcome="passed"} 1"#),
        "{text}"
    );
    server.shutdown().await.unwrap();
}

/// Rollouts of a few problems whose correct solutions differ in cost, so that the group
/// baseline depends on which rollouts share a window.
fn group_input() -> String {
    let fast = "def f(n):\n    return n * (n + 1) // 2";
    let slow = |k: usize| {
        format!("def f(n):\n    s = 0\n    for _ in range({k}):\n        for i in range(n + 1):\n            s += i\n    return s // {k}")
    };
    let mut text = String::new();
    for p in 0..3 {
        let codes = [slow(2), fast.to_string(), slow(1), slow(3)];
        for (j, code) in codes.iter().enumerate() {
            let r = json!({
                "id": format!("p{p}-{j}"),
                "problem_id": format!("p{p}"),
                "completion": format!("```python\n{code}\n```"),
                "tests": [{"kind": "call", "fn": "f", "args": [300], "expected": 45150}],
            });
            text.push_str(&r.to_string());
            text.push('\n');
            if p == 1 && j == 1 {
                text.push_str("{broken\n");
            }
        }
    }
    text
}

const GROUP_CONFIG: &str = r#"
[[verifier]]
kind = "parse"
gate = true
weight = 0.0

[[verifier]]
kind = "tests"

[[verifier]]
kind = "timing"
baseline = "group"

[sandbox.engine]
workers = 0
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_and_local_runs_write_the_same_group_records_over_windows_and_replicas() {
    let config = Config::parse(GROUP_CONFIG, "group.toml").unwrap();
    let a = TestServer::start(Arc::new(config.build().unwrap()), ServeOptions::default()).await;
    let b = TestServer::start(Arc::new(config.build().unwrap()), ServeOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, group_input()).unwrap();
    let config_path = dir.path().join("group.toml");
    std::fs::write(&config_path, GROUP_CONFIG).unwrap();
    let run_cli = move |remote: Option<String>, window: usize, out: &str| {
        let input = input.clone();
        let config_path = config_path.clone();
        let out = input.with_file_name(out);
        tokio::task::spawn_blocking(move || {
            let mut cmd = assert_cmd::Command::cargo_bin("verdict").unwrap();
            cmd.env_clear()
                .env("VERDICT_CACHE_DIR", cache_dir())
                .arg("score")
                .arg(&input)
                .arg("-o")
                .arg(&out)
                .args(["--jobs", "2", "--group-window", &window.to_string()]);
            match remote {
                Some(urls) => cmd.arg("--remote").arg(urls),
                None => cmd.arg("--config").arg(&config_path),
            };
            cmd.assert().code(1);
            std::fs::read_to_string(&out)
                .unwrap()
                .lines()
                .map(|l| timeless(serde_json::from_str::<Score>(l).unwrap()))
                .collect::<Vec<_>>()
        })
    };
    let fleet = format!("{},{}", a.url(), b.url());
    let timing = |scores: &[Score]| -> Vec<f64> {
        scores
            .iter()
            .filter_map(|s| s.verifiers.iter().find(|v| v.name == "timing"))
            .map(|v| v.score)
            .collect()
    };
    let mut by_window = Vec::new();
    for window in [3, 5, 512] {
        let local = run_cli(None, window, "local.jsonl").await.unwrap();
        let remote = run_cli(Some(fleet.clone()), window, "remote.jsonl")
            .await
            .unwrap();
        assert_eq!(local.len(), 13);
        assert_eq!(remote, local, "window {window}");
        by_window.push(timing(&local));
    }
    assert_ne!(
        by_window[0], by_window[2],
        "the window decides the group baseline"
    );
    assert!(
        a.metrics
            .requests
            .with_label_values(&["ScoreBatch", "Ok"])
            .get()
            > 0
            && b.metrics
                .requests
                .with_label_values(&["ScoreBatch", "Ok"])
                .get()
                > 0,
        "both replicas scored"
    );
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
