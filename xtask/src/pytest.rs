//! pytest against the installed binding, on every selected interpreter: the Python
//! step of `cargo xtask test`, `cargo xtask fuzz` (the model-based test, long) and
//! `cargo xtask soak` (the racy subprocess tests, many times over).
//!
//! | run    | test files (`crates/boc-py/tests/`)      | set for the tests               | per-test timeout                       |
//! |--------|------------------------------------------|---------------------------------|----------------------------------------|
//! | `test` | every `test_*.py`                        | nothing: the tests' defaults    | 120 s (300 s on `asan`)                |
//! | `fuzz` | `test_model.py`, in rounds of ≤ 250      | `BOC_MODEL_EXAMPLES=N` (10000)  | 2 s per example, at least an hour      |
//! | `soak` | `test_exit.py`, `test_regressions.py`    | `BOC_REPEAT=N` (20)             | the `test` one × N/2                   |
//!
//! The tests' defaults are what CI runs: about 200 examples of the model and 2
//! repetitions of each racy case. Every run goes through the same two functions:
//! `on_each_interpreter` builds the binding into each interpreter's environment
//! (`python::prepare`), runs one pytest there, goes on after a failure so one run
//! shows every interpreter, and ends with a line per interpreter; `pytest` runs the
//! tests with warnings as errors, the per-test timeout and the reasons for skips, and
//! keeps pytest's output for that summary (pytest's closing line; for `fuzz`, the
//! Hypothesis statistics: how many examples ran).

use std::fs;
use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::process::{self, Result};
use crate::python::{self, BINDING_CRATE_DIR, Interpreter, Venv};

/// Examples of the model-based test in `cargo xtask fuzz` when `--examples` is not given.
pub(crate) const DEFAULT_FUZZ_EXAMPLES: u32 = 10_000;

/// Repetitions of each racy case in `cargo xtask soak` when `--runs` is not given.
pub(crate) const DEFAULT_SOAK_RUNS: u32 = 20;

/// The model-based test, in the binding's tests folder.
const MODEL_TEST: &str = "test_model.py";

/// The environment variable `test_model.py` reads its `max_examples` from.
const EXAMPLES_VAR: &str = "BOC_MODEL_EXAMPLES";

/// The most examples one pytest process of `cargo xtask fuzz` runs. Hypothesis keeps
/// records of every example it ran, so a process's heap grows with each one, and on
/// the free-threaded build every full collection walks the whole heap, `gc.freeze()`d
/// objects included: the model collects several times per example, so one 10,000-example
/// process slowed down as it went (0.1 s per example at first, 0.34 s by the 400th, and
/// still unfinished after 2 hours), where rounds of this size keep each example's cost
/// near the first ones'.
const FUZZ_ROUND_EXAMPLES: u32 = 250;

/// The fuzz run's per-test timeout, per example: far above what an example takes (CI
/// runs about 200 in under a minute), so only a hang reaches it, and then pytest-timeout
/// shows where every thread was.
const FUZZ_SECONDS_PER_EXAMPLE: u32 = 2;

/// The fuzz run's per-test timeout for few examples.
const FUZZ_MIN_TIMEOUT_SECONDS: u32 = 3600;

/// The tests whose racy cases `cargo xtask soak` repeats, in the binding's tests folder.
const SOAK_TESTS: [&str; 2] = ["test_exit.py", "test_regressions.py"];

/// The environment variable that sets how many times those tests repeat a racy case.
const REPEAT_VAR: &str = "BOC_REPEAT";

/// How many times the racy cases repeat when `BOC_REPEAT` is not set, as in CI.
const NORMAL_REPEAT: u32 = 2;

/// The binding's tests folder, relative to the repository root.
fn tests_dir() -> PathBuf {
    Path::new(BINDING_CRATE_DIR).join("tests")
}

/// The `test_*.py` files of the binding crate's `tests/` folder.
fn test_files(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(root.join(tests_dir())) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            let name = path.file_name().map(|name| name.to_string_lossy()).unwrap_or_default();
            name.starts_with("test_") && name.ends_with(".py")
        })
        .collect();
    files.sort();
    files
}

