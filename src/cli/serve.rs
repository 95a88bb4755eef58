//! `verdict serve`: the gRPC reward service (and the HTTP side) until SIGTERM/SIGINT.

use std::path::PathBuf;
use std::sync::Arc;

use super::{with_sandbox_workers, CliError};
use crate::config::Config;
use crate::registry::Registry;

#[derive(Debug, clap::Args)]
pub(super) struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:50051", env = "VERDICT_ADDR")]
    addr: String,
    /// Chain configuration (TOML). Default: the built-in chain.
    #[arg(short, long, env = "VERDICT_CONFIG")]
    config: Option<PathBuf>,
    /// Serve HTTP on this address: Prometheus metrics (`GET /metrics`) and the JSON gateway
    /// (`POST /v1/score`, `/v1/score_batch`, `/v1/openrlhf`; see docs/openapi.yaml).
    #[arg(long, visible_alias = "metrics-addr", env = "VERDICT_HTTP_ADDR")]
    http_addr: Option<String>,
    /// Rollouts scored at once.
    #[arg(long, default_value_t = 256)]
    max_in_flight: usize,
    /// Rollouts admitted beyond --max-in-flight before calls get RESOURCE_EXHAUSTED.
    #[arg(long, default_value_t = 1024)]
    max_queued: usize,
    /// Seconds calls in flight get to finish after SIGTERM/SIGINT.
    #[arg(long, default_value_t = 30.0)]
    grace_secs: f64,
    /// Largest request or response message; larger requests get OUT_OF_RANGE.
    #[arg(long, default_value_t = 16 << 20)]
    max_message_bytes: usize,
}

#[allow(clippy::print_stdout)]
pub(super) fn run(args: ServeArgs, registry: &Registry) -> Result<(), CliError> {
    use std::io::Write as _;
    let config = with_sandbox_workers(Config::load(args.config.as_deref())?);
    let registry = config.registry_in(registry)?;
    let chain = Arc::new(config.build_registered(&registry)?);
    let runtime = tokio::runtime::Runtime::new().map_err(|source| CliError::Io {
        what: "starting the async runtime".into(),
        source,
    })?;
    let io = |what: String| move |source| CliError::Io { what, source };
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.addr)
            .await
            .map_err(io(format!("binding {}", args.addr)))?;
        let http_listener = match &args.http_addr {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(io(format!("binding {addr}")))?,
            ),
            None => None,
        };
        let local = listener
            .local_addr()
            .map_err(io("reading the bound address".into()))?;
        println!("listening on {local}");
        if let Some(l) = &http_listener {
            let http = l
                .local_addr()
                .map_err(io("reading the bound HTTP address".into()))?;
            println!("http on {http}");
        }
        std::io::stdout()
            .flush()
            .map_err(io("writing stdout".into()))?;
        let opts = crate::server::ServeOptions {
            max_in_flight: args.max_in_flight,
            max_queued: args.max_queued,
            grace: std::time::Duration::from_secs_f64(args.grace_secs),
            max_message_bytes: args.max_message_bytes,
            config_origin: config.origin.clone(),
            registry,
            http_listener,
            ..Default::default()
        };
        crate::server::run(listener, chain, opts, crate::server::shutdown_signal()).await?;
        Ok(())
    })
}
