//! `cargo xtask loom`: the loom models, that is the `loom_*` unit tests compiled with
//! `--cfg boc_loom`, of every crate that has them.
//!
//! They run in release with debug assertions and overflow checks on (loom is slow
//! unoptimized, and the models lean on `debug_assert!`), in their own target dir
//! (`<target>/loom`) so the changed `RUSTFLAGS` do not invalidate the normal build.
//! Always with a preemption bound: unbounded exploration does not finish.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

use crate::process::{Cmd, Result};

/// Preemption bound of `cargo xtask loom`; `cargo xtask test` uses 2 to stay quick.
pub(crate) const DEFAULT_PREEMPTIONS: u32 = 3;

/// Crates that may hold loom models (directory under `crates/` = package name).
const CANDIDATE_CRATES: [&str; 3] = ["boc-core", "boc-sched", "boc-pin"];

/// Runs the models of every crate whose sources contain them; `harness_args` go to
/// the libtest harness (after `--`), for example a narrower name filter.
pub(crate) fn run(root: &Path, preemptions: u32, harness_args: &[String]) -> Result {
    let crates = crates_with_models(root);
    if crates.is_empty() {
        println!("loom: no crate has loom_ models yet (cfg(boc_loom) + fn loom_*), skipped");
        return Ok(());
    }
    println!("loom: models in {}, preemption bound {preemptions}", crates.join(", "));
    let mut rustflags = env::var("RUSTFLAGS").unwrap_or_default();
    if !rustflags.is_empty() {
        rustflags.push(' ');
    }
    rustflags.push_str("--cfg boc_loom");
    let mut cmd = Cmd::cargo()
        .env("RUSTFLAGS", rustflags)
        .env("LOOM_MAX_PREEMPTIONS", preemptions.to_string())
        .env("CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS", "true")
        .env("CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS", "true")
        .env("CARGO_TARGET_DIR", target_dir(root).join("loom"))
        .args(["test", "--release"]);
    for name in &crates {
        cmd = cmd.args(["-p", name]);
    }
    cmd = cmd.args(["--lib", "loom_"]);
    if !harness_args.is_empty() {
        cmd = cmd.arg("--").args(harness_args);
    }
    cmd.run()
}

/// The candidate crates whose `src/` mentions `boc_loom` and defines a `fn loom_…`.
fn crates_with_models(root: &Path) -> Vec<&'static str> {
    CANDIDATE_CRATES
        .into_iter()
        .filter(|name| {
            let mut sources = String::new();
            append_rust_sources(&root.join("crates").join(name).join("src"), &mut sources);
            sources.contains("boc_loom") && sources.contains("fn loom_")
        })
        .collect()
}

/// Appends the text of every `.rs` file under `dir` (missing or unreadable: skipped).
fn append_rust_sources(dir: &Path, sources: &mut String) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            append_rust_sources(&path, sources);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            if let Ok(text) = fs::read_to_string(&path) {
                sources.push_str(&text);
                sources.push('\n');
            }
        }
    }
}

/// The cargo target dir in effect: `$CARGO_TARGET_DIR`, else `<root>/target`.
pub(crate) fn target_dir(root: &Path) -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR").filter(|dir| !dir.is_empty()) {
        Some(dir) => root.join(dir), // an absolute dir replaces `root`
        None => root.join("target"),
    }
}
