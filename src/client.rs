//! `verdict::client`: call one or many `verdict serve` replicas the way a trainer does.
//!
//! - **Load balancing**: each call goes to the less busy of the next two endpoints in round-robin
//!   order (power of two choices over in-flight calls); endpoints that just failed are skipped
//!   for a short cool-down while others are healthy.
//! - **Retries**: `UNAVAILABLE` (replica down or restarting), `RESOURCE_EXHAUSTED` (replica full)
//!   and `ABORTED` are retried with exponential backoff and full jitter, preferably on another
//!   endpoint. Everything else — invalid arguments, deadlines — is returned at once.
//! - **Deadlines**: [`ClientOptions::timeout`] bounds a whole call, retries included; every
//!   attempt carries the remaining time as its `grpc-timeout`, so the server stops work the
//!   client no longer waits for.
//!
//! `verdict score --remote` scores a JSONL file through the fleet with this client under the
//! same loop as local scoring ([`crate::batch::score_lines`] with [`crate::batch::Scorer::remote`]).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rand::Rng;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tracing::debug;

use crate::field_error::FieldError;
use crate::pb;
use crate::pb::reward_service_client::RewardServiceClient;
use crate::rollout::Rollout;
use crate::score::Score;

/// Why a call through the client failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No endpoint was given.
    #[error("no endpoints given")]
    NoEndpoints,
    /// An endpoint is not a valid URI.
    #[error("invalid endpoint `{url}`: {source}")]
    InvalidEndpoint {
        /// The endpoint as given.
        url: String,
        /// Why it is invalid.
        source: tonic::transport::Error,
    },
    /// The server answered with an error status (after any retries).
    #[error("{endpoint}: {code:?}: {message}", code = status.code(), message = status.message())]
    Status {
        /// The endpoint that answered last.
        endpoint: String,
        /// The status.
        status: Box<Status>,
    },
    /// The call's deadline passed (retries included).
    #[error("deadline of {0:?} exceeded")]
    DeadlineExceeded(Duration),
    /// The server's answer does not decode.
    #[error("bad response: {0}")]
    BadResponse(#[from] FieldError),
    /// A batch answer has the wrong number of scores.
    #[error("bad response: {got} scores for {sent} rollouts")]
    WrongCount {
        /// Rollouts sent.
        sent: usize,
        /// Scores received.
        got: usize,
    },
}

impl ClientError {
    /// The gRPC status code, where the server answered.
    pub fn code(&self) -> Option<Code> {
        match self {
            ClientError::Status { status, .. } => Some(status.code()),
            ClientError::DeadlineExceeded(_) => Some(Code::DeadlineExceeded),
            _ => None,
        }
    }
}

/// How the client calls.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Deadline of a whole call, retries included. Default: 5 min.
    pub timeout: Duration,
    /// Attempts after the first for retryable failures. Default: 5.
    pub retries: u32,
    /// First backoff; doubled per retry, with full jitter, capped at 5 s. Default: 50 ms.
    pub backoff: Duration,
    /// Connection timeout per endpoint. Default: 5 s.
    pub connect_timeout: Duration,
    /// Largest message sent or received, in bytes. Default: 16 MiB.
    pub max_message_bytes: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: Duration::from_secs(300),
            retries: 5,
            backoff: Duration::from_millis(50),
            connect_timeout: Duration::from_secs(5),
            max_message_bytes: 16 << 20,
        }
    }
}

/// `http://` before a bare `host:port`.
fn with_scheme(endpoint: &str) -> String {
    let endpoint = endpoint.trim();
    if endpoint.contains("://") {
        endpoint.to_string()
    } else {
        format!("http://{endpoint}")
    }
}

/// How long an endpoint that failed is avoided while others are healthy.
const COOL_DOWN: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

struct Replica {
    url: String,
    client: RewardServiceClient<Channel>,
    in_flight: AtomicUsize,
    /// Milliseconds since the client's epoch until which this endpoint is avoided.
    avoid_until_ms: AtomicU64,
    calls: AtomicU64,
}

/// A client for one or many replicas of the reward service. Cheap to share (`Arc`) across tasks;
/// calls run concurrently.
pub struct Client {
    replicas: Vec<Replica>,
    next: AtomicUsize,
    epoch: Instant,
    opts: ClientOptions,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoints", &self.endpoints())
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `endpoints` (`http://host:port`; a bare `host:port` gets `http://`).
    /// Connections are made lazily, so a replica that is down now is used once it is up.
    /// Must be called within a Tokio runtime.
    pub fn new<S: AsRef<str>>(endpoints: &[S], opts: ClientOptions) -> Result<Self, ClientError> {
        if endpoints.is_empty() {
            return Err(ClientError::NoEndpoints);
        }
        let replicas = endpoints
            .iter()
            .map(|e| {
                let given = e.as_ref().trim();
                let url = with_scheme(given);
                let endpoint = Endpoint::from_shared(url.clone())
                    .map_err(|source| ClientError::InvalidEndpoint {
                        url: given.to_string(),
                        source,
                    })?
                    .connect_timeout(opts.connect_timeout)
                    .tcp_nodelay(true)
                    .http2_keep_alive_interval(Duration::from_secs(30))
                    .keep_alive_while_idle(true);
                let client = RewardServiceClient::new(endpoint.connect_lazy())
                    .max_decoding_message_size(opts.max_message_bytes)
                    .max_encoding_message_size(opts.max_message_bytes);
                Ok(Replica {
                    url,
                    client,
                    in_flight: AtomicUsize::new(0),
                    avoid_until_ms: AtomicU64::new(0),
                    calls: AtomicU64::new(0),
                })
            })
            .collect::<Result<Vec<_>, ClientError>>()?;
        Ok(Client {
            replicas,
            next: AtomicUsize::new(0),
            epoch: Instant::now(),
            opts,
        })
    }

