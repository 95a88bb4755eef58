//! `verdict verifiers`: the effective chain, the default configuration, or the known kinds.

use std::path::PathBuf;

use super::CliError;
use crate::config::{Config, DEFAULT_CONFIG};
use crate::registry::Registry;

#[derive(Debug, clap::Args)]
pub(super) struct VerifiersArgs {
    /// Chain configuration (TOML). Default: the built-in chain.
    #[arg(short, long, env = "VERDICT_CONFIG")]
    config: Option<PathBuf>,
    /// Print the built-in default configuration as TOML (a starting point for your own).
    #[arg(long)]
    default_config: bool,
    /// List the verifier kinds this build knows, plus the plug-ins of --config, with where each
    /// came from (built-in, rust, python, wasm).
    #[arg(long)]
    kinds: bool,
}

#[allow(clippy::print_stdout)]
pub(super) fn run(args: VerifiersArgs, registry: &Registry) -> Result<(), CliError> {
    if args.default_config {
        print!("{DEFAULT_CONFIG}");
        return Ok(());
    }
    let config = Config::load(args.config.as_deref())?;
    let registry = config.registry_in(registry)?;
    if args.kinds {
        println!(
            "{:<12} {:<9} description [file or module]",
            "kind", "origin"
        );
        for kind in registry.kinds() {
            let sandbox = if kind.needs_sandbox { " (sandbox)" } else { "" };
            let source = kind
                .origin
                .source()
                .map(|s| format!(" [{s}]"))
                .unwrap_or_default();
            println!(
                "{:<12} {:<9} {}{sandbox}{source}",
                kind.name,
                kind.origin.label(),
                kind.description,
            );
        }
        return Ok(());
    }
    let chain = config.build_registered(&registry)?;
    println!("chain from {}:", config.origin);
    println!(
        "{:<3} {:<12} {:<8} {:>6}  {:<5} settings",
        "#", "name", "kind", "weight", "gate"
    );
    for (i, step) in chain.steps().iter().enumerate() {
        let gate = if step.gate {
            format!("yes (min_score {})", step.min_score)
        } else {
            "no".to_string()
        };
        println!(
            "{:<3} {:<12} {:<8} {:>6}  {:<5} {}",
            i + 1,
            step.name,
            step.verifier.kind(),
            step.weight,
            gate,
            step.verifier.describe()
        );
    }
    println!(
        "reward = weighted mean of the steps that ran; a failed gate gives 0 and ends the chain"
    );
    Ok(())
}
