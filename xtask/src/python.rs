//! The Python side: the interpreters the binding is tested on, one virtual
//! environment per interpreter, building `boc-py` into it with maturin, and the driver
//! of `cargo xtask bench --python`. What runs pytest in those environments is in
//! `pytest`.
//!
//! The interpreters (`INTERPRETERS`), each with its own environment:
//!
//! | name      | interpreter                                          | environment                    |
//! |-----------|------------------------------------------------------|--------------------------------|
//! | `python3` | `$BOC_PYTHON`, else `python3` from `PATH`            | `$VIRTUAL_ENV`, else `.venv`   |
//! | `3.12`    | newest `$PYENV_ROOT/versions/3.12.N/bin/python3`     | `.venv-3.12`                   |
//! | `3.13`    | newest `$PYENV_ROOT/versions/3.13.N/bin/python3`     | `.venv-3.13`                   |
//! | `3.13t`   | `/opt/python-ft/bin/python3.13t` (free-threaded)     | `.venv-3.13t`                  |
//! | `asan`    | `/opt/python-asan/bin/python3.13` (debug + ASan)     | `.venv-asan`                   |
//!
//! `PYENV_ROOT` defaults to `~/.pyenv`; the versions folder is read directly, so the
//! `pyenv` shim is not needed. The free-threaded and the AddressSanitizer interpreters
//! are the ones `../shared/tools/build-python.sh ft` and `... asan` build. An
//! interpreter that is not found is skipped, not failed; `BOC_PYTHONS=python3,3.13t`
//! limits a run to the named ones.
//!
//! The `asan` interpreter is a debug build (`Py_DEBUG`: refcount and C-API checks)
//! instrumented with AddressSanitizer. Every command run with it, from creating its
//! environment to pytest, gets `PYTHONMALLOC=malloc`, so that every object free goes
//! through ASan and a use after free is reported, and `detect_leaks=0` in
//! `ASAN_OPTIONS` (added to the options the caller set, unless they choose
//! `detect_leaks` themselves): CPython keeps memory alive at exit by design. The
//! extension needs nothing more: PyO3 reads `Py_DEBUG` from the interpreter's
//! configuration, and the ASan runtime comes with the interpreter binary (linked to
//! `libasan`), so no `LD_PRELOAD` is needed. The Rust code is not instrumented; what
//! the lane checks is how the binding treats Python objects. pytest captures output
//! only at the `sys` level there (`--capture=sys`), so that ASan's report, written to
//! file descriptor 2 by a dying process, reaches the terminal.
//!
//! An environment is created on first use (`<interpreter> -m venv`) and given
//! maturin, pytest, pytest-timeout and Hypothesis. Every run then builds the binding
//! into it with `maturin develop --release`, which targets the interpreter of
//! `$VIRTUAL_ENV`, and imports the installed extension with that environment's
//! `python` before anything else uses it: an extension built for another interpreter
//! would not import.

use std::env;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};

use crate::process::{Cmd, Result};

/// The binding crate, relative to the repository root.
pub(crate) const BINDING_CRATE_DIR: &str = "crates/boc-py";

/// The environment variable that limits the interpreters of a run to a comma- or
/// space-separated list of names, e.g. `BOC_PYTHONS=python3`.
pub(crate) const SELECT_VAR: &str = "BOC_PYTHONS";

/// The Python benchmark driver, relative to the repository root.
const BENCH_DRIVER: &str = "crates/boc-py/benches/run.py";

/// How long one test may run before pytest-timeout fails it, so a hang is a failure
/// with a traceback rather than a stuck CI job.
const TEST_TIMEOUT_SECONDS: u32 = 120;

/// The same for the ASan interpreter, a debug build under a sanitizer: it ran the
/// suite in 24 s against 10 s for the release 3.11 (its slowest test, the stress
/// test, took 10 s), and a test that does more work in Python slows down by more.
const SANITIZED_TEST_TIMEOUT_SECONDS: u32 = 300;

/// A Python package, by the name it is imported under and the name pip installs.
struct Package {
    import: &'static str,
    pip: &'static str,
}

/// What every environment needs for building and testing the binding (Hypothesis for
/// the model-based test).
const TOOLS: [Package; 4] = [
    Package { import: "maturin", pip: "maturin" },
    Package { import: "pytest", pip: "pytest" },
    Package { import: "pytest_timeout", pip: "pytest-timeout" },
    Package { import: "hypothesis", pip: "hypothesis" },
];

/// The runtime the benchmarks compare against, installed from PyPI.
const BOCPY: Package = Package { import: "bocpy", pip: "bocpy" };

