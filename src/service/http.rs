//! The HTTP/JSON gateway: the reward service for clients that do not speak gRPC, with the same
//! admission, deadlines and metrics (it calls the same [`RewardService`] core).
//!
//! | endpoint | body | answer |
//! |---|---|---|
//! | `POST /v1/score` | one rollout, as a JSONL line | its score, as a JSONL output line |
//! | `POST /v1/score_batch` | `{"rollouts": [rollout, …]}` | `{"scores": [score, …]}`, in order |
//! | `POST /v1/openrlhf` | OpenRLHF's remote reward request: `{"query": […], "prompts": […], "labels": […]}` | `{"rewards": […], "scores": […], "extra_logs": {…}}` |
//!
//! The description is `docs/openapi.yaml`. Errors are JSON,
//! `{"error": {"code": …, "field": …, "message": …}}`, whatever the status: a malformed body is
//! `400` naming the field (`rollouts[2].tests[0].stdout`), a body over the size limit `413`, a
//! body declared as something other than JSON (`Content-Type`) `415`, a full server `429` (with
//! `Retry-After`), an expired deadline `504`, a server shutting down `503`. Inside a batch, a
//! rollout that does not decode gets an `invalid_input` score in its own slot and the rest is
//! scored, as in gRPC.
//!
//! **Bodies** are JSON: `Content-Type: application/json` (or another `application/*+json`
//! type); a body sent without a `Content-Type` is read as JSON too. `null` means absent as in
//! the JSONL format, also for OpenRLHF's `prompts` and `labels` (OpenRLHF sends `labels: None`
//! when no `--label_key` is set). A label is read as its JSON text ([`columns::label_fields`]),
//! so its numbers reach the tests exactly as written, as a rollout's do on `/v1/score_batch`.
//!
//! **Deadlines**: `X-Verdict-Timeout-Ms: N` plays the part of `grpc-timeout`: the server gives
//! up slightly before N ms ([`super::deadline_margin`]) and answers `504`; without it, the
//! server's `max_deadline` bounds the call.
//!
//! **Metrics**: calls are counted in the gRPC series with the path as `method`
//! (`verdict_grpc_requests_total{method="POST /v1/score",code="Ok"}`), with the status code
//! name the equivalent gRPC call would have had.

use std::time::Duration;

use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::record::CallRecord;
use super::{RewardService, ServiceError};
use crate::columns;
use crate::decode;
use crate::depth::{check_depth, MAX_ROLLOUT_DEPTH};
use crate::field_error::FieldError;
use crate::rollout::{readable_id, Rollout};
use crate::score::Score;

/// The header that carries a call's deadline, in milliseconds.
pub const TIMEOUT_HEADER: &str = "x-verdict-timeout-ms";

/// The gateway's routes on `service`; request bodies are limited to `max_body_bytes`.
pub fn router(service: RewardService, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/v1/score", post(score))
        .route("/v1/score_batch", post(score_batch))
        .route("/v1/openrlhf", post(openrlhf))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(service)
}

/// A failed call: its HTTP status and JSON body.
#[derive(Debug)]
struct HttpError {
    status: StatusCode,
    code: &'static str,
    field: Option<String>,
    message: String,
    grpc: tonic::Code,
}

impl HttpError {
    /// A failure that names no field.
    fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
        grpc: tonic::Code,
    ) -> Self {
        HttpError {
            status,
            code,
            field: None,
            message: message.into(),
            grpc,
        }
    }

    fn bad(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = message.into();
        HttpError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_argument",
            message: if field.is_empty() {
                message
            } else {
                format!("{field}: {message}")
            },
            field: Some(field).filter(|f| !f.is_empty()),
            grpc: tonic::Code::InvalidArgument,
        }
    }

    fn from_fields(e: FieldError) -> Self {
        HttpError::bad(e.field, e.reason)
    }
}

