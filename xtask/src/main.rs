//! `cargo xtask`: the developer tasks of the boc workspace, one binary with
//! subcommands and no dependencies (run `cargo xtask help`).
//!
//! Every command runs from the repository root, whatever the current directory.
//! Arguments are parsed by hand: options of xtask come first, anything after `--`
//! is passed on to the program a command runs.

mod bench;
mod demo;
mod loom;
mod miri;
mod process;
mod pytest;
mod python;
mod suite;
mod tidy;

use std::env;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::process::Result;

const USAGE: &str = "\
cargo xtask: developer tasks of the boc workspace

usage: cargo xtask <command> [options] [-- <args passed on>]

commands:
  demo [-- ARGS]                  the main job: cargo run --release --example demo
                                  (crates/boc-py/examples/demo.py instead, once it exists)
  test                            everything CI checks, in order, stopping at the first
                                  failure: fmt, clippy, Rust tests (nextest + doc tests,
                                  or cargo test), loom models (bound 2), miri (skipped
                                  when not installed), tidy, the Python suite on
                                  python3 built without PyO3's deferred decrefs, Python tests
                                  (pytest on python3 and on each of pyenv's 3.12 and 3.13,
                                  /opt/python-ft's free-threaded 3.13t and /opt/python-asan's
                                  debug + AddressSanitizer 3.13 that is found, each in its
                                  own venv: .venv, .venv-3.12, ..., .venv-asan)
  fuzz [--examples N] [-- ARGS]   the model-based test (crates/boc-py/tests/test_model.py)
                                  with N Hypothesis examples (default 10000) on each
                                  interpreter, in pytest runs of at most 250 examples with
                                  seeds time+0, time+1, ... (the command lines show them), no
                                  practical timeout; prints per interpreter how many examples
                                  ran and how long it took; ARGS go to pytest
  soak [--runs N] [-- ARGS]       the racy subprocess tests (test_exit.py, test_regressions.py)
                                  with each case repeated N times (default 20; 2 in test) on
                                  each interpreter, timeouts scaled to match; ARGS go to pytest
  loom [--preemptions N] [-- ARGS]
                                  the loom_* models of boc-core/boc-sched/boc-pin, built
                                  with --cfg boc_loom in release (default bound 3); ARGS go
                                  to the test harness
  miri [--install] [-- ARGS]      under miri (nightly): boc-core's unit tests (Stacked
                                  Borrows, strict provenance), then the facade's
                                  runtime_drop and small_programs tests (Tree Borrows);
                                  --install adds the component first; skipped when miri
                                  is missing
  bench [--no-write] [-- ARGS]    cargo bench --bench runtime, then writes its section of
                                  BENCHMARKS.md (not with --no-write); ARGS go to the
                                  benchmark (--quick)
  bench --python [--no-write] [-- ARGS]
                                  the Python benchmarks: boc vs bocpy on CPython 3.12, and
                                  2 workers vs 1 on the free-threaded 3.13t, then writes the
                                  Python section of BENCHMARKS.md (not with --no-write);
                                  ARGS go to crates/boc-py/benches/run.py (--quick,
                                  --repeats N, --reference-boc-python PY, ...)
  tidy                            house-style checks: //! module docs, atomics only in the
                                  shims, one spelling, SAFETY comments on unsafe
  ci                              what .ci/run runs after its setup (currently: test)
  help                            this text

environment:
  BOC_PYTHONS=NAMES               limits the Python tests, fuzz and soak to some
                                  interpreters, named in a comma-separated list among
                                  python3, 3.12, 3.13, 3.13t, asan;
                                  e.g. BOC_PYTHONS=python3 cargo xtask test
  BOC_PYTHON=PATH                 the interpreter .venv is created from (default python3)
  VIRTUAL_ENV=DIR                 the environment used in place of .venv
";