/// Where an interpreter is looked for.
enum Source {
    /// `$BOC_PYTHON`, else `python3` from `PATH`; its environment is the active one
    /// (`$VIRTUAL_ENV`) if any. Always taken as present: creating its environment
    /// fails loudly if it is not.
    Default,
    /// The newest pyenv install of this minor version, e.g. `3.12` → `3.12.1`.
    Pyenv(&'static str),
    /// A fixed path.
    Fixed(&'static str),
}

/// An interpreter of the test matrix and where its environment lives.
pub(crate) struct Interpreter {
    /// The name used in banners and in `BOC_PYTHONS`.
    pub(crate) name: &'static str,
    /// The environment, relative to the repository root.
    venv_dir: &'static str,
    source: Source,
    /// Built with AddressSanitizer: every command run with it gets the environment
    /// of `run_env`, and pytest the arguments of `pytest_args`.
    address_sanitizer: bool,
    /// pytest-timeout's limit for one test of the suite.
    pub(crate) test_timeout_seconds: u32,
}

/// Every interpreter `cargo xtask test` runs the Python tests on, in order.
const INTERPRETERS: [&Interpreter; 5] = [&PRIMARY, &PYENV_3_12, &PYENV_3_13, &FREE_THREADED, &ADDRESS_SANITIZER];

/// The default interpreter: the demo's, and the first of the test matrix.
pub(crate) const PRIMARY: Interpreter = Interpreter::plain("python3", ".venv", Source::Default);

/// pyenv's CPython 3.12; the bocpy comparison runs on it (both sides, one environment).
const PYENV_3_12: Interpreter = Interpreter::plain("3.12", ".venv-3.12", Source::Pyenv("3.12"));

const PYENV_3_13: Interpreter = Interpreter::plain("3.13", ".venv-3.13", Source::Pyenv("3.13"));

/// The free-threaded CPython, built by `../shared/tools/build-python.sh ft`.
const FREE_THREADED: Interpreter =
    Interpreter::plain("3.13t", ".venv-3.13t", Source::Fixed("/opt/python-ft/bin/python3.13t"));

/// The debug + AddressSanitizer CPython 3.13, built by
/// `../shared/tools/build-python.sh asan`.
const ADDRESS_SANITIZER: Interpreter = Interpreter {
    name: "asan",
    venv_dir: ".venv-asan",
    source: Source::Fixed("/opt/python-asan/bin/python3.13"),
    address_sanitizer: true,
    test_timeout_seconds: SANITIZED_TEST_TIMEOUT_SECONDS,
};

impl Interpreter {
    /// An interpreter without a sanitizer, with the usual per-test timeout.
    const fn plain(name: &'static str, venv_dir: &'static str, source: Source) -> Interpreter {
        Interpreter { name, venv_dir, source, address_sanitizer: false, test_timeout_seconds: TEST_TIMEOUT_SECONDS }
    }

    /// The interpreter an environment is created from, or `None` if it is not
    /// installed.
    fn locate(&self) -> Option<OsString> {
        match self.source {
            Source::Default => Some(env::var_os("BOC_PYTHON").unwrap_or_else(|| "python3".into())),
            Source::Pyenv(minor) => {
                let versions = pyenv_root()?.join("versions");
                let names = fs::read_dir(&versions).ok()?.flatten().map(|entry| entry.file_name());
                let best = newest_release(minor, names.filter_map(|name| name.into_string().ok()))?;
                let python = versions.join(best).join("bin").join("python3");
                python.is_file().then(|| python.into_os_string())
            }
            Source::Fixed(path) => Path::new(path).is_file().then(|| path.into()),
        }
    }

    /// Where `locate` looks, for the "not found" message.
    pub(crate) fn search_description(&self) -> String {
        match self.source {
            Source::Default => "python3 on PATH".to_owned(),
            Source::Pyenv(minor) => {
                let root = pyenv_root().map_or_else(|| "$PYENV_ROOT".to_owned(), |root| root.display().to_string());
                format!("{root}/versions/{minor}.*/bin/python3")
            }
            Source::Fixed(path) => path.to_owned(),
        }
    }

    /// The environment variables every command run with this interpreter needs:
    /// none, except for the ASan build (see the module docs).
    fn run_env(&self) -> Vec<(OsString, OsString)> {
        if !self.address_sanitizer {
            return Vec::new();
        }
        let inherited = env::var("ASAN_OPTIONS").unwrap_or_default();
        vec![("PYTHONMALLOC".into(), "malloc".into()), ("ASAN_OPTIONS".into(), asan_options(&inherited).into())]
    }

    /// What pytest needs to be told on this interpreter. On the ASan build, capture at
    /// the `sys` level only: a report that ASan writes to file descriptor 2 as it kills
    /// the process would otherwise go to pytest's capture file and be lost with it.
    pub(crate) fn pytest_args(&self) -> &'static [&'static str] {
        if self.address_sanitizer { &["--capture=sys"] } else { &[] }
    }

    /// The environment's folder: for the default interpreter the active environment
    /// if any, else `venv_dir` under the repository root.
    fn venv_path(&self, root: &Path) -> PathBuf {
        let active = match self.source {
            Source::Default => env::var_os("VIRTUAL_ENV").filter(|dir| !dir.is_empty()),
            Source::Pyenv(_) | Source::Fixed(_) => None,
        };
        active.map_or_else(|| root.join(self.venv_dir), PathBuf::from)
    }
}

/// `ASAN_OPTIONS` for the ASan interpreter: the caller's options, with
/// `detect_leaks=0` added unless they set `detect_leaks` themselves.
fn asan_options(inherited: &str) -> String {
    // ASan splits its options on ':', ',' and whitespace.
    let is_separator = |c: char| c == ':' || c == ',' || c.is_whitespace();
    let sets_leaks = inherited.split(is_separator).any(|option| option.split('=').next() == Some("detect_leaks"));
    let inherited = inherited.trim_matches(is_separator);
    match (sets_leaks, inherited.is_empty()) {
        (true, _) => inherited.to_owned(),
        (false, true) => "detect_leaks=0".to_owned(),
        (false, false) => format!("{inherited}:detect_leaks=0"),
    }
}

/// `$PYENV_ROOT`, else `~/.pyenv`.
fn pyenv_root() -> Option<PathBuf> {
    env::var_os("PYENV_ROOT")
        .filter(|root| !root.is_empty())
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|home| PathBuf::from(home).join(".pyenv")))
}

