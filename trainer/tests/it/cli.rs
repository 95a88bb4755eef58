use std::process::Command;

fn trainer(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_verdict-trainer"))
        .args(args)
        .env_clear()
        .output()
        .unwrap()
}

#[test]
fn params_reproduces_deepseek_v3() {
    let out = trainer(&["params", "deepseek-v3"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let total = json["total"].as_f64().unwrap();
    let activated = json["activated"].as_f64().unwrap();
    assert!((total / 671e9 - 1.0).abs() < 0.01, "{total}");
    assert!((activated / 37e9 - 1.0).abs() < 0.03, "{activated}");
}

#[test]
fn params_of_every_preset_and_a_clear_error_for_a_bad_one() {
    for preset in ["tiny", "small"] {
        let out = trainer(&["params", preset]);
        assert!(out.status.success(), "{preset}");
    }
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"policy": {"d_model": 8}}"#).unwrap();
    let out = trainer(&["params", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid config"), "{stderr}");
}
