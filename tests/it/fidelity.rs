//! Fidelity against CPython itself (`fixtures/fidelity/corpus.jsonl`): each correct or wrong
//! program, with a test written as real suites write them (plain asserts, HumanEval's
//! `check(candidate)`, pytest- and unittest-style, LeetCode's shared classes, callbacks,
//! aliasing, records, exceptions, dates), is judged by verdict's two instances and by
//! *reference mode* — program and test in one interpreter, CPython 3.14's native semantics
//! (`Sandbox::reference`). Each case's `passes` says what native Python decides; verdict must
//! agree, except the cases marked `stricter`, each a documented place (PROTOCOL.md) where
//! verdict fails what native Python passes. Verdict never answers `error` on the corpus.

use serde_json::{json, Value};
use verdict::sandbox::RunJob;
use verdict::Outcome;

use crate::sandbox::{shared, tests};

#[tokio::test]
async fn the_boundary_agrees_with_native_python_but_where_it_is_documented_stricter() {
    let corpus = include_str!("../../fixtures/fidelity/corpus.jsonl");
    let mut disagreements = Vec::new();
    let (mut cases, mut stricter) = (0, 0);
    for line in corpus.lines().filter(|l| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).unwrap();
        let id = case["id"].as_str().unwrap();
        let program = case["program"].as_str().unwrap();
        let t = tests(json!([{"kind": "assert", "code": case["test"]}]));
        let job = RunJob {
            id,
            program,
            setup: case["setup"].as_str(),
            judge_setup: None,
            tests: &t,
            limits: None,
            stop_on_failure: false,
        };
        let native = shared().reference(&job).await.unwrap()[0].unwrap();
        let judged = shared().run(&job).await.unwrap();
        let passes = case["passes"].as_bool().unwrap();
        cases += 1;
        if (native == Outcome::Passed) != passes {
            disagreements.push(format!(
                "{id}: native Python gives {native}, the corpus says passes={passes}"
            ));
        }
        if judged.outcome == Outcome::Error {
            disagreements.push(format!("{id}: verdict gives error: {:?}", judged.message));
            continue;
        }
        match case["stricter"].as_str() {
            None if (judged.outcome == Outcome::Passed) != (native == Outcome::Passed) => {
                disagreements.push(format!(
                    "{id}: verdict gives {} ({:?}), native Python {native}",
                    judged.outcome, judged.message
                ));
            }
            Some(why) if judged.outcome == Outcome::Passed || native != Outcome::Passed => {
                disagreements.push(format!(
                    "{id}: documented as stricter ({why}), but verdict gives {} and native Python {native}",
                    judged.outcome
                ));
            }
            Some(_) => stricter += 1,
            None => {}
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {cases} cases:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
    assert!(
        cases >= 60 && stricter >= 5,
        "{cases} cases, {stricter} stricter"
    );
}