/// The newest release `<minor>.N` among pyenv's version folder names. Anything with a
/// suffix (`3.13.0t`, `3.13-dev`, `3.12.0rc1`) is left out: a free-threaded or
/// pre-release build is not the classic interpreter asked for.
fn newest_release(minor: &str, names: impl Iterator<Item = String>) -> Option<String> {
    names
        .filter_map(|name| {
            let patch = name.strip_prefix(minor)?.strip_prefix('.')?.parse::<u32>().ok()?;
            Some((patch, name))
        })
        .max()
        .map(|(_, name)| name)
}

/// The interpreters `BOC_PYTHONS` names, in matrix order; all of them when it is unset
/// or blank.
pub(crate) fn selected() -> Result<Vec<&'static Interpreter>> {
    select(env::var(SELECT_VAR).ok().as_deref())
}

/// The interpreters named by `spec` (the value of `BOC_PYTHONS`), in matrix order; all
/// of them when `spec` is unset or blank.
fn select(spec: Option<&str>) -> Result<Vec<&'static Interpreter>> {
    let names: Vec<&str> = spec.unwrap_or_default().split([',', ' ']).filter(|name| !name.is_empty()).collect();
    if let Some(unknown) = names.iter().find(|name| !INTERPRETERS.iter().any(|known| known.name == **name)) {
        let known: Vec<&str> = INTERPRETERS.iter().map(|known| known.name).collect();
        return Err(format!("{SELECT_VAR} names `{unknown}`, which is not one of: {}", known.join(", ")));
    }
    Ok(INTERPRETERS.into_iter().filter(|known| names.is_empty() || names.contains(&known.name)).collect())
}

/// A Python virtual environment.
pub(crate) struct Venv {
    dir: PathBuf,
    /// Set for every command run in it: the interpreter's `run_env`.
    run_env: Vec<(OsString, OsString)>,
}

impl Venv {
    /// The environment at `dir`, created from `interpreter` if missing, with
    /// `packages` installed; every command run in it gets `run_env`.
    fn ensure(
        dir: PathBuf,
        interpreter: &OsStr,
        run_env: Vec<(OsString, OsString)>,
        packages: &[Package],
    ) -> Result<Venv> {
        if !dir.join("bin").join("python").exists() {
            Cmd::new(interpreter)
                .envs(run_env.clone())
                .args(["-m".as_ref(), "venv".as_ref(), dir.as_os_str()])
                .run()?;
        }
        let venv = Venv { dir, run_env };
        venv.ensure_packages(packages)?;
        Ok(venv)
    }

