//! A client for the OpenAI-compatible chat-completions API (`POST {base_url}/chat/completions`),
//! which vLLM, SGLang, llama.cpp's server, Ollama and hosted providers all speak.
//!
//! One [`ChatClient::complete`] call has one budget (`testgen.timeout_secs`) for everything:
//! attempts, backoffs and waits for a request slot. It retries on 429, 5xx, timeouts and
//! connection errors with exponential backoff (a `Retry-After` in seconds overrides the
//! backoff), at most `max_retries` times, and never past the budget. A circuit breaker fails
//! calls at once after `breaker_failures` failed calls in a row, for `breaker_cooldown_secs`;
//! then one call is let through to probe. At most `max_concurrent` requests are in flight.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::Semaphore;

use super::config::{Endpoint, TestgenConfig};

/// Why a completion could not be had. Every variant is verdict's failure, never the rollout's.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LlmError {
    /// The budget ran out (after `attempts` attempts).
    #[error(
        "no answer from the LLM endpoint within {budget:?} ({attempts} attempts; last: {last})"
    )]
    Timeout {
        /// The budget.
        budget: Duration,
        /// Attempts made.
        attempts: u32,
        /// What the last attempt met.
        last: String,
    },
    /// Every attempt failed and no retry is left.
    #[error("the LLM endpoint failed {attempts} times; last: {last}")]
    Exhausted {
        /// Attempts made.
        attempts: u32,
        /// What the last attempt met.
        last: String,
    },
    /// An answer that will not improve with a retry (4xx other than 429, an unreadable body).
    #[error("the LLM endpoint refused the request: {0}")]
    Refused(String),
    /// The circuit is open: recent calls all failed.
    #[error("the LLM endpoint is failing; not trying again for {retry_in:?} (circuit open)")]
    CircuitOpen {
        /// Until the next probe.
        retry_in: Duration,
    },
}

/// One chat answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// The message content.
    pub text: String,
    /// `stop`, `length` (cut off at `max_tokens`), …
    pub finish_reason: Option<String>,
    /// Attempts it took.
    pub attempts: u32,
}

#[derive(Deserialize)]
struct Response {
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: Option<String>,
}

/// Bodies read from the endpoint are cut at this size.
const MAX_BODY_BYTES: usize = 4 << 20;

/// The longest backoff between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The client. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct ChatClient {
    http: reqwest::Client,
    url: String,
    endpoint: Endpoint,
    temperature: f64,
    seed: u64,
    max_tokens: u32,
    budget: Duration,
    max_retries: u32,
    backoff: Duration,
    slots: Semaphore,
    breaker: Breaker,
}

impl ChatClient {
    /// A client for `endpoint` with the settings of `config`.
    pub fn new(endpoint: Endpoint, config: &TestgenConfig) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("verdict/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("building the HTTP client: {e}"))?;
        Ok(ChatClient {
            http,
            url: format!("{}/chat/completions", endpoint.base_url),
            endpoint,
            temperature: config.temperature,
            seed: config.seed,
            max_tokens: config.max_tokens,
            budget: config.timeout(),
            max_retries: config.max_retries,
            backoff: Duration::from_millis(config.backoff_ms),
            slots: Semaphore::new(config.max_concurrent.max(1)),
            breaker: Breaker::new(
                config.breaker_failures,
                Duration::from_secs_f64(config.breaker_cooldown_secs),
            ),
        })
    }

    /// The model asked.
    pub fn model(&self) -> &str {
        &self.endpoint.model
    }

    /// The URL requests go to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Ask for one completion of `system` + `user`, within the budget.
    pub async fn complete(&self, system: &str, user: &str) -> Result<Completion, LlmError> {
        self.breaker.admit()?;
        let result = self.attempts(system, user).await;
        self.breaker.record(result.is_ok());
        result
    }