/// A parsed command line.
#[derive(Debug, PartialEq, Eq)]
enum Task {
    Help,
    Test,
    Ci,
    Tidy,
    Demo { demo_args: Vec<String> },
    Bench { python: bool, write: bool, bench_args: Vec<String> },
    Loom { preemptions: u32, harness_args: Vec<String> },
    Fuzz { examples: u32, pytest_args: Vec<String> },
    Soak { runs: u32, pytest_args: Vec<String> },
    Miri { install: bool, test_args: Vec<String> },
}

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let outcome = parse(&args).and_then(run);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(task: Task) -> Result {
    let root = project_root();
    env::set_current_dir(&root).map_err(|err| format!("cannot enter the repository root {}: {err}", root.display()))?;
    match task {
        Task::Help => {
            print!("{USAGE}");
            Ok(())
        }
        Task::Test | Task::Ci => suite::run(&root).map_err(|err| format!("xtask test: {err}")),
        Task::Tidy => tidy::run(&root),
        Task::Demo { demo_args } => demo::run(&root, &demo_args),
        Task::Bench { python, write, bench_args } => {
            let section = if python { bench::Section::Python } else { bench::Section::Rust };
            bench::run(&root, section, write, &bench_args)
        }
        Task::Loom { preemptions, harness_args } => loom::run(&root, preemptions, &harness_args),
        Task::Fuzz { examples, pytest_args } => pytest::fuzz(&root, examples, &pytest_args),
        Task::Soak { runs, pytest_args } => pytest::soak(&root, runs, &pytest_args),
        Task::Miri { install, test_args } => miri::run(install, &test_args),
    }
}

/// The workspace root: the parent of xtask's manifest dir. `cargo run` sets
/// `CARGO_MANIFEST_DIR` at run time; the compile-time value covers a direct launch.
pub(crate) fn project_root() -> PathBuf {
    let manifest_dir =
        env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest_dir.parent().map(PathBuf::from).unwrap_or(manifest_dir)
}

/// Parses the arguments after `cargo xtask`.
fn parse(args: &[String]) -> Result<Task> {
    let Some((command, rest)) = args.split_first() else {
        return Ok(Task::Help);
    };
    let (options, passed_on) = match rest.iter().position(|arg| arg == "--") {
        Some(idx) => (&rest[..idx], rest[idx + 1..].to_vec()),
        None => (rest, Vec::new()),
    };
    if options.iter().any(|arg| arg == "-h" || arg == "--help") {
        return Ok(Task::Help);
    }
    let takes_passed_on = matches!(command.as_str(), "demo" | "bench" | "loom" | "miri" | "fuzz" | "soak");
    if !passed_on.is_empty() && !takes_passed_on {
        return Err(format!("`{command}` takes no arguments after `--`"));
    }
    let mut options = options.iter();
    let task = match command.as_str() {
        "help" | "-h" | "--help" => Task::Help,
        "test" => Task::Test,
        "ci" => Task::Ci,
        "tidy" => Task::Tidy,
        "demo" => Task::Demo { demo_args: passed_on },
        "bench" => {
            let (mut python, mut write) = (false, true);
            for option in options.by_ref() {
                match option.as_str() {
                    "--python" => python = true,
                    "--no-write" => write = false,
                    _ => return Err(unexpected(command, option)),
                }
            }
            Task::Bench { python, write, bench_args: passed_on }
        }
        "loom" => {
            let mut preemptions = loom::DEFAULT_PREEMPTIONS;
            while let Some(option) = options.next() {
                preemptions = number_option(command, "--preemptions", option, &mut options, 0)?;
            }
            Task::Loom { preemptions, harness_args: passed_on }
        }
        "fuzz" => {
            let mut examples = pytest::DEFAULT_FUZZ_EXAMPLES;
            while let Some(option) = options.next() {
                examples = number_option(command, "--examples", option, &mut options, 1)?;
            }
            Task::Fuzz { examples, pytest_args: passed_on }
        }
        "soak" => {
            let mut runs = pytest::DEFAULT_SOAK_RUNS;
            while let Some(option) = options.next() {
                runs = number_option(command, "--runs", option, &mut options, 1)?;
            }
            Task::Soak { runs, pytest_args: passed_on }
        }
        "miri" => {
            let mut install = false;
            for option in options.by_ref() {
                match option.as_str() {
                    "--install" => install = true,
                    _ => return Err(unexpected(command, option)),
                }
            }
            Task::Miri { install, test_args: passed_on }
        }
        _ => {
            return Err(format!("unknown command `{command}`; run `cargo xtask help`"));
        }
    };
    match options.next() {
        Some(option) => Err(unexpected(command, option)),
        None => Ok(task),
    }
}

