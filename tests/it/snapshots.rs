//! The `Score` records are a user-facing contract: the records of every class fixture
//! (`fixtures/classes/*.jsonl`), `details` included, are pinned as snapshots
//! (`tests/it/snapshots/`), with wall times and fuel zeroed. A change to any record fails here until the
//! new snapshot is reviewed and accepted (`cargo insta review`, or `INSTA_UPDATE=always`).

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;
use verdict::batch::{score_lines, BatchOptions, Resumed, Scorer};
use verdict::Config;

/// `value` with every `wall_ms` and `fuel` set to 0. Wall times vary from run to run; fuel is
/// the same on every run of one runtime build (`tests/it/timing.rs` checks that), but a rebuilt
/// runtime snapshots a slightly different interpreter state, so its fuel differs by a few
/// hundred instructions.
fn without_wall_times(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if key == "wall_ms" {
                    *v = Value::from(0.0);
                } else if key == "fuel" && v.is_u64() {
                    *v = Value::from(0u64);
                } else {
                    without_wall_times(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(without_wall_times),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn class_fixture_records_match_their_snapshots() {
    let mut config = Config::default_config();
    config.sandbox.engine.workers = Some(0);
    let chain = Arc::new(config.build().unwrap());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/classes");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    for file in files {
        let class = file.file_stem().unwrap().to_string_lossy().to_string();
        let mut out = Vec::new();
        score_lines(
            Scorer::local(chain.clone(), 2),
            std::fs::File::open(&file).unwrap(),
            &mut out,
            Resumed::default(),
            &BatchOptions {
                jobs: 2,
                progress: false,
                group_window: 512,
            },
            None,
        )
        .await
        .unwrap();
        let records: Vec<Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| {
                let mut v: Value = serde_json::from_str(l).unwrap();
                without_wall_times(&mut v);
                v
            })
            .collect();
        insta::assert_json_snapshot!(class, records);
    }
}
