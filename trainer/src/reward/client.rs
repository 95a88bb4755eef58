//! Rewards from verdict over gRPC: each group goes out as one `ScoreBatch` the moment it is
//! generated (a tokio task, so scoring overlaps the generation of the next group), and is
//! collected before the update with a deadline counted from when it was sent. A group that
//! misses its deadline, or whose call fails, is skipped and logged — never waited on forever.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use verdict::client::{Client, ClientError, ClientOptions};
use verdict::{Outcome, Rollout, Score};

/// Why the reward client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RewardError {
    /// The async runtime could not be built.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[from] std::io::Error),
    /// An endpoint is invalid (or none was given).
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// A group sent for scoring.
#[derive(Debug)]
pub struct Pending {
    handle: tokio::task::JoinHandle<Result<Vec<Score>, ClientError>>,
    sent: Instant,
}

/// What came back for a group.
#[derive(Debug)]
pub enum GroupOutcome {
    /// One score per rollout, in order.
    Scored {
        /// The scores.
        scores: Vec<Score>,
        /// From sending to the answer.
        latency: Duration,
    },
    /// No usable answer within the deadline: the group is left out of the step.
    Skipped {
        /// Why (deadline, a failed call, a task that panicked).
        reason: String,
    },
}

/// The reward client: a tokio runtime and a load-balancing [`Client`].
#[derive(Debug)]
pub struct Rewards {
    runtime: tokio::runtime::Runtime,
    client: Arc<Client>,
    deadline: Duration,
}

impl Rewards {
    /// A client for `endpoints` (load-balanced by `verdict::client`), each group's rewards due
    /// within `deadline` of being sent.
    pub fn connect(endpoints: &[String], deadline: Duration) -> Result<Self, RewardError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .thread_name("rewards")
            .build()?;
        let opts = ClientOptions {
            timeout: deadline,
            ..ClientOptions::default()
        };
        let client = runtime.block_on(Client::resolve(endpoints, opts))?;
        Ok(Self {
            runtime,
            client: Arc::new(client),
            deadline,
        })
    }

    /// The endpoints in use.
    pub fn endpoints(&self) -> Vec<String> {
        self.client
            .endpoints()
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    /// Calls made to each endpoint so far.
    pub fn calls_per_endpoint(&self) -> Vec<(String, u64)> {
        self.client.calls_per_endpoint()
    }

    /// Set `flag` on the first ctrl-c (the loop then stops after the current step, writes a
    /// checkpoint and stops the local server); a second ctrl-c exits at once.
    pub fn stop_on_ctrl_c(&self, flag: Arc<AtomicBool>) {
        self.runtime.spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::warn!("Interrupted: stopping after this step (ctrl-c again to quit now).");
                flag.store(true, Ordering::SeqCst);
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
    }

    /// Send one group now; its answer is collected by [`Rewards::wait`].
    pub fn send(&self, rollouts: Vec<Rollout>) -> Pending {
        let client = Arc::clone(&self.client);
        Pending {
            handle: self
                .runtime
                .spawn(async move { client.score_batch(&rollouts).await }),
            sent: Instant::now(),
        }
    }

    /// The group's scores, or why it is skipped. Returns by the group's deadline at the latest.
    pub fn wait(&self, pending: Pending) -> GroupOutcome {
        let Pending { mut handle, sent } = pending;
        let remaining = self.deadline.saturating_sub(sent.elapsed());
        let result = self
            .runtime
            .block_on(async { tokio::time::timeout(remaining, &mut handle).await });
        match result {
            Ok(Ok(Ok(scores))) => GroupOutcome::Scored {
                scores,
                latency: sent.elapsed(),
            },
            Ok(Ok(Err(ClientError::DeadlineExceeded(_)))) | Err(_) => {
                handle.abort();
                GroupOutcome::Skipped {
                    reason: format!("no reward within the {:?} deadline", self.deadline),
                }
            }
            Ok(Ok(Err(err))) => GroupOutcome::Skipped {
                reason: format!("scoring failed: {err}"),
            },
            Ok(Err(join)) => GroupOutcome::Skipped {
                reason: format!("scoring task failed: {join}"),
            },
        }
    }

    /// Score `rollouts` in batches of `chunk`, all sent at once; `None` for a rollout whose batch
    /// was skipped (the reason is logged).
    pub fn score_all(&self, rollouts: Vec<Rollout>, chunk: usize) -> Vec<Option<Score>> {
        let sizes: Vec<usize> = rollouts.chunks(chunk.max(1)).map(<[_]>::len).collect();
        let pending: Vec<Pending> = rollouts
            .chunks(chunk.max(1))
            .map(|c| self.send(c.to_vec()))
            .collect();
        let mut out = Vec::new();
        for (p, size) in pending.into_iter().zip(sizes) {
            match self.wait(p) {
                GroupOutcome::Scored { scores, .. } => out.extend(scores.into_iter().map(Some)),
                GroupOutcome::Skipped { reason } => {
                    tracing::warn!(%reason, rollouts = size, "Evaluation batch not scored.");
                    out.extend(std::iter::repeat_n(None, size));
                }
            }
        }
        out
    }
}

