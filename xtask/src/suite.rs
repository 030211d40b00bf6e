//! `cargo xtask test`: every check CI runs, in order, stopping at the first failure.
//!
//! 1. `cargo fmt --all --check`
//! 2. clippy on every crate (`boc-py` included: clippy does not link it), all
//!    targets, warnings denied
//! 3. the Rust tests (cargo-nextest when installed, plus the doc tests it does not
//!    run; plain `cargo test` otherwise)
//! 4. the loom models at preemption bound 2
//! 5. miri (`cargo xtask miri`: boc-core's unit tests, then the facade's
//!    Miri-sized programs under Tree Borrows); about 30 s from a cold
//!    `target/miri` on a 2-core machine, 16 s warm; skipped with a note when
//!    the nightly miri component is not installed
//! 6. tidy
//! 7. no deferred decrefs: the Python suite on `python3` with the binding built
//!    without PyO3's list of deferred decrefs, where a Python reference that boc
//!    drops detached aborts the run (boc must never defer one: `fork.rs` in the
//!    binding says why); about 2 min from a cold `target/no-reference-pool`
//! 8. the Python tests, once `crates/boc-py/tests` has any: pytest on `python3` and
//!    on every other interpreter found among pyenv's 3.12 and 3.13, the free-threaded
//!    3.13t and the debug + AddressSanitizer 3.13 (`asan`), each in its own
//!    environment (see `python` and `pytest`); an interpreter that is not found is
//!    skipped, `BOC_PYTHONS` limits the run to some of them
//!
//! `boc-py` is excluded from the Rust steps because building it needs a Python
//! toolchain; the Python step builds it with maturin instead.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::process::{self, Cmd, Result, step};
use crate::{loom, miri, pytest, tidy};

/// Preemption bound of the loom step: quicker than `cargo xtask loom`'s default.
const LOOM_PREEMPTIONS: u32 = 2;

/// `--workspace --exclude boc-py`: `default-members` does not apply to `--workspace`.
const RUST_PACKAGES: [&str; 3] = ["--workspace", "--exclude", "boc-py"];

/// Runs every step; the error names the step that failed.
pub(crate) fn run(root: &Path) -> Result {
    let started = Instant::now();
    let mut timings: Vec<(&str, Duration)> = Vec::new();
    let mut timed = |name: &'static str, body: &dyn Fn() -> Result| -> Result {
        timings.push((name, step(name, body)?));
        Ok(())
    };
    timed("fmt", &|| Cmd::cargo().args(["fmt", "--all", "--check"]).run())?;
    timed("clippy", &|| Cmd::cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]).run())?;
    timed("rust tests", &rust_tests)?;
    timed("loom", &|| loom::run(root, LOOM_PREEMPTIONS, &[]))?;
    timed("miri", &|| miri::run(false, &[]))?;
    timed("tidy", &|| tidy::run(root))?;
    timed("no deferred decrefs", &|| pytest::run_without_reference_pool(root))?;
    timed("python tests", &|| pytest::run_tests(root))?;

    println!();
    for (name, elapsed) in &timings {
        println!("  {name:<14} {:>8}", process::seconds(*elapsed));
    }
    println!("xtask test: all steps passed in {}", process::seconds(started.elapsed()));
    Ok(())
}

/// The Rust tests: nextest is faster (one process per test, run in parallel) but
/// skips doc tests, so those run separately with cargo test.
fn rust_tests() -> Result {
    if Cmd::cargo().args(["nextest", "--version"]).succeeds_quietly() {
        Cmd::cargo().args(["nextest", "run"]).args(RUST_PACKAGES).arg("--no-tests=warn").run()?;
        Cmd::cargo().arg("test").args(RUST_PACKAGES).arg("--doc").run()
    } else {
        println!("cargo-nextest not installed, using cargo test");
        Cmd::cargo().arg("test").args(RUST_PACKAGES).run()
    }
}
