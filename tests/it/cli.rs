//! `verdict score` and `verdict verifiers` run as a user runs them: the real binary on fixtures.

use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

fn verdict() -> Command {
    let mut cmd = Command::cargo_bin("verdict").unwrap();
    cmd.env_remove("VERDICT_CONFIG").env_remove("RUST_LOG");
    cmd
}

fn records(stdout: &[u8]) -> Vec<Value> {
    std::str::from_utf8(stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad record {l}: {e}")))
        .collect()
}

fn ids_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn each_class_fixture_gets_its_outcome() {
    for class in ["passed", "not_code", "not_python", "syntax_error"] {
        let file = fixture(&format!("classes/{class}.jsonl"));
        let out = verdict().arg("score").arg(&file).assert().success();
        let recs = records(&out.get_output().stdout);
        assert_eq!(
            recs.len(),
            ids_of(&file).len(),
            "{class}: one record per line"
        );
        for r in recs {
            assert_eq!(r["outcome"], class, "{class}: {r}");
            if class == "passed" {
                assert!(r["reward"].as_f64().unwrap() > 0.0, "{r}");
            } else {
                assert_eq!(r["reward"], 0.0, "{r}");
            }
        }
    }
}

#[test]
fn bundled_mix_scores_every_line_in_order() {
    let file = fixture("rollouts.jsonl");
    let out = verdict()
        .args(["score", "--jobs", "2"])
        .arg(&file)
        .assert()
        .success();
    let ids: Vec<String> = records(&out.get_output().stdout)
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ids_of(&file));
    let stderr = String::from_utf8_lossy(&out.get_output().stderr);
    assert!(stderr.contains("scored 14 rollouts"), "{stderr}");
    assert!(stderr.contains("outcomes: passed="), "{stderr}");
}

#[test]
fn malformed_lines_are_reported_and_the_rest_is_scored() {
    let out = verdict()
        .arg("score")
        .arg(fixture("malformed.jsonl"))
        .assert()
        .code(1);
    let recs = records(&out.get_output().stdout);
    let by_id = |id: &str| {
        recs.iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("{id}"))
    };
    assert_eq!(recs.len(), 9, "the blank line carries no rollout");
    assert_eq!(by_id("add-r1-correct")["outcome"], "passed");
    assert_eq!(by_id("add-prose")["outcome"], "not_code");
    assert_eq!(by_id("sum-stdin-correct")["outcome"], "passed");
    let err = |id: &str| by_id(id)["error"].as_str().unwrap().to_string();
    assert_eq!(err("no-completion"), "line 2: completion: is required");
    assert!(err("wrong-type").starts_with("line 3: completion: invalid type: integer `42`"));
    assert!(
        err("truncated").starts_with("line 4: not JSON: EOF while parsing"),
        "a torn line keeps the id it has"
    );
    assert!(err("bad-test-kind").contains("unknown test kind `fuzz`"));
    assert!(err("input-8").starts_with("line 8: "));
    // A dataset field that does not decode: caught by the tests verifier, said at the top level.
    assert!(
        err("bad-input-output").starts_with("tests: "),
        "{}",
        err("bad-input-output")
    );
    assert!(err("bad-input-output").contains("input_output"));
    for id in [
        "no-completion",
        "wrong-type",
        "truncated",
        "bad-test-kind",
        "input-8",
        "bad-input-output",
    ] {
        assert_eq!(by_id(id)["outcome"], "invalid_input");
        assert_eq!(by_id(id)["reward"], 0.0);
    }
    let stderr = String::from_utf8_lossy(&out.get_output().stderr);
    assert!(stderr.contains("6 invalid"), "{stderr}");
}

#[test]
fn bad_config_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("verdict.toml");
    std::fs::write(
        &cfg,
        "[[verifier]]\nkind = \"sparkle\"\n[[verifier]]\nkind = \"parse\"\nweight = -2\n",
    )
    .unwrap();
    let out = verdict()
        .args(["verifiers", "--config"])
        .arg(&cfg)
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr);
    assert!(
        stderr.contains("unknown verifier kind `sparkle`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("weight must be a finite number ≥ 0, got -2"),
        "{stderr}"
    );
}