/// The Python step of `cargo xtask test`: the whole suite on every selected
/// interpreter. Skipped while the binding has no tests.
pub(crate) fn run_tests(root: &Path) -> Result {
    if test_files(root).is_empty() {
        println!("python tests: none yet, skipped");
        return Ok(());
    }
    on_each_interpreter(root, "python tests", |interpreter, venv| {
        let run = pytest(interpreter, venv, &[tests_dir()], interpreter.test_timeout_seconds, &[], &[])?;
        Ok(run.closing_line)
    })
}

/// A step of `cargo xtask test`: the whole suite on the default interpreter with the
/// binding built without PyO3's list of deferred decrefs, so that a Python reference
/// that boc drops detached aborts the run (see
/// [`Venv::install_binding_without_reference_pool`]). The default build is reinstalled
/// afterwards (also when the run failed).
pub(crate) fn run_without_reference_pool(root: &Path) -> Result {
    if test_files(root).is_empty() {
        println!("python tests without the reference pool: none yet, skipped");
        return Ok(());
    }
    let venv = python::primary_venv(root)?;
    venv.install_binding_without_reference_pool(root)?;
    let run = pytest(&python::PRIMARY, &venv, &[tests_dir()], python::PRIMARY.test_timeout_seconds, &[], &[]);
    let restored = python::primary_venv(root).map(drop);
    let run = run?;
    restored?;
    println!("python tests without the reference pool: {}", run.closing_line);
    Ok(())
}

/// `cargo xtask fuzz`: the model-based test with `examples` examples on every selected
/// interpreter, in rounds of at most [`FUZZ_ROUND_EXAMPLES`] (see there why), each its
/// own pytest with its own Hypothesis seed; `pytest_args` go to pytest. An
/// interpreter's run stops at its first failing round (Hypothesis has shrunk the
/// failure by then, and the seed in the printed command line replays it).
pub(crate) fn fuzz(root: &Path, examples: u32, pytest_args: &[String]) -> Result {
    let model = tests_dir().join(MODEL_TEST);
    if !root.join(&model).is_file() {
        return Err(format!(
            "{} does not exist yet: `cargo xtask fuzz` runs that model-based test (Hypothesis) and has nothing to run \
             without it",
            model.display()
        ));
    }
    let task = format!("fuzz ({examples} examples)");
    let targets = [model];
    let base_seed = fuzz_base_seed();
    on_each_interpreter(root, &task, |interpreter, venv| {
        let mut output = String::new();
        let mut closing_lines = Vec::new();
        for (round, round_examples) in fuzz_rounds(examples).into_iter().enumerate() {
            let seed = base_seed.wrapping_add(u64::try_from(round).unwrap_or(u64::MAX));
            let timeout_seconds = round_examples.saturating_mul(FUZZ_SECONDS_PER_EXAMPLE).max(FUZZ_MIN_TIMEOUT_SECONDS);
            let mut args = vec!["--hypothesis-show-statistics".to_owned(), format!("--hypothesis-seed={seed}")];
            args.extend_from_slice(pytest_args);
            let round_examples = round_examples.to_string();
            let run = pytest(interpreter, venv, &targets, timeout_seconds, &[(EXAMPLES_VAR, &round_examples)], &args)
                .map_err(|err| format!("round {} (seed {seed}): {err}", round + 1))?;
            output.push_str(&run.output);
            closing_lines.push(run.closing_line);
        }
        let statistics =
            hypothesis_statistics(&output).unwrap_or_else(|| "no Hypothesis statistics in pytest's output".to_owned());
        Ok(format!("{} rounds ({}); {statistics}", closing_lines.len(), summarize_closing_lines(&closing_lines)))
    })
}

/// The sizes of the rounds a fuzz run of `examples` examples is cut into: as equal as
/// possible, none above [`FUZZ_ROUND_EXAMPLES`].
fn fuzz_rounds(examples: u32) -> Vec<u32> {
    let rounds = examples.div_ceil(FUZZ_ROUND_EXAMPLES).max(1);
    (0..rounds).map(|round| examples / rounds + u32::from(round < examples % rounds)).collect()
}

/// The first round's Hypothesis seed: the time, so that every run draws new programs;
/// round `k` uses this plus `k`.
fn fuzz_base_seed() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|since| since.as_secs()).unwrap_or_default()
}

