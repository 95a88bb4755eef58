//! The deadline budget of a call: its `grpc-timeout` less a margin, capped by the server's
//! `max_deadline`, so `DEADLINE_EXCEEDED` reaches a client before its own timer fires. The HTTP
//! gateway's `X-Verdict-Timeout-Ms` header gets the same treatment ([`budget_for`]).

use std::time::Duration;

use tonic::Request;

/// How much earlier than the client's deadline the service gives up and answers: 5 ms plus 5 %
/// of the deadline, at most 1 s (so `DEADLINE_EXCEEDED` arrives before the client's own timer,
/// which tonic clients report as `CANCELLED`).
pub fn deadline_margin(timeout: Duration) -> Duration {
    (Duration::from_millis(5) + timeout / 20).min(Duration::from_secs(1))
}

/// The work budget of `request`: its `grpc-timeout` less [`deadline_margin`], capped by `max`
/// (which is also the budget of a call without a deadline).
pub fn budget<T>(request: &Request<T>, max: Duration) -> Duration {
    budget_for(
        request
            .metadata()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout),
        max,
    )
}

/// The work budget of a call whose client waits `timeout` (`None`: no deadline given): the
/// timeout less [`deadline_margin`], capped by `max`. gRPC's `grpc-timeout` and the HTTP
/// gateway's `X-Verdict-Timeout-Ms` both go through here.
pub fn budget_for(timeout: Option<Duration>, max: Duration) -> Duration {
    match timeout {
        Some(t) => t.saturating_sub(deadline_margin(t)).min(max),
        None => max,
    }
}

/// Parse a `grpc-timeout` value: up to 8 digits and a unit (`H`, `M`, `S`, `m`, `u`, `n`).
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse() {
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("3S"), Some(Duration::from_secs(3)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(
            parse_grpc_timeout("99999u"),
            Some(Duration::from_micros(99999))
        );
        assert_eq!(parse_grpc_timeout("5"), None);
        assert_eq!(parse_grpc_timeout("123456789m"), None);
        assert_eq!(parse_grpc_timeout("10x"), None);
    }

    #[test]
    fn the_deadline_margin_grows_with_the_deadline_and_is_capped() {
        assert_eq!(
            deadline_margin(Duration::from_millis(100)),
            Duration::from_millis(10)
        );
        assert_eq!(
            deadline_margin(Duration::from_secs(10)),
            Duration::from_millis(505)
        );
        assert_eq!(
            deadline_margin(Duration::from_secs(600)),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn a_request_without_a_deadline_gets_the_cap() {
        let max = Duration::from_secs(7);
        assert_eq!(budget(&Request::new(()), max), max);
        let mut r = Request::new(());
        r.metadata_mut()
            .insert("grpc-timeout", "100m".parse().unwrap());
        assert_eq!(budget(&r, max), Duration::from_millis(90));
    }
}