#[test]
fn verifiers_prints_the_effective_chain() {
    let out = verdict().arg("verifiers").assert().success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout);
    assert!(stdout.contains("chain from built-in default"), "{stdout}");
    let format_line = stdout.lines().find(|l| l.contains(" format ")).unwrap();
    assert!(format_line.contains("0.2"), "{format_line}");
    let parse_line = stdout.lines().find(|l| l.contains(" parse ")).unwrap();
    assert!(parse_line.contains("yes"), "{parse_line}");
}

#[test]
fn a_config_without_steps_keeps_the_default_chain_and_no_tests_is_not_passed() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("verdict.toml");
    std::fs::write(&cfg, "[sandbox]\ntime_ms = 5000\n").unwrap();
    let out = verdict()
        .args(["verifiers", "--config"])
        .arg(&cfg)
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout);
    for kind in [" format ", " parse ", " tests ", " timing "] {
        assert!(stdout.contains(kind), "{kind}: {stdout}");
    }

    // Correct code in R1 form: one line without tests, one with a test whose unused fields are
    // null, as a Hugging Face dataset writes it.
    let completion = "<think>Add them.</think>\n```python\ndef add(a, b):\n    return a + b\n```";
    let input = dir.path().join("in.jsonl");
    let lines = [
        serde_json::json!({"id": "untested", "completion": completion}),
        serde_json::json!({"id": "tested", "completion": completion, "tests": [
            {"kind": "assert", "code": "assert add(1, 2) == 3", "stdin": null, "stdout": null,
             "expected": null, "timing": null, "compare": null, "checker": null}]}),
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&input, text).unwrap();
    let score = |config: &Path| {
        let out = verdict()
            .args(["score", "--config"])
            .arg(config)
            .arg(&input)
            .assert()
            .success();
        records(&out.get_output().stdout)
    };
    let recs = score(&cfg);
    let (untested, tested) = (&recs[0], &recs[1]);
    assert_eq!(tested["outcome"], "passed", "{tested}");
    assert_eq!(untested["outcome"], "tests_unavailable", "{untested}");
    let step = |r: &Value, name: &str| {
        r["verifiers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} step: {r}"))
    };
    let tests_step = step(untested, "tests");
    assert_eq!(tests_step["skipped"], true, "{untested}");
    // The reward is the other checks' (format's), never a test verdict.
    assert_eq!(
        untested["reward"],
        step(untested, "format")["score"],
        "{untested}"
    );

    std::fs::write(
        &cfg,
        "[[verifier]]\nkind = \"parse\"\ngate = true\nweight = 0.0\n\
         [[verifier]]\nkind = \"tests\"\nunavailable = \"zero\"\n",
    )
    .unwrap();
    let recs = score(&cfg);
    assert_eq!(recs[0]["outcome"], "tests_unavailable", "{}", recs[0]);
    assert_eq!(recs[0]["reward"], 0.0, "{}", recs[0]);
    assert_eq!(recs[1]["reward"], 1.0, "{}", recs[1]);
}

/// A large input so that a run can be killed part-way.
fn big_input(dir: &Path, n: usize) -> PathBuf {
    let path = dir.join("big.jsonl");
    let mut text = String::new();
    for i in 0..n {
        let completion = if i % 3 == 0 {
            format!("<think>add</think>\n```python\ndef f{i}(x):\n    return x + {i}\n```")
        } else if i % 3 == 1 {
            "Just add them, it is easy.".to_string()
        } else {
            format!("```python\ndef g(x)\n    return {i}\n```")
        };
        text.push_str(
            &serde_json::json!({"id": format!("r{i}"), "completion": completion}).to_string(),
        );
        text.push('\n');
        if i == n / 2 {
            text.push_str("{this line is broken\n");
        }
    }
    std::fs::write(&path, text).unwrap();
    path
}

fn without_cost(mut v: Value) -> Value {
    v.as_object_mut().unwrap().remove("cost");
    v
}