    /// Like [`Client::new`], but a host name that resolves to several addresses (a Kubernetes
    /// headless Service, a DNS round-robin name) becomes one endpoint per address. Names are
    /// resolved once, now; one that does not resolve is kept as given (it may come up later).
    pub async fn resolve<S: AsRef<str>>(
        endpoints: &[S],
        opts: ClientOptions,
    ) -> Result<Self, ClientError> {
        let mut expanded = Vec::new();
        for e in endpoints {
            let url = with_scheme(e.as_ref());
            let parsed = url.parse::<tonic::codegen::http::Uri>().ok();
            let target = parsed.as_ref().and_then(|uri| {
                let port = uri
                    .port_u16()
                    .unwrap_or(if uri.scheme_str() == Some("https") {
                        443
                    } else {
                        80
                    });
                Some((uri.scheme_str()?.to_string(), uri.host()?.to_string(), port))
            });
            let Some((scheme, host, port)) = target else {
                expanded.push(url);
                continue;
            };
            let mut addrs: Vec<std::net::SocketAddr> =
                match tokio::net::lookup_host((host.as_str(), port)).await {
                    Ok(addrs) => addrs.collect(),
                    Err(e) => {
                        debug!(%host, %e, "Endpoint does not resolve now; kept as given.");
                        Vec::new()
                    }
                };
            addrs.sort();
            addrs.dedup();
            if addrs.len() > 1 {
                expanded.extend(addrs.iter().map(|a| format!("{scheme}://{a}")));
            } else {
                expanded.push(url);
            }
        }
        Self::new(&expanded, opts)
    }

    /// The endpoints, as URLs.
    pub fn endpoints(&self) -> Vec<&str> {
        self.replicas.iter().map(|r| r.url.as_str()).collect()
    }

    /// Attempts sent to each endpoint so far (to see the load spread).
    pub fn calls_per_endpoint(&self) -> Vec<(String, u64)> {
        self.replicas
            .iter()
            .map(|r| (r.url.clone(), r.calls.load(Ordering::Relaxed)))
            .collect()
    }

    /// The options.
    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The replica for the next attempt: the less busy of the next two healthy ones.
    fn pick(&self) -> &Replica {
        let n = self.replicas.len();
        let now = self.now_ms();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let healthy: Vec<&Replica> = (0..n)
            .map(|i| &self.replicas[(start + i) % n])
            .filter(|r| r.avoid_until_ms.load(Ordering::Relaxed) <= now)
            .take(2)
            .collect();
        match healthy.as_slice() {
            [] => &self.replicas[start % n],
            [one] => one,
            [a, b, ..] => {
                if b.in_flight.load(Ordering::Relaxed) < a.in_flight.load(Ordering::Relaxed) {
                    b
                } else {
                    a
                }
            }
        }
    }