impl From<ServiceError> for HttpError {
    fn from(e: ServiceError) -> Self {
        let message = e.to_string();
        let (status, code, grpc) = match &e {
            ServiceError::InvalidArgument(FieldError { field, reason }) => {
                return HttpError::bad(field.clone(), reason.clone())
            }
            ServiceError::Overloaded { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "overloaded",
                tonic::Code::ResourceExhausted,
            ),
            ServiceError::DeadlineExceeded { .. } => (
                StatusCode::GATEWAY_TIMEOUT,
                "deadline_exceeded",
                tonic::Code::DeadlineExceeded,
            ),
            ServiceError::ShuttingDown => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                tonic::Code::Unavailable,
            ),
        };
        HttpError {
            status,
            code,
            field: None,
            message,
            grpc,
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    message: &'a str,
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                field: self.field.as_deref(),
                message: &self.message,
            },
        };
        let mut response = json_response(self.status, &body);
        if self.status == StatusCode::TOO_MANY_REQUESTS || self.status.is_server_error() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    let bytes = serde_json::to_vec(body).expect("scores and errors serialize");
    (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

/// Run one call of `method`: check the body and parse the deadline, run `call` on the body
/// within it, record the metrics.
async fn handle<T, F, Fut>(
    service: &RewardService,
    method: &'static str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    call: F,
) -> Response
where
    T: Serialize,
    F: FnOnce(Duration, Bytes) -> Fut,
    Fut: std::future::Future<Output = Result<T, HttpError>>,
{
    let record = CallRecord::new(service.metrics(), method);
    let checked = timeout(headers).and_then(|t| Ok((t, json_body(headers, body)?)));
    let result = match checked {
        Ok((t, body)) => call(service.budget_for(t), body).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(body) => {
            record.finish_with(tonic::Code::Ok);
            json_response(StatusCode::OK, &body)
        }
        Err(e) => {
            record.finish_with(e.grpc);
            e.into_response()
        }
    }
}

/// The request body, when it is declared as JSON (or not declared) and was read within the
/// size limit; otherwise the JSON error for it (`415`, `413`).
fn json_body(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Bytes, HttpError> {
    if let Some(value) = headers.get(header::CONTENT_TYPE) {
        let media = value.to_str().unwrap_or("");
        if !is_json_media_type(media) {
            return Err(HttpError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!(
                    "the body is declared as `{}`; send JSON with `Content-Type: application/json`",
                    media.chars().take(100).collect::<String>()
                ),
                tonic::Code::InvalidArgument,
            ));
        }
    }
    body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => HttpError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is over the server's size limit (`verdict serve \
             --max-message-bytes`); send fewer rollouts per call",
            tonic::Code::ResourceExhausted,
        ),
        status => HttpError {
            status,
            ..HttpError::bad(
                "",
                format!("the request body could not be read: {rejection}"),
            )
        },
    })
}

/// Whether a `Content-Type` value names JSON: `application/json` or `application/*+json`, any
/// parameters (`charset=utf-8`) aside, in any case.
fn is_json_media_type(value: &str) -> bool {
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|subtype| subtype.ends_with("+json"))
}

/// The deadline a caller set with [`TIMEOUT_HEADER`], if any.
fn timeout(headers: &HeaderMap) -> Result<Option<Duration>, HttpError> {
    let Some(value) = headers.get(TIMEOUT_HEADER) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        // Any positive whole number: one past u64 is a wait longer than the server's
        // `max_deadline`, which bounds it anyway.
        .map(|v| v.parse::<u64>().unwrap_or(u64::MAX))
        .filter(|ms| *ms > 0)
        .map(|ms| Some(Duration::from_millis(ms)))
        .ok_or_else(|| {
            HttpError::bad(
                format!("header {TIMEOUT_HEADER}"),
                "must be a positive whole number of milliseconds",
            )
        })
}

/// Nesting a batch body may have beyond a rollout's own limit: its wrapper, and rollouts nested
/// past their limit, which become `invalid_input` records of their own rather than a refused
/// batch (below serde_json's recursion limit of 128).
const BATCH_DEPTH_ROOM: usize = 24;

/// The body as JSON text: not empty, UTF-8, and JSON (checked before any field is blamed).
fn body_text(body: &[u8]) -> Result<&str, HttpError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(HttpError::bad("", "the request body is empty; send JSON"));
    }
    let text = std::str::from_utf8(body)
        .map_err(|e| HttpError::bad("", format!("the body is not JSON: {e}")))?;
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .map_err(|e| HttpError::bad("", format!("the body is not JSON: {e}")))?;
    Ok(text)
}

/// Parse `body`, a request that wraps rollouts `wrapping` levels deep, into `T` with the one
/// text decoder ([`decode::from_text`]), its nesting checked first without recursion; the
/// error names the field of the first problem.
fn parse_body<T: serde::de::DeserializeOwned>(
    body: &[u8],
    wrapping: usize,
) -> Result<T, HttpError> {
    check_depth(body, MAX_ROLLOUT_DEPTH + wrapping, "a request").map_err(HttpError::from_fields)?;
    decode::from_text(body_text(body)?).map_err(HttpError::from_fields)
}

/// A body that is one rollout, read as every path reads one ([`Rollout::from_json`]).
fn parse_rollout(body: &[u8]) -> Result<Rollout, HttpError> {
    check_depth(body, MAX_ROLLOUT_DEPTH, "a rollout").map_err(HttpError::from_fields)?;
    Rollout::from_json(body_text(body)?).map_err(HttpError::from_fields)
}

/// A rollout of a batch, or its `invalid_input` record (position is 1-based).
fn batch_rollout(raw: &RawValue, position: usize, field: &str) -> Result<Rollout, Box<Score>> {
    Rollout::from_json(raw.get()).map_err(|e| {
        let id = readable_id(raw.get());
        Box::new(Score::invalid(
            id.as_deref(),
            position,
            e.within(field).to_string(),
        ))
    })
}