/// A score read the way the trainer uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// The reward; `None` for verdict's `error` outcome (masked, never 0).
    pub reward: Option<f64>,
    /// Every test passed (outcome `passed`).
    pub passed: bool,
    /// The code was found and parses as Python (passed the parse gate).
    pub parsed: bool,
    /// The `format` verifier's score, where it ran.
    pub format: Option<f64>,
    /// Whether the `format` verifier found a well-formed answer (one `<think>…</think>` at the
    /// start, then a non-empty answer: its `structure` 1), where it ran.
    pub well_formed: Option<bool>,
    /// The `format` verifier's language consistency of the reasoning, where it ran and the
    /// completion has reasoning (a `<think>` tag).
    pub consistency: Option<f64>,
    /// The problem family, from the rollout id (`family-k#…`).
    pub family: String,
    /// Each verifier that ran (not skipped): name → score.
    pub verifiers: Vec<(String, f64)>,
}

impl Reading {
    /// Read `score`.
    pub fn of(score: &Score) -> Self {
        let reward = match score.outcome {
            Outcome::Error => None,
            _ => score.reward,
        };
        let verifiers: Vec<(String, f64)> = score
            .verifiers
            .iter()
            .filter(|v| !v.skipped)
            .map(|v| (v.name.clone(), v.score))
            .collect();
        let format_details = score
            .verifiers
            .iter()
            .find(|v| !v.skipped && v.name == "format")
            .map(|v| &v.details);
        let well_formed = format_details
            .and_then(|d| d["structure"].as_f64())
            .map(|s| s >= 1.0);
        let consistency = format_details
            .filter(|d| d["think"].as_str().is_some_and(|t| t != "absent"))
            .and_then(|d| d["consistency"].as_f64());
        let problem_id = score
            .id
            .split_once('#')
            .map_or(score.id.as_str(), |(p, _)| p);
        Self {
            well_formed,
            consistency,
            family: crate::data::family_of(problem_id).to_string(),
            reward,
            passed: score.outcome == Outcome::Passed,
            parsed: !matches!(
                score.outcome,
                Outcome::NotCode
                    | Outcome::NotPython
                    | Outcome::SyntaxError
                    | Outcome::InvalidInput
                    | Outcome::Error
            ),
            format: verifiers
                .iter()
                .find(|(name, _)| name == "format")
                .map(|(_, s)| *s),
            verifiers,
        }
    }
}

/// Means over a set of readings (the masked ones leave the reward mean alone).
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct RewardSummary {
    /// Readings summarised.
    pub scored: usize,
    /// Of which masked (`error` outcome).
    pub masked: usize,
    /// Mean reward over the unmasked readings.
    pub mean_reward: f64,
    /// Share with every test passed.
    pub pass_rate: f64,
    /// Share that passed the parse gate.
    pub parse_rate: f64,
    /// Mean `format` score where it ran.
    pub format_score: Option<f64>,
    /// Mean score of each verifier where it ran.
    pub verifiers: BTreeMap<String, f64>,
    /// Share of answers the `format` verifier found well formed (`<think>…</think>` at the
    /// start, then an answer), where it ran.
    #[serde(default)]
    pub think_rate: Option<f64>,
    /// Mean language consistency of the reasoning, over the answers that have some.
    #[serde(default)]
    pub language_consistency: Option<f64>,
    /// Pass rate per problem family.
    #[serde(default)]
    pub family_pass_rates: BTreeMap<String, f64>,
}