/// The value of `option` when it is `name N` (N taken from `rest`) or `name=N`: a whole
/// number of at least `min`. Any other option is an error.
fn number_option<'a>(
    command: &str,
    name: &str,
    option: &str,
    rest: &mut impl Iterator<Item = &'a String>,
    min: u32,
) -> Result<u32> {
    let value = match option.strip_prefix(name) {
        Some("") => rest.next().map(String::as_str),
        Some(inline) if inline.starts_with('=') => inline.strip_prefix('='),
        _ => return Err(unexpected(command, option)),
    };
    value.and_then(|value| value.parse().ok()).filter(|number| *number >= min).ok_or_else(|| {
        let at_least = if min == 0 { String::new() } else { format!(" of at least {min}") };
        format!("`{name}` takes a whole number{at_least}, e.g. `{name} {}`", min.max(2))
    })
}

fn unexpected(command: &str, option: &str) -> String {
    format!("unexpected argument `{option}` for `{command}`; run `cargo xtask help`")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_line(line: &str) -> Result<Task> {
        let args: Vec<String> = line.split_whitespace().map(String::from).collect();
        parse(&args)
    }

    #[test]
    fn commands_and_options() {
        assert_eq!(parse_line(""), Ok(Task::Help));
        assert_eq!(parse_line("test"), Ok(Task::Test));
        assert_eq!(parse_line("ci --help"), Ok(Task::Help));
        assert_eq!(parse_line("loom"), Ok(Task::Loom { preemptions: loom::DEFAULT_PREEMPTIONS, harness_args: vec![] }));
        assert_eq!(
            parse_line("loom --preemptions 2 -- queue --nocapture"),
            Ok(Task::Loom { preemptions: 2, harness_args: vec!["queue".into(), "--nocapture".into()] })
        );
        assert_eq!(parse_line("loom --preemptions=4"), Ok(Task::Loom { preemptions: 4, harness_args: vec![] }));
        assert_eq!(parse_line("miri --install"), Ok(Task::Miri { install: true, test_args: vec![] }));
        assert_eq!(
            parse_line("bench -- --quick"),
            Ok(Task::Bench { python: false, write: true, bench_args: vec!["--quick".into()] })
        );
        assert_eq!(
            parse_line("bench --python -- --quick"),
            Ok(Task::Bench { python: true, write: true, bench_args: vec!["--quick".into()] })
        );
        assert_eq!(
            parse_line("bench --no-write --python"),
            Ok(Task::Bench { python: true, write: false, bench_args: vec![] })
        );
        assert_eq!(parse_line("fuzz"), Ok(Task::Fuzz { examples: pytest::DEFAULT_FUZZ_EXAMPLES, pytest_args: vec![] }));
        assert_eq!(
            parse_line("fuzz --examples 1000 -- -x"),
            Ok(Task::Fuzz { examples: 1000, pytest_args: vec!["-x".into()] })
        );
        assert_eq!(parse_line("fuzz --examples=50"), Ok(Task::Fuzz { examples: 50, pytest_args: vec![] }));
        assert_eq!(parse_line("soak"), Ok(Task::Soak { runs: pytest::DEFAULT_SOAK_RUNS, pytest_args: vec![] }));
        assert_eq!(
            parse_line("soak --runs 5 -- -k daemon"),
            Ok(Task::Soak { runs: 5, pytest_args: vec!["-k".into(), "daemon".into()] })
        );
    }

    #[test]
    fn mistakes_are_errors() {
        assert!(parse_line("tset").is_err());
        assert!(parse_line("test --fast").is_err());
        assert!(parse_line("test -- x").is_err());
        assert!(parse_line("loom --preemptions").is_err());
        assert!(parse_line("loom --preemptions two").is_err());
        assert!(parse_line("loom --preemption 2").is_err());
        assert!(parse_line("bench --quick").is_err());
        assert!(parse_line("fuzz --examples 0").is_err());
        assert!(parse_line("fuzz --examples").is_err());
        assert!(parse_line("fuzz --runs 5").is_err());
        assert!(parse_line("soak --runs=-1").is_err());
        assert!(parse_line("soak --examples 5").is_err());
    }
}
