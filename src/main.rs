//! The `verdict` command line: [`verdict::cli`] with the built-in verifier kinds.

fn main() -> std::process::ExitCode {
    verdict::cli::main_with(verdict::Registry::builtin())
}