impl RewardSummary {
    /// Summarise `readings`.
    pub fn of<'a>(readings: impl IntoIterator<Item = &'a Reading>) -> Self {
        let readings: Vec<&Reading> = readings.into_iter().collect();
        let n = readings.len();
        let rewards: Vec<f64> = readings.iter().filter_map(|r| r.reward).collect();
        let share = |f: &dyn Fn(&Reading) -> bool| {
            readings.iter().filter(|r| f(r)).count() as f64 / n.max(1) as f64
        };
        let formats: Vec<f64> = readings.iter().filter_map(|r| r.format).collect();
        let mut sums: BTreeMap<String, (f64, usize)> = BTreeMap::new();
        for r in &readings {
            for (name, score) in &r.verifiers {
                let entry = sums.entry(name.clone()).or_default();
                entry.0 += score;
                entry.1 += 1;
            }
        }
        let mean = |xs: &[f64]| (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64);
        let formed: Vec<f64> = readings
            .iter()
            .filter_map(|r| r.well_formed.map(|w| f64::from(u8::from(w))))
            .collect();
        let consistency: Vec<f64> = readings.iter().filter_map(|r| r.consistency).collect();
        let mut families: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for r in &readings {
            let entry = families.entry(r.family.clone()).or_default();
            entry.0 += usize::from(r.passed);
            entry.1 += 1;
        }
        Self {
            think_rate: mean(&formed),
            language_consistency: mean(&consistency),
            family_pass_rates: families
                .into_iter()
                .map(|(family, (passed, count))| (family, passed as f64 / count as f64))
                .collect(),
            scored: n,
            masked: n - rewards.len(),
            mean_reward: rewards.iter().sum::<f64>() / rewards.len().max(1) as f64,
            pass_rate: share(&|r| r.passed),
            parse_rate: share(&|r| r.parsed),
            format_score: (!formats.is_empty())
                .then(|| formats.iter().sum::<f64>() / formats.len() as f64),
            verifiers: sums
                .into_iter()
                .map(|(name, (sum, count))| (name, sum / count as f64))
                .collect(),
        }
    }
}

/// `scores` put in the order of the rollouts sent, matched by rollout id: the advantages are
/// attached to the samples by position, so a server that answered in another order must not
/// pair a reward with the wrong completion. An error names the first id that did not come
/// back exactly once.
pub fn in_sent_order(scores: Vec<Score>, ids: &[String]) -> Result<Vec<Score>, String> {
    if scores.len() == ids.len() && scores.iter().zip(ids).all(|(s, id)| s.id == *id) {
        return Ok(scores);
    }
    let mut by_id: std::collections::HashMap<String, Score> = std::collections::HashMap::new();
    for score in scores {
        let id = score.id.clone();
        if by_id.insert(id.clone(), score).is_some() {
            return Err(format!("rollout {id} was scored twice"));
        }
    }
    ids.iter()
        .map(|id| {
            by_id
                .remove(id)
                .ok_or_else(|| format!("no score for rollout {id}"))
        })
        .collect()
}