    /// Installs with pip those of `packages` that are not importable yet.
    fn ensure_packages(&self, packages: &[Package]) -> Result {
        let imports: Vec<&str> = packages.iter().map(|package| package.import).collect();
        if self.python().args(["-c", &format!("import {}", imports.join(", "))]).succeeds_quietly() {
            return Ok(());
        }
        // --prefer-binary: the newest Hypothesis releases ship only a source
        // distribution for the free-threaded 3.13, which builds a PyO3 0.30
        // extension that refuses that interpreter; the newest release with a
        // wheel (pure Python there) installs everywhere.
        self.python()
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .args(["-m", "pip", "install", "-q", "--prefer-binary"])
            .args(packages.iter().map(|package| package.pip))
            .run()
    }

    /// The environment's `python` executable.
    fn python_path(&self) -> PathBuf {
        self.dir.join("bin").join("python")
    }

    /// `python` of this environment, run as if the environment were activated.
    pub(crate) fn python(&self) -> Cmd {
        let mut path = OsString::from(self.dir.join("bin"));
        if let Some(inherited) = env::var_os("PATH") {
            path.push(":");
            path.push(inherited);
        }
        Cmd::new(self.python_path()).envs(self.run_env.clone()).env("VIRTUAL_ENV", &self.dir).env("PATH", path)
    }

    /// Builds the binding crate in release mode and installs the `boc` package into
    /// this environment, for its interpreter (maturin follows `VIRTUAL_ENV`).
    fn install_binding(&self) -> Result {
        let manifest = Path::new(BINDING_CRATE_DIR).join("Cargo.toml");
        self.python().args(["-m", "maturin", "develop", "--release", "-m"]).arg(manifest).run()
    }

    /// [`Venv::install_binding`] with PyO3's list of deferred decrefs compiled out
    /// (`--cfg pyo3_disable_reference_pool`, in its own target directory): a Python
    /// reference dropped where PyO3 does not count the thread attached then aborts the
    /// process instead of waiting in that list. boc must never defer one: the list's
    /// lock, taken detached, could be held by another thread at a fork and stay held in
    /// the child, where every call into the extension takes it (`crates/boc-py/src/fork.rs`).
    pub(crate) fn install_binding_without_reference_pool(&self, root: &Path) -> Result {
        let manifest = Path::new(BINDING_CRATE_DIR).join("Cargo.toml");
        self.python()
            .env("RUSTFLAGS", "--cfg pyo3_disable_reference_pool")
            .env("CARGO_TARGET_DIR", root.join("target").join("no-reference-pool"))
            .args(["-m", "maturin", "develop", "--release", "-m"])
            .arg(manifest)
            .run()
    }

    /// Imports the installed extension and describes the interpreter it loaded into:
    /// `Python 3.13.1, free-threaded, GIL disabled after import boc; extension …`.
    fn describe_binding(&self) -> Result<String> {
        const PROBE: &str = "\
import sys, sysconfig
import boc._boc as ext
parts = ['Python ' + sys.version.split()[0]]
if sysconfig.get_config_var('Py_GIL_DISABLED'):
    gil = 'ENABLED' if sys._is_gil_enabled() else 'disabled'
    parts.append('free-threaded, GIL ' + gil + ' after import boc')
if hasattr(sys, 'gettotalrefcount'):
    parts.append('debug build')
if '--with-address-sanitizer' in (sysconfig.get_config_var('CONFIG_ARGS') or ''):
    parts.append('AddressSanitizer')
print(', '.join(parts) + '; extension ' + ext.__file__)
";
        self.python()
            .args(["-c", PROBE])
            .read_stdout()
            .map_err(|err| format!("the freshly built extension does not import: {err}"))
    }
}

/// Gets `interpreter`'s environment ready to run boc: created with the tools, the
/// binding built into it and imported once. `None` if the interpreter is not found.
/// The one place that builds the binding for an interpreter: the tests, fuzz, soak,
/// the demo and the benchmarks all come through here.
pub(crate) fn prepare(root: &Path, interpreter: &Interpreter) -> Result<Option<Venv>> {
    let Some(executable) = interpreter.locate() else {
        return Ok(None);
    };
    let venv_dir = interpreter.venv_path(root);
    let shown_dir = venv_dir.strip_prefix(root).unwrap_or(&venv_dir);
    let run_env = interpreter.run_env();
    let mut with_env = String::new();
    for (key, value) in &run_env {
        with_env = format!("{with_env}, {}={}", key.to_string_lossy(), value.to_string_lossy());
    }
    println!(
        "=== {}: {}, environment {}{with_env} ===",
        interpreter.name,
        Path::new(&executable).display(),
        shown_dir.display()
    );
    let venv = Venv::ensure(venv_dir, &executable, run_env, &TOOLS)?;
    venv.install_binding()?;
    let description = venv.describe_binding()?;
    println!("=== {}: {description} ===", interpreter.name);
    Ok(Some(venv))
}

