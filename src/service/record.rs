//! The one wrapper that records every RPC's metrics: status code and latency per method, and
//! `cancelled` when the call's future is dropped before it answered.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use tonic::Status;

use crate::metrics::Metrics;

/// Records a call's status and latency when it ends — also when its future is dropped
/// (client cancellation, transport timeout), which counts as `Cancelled`.
pub(crate) struct CallRecord {
    metrics: Arc<Metrics>,
    method: &'static str,
    started: Instant,
    code: Option<tonic::Code>,
}

impl CallRecord {
    /// Start recording a call of `method`.
    pub(crate) fn new(metrics: &Arc<Metrics>, method: &'static str) -> Self {
        CallRecord {
            metrics: metrics.clone(),
            method,
            started: Instant::now(),
            code: None,
        }
    }

    /// The call ended with `code` (the HTTP gateway's calls, by their gRPC equivalent).
    pub(crate) fn finish_with(mut self, code: tonic::Code) {
        self.code = Some(code);
    }

    /// The call ended with `result`.
    pub(crate) fn finish<T>(mut self, result: &Result<T, Status>) {
        self.code = Some(match result {
            Ok(_) => tonic::Code::Ok,
            Err(s) => s.code(),
        });
    }
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        let code = match self.code {
            Some(code) => code,
            None => {
                self.metrics
                    .rejected
                    .with_label_values(&["cancelled"])
                    .inc();
                tonic::Code::Cancelled
            }
        };
        self.metrics
            .requests
            .with_label_values(&[self.method, &format!("{code:?}")])
            .inc();
        self.metrics
            .request_seconds
            .with_label_values(&[self.method])
            .observe(self.started.elapsed().as_secs_f64());
    }
}

/// Run the handler `call` of `method`, recording its metrics (see [`CallRecord`]).
pub(crate) async fn observed<T>(
    metrics: &Arc<Metrics>,
    method: &'static str,
    call: impl Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    let record = CallRecord::new(metrics, method);
    let result = call.await;
    record.finish(&result);
    result
}