/// The `q`-quantile (0..=1) of `values` by nearest rank; 0 when empty.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(outcome: Outcome, reward: Option<f64>) -> Score {
        let mut s = Score::invalid(Some("r"), 1, "x");
        s.outcome = outcome;
        s.reward = reward;
        s.error = None;
        s
    }

    #[test]
    fn an_error_score_reads_as_masked_not_as_zero() {
        // Even if a server sent a number with the error outcome, it is not a reward.
        let r = Reading::of(&score(Outcome::Error, Some(0.0)));
        assert_eq!(r.reward, None);
        assert!(!r.passed && !r.parsed);
        let readings = [
            Reading::of(&score(Outcome::Passed, Some(1.0))),
            r,
            Reading::of(&score(Outcome::Failed, Some(0.5))),
        ];
        let summary = RewardSummary::of(&readings);
        assert_eq!((summary.scored, summary.masked), (3, 1));
        assert!((summary.mean_reward - 0.75).abs() < 1e-12);
        assert!((summary.pass_rate - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn the_format_details_give_the_r1_zero_signatures_and_the_id_the_family() {
        let format = |think: &str, structure: f64, consistency: f64| verdict::VerifierScore {
            name: "format".into(),
            score: 0.5 * structure + 0.5 * consistency,
            weight: 0.2,
            gate: false,
            skipped: false,
            details: serde_json::json!({
                "think": think, "structure": structure, "consistency": consistency
            }),
        };
        let mut well = score(Outcome::Passed, Some(1.0));
        well.id = "sorted_with_first-42#3.0.1".into();
        well.verifiers = vec![format("well_formed", 1.0, 0.8)];
        let mut closed = score(Outcome::Failed, Some(0.2));
        closed.id = "sorted_with_first-7#3.1.0".into();
        closed.verifiers = vec![format("close_only", 0.0, 0.6)];
        let mut bare = score(Outcome::Failed, Some(0.1));
        bare.id = "prefix-3#0".into();
        bare.verifiers = vec![format("absent", 0.0, 0.0)];
        let readings: Vec<Reading> = [&well, &closed, &bare]
            .into_iter()
            .map(Reading::of)
            .collect();
        assert_eq!(readings[0].family, "sorted_with_first");
        assert_eq!(readings[2].family, "prefix");
        assert_eq!(readings[0].well_formed, Some(true));
        assert_eq!(readings[1].well_formed, Some(false));
        // No reasoning at all: no consistency to average.
        assert_eq!(readings[2].consistency, None);
        let summary = RewardSummary::of(&readings);
        assert!((summary.think_rate.unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert!((summary.language_consistency.unwrap() - 0.7).abs() < 1e-12);
        assert_eq!(summary.family_pass_rates["sorted_with_first"], 0.5);
        assert_eq!(summary.family_pass_rates["prefix"], 0.0);
        // Without a format verifier in the chain there is nothing to report.
        let plain = RewardSummary::of(&[Reading::of(&score(Outcome::Passed, Some(1.0)))]);
        assert_eq!((plain.think_rate, plain.language_consistency), (None, None));
    }

    fn with_id(id: &str, reward: f64) -> Score {
        let mut s = score(Outcome::Passed, Some(reward));
        s.id = id.to_string();
        s
    }

    #[test]
    fn scores_are_matched_to_rollouts_by_id() {
        let ids: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let rewards =
            |scores: Vec<Score>| -> Vec<Option<f64>> { scores.iter().map(|s| s.reward).collect() };
        let ordered = in_sent_order(
            vec![with_id("a", 0.1), with_id("b", 0.2), with_id("c", 0.3)],
            &ids,
        )
        .unwrap();
        assert_eq!(rewards(ordered), vec![Some(0.1), Some(0.2), Some(0.3)]);
        let shuffled = in_sent_order(
            vec![with_id("c", 0.3), with_id("a", 0.1), with_id("b", 0.2)],
            &ids,
        )
        .unwrap();
        assert_eq!(rewards(shuffled), vec![Some(0.1), Some(0.2), Some(0.3)]);
        let missing = in_sent_order(vec![with_id("a", 0.1), with_id("c", 0.3)], &ids);
        assert_eq!(missing.unwrap_err(), "no score for rollout b");
        let twice = in_sent_order(
            vec![with_id("a", 0.1), with_id("a", 0.1), with_id("c", 0.3)],
            &ids,
        );
        assert_eq!(twice.unwrap_err(), "rollout a was scored twice");
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&[3.0], 0.99), 3.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }

    /// A TCP server that accepts connections and never says anything: no HTTP/2 settings, no
    /// answer. A real socket, so the client's whole stack is exercised.
    fn silent_server() -> (String, std::thread::JoinHandle<()>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = std::thread::spawn(move || {
            let mut held = Vec::new();
            listener.set_nonblocking(true).unwrap();
            let until = Instant::now() + Duration::from_secs(20);
            while Instant::now() < until {
                if let Ok((conn, _)) = listener.accept() {
                    held.push(conn);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        (format!("http://{addr}"), handle)
    }

    #[test]
    fn a_group_past_its_deadline_is_skipped_without_hanging() {
        let (endpoint, _server) = silent_server();
        let rewards = Rewards::connect(&[endpoint], Duration::from_millis(600)).unwrap();
        let rollout: Rollout = serde_json::from_value(serde_json::json!({
            "id": "a", "completion": "```python\ndef f():\n    return 1\n```"
        }))
        .unwrap();
        let started = Instant::now();
        let first = rewards.send(vec![rollout.clone(); 4]);
        let second = rewards.send(vec![rollout]);
        for pending in [first, second] {
            match rewards.wait(pending) {
                GroupOutcome::Skipped { reason } => {
                    assert!(reason.contains("deadline"), "{reason}")
                }
                other => panic!("expected a skip, got {other:?}"),
            }
        }
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(500) && waited < Duration::from_secs(5),
            "both groups share the deadline clock: {waited:?}"
        );
    }

    #[test]
    fn a_refused_connection_skips_the_group_with_the_reason() {
        // A port that was just free: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let rewards = Rewards::connect(
            &[format!("http://127.0.0.1:{port}")],
            Duration::from_secs(2),
        )
        .unwrap();
        let rollout: Rollout =
            serde_json::from_value(serde_json::json!({"id": "a", "completion": "x"})).unwrap();
        let started = Instant::now();
        let outcome = rewards.wait(rewards.send(vec![rollout]));
        assert!(
            matches!(outcome, GroupOutcome::Skipped { .. }),
            "{outcome:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(4));
    }
}
