//! The gRPC server: the reward service, the standard health service (`grpc.health.v1`), server
//! reflection (v1 and v1alpha) and, optionally, an HTTP listener with the Prometheus metrics
//! endpoint (`GET /metrics`) and the HTTP/JSON gateway ([`crate::service::http`]).
//!
//! [`run`] is what `verdict serve` calls and what the integration tests call on `127.0.0.1:0`.
//!
//! ## Shutdown
//! When `shutdown` completes, health turns `NOT_SERVING`, the listener stops accepting, and calls
//! in flight get `grace` to finish. After that the remaining calls are dropped — which aborts
//! their scoring tasks — and `run` returns `Ok`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::transport::server::TcpIncoming;
use tracing::{info, warn};

use crate::chain::Chain;
use crate::metrics::{self, Metrics};
use crate::pb;
use crate::pb::reward_service_server::RewardServiceServer;
use crate::registry::Registry;
use crate::service::{http, RewardService, ServiceLimits};

/// Concurrent calls (HTTP/2 streams) per connection.
const MAX_STREAMS_PER_CONNECTION: u32 = 1024;

/// How long connections get to close after the calls on them were cancelled.
const CLOSE_AFTER_CANCEL: Duration = Duration::from_secs(2);

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The gRPC transport failed.
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The reflection service could not be built from the descriptor sets.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The HTTP listener (metrics and JSON gateway) failed.
    #[error("HTTP listener: {0}")]
    Http(std::io::Error),
}

/// How the server runs. Process settings (address, log level) are CLI flags; these are the
/// service's bounds, with the defaults `verdict serve` uses.
#[derive(Debug)]
pub struct ServeOptions {
    /// Rollouts scored at once, across all calls. Default: 256.
    pub max_in_flight: usize,
    /// Rollouts admitted beyond `max_in_flight`, waiting for a slot; past this, `Score` and
    /// `ScoreBatch` get `RESOURCE_EXHAUSTED`. Default: 1024.
    pub max_queued: usize,
    /// Rollouts in one `ScoreBatch`. Default: 1024.
    pub max_batch: usize,
    /// Rollouts in flight per `ScoreStream`. Default: 128.
    pub stream_window: usize,
    /// Largest request or response message, in bytes (larger requests get `OUT_OF_RANGE`).
    /// Default: 16 MiB.
    pub max_message_bytes: usize,
    /// Upper bound on any call's work, also when the client sets no deadline. Default: 10 min.
    pub max_deadline: Duration,
    /// Time calls in flight get to finish after shutdown begins. Default: 30 s.
    pub grace: Duration,
    /// Where the chain's configuration came from (reported by ListVerifiers).
    pub config_origin: String,
    /// The verifier kinds ListVerifiers reports (the registry the chain was built from).
    /// Default: [`Registry::builtin`].
    pub registry: Registry,
    /// The server's metrics (a fresh set by default; pass one in to read it from outside).
    pub metrics: Arc<Metrics>,
    /// Serve HTTP on this listener, if given: `GET /metrics` and the JSON gateway
    /// (`POST /v1/score`, `/v1/score_batch`, `/v1/openrlhf`).
    pub http_listener: Option<TcpListener>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            max_in_flight: 256,
            max_queued: 1024,
            max_batch: 1024,
            stream_window: 128,
            max_message_bytes: 16 << 20,
            max_deadline: Duration::from_secs(600),
            grace: Duration::from_secs(30),
            config_origin: "built-in default".into(),
            registry: Registry::builtin(),
            metrics: Arc::new(Metrics::new()),
            http_listener: None,
        }
    }
}

/// Serve the reward service on `listener` until `shutdown` completes, then drain (see the
/// module docs) and return.
pub async fn run(
    listener: TcpListener,
    chain: Arc<Chain>,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let addr = listener.local_addr().ok();
    if let Some(sandbox) = chain.sandbox() {
        opts.metrics.watch_sandbox(sandbox);
    }
    let service = RewardService::new(
        chain,
        opts.config_origin.clone(),
        &opts.registry,
        ServiceLimits {
            max_in_flight: opts.max_in_flight,
            max_queued: opts.max_queued,
            max_batch: opts.max_batch,
            stream_window: opts.stream_window,
            max_deadline: opts.max_deadline,
        },
        opts.metrics.clone(),
    );
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<RewardServiceServer<RewardService>>()
        .await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let reward = RewardServiceServer::new(service.clone())
        .max_decoding_message_size(opts.max_message_bytes)
        .max_encoding_message_size(opts.max_message_bytes);

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        // An error means the sender is gone, which also means stop.
        let _ = rx.wait_for(|stop| *stop).await;
    };

    let http_task = opts.http_listener.map(|l| {
        let http_addr = l.local_addr().ok();
        info!(?http_addr, "Serving HTTP: /metrics and the JSON gateway.");
        let app = metrics::router(opts.metrics.clone())
            .merge(http::router(service.clone(), opts.max_message_bytes));
        let shutdown = stopped(stop_rx.clone());
        tokio::spawn(async move { axum::serve(l, app).with_graceful_shutdown(shutdown).await })
    });

    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let server = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        // Calls per connection: with the message size limit, this bounds what one connection
        // can make the server hold before admission; clients queue beyond it.
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(reward)
        .serve_with_incoming_shutdown(incoming, stopped(stop_rx.clone()));
    tokio::pin!(server);
    info!(?addr, "Serving.");

    let grace = opts.grace;
    tokio::select! {
        result = &mut server => result?,
        () = shutdown => {
            info!(grace_s = grace.as_secs_f64(), "Shutting down: draining calls in flight.");
            health
                .set_not_serving::<RewardServiceServer<RewardService>>()
                .await;
            health
                .set_service_status("", tonic_health::ServingStatus::NotServing)
                .await;
            let _ = stop_tx.send(true);
            match tokio::time::timeout(grace, &mut server).await {
                Ok(result) => result?,
                Err(_) => {
                    warn!("Grace period over: cancelling the calls still in flight.");
                    // Calls answer UNAVAILABLE at once, their work is dropped, and the
                    // connections close; give them a moment to say so to their clients.
                    service.cancel_all();
                    if tokio::time::timeout(CLOSE_AFTER_CANCEL, &mut server).await.is_err() {
                        warn!("Connections still open after cancelling; leaving them.");
                    }
                }
            }
        }
    }
    let _ = stop_tx.send(true);
    if let Some(mut task) = http_task {
        match tokio::time::timeout(CLOSE_AFTER_CANCEL, &mut task).await {
            Ok(Ok(result)) => result.map_err(ServeError::Http)?,
            Ok(Err(e)) => warn!(%e, "HTTP listener task failed."),
            Err(_) => {
                warn!("HTTP listener still has open connections; closing it.");
                task.abort();
            }
        }
    }
    info!("Server stopped.");
    Ok(())
}

/// Completes on the first SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => info!("SIGTERM received."),
                    _ = tokio::signal::ctrl_c() => info!("SIGINT received."),
                }
            }
            Err(e) => {
                warn!(%e, "Cannot listen for SIGTERM; only SIGINT stops the server.");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