/// pytest's closing lines of several rounds, said once when they agree
/// (`1 passed × 40`), else listed.
fn summarize_closing_lines(lines: &[String]) -> String {
    let without_time = |line: &str| line.split(" in ").next().unwrap_or(line).to_owned();
    match lines.first() {
        Some(first) if lines.iter().all(|line| without_time(line) == without_time(first)) => {
            format!("{} × {}", without_time(first), lines.len())
        }
        _ => lines.join("; "),
    }
}

/// `cargo xtask soak`: the racy subprocess tests with each case repeated `runs` times
/// on every selected interpreter; `pytest_args` go to pytest.
pub(crate) fn soak(root: &Path, runs: u32, pytest_args: &[String]) -> Result {
    let files: Vec<PathBuf> = SOAK_TESTS.iter().map(|name| tests_dir().join(name)).collect();
    let missing: Vec<String> =
        files.iter().filter(|file| !root.join(file).is_file()).map(|file| file.display().to_string()).collect();
    if !missing.is_empty() {
        return Err(format!(
            "`cargo xtask soak` runs {}, and {} does not exist yet",
            SOAK_TESTS.join(" and "),
            missing.join(" and ")
        ));
    }
    let task = format!("soak ({REPEAT_VAR}={runs})");
    on_each_interpreter(root, &task, |interpreter, venv| {
        // A normal run repeats each case NORMAL_REPEAT times within the normal timeout.
        let timeout_seconds = interpreter.test_timeout_seconds.saturating_mul(runs.div_ceil(NORMAL_REPEAT).max(1));
        let runs = runs.to_string();
        let run = pytest(interpreter, venv, &files, timeout_seconds, &[(REPEAT_VAR, &runs)], pytest_args)?;
        Ok(run.closing_line)
    })
}

/// Runs `task` on every interpreter that `BOC_PYTHONS` selects and that is found: the
/// binding is built and installed into its environment, then `run` gets it and returns
/// a one-line account for the summary. Every interpreter runs even after a failure;
/// the whole fails if any did.
fn on_each_interpreter(root: &Path, task: &str, run: impl Fn(&Interpreter, &Venv) -> Result<String>) -> Result {
    let interpreters = python::selected()?;
    let mut verdicts = Vec::new();
    let mut failed = Vec::new();
    for interpreter in interpreters {
        println!();
        println!("=== {task} on {} ===", interpreter.name);
        let started = Instant::now();
        let verdict = match python::prepare(root, interpreter) {
            Ok(None) => {
                let verdict = format!("skipped: not found ({})", interpreter.search_description());
                println!("{verdict}");
                verdict
            }
            Ok(Some(venv)) => {
                let built = started.elapsed();
                match run(interpreter, &venv) {
                    Ok(account) => format!("passed: {account} (build {})", process::seconds(built)),
                    Err(err) => {
                        println!("=== {task} on {}: FAILED: {err} ===", interpreter.name);
                        failed.push(interpreter.name);
                        format!("FAILED: {err}")
                    }
                }
            }
            Err(err) => {
                println!("=== {task} on {}: FAILED: {err} ===", interpreter.name);
                failed.push(interpreter.name);
                "FAILED while building or importing boc (the error is above)".to_owned()
            }
        };
        verdicts.push((interpreter.name, verdict));
    }

    println!();
    println!("{task} by interpreter:");
    for (name, verdict) in &verdicts {
        println!("  {name:<8} {verdict}");
    }
    if failed.is_empty() { Ok(()) } else { Err(format!("{task} failed on {}", failed.join(", "))) }
}

/// What a pytest run printed.
struct PytestRun {
    /// Everything, for statistics that only appear in the text.
    output: String,
    /// pytest's last line, e.g. `306 passed, 7 skipped in 22.77s`.
    closing_line: String,
}