    /// Run `call` with load balancing, retries and the call deadline.
    async fn call<T, F, Fut>(&self, mut call: F) -> Result<T, ClientError>
    where
        F: FnMut(RewardServiceClient<Channel>, Duration) -> Fut,
        Fut: std::future::Future<Output = Result<T, Status>>,
    {
        let deadline = Instant::now() + self.opts.timeout;
        let mut attempt = 0u32;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(ClientError::DeadlineExceeded(self.opts.timeout));
            }
            let replica = self.pick();
            replica.calls.fetch_add(1, Ordering::Relaxed);
            replica.in_flight.fetch_add(1, Ordering::Relaxed);
            let result =
                tokio::time::timeout(remaining, call(replica.client.clone(), remaining)).await;
            replica.in_flight.fetch_sub(1, Ordering::Relaxed);
            let status = match result {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(status)) => status,
                Err(_) => return Err(ClientError::DeadlineExceeded(self.opts.timeout)),
            };
            let retryable = matches!(
                status.code(),
                Code::Unavailable | Code::ResourceExhausted | Code::Aborted
            );
            // tonic reports its own expired `grpc-timeout` as CANCELLED.
            if status.code() == Code::DeadlineExceeded
                || (status.code() == Code::Cancelled && Instant::now() >= deadline)
            {
                return Err(ClientError::DeadlineExceeded(self.opts.timeout));
            }
            if !retryable || attempt >= self.opts.retries {
                return Err(ClientError::Status {
                    endpoint: replica.url.clone(),
                    status: Box::new(status),
                });
            }
            replica.avoid_until_ms.store(
                self.now_ms() + COOL_DOWN.as_millis() as u64,
                Ordering::Relaxed,
            );
            let cap = self
                .opts
                .backoff
                .saturating_mul(1 << attempt.min(16))
                .min(MAX_BACKOFF);
            let sleep = cap.mul_f64(rand::rng().random::<f64>());
            debug!(endpoint = %replica.url, code = ?status.code(), attempt, ?sleep, "Retrying.");
            attempt += 1;
            tokio::time::sleep(sleep.min(deadline.saturating_duration_since(Instant::now()))).await;
        }
    }

    /// Score one rollout.
    pub async fn score(&self, rollout: &Rollout) -> Result<Score, ClientError> {
        let wire = pb::Rollout::from(rollout);
        let response = self
            .call(|mut client, remaining| {
                let mut request = tonic::Request::new(pb::ScoreRequest {
                    rollout: Some(wire.clone()),
                });
                request.set_timeout(remaining);
                async move { client.score(request).await }
            })
            .await?;
        let score = response.into_inner().score.unwrap_or_default();
        Ok(Score::try_from(score)?)
    }

    /// Score a group or mini-batch; the scores come back in the order of `rollouts`.
    pub async fn score_batch(&self, rollouts: &[Rollout]) -> Result<Vec<Score>, ClientError> {
        let wire: Vec<pb::Rollout> = rollouts.iter().map(pb::Rollout::from).collect();
        let response = self
            .call(|mut client, remaining| {
                let mut request = tonic::Request::new(pb::ScoreBatchRequest {
                    rollouts: wire.clone(),
                });
                request.set_timeout(remaining);
                async move { client.score_batch(request).await }
            })
            .await?;
        let scores = response.into_inner().scores;
        if scores.len() != rollouts.len() {
            return Err(ClientError::WrongCount {
                sent: rollouts.len(),
                got: scores.len(),
            });
        }
        scores
            .into_iter()
            .map(|s| Score::try_from(s).map_err(ClientError::from))
            .collect()
    }

    /// Pipelined scoring over one `ScoreStream` call on one replica (the least busy of the next
    /// two): scores come back as they are ready, not in order — match them by `id`. The whole
    /// stream is bounded by [`ClientOptions::timeout`]. Not retried (a broken stream ends with
    /// its error; rescore the ids that did not come back).
    pub async fn score_stream<S>(
        &self,
        rollouts: S,
    ) -> Result<impl futures::Stream<Item = Result<Score, ClientError>> + Send + 'static, ClientError>
    where
        S: futures::Stream<Item = Rollout> + Send + 'static,
    {
        let replica = self.pick();
        replica.calls.fetch_add(1, Ordering::Relaxed);
        let endpoint = replica.url.clone();
        let mut client = replica.client.clone();
        let mut request = tonic::Request::new(rollouts.map(|r| pb::ScoreRequest {
            rollout: Some(pb::Rollout::from(&r)),
        }));
        request.set_timeout(self.opts.timeout);
        let status_error = move |status: Status| ClientError::Status {
            endpoint: endpoint.clone(),
            status: Box::new(status),
        };
        let responses = client
            .score_stream(request)
            .await
            .map_err(&status_error)?
            .into_inner();
        Ok(responses.map(move |item| {
            let response = item.map_err(&status_error)?;
            Ok(Score::try_from(response.score.unwrap_or_default())?)
        }))
    }

    /// The verifier kinds and the effective chain of one replica.
    pub async fn list_verifiers(&self) -> Result<pb::ListVerifiersResponse, ClientError> {
        self.call(|mut client, remaining| {
            let mut request = tonic::Request::new(pb::ListVerifiersRequest {});
            request.set_timeout(remaining);
            async move { client.list_verifiers(request).await }
        })
        .await
        .map(tonic::Response::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn names_resolve_to_one_endpoint_per_address() {
        let client = Client::resolve(
            &["localhost:50051", "127.0.0.1:7", "http://[::1]:9"],
            ClientOptions::default(),
        )
        .await
        .unwrap();
        let endpoints = client.endpoints();
        assert!(
            endpoints.contains(&"http://127.0.0.1:50051")
                || endpoints.contains(&"http://localhost:50051"),
            "{endpoints:?}"
        );
        assert!(endpoints.contains(&"http://127.0.0.1:7"));
        assert!(endpoints.contains(&"http://[::1]:9"));
    }

    #[test]
    fn no_endpoints_is_an_error() {
        let none: [&str; 0] = [];
        assert!(matches!(
            Client::new(&none, ClientOptions::default()),
            Err(ClientError::NoEndpoints)
        ));
        assert!(matches!(
            Client::new(&["http://bad host:1"], ClientOptions::default()),
            Err(ClientError::InvalidEndpoint { .. })
        ));
    }
}
