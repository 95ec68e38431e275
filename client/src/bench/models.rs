//! The servers under test, and where their binaries are.
//!
//! The benchmark runs the chapters' real binaries, the way a reader would.
//! They are looked for next to the running `client` binary (both are built
//! into the same `target/<profile>/` directory). Before looking, `bench`
//! runs `cargo build --bins` for the chapter packages in its own profile,
//! so `cargo run --release -p client -- bench` measures fresh servers; pass
//! `--no-build` (or `--bin-dir DIR`) to use binaries as they are.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One server model in the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Model {
    /// The package and binary name, e.g. `ch04-epoll`.
    pub name: &'static str,
    /// A short label for tables and plots.
    pub label: &'static str,
    /// The most connections the zero-work sweep drives it with.
    pub max_connections: usize,
}

/// Every model, in chapter order.
pub const MODELS: [Model; 5] = [
    Model {
        name: "ch01-single",
        label: "single",
        max_connections: 1000,
    },
    Model {
        name: "ch02-prefork",
        label: "prefork",
        max_connections: 1000,
    },
    Model {
        name: "ch03-threaded",
        label: "threaded",
        max_connections: 1000,
    },
    Model {
        name: "ch04-epoll",
        label: "epoll",
        max_connections: 10_000,
    },
    Model {
        name: "ch05-tokio",
        label: "tokio",
        max_connections: 10_000,
    },
];

/// Workers (processes or threads) for the models that have them: the
/// SPEC default, so the book's "steps of N" read with N = 5.
pub const WORKERS: u32 = 5;

/// The directory the running binary lives in: `target/<profile>/`, or
/// its parent when running as a test from `target/<profile>/deps/`.
///
/// # Errors
///
/// If the path of the running executable cannot be found.
pub fn own_bin_dir() -> io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let mut dir = exe
        .parent()
        .ok_or_else(|| io::Error::other("executable has no directory"))?
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    Ok(dir)
}

/// Builds every model's binary with `cargo build --bins`, in the profile
/// this binary was built with, so that the servers are as fresh as the
/// client. `--keep-going`: one chapter that does not compile must not
/// stop the others from being measured.
///
/// # Errors
///
/// If cargo cannot be started. A failed build is not an error: the
/// binaries that exist are measured, and missing ones are reported.
pub fn build_all(quiet: bool) -> io::Result<bool> {
    // The workspace this client was built from.
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    // The cargo that built us, or the one on PATH.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .arg("build")
        .arg("--bins")
        .arg("--keep-going")
        .arg("--manifest-path")
        .arg(manifest);
    if !cfg!(debug_assertions) {
        command.arg("--release");
    }
    if quiet {
        command.arg("--quiet");
    }
    for model in MODELS {
        command.args(["-p", model.name]);
    }
    command.stdin(Stdio::null());
    let status = command.status()?;
    Ok(status.success())
}

/// Where `model`'s binary is expected in `dir`, if it is there.
pub fn binary(dir: &Path, model: &Model) -> Option<PathBuf> {
    let path = dir.join(model.name);
    path.is_file().then_some(path)
}