/// The default environment with the binding installed, for the demo.
pub(crate) fn primary_venv(root: &Path) -> Result<Venv> {
    prepare(root, &PRIMARY)?.ok_or_else(|| "no default Python interpreter".to_owned())
}

/// `cargo xtask bench --python`: boc against bocpy on the classic 3.12 (both installed
/// in its environment), and 2 workers against 1 on the free-threaded 3.13t when it is
/// found. The driver runs every side in its own process and writes the Python section
/// of BENCHMARKS.md to `report` (see `bench`); `driver_args` go to it.
pub(crate) fn run_benchmarks(root: &Path, report: &Path, driver_args: &[String]) -> Result {
    let classic = prepare(root, &PYENV_3_12)?.ok_or_else(|| {
        format!(
            "the bocpy comparison needs CPython {}, not found ({})",
            PYENV_3_12.name,
            PYENV_3_12.search_description()
        )
    })?;
    classic.ensure_packages(&[BOCPY])?;
    let classic_python = classic.python_path();
    let mut driver = classic.python().arg(BENCH_DRIVER);
    driver = driver.arg("--bocpy-python").arg(&classic_python).arg("--boc-python").arg(&classic_python);
    match prepare(root, &FREE_THREADED)? {
        Some(free_threaded) => driver = driver.arg("--ft-python").arg(free_threaded.python_path()),
        None => println!("free-threaded benchmark: skipped, {} not found", FREE_THREADED.search_description()),
    }
    let mut invocation = String::from("cargo xtask bench --python");
    if !driver_args.is_empty() {
        invocation = format!("{invocation} -- {}", driver_args.join(" "));
    }
    driver.arg("--invocation").arg(invocation).arg("--report").arg(report).args(driver_args).run()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_release_ignores_suffixed_builds() {
        let names = ["3.12.1", "3.13.0", "3.13.10", "3.13.2", "3.13.0t", "3.13-dev", "3.13.1rc1", "3.130.0"];
        let names = || names.iter().map(|name| (*name).to_owned());
        assert_eq!(newest_release("3.13", names()).as_deref(), Some("3.13.10"));
        assert_eq!(newest_release("3.12", names()).as_deref(), Some("3.12.1"));
        assert_eq!(newest_release("3.11", names()), None);
    }

    #[test]
    fn selection_by_name() {
        let names =
            |spec| select(spec).map(|found| found.iter().map(|interpreter| interpreter.name).collect::<Vec<_>>());
        let everything = vec!["python3", "3.12", "3.13", "3.13t", "asan"];
        assert_eq!(names(None), Ok(everything.clone()));
        assert_eq!(names(Some(" ")), Ok(everything));
        assert_eq!(names(Some("python3")), Ok(vec!["python3"]));
        assert_eq!(names(Some("asan")), Ok(vec!["asan"]));
        assert_eq!(names(Some("asan,3.13t, 3.12")), Ok(vec!["3.12", "3.13t", "asan"]));
        assert!(names(Some("3.11")).is_err());
        assert!(names(Some("ASAN")).is_err());
    }

    #[test]
    fn only_the_asan_interpreter_gets_an_environment() {
        for interpreter in INTERPRETERS {
            let keys: Vec<_> = interpreter.run_env().into_iter().map(|(key, _)| key).collect();
            let expected: Vec<OsString> =
                if interpreter.name == "asan" { vec!["PYTHONMALLOC".into(), "ASAN_OPTIONS".into()] } else { vec![] };
            assert_eq!(keys, expected, "{}", interpreter.name);
        }
    }

    #[test]
    fn asan_options_keep_the_callers_and_add_detect_leaks() {
        assert_eq!(asan_options(""), "detect_leaks=0");
        assert_eq!(asan_options("halt_on_error=1"), "halt_on_error=1:detect_leaks=0");
        assert_eq!(asan_options("halt_on_error=1:"), "halt_on_error=1:detect_leaks=0");
        assert_eq!(asan_options("detect_leaks=1"), "detect_leaks=1");
        assert_eq!(asan_options("verbosity=1,detect_leaks=1"), "verbosity=1,detect_leaks=1");
        assert_eq!(asan_options("detect_leaks_x=1"), "detect_leaks_x=1:detect_leaks=0");
    }
}