async fn score(
    State(service): State<RewardService>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let svc = &service;
    handle(
        &service,
        "POST /v1/score",
        &headers,
        body,
        |budget, body| async move {
            let service = svc;
            let rollout = parse_rollout(&body)?;
            Ok(service.score_rollout(rollout, budget).await?)
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchRequest {
    /// Each rollout's text, decoded on its own so that one bad rollout is one bad record.
    rollouts: Vec<Box<RawValue>>,
}

#[derive(Serialize)]
struct BatchResponse {
    scores: Vec<Score>,
}

async fn score_batch(
    State(service): State<RewardService>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let svc = &service;
    handle(
        &service,
        "POST /v1/score_batch",
        &headers,
        body,
        |budget, body| async move {
            let service = svc;
            // Each rollout's own depth is checked as it is decoded (an `invalid_input` record
            // of its own); the body only has to stay within what serde_json reads.
            let request: BatchRequest = parse_body(&body, BATCH_DEPTH_ROOM)?;
            service.check_batch_size(request.rollouts.len(), "rollouts")?;
            let items = request
                .rollouts
                .into_iter()
                .enumerate()
                .map(|(i, raw)| batch_rollout(&raw, i + 1, &format!("rollouts[{i}]")))
                .collect();
            let scores = service.score_items(items, budget).await?;
            Ok(BatchResponse { scores })
        },
    )
    .await
}

/// OpenRLHF's remote reward request (`--remote_rm_url`): `query` holds prompt and response
/// decoded together, `prompts` the prompts, `labels` the `--label_key` column. `prompts` and
/// `labels` may be absent or `null` (OpenRLHF sends `labels: None` without a `--label_key`):
/// then no prompt is cut off the queries and no query has tests.
#[derive(Debug, Deserialize)]
struct OpenRlhfRequest {
    query: Vec<String>,
    #[serde(default)]
    prompts: Option<Vec<String>>,
    /// Each label's JSON text, never a `Value`: an integer beyond 64 bits stays exact.
    #[serde(default)]
    labels: Option<Vec<Box<RawValue>>>,
}

/// OpenRLHF reads `rewards` (and, in newer versions, `scores` and `extra_logs`).
#[derive(Serialize)]
struct OpenRlhfResponse {
    /// The reward per query; `null` where verdict could not judge (outcome `error`).
    rewards: Vec<Option<f64>>,
    /// The same values (OpenRLHF uses them for dynamic filtering).
    scores: Vec<Option<f64>>,
    /// Numeric per-query logs (OpenRLHF averages them into its metrics).
    extra_logs: ExtraLogs,
}

#[derive(Serialize)]
struct ExtraLogs {
    /// 1 where the rollout passed every check.
    verdict_passed: Vec<u8>,
    /// 1 where verdict could not judge it.
    verdict_error: Vec<u8>,
}

async fn openrlhf(
    State(service): State<RewardService>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let svc = &service;
    handle(
        &service,
        "POST /v1/openrlhf",
        &headers,
        body,
        |budget, body| async move {
            let service = svc;
            let request: OpenRlhfRequest = parse_body(&body, 2)?;
            let n = request.query.len();
            service.check_batch_size(n, "query")?;
            for (name, len) in [
                ("prompts", request.prompts.as_ref().map(Vec::len)),
                ("labels", request.labels.as_ref().map(Vec::len)),
            ] {
                if let Some(len) = len.filter(|len| *len != n) {
                    return Err(HttpError::bad(
                        name,
                        format!("has {len} entries for {n} queries"),
                    ));
                }
            }
            let items = request
                .query
                .iter()
                .enumerate()
                .map(|(i, query)| {
                    let prompt = request.prompts.as_ref().map_or("", |p| p[i].as_str());
                    let id = format!("query-{}", i + 1);
                    let fields = match &request.labels {
                        Some(labels) => columns::label_fields(&labels[i]),
                        None => Ok(columns::Fields::new()),
                    };
                    fields
                        .map_err(|e| e.within(&format!("labels[{i}]")))
                        .and_then(|fields| {
                            columns::rollout_from_raw_fields(
                                &id,
                                prompt,
                                columns::response_of(query, prompt),
                                &fields,
                            )
                            .map_err(|e| e.within(&format!("labels[{i}]")))
                        })
                        .map_err(|e| Box::new(Score::invalid(Some(&id), i + 1, e.to_string())))
                })
                .collect();
            let scores = service.score_items(items, budget).await?;
            let rewards: Vec<Option<f64>> = scores.iter().map(|s| s.reward).collect();
            Ok(OpenRlhfResponse {
                scores: rewards.clone(),
                rewards,
                extra_logs: ExtraLogs {
                    verdict_passed: scores
                        .iter()
                        .map(|s| u8::from(s.outcome == crate::score::Outcome::Passed))
                        .collect(),
                    verdict_error: scores
                        .iter()
                        .map(|s| u8::from(s.outcome.is_verdict_failure()))
                        .collect(),
                },
            })
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeout_header_is_checked() {
        let mut h = HeaderMap::new();
        assert_eq!(timeout(&h).unwrap(), None);
        h.insert(TIMEOUT_HEADER, HeaderValue::from_static("250"));
        assert_eq!(timeout(&h).unwrap(), Some(Duration::from_millis(250)));
        h.insert(
            TIMEOUT_HEADER,
            HeaderValue::from_static("17474347379240250376192"),
        );
        assert_eq!(timeout(&h).unwrap(), Some(Duration::from_millis(u64::MAX)));
        h.insert(TIMEOUT_HEADER, HeaderValue::from_static("soon"));
        let e = timeout(&h).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains(TIMEOUT_HEADER), "{}", e.message);
    }

    #[test]
    fn bodies_name_the_field_at_fault() {
        let e = parse_rollout(br#"{"id": "a", "completion": 5}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("completion"));
        let e = parse_rollout(
            br#"{"id": "a", "completion": "x", "tests": [{"kind": "stdio", "stdin": ""}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("tests[0].stdout"));
        assert_eq!(e.message, "tests[0].stdout: is required");
        let e = parse_rollout(br#"{"id": "a"}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("completion"));
        let e = parse_rollout(b"{not json").unwrap_err();
        assert!(
            e.message.starts_with("the body is not JSON"),
            "{}",
            e.message
        );
        let e = parse_rollout(b"  ").unwrap_err();
        assert!(e.message.contains("empty"));
        let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
        let e = parse_rollout(deep.as_bytes()).unwrap_err();
        assert!(e.message.contains("nested deeper"), "{}", e.message);
        let e = parse_body::<BatchRequest>(br#"{"rollout": []}"#, 2).unwrap_err();
        assert!(e.message.contains("rollout"), "{}", e.message);
    }

    #[test]
    fn bodies_must_be_declared_as_json_and_within_the_limit() {
        for json in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/vnd.api+json",
        ] {
            assert!(is_json_media_type(json), "{json}");
        }
        for other in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/jsonx",
            "",
        ] {
            assert!(!is_json_media_type(other), "{other}");
        }
        let mut h = HeaderMap::new();
        assert!(
            json_body(&h, Ok(Bytes::from_static(b"{}"))).is_ok(),
            "undeclared"
        );
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        let e = json_body(&h, Ok(Bytes::from_static(b"{}"))).unwrap_err();
        assert_eq!(e.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(e.code, "unsupported_media_type");
        assert!(e.message.contains("application/json"), "{}", e.message);
    }

    #[test]
    fn openrlhf_prompts_and_labels_may_be_null() {
        let r: OpenRlhfRequest =
            parse_body(br#"{"query": ["q"], "prompts": null, "labels": null}"#, 2).unwrap();
        assert!(r.prompts.is_none() && r.labels.is_none(), "{r:?}");
        let e = parse_body::<OpenRlhfRequest>(br#"{"query": null}"#, 2).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("query"));
    }

    #[test]
    fn a_bad_rollout_in_a_batch_is_its_own_record() {
        let raw = |text: &str| RawValue::from_string(text.to_string()).unwrap();
        let bad = batch_rollout(
            &raw(r#"{"id": "b", "completion": "x", "limits": {"time_ms": -1}}"#),
            3,
            "rollouts[2]",
        )
        .unwrap_err();
        assert_eq!(bad.id, "b");
        assert!(
            bad.error
                .as_deref()
                .unwrap()
                .starts_with("rollouts[2].limits.time_ms: "),
            "{:?}",
            bad.error
        );
        let unnamed = batch_rollout(&raw(r#"{"completion": "x"}"#), 4, "rollouts[3]").unwrap_err();
        assert_eq!(unnamed.id, "input-4");
        // A rollout nested past its limit is its own record; the batch still decodes.
        let deep = format!(
            r#"{{"rollouts": [{{"id": "ok", "completion": ""}}, {{"id": "deep", "completion": "", "x": {}1{}}}]}}"#,
            "[".repeat(110),
            "]".repeat(110)
        );
        let batch: BatchRequest = parse_body(deep.as_bytes(), BATCH_DEPTH_ROOM).unwrap();
        assert!(batch_rollout(&batch.rollouts[0], 1, "rollouts[0]").is_ok());
        let deep = batch_rollout(&batch.rollouts[1], 2, "rollouts[1]").unwrap_err();
        assert_eq!(deep.id, "deep");
        assert!(deep.error.unwrap().contains("the limit for a rollout"));
    }
}