/// Runs pytest in `interpreter`'s `venv` on `targets` with warnings as errors,
/// `timeout_seconds` per test, the reasons for skips and failures at the end, what the
/// interpreter needs (`Interpreter::pytest_args`), `test_env` set and `extra_args` last.
/// The error carries pytest's closing line.
fn pytest(
    interpreter: &Interpreter,
    venv: &Venv,
    targets: &[PathBuf],
    timeout_seconds: u32,
    test_env: &[(&str, &str)],
    extra_args: &[String],
) -> Result<PytestRun> {
    // `-u`: pytest's output reaches the pipe to xtask as it is written (and only pytest's
    // own: PYTHONUNBUFFERED would leak into the subprocesses the tests start).
    let mut cmd = venv.python().envs(test_env.iter().copied()).args(["-u", "-m", "pytest", "-W", "error", "-ra"]);
    cmd = cmd.arg(format!("--timeout={timeout_seconds}")).args(interpreter.pytest_args());
    if io::stdout().is_terminal() {
        // pytest's colors, which it would pick by itself if it wrote to the terminal.
        cmd = cmd.arg("--color=yes");
    }
    let (status, output) = cmd.args(targets).args(extra_args).run_teed()?;
    match (status.success(), closing_line(&output)) {
        (true, Some(closing_line)) => Ok(PytestRun { output, closing_line }),
        (true, None) => Ok(PytestRun { output, closing_line: "pytest printed no summary".to_owned() }),
        (false, Some(closing_line)) => Err(format!("pytest failed: {closing_line}")),
        // ASan's reports and fatal errors end the process before pytest can sum up.
        (false, None) => Err(format!("pytest ended before its summary ({status}): a crash? the report is above")),
    }
}

/// pytest's closing line without its rule (`=== 3 passed in 1.2s ===` → `3 passed in 1.2s`).
fn closing_line(output: &str) -> Option<String> {
    without_colors(output).lines().rev().find_map(|line| {
        let line = line.trim();
        let inner = line.strip_prefix("==")?.strip_suffix("==")?.trim_matches('=').trim();
        (inner.contains(" in ") && inner.starts_with(|c: char| c.is_ascii_digit() || c == 'n'))
            .then(|| inner.to_owned())
    })
}

/// What `--hypothesis-show-statistics` said, in one line: how many examples ran (passing
/// or failing), in each phase (summed over the tests of the run), and why Hypothesis
/// stopped, e.g.
/// `10000 examples: generate phase 10000 passing, 0 failing, 12 invalid; stopped because
/// settings.max_examples=10000`.
fn hypothesis_statistics(output: &str) -> Option<String> {
    // Phase name → passing, failing, invalid, in first-seen order.
    let mut phases: Vec<(String, [u64; 3])> = Vec::new();
    let mut stopped_because = Vec::new();
    let mut phase = String::new();
    for line in without_colors(output).lines() {
        let line = line.trim().trim_start_matches("- ");
        if let Some(rest) = line.strip_prefix("during ") {
            phase = rest.split(" phase").next().unwrap_or(rest).to_owned();
        } else if let [Some(passing), Some(failing), Some(invalid)] =
            [" passing", " failing", " invalid"].map(|word| count_before(line, word))
        {
            let idx = phases.iter().position(|(name, _)| *name == phase).unwrap_or_else(|| {
                phases.push((phase.clone(), [0; 3]));
                phases.len() - 1
            });
            for (sum, count) in phases[idx].1.iter_mut().zip([passing, failing, invalid]) {
                *sum += count;
            }
        } else if let Some(reason) = line.strip_prefix("Stopped because ") {
            stopped_because.push(reason.to_owned());
        }
    }
    if phases.is_empty() {
        return None;
    }
    // Invalid test cases (rejected by a filter or `assume`) do not count as examples.
    let total: u64 = phases.iter().map(|(_, [passing, failing, _])| passing + failing).sum();
    let mut account = format!("{total} examples:");
    for (idx, (name, [passing, failing, invalid])) in phases.iter().enumerate() {
        let separator = if idx == 0 { "" } else { "," };
        account = format!("{account}{separator} {name} phase {passing} passing, {failing} failing, {invalid} invalid");
    }
    if !stopped_because.is_empty() {
        stopped_because.dedup();
        account = format!("{account}; stopped because {}", stopped_because.join(", "));
    }
    Some(account)
}

/// The number written just before `word` in `line` (`"3 passing"`, `", and 0 invalid"`).
fn count_before(line: &str, word: &str) -> Option<u64> {
    let before = &line[..line.find(word)?];
    let digits_start = before.rfind(|c: char| !c.is_ascii_digit()).map_or(0, |idx| idx + 1);
    before[digits_start..].parse().ok()
}