    async fn attempts(&self, system: &str, user: &str) -> Result<Completion, LlmError> {
        let started = Instant::now();
        let deadline = started + self.budget;
        let body = json!({
            "model": self.endpoint.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
            "temperature": self.temperature,
            "seed": self.seed,
            "max_tokens": self.max_tokens,
            "n": 1,
            "stream": false,
        });
        let mut attempts = 0;
        let mut last = String::from("no attempt made");
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.timeout(attempts, last));
            }
            let slot = match tokio::time::timeout(left, self.slots.acquire()).await {
                Ok(Ok(slot)) => slot,
                Ok(Err(_)) => return Err(LlmError::Refused("the client is shut down".into())),
                Err(_) => return Err(self.timeout(attempts, "waiting for a request slot".into())),
            };
            attempts += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            let sent = Instant::now();
            let outcome = tokio::time::timeout(left, self.attempt(&body)).await;
            drop(slot);
            crate::metrics::record_testgen_request(
                match &outcome {
                    Ok(Ok(_)) => "ok",
                    Ok(Err(Attempt::Retry { .. })) => "retryable",
                    Ok(Err(Attempt::Fatal(_))) => "refused",
                    Err(_) => "timeout",
                },
                sent.elapsed(),
            );
            let retry_after = match outcome {
                Ok(Ok(mut completion)) => {
                    completion.attempts = attempts;
                    return Ok(completion);
                }
                Ok(Err(Attempt::Fatal(why))) => return Err(LlmError::Refused(why)),
                Ok(Err(Attempt::Retry { why, retry_after })) => {
                    last = why;
                    retry_after
                }
                Err(_) => return Err(self.timeout(attempts, "the request timed out".into())),
            };
            if attempts > self.max_retries {
                return Err(LlmError::Exhausted { attempts, last });
            }
            let backoff = retry_after
                .unwrap_or_else(|| self.backoff.saturating_mul(1 << (attempts - 1).min(16)))
                .min(MAX_BACKOFF);
            if Instant::now() + backoff >= deadline {
                return Err(self.timeout(attempts, last));
            }
            tracing::debug!(attempts, ?backoff, reason = %last, "Retrying the LLM request.");
            tokio::time::sleep(backoff).await;
        }
    }

    fn timeout(&self, attempts: u32, last: String) -> LlmError {
        LlmError::Timeout {
            budget: self.budget,
            attempts,
            last,
        }
    }

    async fn attempt(&self, body: &serde_json::Value) -> Result<Completion, Attempt> {
        let mut request = self.http.post(&self.url).json(body);
        if let Some(key) = &self.endpoint.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(|e| Attempt::Retry {
            why: format!("{}: {}", self.url, error_chain(&e)),
            retry_after: None,
        })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64);
        let bytes = read_capped(response).await.map_err(|e| Attempt::Retry {
            why: format!("reading the answer: {e}"),
            retry_after: None,
        })?;
        if status.as_u16() == 429 || status.is_server_error() {
            return Err(Attempt::Retry {
                why: format!("HTTP {status}: {}", snippet(&bytes)),
                retry_after,
            });
        }
        if !status.is_success() {
            return Err(Attempt::Fatal(format!(
                "HTTP {status}: {}",
                snippet(&bytes)
            )));
        }
        let parsed: Response = serde_json::from_slice(&bytes).map_err(|e| {
            Attempt::Fatal(format!(
                "not a chat-completions answer ({e}): {}",
                snippet(&bytes)
            ))
        })?;
        let choice = parsed
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| Attempt::Fatal("the answer has no choices".into()))?;
        Ok(Completion {
            text: choice.message.content.unwrap_or_default(),
            finish_reason: choice.finish_reason,
            attempts: 0,
        })
    }
}

enum Attempt {
    Retry {
        why: String,
        retry_after: Option<Duration>,
    },
    Fatal(String),
}

async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_BODY_BYTES.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room <= chunk.len() {
            break;
        }
    }
    Ok(out)
}

fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]);
    text.replace('\n', " ")
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

/// Consecutive failures open the circuit for a cooldown; then one call probes.
#[derive(Debug)]
struct Breaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<BreakerState>,
}

#[derive(Debug, Default)]
struct BreakerState {
    failures: u32,
    open_until: Option<Instant>,
}

impl Breaker {
    fn new(threshold: u32, cooldown: Duration) -> Self {
        Breaker {
            threshold,
            cooldown,
            state: Mutex::default(),
        }
    }

    fn admit(&self) -> Result<(), LlmError> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(until) = s.open_until {
            let now = Instant::now();
            if now < until {
                return Err(LlmError::CircuitOpen {
                    retry_in: until - now,
                });
            }
            // Half open: this call probes; others wait for its result a cooldown more.
            s.open_until = Some(now + self.cooldown);
        }
        Ok(())
    }

    fn record(&self, ok: bool) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if ok {
            *s = BreakerState::default();
            return;
        }
        s.failures += 1;
        if self.threshold > 0 && s.failures >= self.threshold {
            s.open_until = Some(Instant::now() + self.cooldown);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breaker_opens_after_failures_in_a_row_and_a_success_closes_it() {
        let b = Breaker::new(2, Duration::from_millis(50));
        b.admit().unwrap();
        b.record(false);
        b.admit().unwrap();
        b.record(false);
        assert!(matches!(b.admit(), Err(LlmError::CircuitOpen { .. })));
        std::thread::sleep(Duration::from_millis(60));
        b.admit().unwrap();
        assert!(
            matches!(b.admit(), Err(LlmError::CircuitOpen { .. })),
            "one probe at a time"
        );
        b.record(true);
        b.admit().unwrap();
    }
}
