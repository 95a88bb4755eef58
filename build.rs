//! Compiles `proto/` with protox (a Rust protobuf compiler: no `protoc` needed on the machine)
//! and generates the tonic/prost code plus a file-descriptor set for server reflection.
//!
//! With the `python` feature, it also records the directory of the libpython that pyo3 links
//! as the run-time search path (rpath) of this package's binaries, tests, examples and benches,
//! so they start from a clean shell when libpython lives outside the loader's default paths
//! (pyenv, a venv's base, conda). It does not reach crates that depend on verdict: an extension
//! module is loaded by a Python that already has libpython. It also records that
//! interpreter's path (`VERDICT_BUILD_PYTHON`), so the embedded interpreter finds the standard
//! library that matches the libpython it runs (see `src/plugins/python.rs`).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/verdict/v1/reward.proto";
    println!("cargo:rerun-if-changed=proto");
    #[cfg(feature = "python")]
    python_rpath();
    let fds = protox::compile([proto], ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("verdict_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}

#[cfg(feature = "python")]
fn python_rpath() {
    let config = pyo3_build_config::get();
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    if config.shared() {
        if let Some(dir) = config.lib_dir() {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        }
    }
    // The interpreter pyo3 built against: the embedded one takes it as its program name, so it
    // finds the standard library (and a venv's site-packages) that match the libpython linked.
    if let Some(python) = config.executable() {
        println!("cargo:rustc-env=VERDICT_BUILD_PYTHON={python}");
    }
}
