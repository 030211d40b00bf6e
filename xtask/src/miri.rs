//! `cargo xtask miri`: the `boc-core` unit tests under miri (nightly), which catches
//! undefined behavior in the unsafe parts of the request queue. Optional tooling:
//! when miri is not installed this says how to get it and succeeds.
//!
//! Strict provenance is checked by default (`MIRIFLAGS=-Zmiri-strict-provenance`):
//! the queue's pointers must never round-trip through integers. A `MIRIFLAGS` set in
//! the environment replaces the default (set it empty to drop the check).

use std::env;

use crate::process::{Cmd, Result};

/// `MIRIFLAGS` when the environment does not set it.
const DEFAULT_MIRIFLAGS: &str = "-Zmiri-strict-provenance";

/// The rustup command that installs miri.
const INSTALL_ARGS: [&str; 6] = ["component", "add", "--toolchain", "nightly", "miri", "rust-src"];

/// Runs the tests under miri, installing it first if `install`; `test_args` go to
/// `cargo miri test` (for example `-- queue` to filter).
pub(crate) fn run(install: bool, test_args: &[String]) -> Result {
    if install {
        Cmd::new("rustup").args(INSTALL_ARGS).run()?;
    }
    // `+nightly` is understood by the rustup proxy, so plain `cargo` rather than `$CARGO`.
    if !Cmd::new("cargo").args(["+nightly", "miri", "--version"]).succeeds_quietly() {
        println!(
            "miri is not installed: rustup {}; skipping (or run `cargo xtask miri --install`)",
            INSTALL_ARGS.join(" ")
        );
        return Ok(());
    }
    let mut cmd = Cmd::new("cargo");
    if env::var_os("MIRIFLAGS").is_none() {
        cmd = cmd.env("MIRIFLAGS", DEFAULT_MIRIFLAGS);
    }
    // The unit tests (`--lib`): they are sized for miri; the proptest and
    // the doc tests spawn far more work than an interpreter gets through.
    cmd.args(["+nightly", "miri", "test", "-p", "boc-core", "--lib"]).args(test_args).run()
}
