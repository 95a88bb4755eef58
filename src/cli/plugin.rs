//! `verdict plugin`: build a Python verifier plug-in into a component, or print its interface.

use std::path::PathBuf;

use clap::Subcommand;

use super::CliError;
use crate::config::Config;

#[derive(Debug, clap::Args)]
pub(super) struct PluginArgs {
    #[command(subcommand)]
    action: PluginAction,
}

#[derive(Debug, Subcommand)]
enum PluginAction {
    /// Build SOURCE (a Python module defining class `Verifier` with
    /// `verify(self, settings, rollout, findings)`, see wit/plugin.wit) into a component.
    /// Other `.py` files in its directory may be imported. Cached: building again is a copy.
    Build {
        /// The plug-in's Python source file.
        source: PathBuf,
        /// Where to write the component. Default: SOURCE with the extension `.wasm`.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Configuration whose `[sandbox]` section names the cache directory and Python.
        #[arg(short, long, env = "VERDICT_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Print the plug-in interface (wit/plugin.wit) this verdict speaks.
    Wit,
}

#[allow(clippy::print_stdout)]
pub(super) fn run(args: PluginArgs) -> Result<(), CliError> {
    match args.action {
        PluginAction::Wit => {
            print!("{}", crate::plugins::wasm::PLUGIN_WIT);
            Ok(())
        }
        PluginAction::Build {
            source,
            output,
            config,
        } => {
            let config = Config::load(config.as_deref())?;
            let output = output.unwrap_or_else(|| source.with_extension("wasm"));
            let built = crate::plugins::build::build_python(&config.sandbox, &source, &output)?;
            println!(
                "built {} ({:.1} MB, sha256 {}{})",
                built.output.display(),
                built.bytes as f64 / 1e6,
                &built.sha256[..16],
                if built.cached { ", from the cache" } else { "" }
            );
            Ok(())
        }
    }
}
