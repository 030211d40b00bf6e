//! `cargo xtask miri`: tests under miri (nightly), which catches undefined
//! behavior in the unsafe parts. Two lanes, run in order:
//!
//! 1. `boc-core`'s unit tests (the request queue), with strict provenance
//!    checked (`-Zmiri-strict-provenance`) under the default Stacked Borrows
//!    model: the queue's pointers must never round-trip through integers.
//! 2. A few facade programs, end to end through the worker pool and the
//!    main queue (`tests/runtime_drop.rs`: a runtime dropped inside its own
//!    behavior and with work queued; `tests/small_programs.rs`: ordinary
//!    cowns, pinned values dropped at home, holds), under **Tree Borrows**
//!    (`-Zmiri-tree-borrows`). Stacked Borrows stops inside a dependency:
//!    crossbeam-epoch (under crossbeam-deque, the pool's queues) turns an
//!    integer back into a pointer (`internal.rs`, `&*local_ptr` in 0.9.21),
//!    which Stacked Borrows reports as a retag of a tag that does not exist;
//!    for the same reason this lane cannot check strict provenance. It also
//!    needs `-Zmiri-ignore-leaks` (a runtime dropped on a worker detaches its
//!    threads; pinned values dropped off their thread are leaked on
//!    purpose) and `-Zmiri-disable-isolation` (the pool reads the clock).
//!
//! Optional tooling: when miri is not installed this says how to get it and
//! succeeds. A `MIRIFLAGS` set in the environment replaces both lanes' flags
//! (set it empty to drop them; the facade lane then fails in crossbeam-epoch).
//! Both lanes take a few seconds of interpretation after the build.

use std::env;

use crate::process::{Cmd, Result};

/// `MIRIFLAGS` of the `boc-core` lane when the environment does not set it.
const CORE_MIRIFLAGS: &str = "-Zmiri-strict-provenance";

/// `MIRIFLAGS` of the facade lane when the environment does not set it (see
/// the module docs for why each is needed).
const FACADE_MIRIFLAGS: &str = "-Zmiri-tree-borrows -Zmiri-ignore-leaks -Zmiri-disable-isolation";

/// The facade's integration tests sized for miri.
const FACADE_TESTS: [&str; 3] = ["engine", "runtime_drop", "small_programs"];

/// The rustup command that installs miri.
const INSTALL_ARGS: [&str; 6] = ["component", "add", "--toolchain", "nightly", "miri", "rust-src"];

/// Runs both lanes under miri, installing it first if `install`; `test_args`
/// go to each `cargo miri test` (for example `-- drop` to filter).
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
    // The unit tests (`--lib`): they are sized for miri; the proptest and
    // the doc tests spawn far more work than an interpreter gets through.
    miri_test(CORE_MIRIFLAGS).args(["-p", "boc-core", "--lib"]).args(test_args).run()?;
    let mut facade = miri_test(FACADE_MIRIFLAGS).args(["-p", "boc"]);
    for test in FACADE_TESTS {
        facade = facade.args(["--test", test]);
    }
    facade.args(test_args).run()
}

/// `cargo +nightly miri test` with `flags` as `MIRIFLAGS`, unless the
/// environment sets it.
fn miri_test(flags: &str) -> Cmd {
    let mut cmd = Cmd::new("cargo");
    if env::var_os("MIRIFLAGS").is_none() {
        cmd = cmd.env("MIRIFLAGS", flags);
    }
    cmd.args(["+nightly", "miri", "test"])
}