/// `text` without the ANSI color sequences (`ESC [ ... m`) of `--color=yes`.
fn without_colors(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // Skip to the end of the sequence: its final byte is a letter.
            chars.by_ref().find(char::is_ascii_alphabetic);
        } else {
            plain.push(c);
        }
    }
    plain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closing_line_of_pytest() {
        let output = "\
tests/test_a.py ..s                                                        [100%]
=========================== short test summary info ============================
SKIPPED [1] tests/test_a.py:3: no display
========================= 2 passed, 1 skipped in 0.12s =========================
";
        assert_eq!(closing_line(output).as_deref(), Some("2 passed, 1 skipped in 0.12s"));
        let colored = "\u{1b}[31m=== \u{1b}[31m\u{1b}[1m1 failed\u{1b}[0m, \u{1b}[32m2 passed\u{1b}[0m\u{1b}[31m in 3.40s\u{1b}[0m\u{1b}[31m ===\u{1b}[0m\n";
        assert_eq!(closing_line(colored).as_deref(), Some("1 failed, 2 passed in 3.40s"));
        assert_eq!(closing_line("==== no tests ran in 0.01s ====").as_deref(), Some("no tests ran in 0.01s"));
        assert_eq!(closing_line("=== short test summary info ===\n"), None);
    }

    #[test]
    fn fuzz_rounds_are_even_and_bounded() {
        assert_eq!(fuzz_rounds(1), vec![1]);
        assert_eq!(fuzz_rounds(250), vec![250]);
        assert_eq!(fuzz_rounds(251), vec![126, 125]);
        assert_eq!(fuzz_rounds(10_000), vec![250; 40]);
        for examples in [1, 7, 249, 250, 251, 999, 1000, 10_001] {
            let rounds = fuzz_rounds(examples);
            assert_eq!(rounds.iter().sum::<u32>(), examples);
            assert!(rounds.iter().all(|&round| (1..=FUZZ_ROUND_EXAMPLES).contains(&round)), "{rounds:?}");
            assert!(rounds.iter().max().unwrap() - rounds.iter().min().unwrap() <= 1, "{rounds:?}");
        }
    }

    #[test]
    fn closing_lines_of_rounds() {
        let lines = ["1 passed in 81.02s (0:01:21)".to_owned(), "1 passed in 79.50s (0:01:19)".to_owned()];
        assert_eq!(summarize_closing_lines(&lines), "1 passed × 2");
        let lines = ["1 passed in 81.02s".to_owned(), "1 failed in 9.50s".to_owned()];
        assert_eq!(summarize_closing_lines(&lines), "1 passed in 81.02s; 1 failed in 9.50s");
    }

    #[test]
    fn hypothesis_statistics_in_both_wordings() {
        // Hypothesis 6.1xx.
        let output = "\
============================= Hypothesis Statistics ==============================
crates/boc-py/tests/test_model.py::TestModel::runTest:

  - during reuse phase (0.50 seconds):
    - Typical runtimes: ~ 5-9 ms, of which < 1ms in data generation
    - 3 passing, 0 failing, and 0 invalid test cases

  - during generate phase (812.31 seconds):
    - Typical runtimes: ~ 40-90 ms, of which ~ 1-2 ms in data generation
    - 9997 passing, 0 failing, and 12 invalid test cases
    - Events:
      * 12.00%, Retried draw from integers(0, 3) to satisfy filter

  - Stopped because settings.max_examples=10000


========================= 1 passed in 813.02s (0:13:33) ==========================
";
        assert_eq!(
            hypothesis_statistics(output).as_deref(),
            Some(
                "10000 examples: reuse phase 3 passing, 0 failing, 0 invalid, generate phase 9997 passing, 0 \
                 failing, 12 invalid; stopped because settings.max_examples=10000"
            )
        );
        // Older releases.
        let output = "  - during generate phase (1.00 seconds):\n    - 200 passing examples, 1 failing examples, 0 invalid examples\n";
        assert_eq!(
            hypothesis_statistics(output).as_deref(),
            Some("201 examples: generate phase 200 passing, 1 failing, 0 invalid")
        );
        assert_eq!(hypothesis_statistics("=== 1 passed in 0.1s ==="), None);
    }
}
