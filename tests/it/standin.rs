//! A stand-in LLM: an OpenAI-compatible chat-completions server on a real socket, started by
//! the test, answering what the test scripts (good tests, wrong tests, prose, truncation,
//! garbage, slow answers, 500s, 429s) and counting the requests it got.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

/// One answer of the stand-in.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    /// A chat completion with this content and `finish_reason`.
    Answer(String, &'static str),
    /// The same, after a delay.
    Slow(Duration, String),
    /// An error status, with a `Retry-After` in seconds where given.
    Status(u16, Option<u64>),
    /// A 200 whose body is not a chat completion.
    Garbage(String),
}

type Responder = dyn Fn(usize, &str) -> Reply + Send + Sync;

struct Shared {
    requests: AtomicUsize,
    responder: Box<Responder>,
    last: Mutex<Option<(Value, Option<String>)>>,
}

/// The running stand-in; stops when dropped.
pub(crate) struct StandIn {
    addr: std::net::SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StandIn {
    /// Start on 127.0.0.1 (a free port) with `responder(request_index, user_message)`, on a
    /// runtime of its own so sync and async tests can use it alike.
    pub(crate) fn start(responder: impl Fn(usize, &str) -> Reply + Send + Sync + 'static) -> Self {
        let shared = Arc::new(Shared {
            requests: AtomicUsize::new(0),
            responder: Box::new(responder),
            last: Mutex::new(None),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = Arc::clone(&shared);
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = Router::new()
                    .route("/v1/chat/completions", post(chat))
                    .with_state(state);
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        StandIn {
            addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The base URL (`http://127.0.0.1:PORT/v1`).
    pub(crate) fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Requests received so far.
    pub(crate) fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// The last request's body and `Authorization` header.
    pub(crate) fn last(&self) -> Option<(Value, Option<String>)> {
        self.shared.last.lock().unwrap().clone()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn chat(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let index = s.requests.fetch_add(1, Ordering::SeqCst);
    let user = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_string();
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    *s.last.lock().unwrap() = Some((body.clone(), auth));
    let completion = |text: String, finish: &str| {
        json_response(
            StatusCode::OK,
            json!({
                "id": format!("chatcmpl-{index}"),
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": finish}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
            }),
        )
    };
    match (s.responder)(index, &user) {
        Reply::Answer(text, finish) => completion(text, finish),
        Reply::Slow(delay, text) => {
            tokio::time::sleep(delay).await;
            completion(text, "stop")
        }
        Reply::Status(code, retry_after) => {
            let mut r = json_response(
                StatusCode::from_u16(code).unwrap(),
                json!({"error": {"message": "stand-in failure", "code": code}}),
            );
            if let Some(secs) = retry_after {
                r.headers_mut()
                    .insert("retry-after", secs.to_string().parse().unwrap());
            }
            r
        }
        Reply::Garbage(text) => (StatusCode::OK, text).into_response(),
    }
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The canned answers of `fixtures/testgen/answers.json`: the first whose `when` occurs in the
/// prompt.
pub(crate) fn fixture_answers() -> impl Fn(usize, &str) -> Reply + Send + Sync + 'static {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/testgen/answers.json");
    let answers: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    move |_, user| {
        let found = answers
            .iter()
            .find(|a| user.contains(a["when"].as_str().unwrap()))
            .unwrap_or_else(|| panic!("no canned answer for prompt {user}"));
        let finish = if found["finish_reason"] == "length" {
            "length"
        } else {
            "stop"
        };
        Reply::Answer(found["answer"].as_str().unwrap().to_string(), finish)
    }
}