#[test]
fn kill_and_resume_loses_nothing_and_tears_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = big_input(dir.path(), 6_000);
    let reference = dir.path().join("reference.jsonl");
    let started = Instant::now();
    verdict()
        .args(["score", "--quiet", "-o"])
        .arg(&reference)
        .arg(&input)
        .assert()
        .code(1);
    let full_run = started.elapsed();

    let out = dir.path().join("out.jsonl");
    let bin = assert_cmd::cargo::cargo_bin("verdict");
    // Kill -9 at a few points of the run (a fraction of a full run's time, which includes
    // start-up); each time resume where it stopped.
    let mut kills = 0;
    for fraction in [0.2, 0.2, 0.2] {
        let mut child = StdCommand::new(&bin)
            .args(["score", "--quiet", "--resume", "-o"])
            .arg(&out)
            .arg(&input)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + full_run.mul_f64(fraction);
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
    }
    assert!(
        kills > 0,
        "the run finished before any kill; make the input bigger"
    );
    verdict()
        .args(["score", "--quiet", "--resume", "-o"])
        .arg(&out)
        .arg(&input)
        .assert()
        .code(1);

    let got: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| without_cost(serde_json::from_str(l).expect("no torn line")))
        .collect();
    let want: Vec<Value> = std::fs::read_to_string(&reference)
        .unwrap()
        .lines()
        .map(|l| without_cost(serde_json::from_str(l).unwrap()))
        .collect();
    assert_eq!(got.len(), want.len(), "every line exactly once");
    assert!(got == want, "resumed output equals an uninterrupted run");
}

#[test]
fn resume_refuses_an_output_of_another_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    std::fs::write(&out, "{\"id\":\"something-else\",\"reward\":0}\n").unwrap();
    let o = verdict()
        .args(["score", "--resume", "-o"])
        .arg(&out)
        .arg(fixture("rollouts.jsonl"))
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&o.get_output().stderr);
    assert!(stderr.contains("not the same input"), "{stderr}");
}

/// A record without its wall times (cost and per-test), the parts a rerun changes.
fn timeless(v: Value) -> Value {
    let mut v = without_cost(v);
    if let Some(results) = v
        .pointer_mut("/tests/results")
        .and_then(Value::as_array_mut)
    {
        for r in results {
            r["wall_ms"] = Value::from(0.0);
        }
    }
    v
}

/// The bundled rollouts as an awkward file: a blank line after line 3, CRLF line endings or
/// not, and no final newline.
fn awkward_input(dir: &Path, crlf: bool) -> PathBuf {
    let text = std::fs::read_to_string(fixture("rollouts.jsonl")).unwrap();
    let mut lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines.insert(3, "");
    lines.insert(6, "   ");
    let eol = if crlf { "\r\n" } else { "\n" };
    let path = dir.join(if crlf { "crlf.jsonl" } else { "lf.jsonl" });
    std::fs::write(&path, lines.join(eol)).unwrap();
    path
}

#[test]
fn resume_works_on_blank_lines_crlf_and_no_final_newline() {
    let dir = tempfile::tempdir().unwrap();
    for crlf in [false, true] {
        let input = awkward_input(dir.path(), crlf);
        let full = dir.path().join("full.jsonl");
        verdict()
            .args(["score", "--quiet", "-o"])
            .arg(&full)
            .arg(&input)
            .assert()
            .success();
        let full_text = std::fs::read_to_string(&full).unwrap();
        let full_records: Vec<Value> = full_text
            .lines()
            .map(|l| timeless(serde_json::from_str(l).unwrap()))
            .collect();
        assert_eq!(
            full_records.len(),
            ids_of(&input).len(),
            "blank lines carry no rollout"
        );
        for cut in [0, 3, 5] {
            let part = dir.path().join("part.jsonl");
            let kept: String = full_text
                .lines()
                .take(cut)
                .map(|l| format!("{l}\n"))
                .collect();
            std::fs::write(&part, kept).unwrap();
            verdict()
                .args(["score", "--quiet", "--resume", "-o"])
                .arg(&part)
                .arg(&input)
                .assert()
                .success();
            let resumed: Vec<Value> = std::fs::read_to_string(&part)
                .unwrap()
                .lines()
                .map(|l| timeless(serde_json::from_str(l).unwrap()))
                .collect();
            assert_eq!(resumed, full_records, "crlf {crlf}, cut after {cut}");
        }
    }
}
