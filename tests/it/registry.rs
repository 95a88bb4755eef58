//! A verifier kind registered by a library user, named in a `verdict.toml`, works through the
//! command line (`verdict::cli::run`, what a program with its own kinds runs as its `main`) and
//! through the gRPC server.

use std::sync::Arc;

use serde_json::{json, Value};
use tokio::net::TcpListener;
use verdict::pb;
use verdict::pb::reward_service_client::RewardServiceClient;
use verdict::registry::{settings_of, BuildError, Kind, Registry};
use verdict::server::{run, ServeOptions};
use verdict::{Config, Context, Rollout, Verdict, Verifier};

/// Settings of the user's kind.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WordsConfig {
    /// The word the answer must contain.
    word: String,
}

/// The user's verifier: 1 when the completion mentions `word`.
struct Mentions(String);

#[async_trait::async_trait]
impl Verifier for Mentions {
    fn kind(&self) -> &'static str {
        "mentions"
    }
    async fn verify(&self, rollout: &Rollout, _ctx: &mut Context) -> Verdict {
        let hit = rollout.completion.contains(&self.0);
        Verdict::pass(if hit { 1.0 } else { 0.0 }, json!({ "word": self.0 }))
    }
}

fn registry() -> Registry {
    let mut registry = Registry::builtin();
    registry
        .register(Kind::new(
            "mentions",
            "the completion mentions a word",
            |settings, _cx| {
                let config: WordsConfig = settings_of(settings)?;
                if config.word.is_empty() {
                    return Err(BuildError("word must not be empty".into()));
                }
                Ok(Box::new(Mentions(config.word)))
            },
        ))
        .unwrap();
    registry
}

const CONFIG: &str = r#"
[[verifier]]
kind = "parse"
gate = true
weight = 0.0

[[verifier]]
kind = "mentions"
word = "sum"
"#;

fn line(id: &str, completion: &str) -> String {
    json!({"id": id, "completion": completion}).to_string()
}

#[test]
fn a_user_kind_named_in_the_config_scores_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("verdict.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        format!(
            "{}\n{}\n",
            line("hit", "```python\nsum([1, 2])\n```"),
            line("miss", "```python\nmax([1, 2])\n```")
        ),
    )
    .unwrap();
    let out = dir.path().join("out.jsonl");
    let code = verdict::cli::run(
        [
            "verdict".as_ref(),
            "score".as_ref(),
            input.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
            "--config".as_ref(),
            config.as_os_str(),
            "--quiet".as_ref(),
        ],
        &registry(),
    )
    .unwrap();
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    let records: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records[0]["reward"], 1.0, "{}", records[0]);
    assert_eq!(records[0]["verifiers"][1]["name"], "mentions");
    assert_eq!(records[0]["verifiers"][1]["details"]["word"], "sum");
    assert_eq!(records[1]["reward"], 0.0, "{}", records[1]);

    // Without the user's registry the same file names an unknown kind.
    let err = verdict::cli::run(
        [
            "verdict".as_ref(),
            "verifiers".as_ref(),
            "--config".as_ref(),
            config.as_os_str(),
        ],
        &Registry::builtin(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("unknown verifier kind `mentions`"),
        "{err}"
    );
}

#[test]
fn a_user_kind_is_validated_like_a_built_in_one() {
    let text = "[[verifier]]\nkind = \"mentions\"\nword = \"\"\n[[verifier]]\nkind = \"mentions\"\nname = \"m2\"\nwords = \"x\"\n";
    let msg = Config::parse(text, "t")
        .unwrap()
        .build_in(&registry())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("verifier #1 (mentions): word must not be empty"),
        "{msg}"
    );
    assert!(
        msg.contains("verifier #2 (m2): unknown field `words`"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_user_kind_named_in_the_config_is_served_over_grpc() {
    let registry = registry();
    let config = Config::parse(CONFIG, "user.toml").unwrap();
    let chain = Arc::new(config.build_in(&registry).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let opts = ServeOptions {
        registry,
        config_origin: "user.toml".into(),
        ..ServeOptions::default()
    };
    let server = tokio::spawn(run(listener, chain, opts, async {
        let _ = stopped.await;
    }));
    let mut client = RewardServiceClient::connect(url).await.unwrap();
    let list = client
        .list_verifiers(pb::ListVerifiersRequest {})
        .await
        .unwrap()
        .into_inner();
    let kind = list.kinds.iter().find(|k| k.kind == "mentions").unwrap();
    assert_eq!(kind.description, "the completion mentions a word");
    assert!(!kind.needs_sandbox);
    assert!(list
        .kinds
        .iter()
        .any(|k| k.kind == "tests" && k.needs_sandbox));
    assert_eq!(list.chain[1].kind, "mentions");
    let rollout = Rollout {
        id: "hit".into(),
        completion: "```python\nsum([1])\n```".into(),
        ..Rollout::default()
    };
    let score = client
        .score(pb::ScoreRequest {
            rollout: Some(pb::Rollout::from(&rollout)),
        })
        .await
        .unwrap()
        .into_inner()
        .score
        .unwrap();
    assert_eq!(score.reward, Some(1.0));
    assert_eq!(score.verifiers[1].name, "mentions");
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
