//! The Python side: the virtual environment, building `boc-py` into it with maturin,
//! and the pytest step of `cargo xtask test`.
//!
//! The environment is the active one (`$VIRTUAL_ENV`) if any, else `<root>/.venv`,
//! created on first use with `python3 -m venv` (or `$BOC_PYTHON -m venv`) and given
//! maturin and pytest. `.ci/run` creates it up front; a later free-threaded run
//! points `VIRTUAL_ENV` at a venv made from that interpreter and reuses everything
//! here.

use std::env;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use crate::process::{Cmd, Result};

/// The binding crate, relative to the repository root.
pub(crate) const BINDING_CRATE_DIR: &str = "crates/boc-py";

/// The default virtual environment, relative to the repository root.
const VENV_DIR: &str = ".venv";

/// Python packages the environment needs for building and testing.
const TOOLS: [&str; 2] = ["maturin", "pytest"];

/// A Python virtual environment with maturin and pytest installed.
pub(crate) struct Venv {
    dir: PathBuf,
}

impl Venv {
    /// The active environment, else `<root>/.venv`, created if missing; installs the
    /// tools if they are not importable yet.
    pub(crate) fn ensure(root: &Path) -> Result<Venv> {
        let dir = match env::var_os("VIRTUAL_ENV").filter(|dir| !dir.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => root.join(VENV_DIR),
        };
        if !dir.join("bin").join("python").exists() {
            let interpreter = env::var_os("BOC_PYTHON").unwrap_or_else(|| "python3".into());
            Cmd::new(interpreter).args(["-m".as_ref(), "venv".as_ref(), dir.as_os_str()]).run()?;
        }
        let venv = Venv { dir };
        let import_tools = format!("import {}", TOOLS.join(", "));
        if !venv.python().args(["-c", &import_tools]).succeeds_quietly() {
            venv.python()
                .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
                .args(["-m", "pip", "install", "-q"])
                .args(TOOLS)
                .run()?;
        }
        Ok(venv)
    }

    /// `python` of this environment, run as if the environment were activated.
    pub(crate) fn python(&self) -> Cmd {
        let bin = self.dir.join("bin");
        let mut path = OsString::from(bin.as_os_str());
        if let Some(inherited) = env::var_os("PATH") {
            path.push(":");
            path.push(inherited);
        }
        Cmd::new(bin.join("python")).env("VIRTUAL_ENV", &self.dir).env("PATH", path)
    }

    /// Builds the binding crate and installs the `boc` package into this environment.
    pub(crate) fn install_binding(&self) -> Result {
        let manifest = Path::new(BINDING_CRATE_DIR).join("Cargo.toml");
        self.python()
            .args([
                "-m".as_ref(),
                "maturin".as_ref(),
                "develop".as_ref(),
                "--release".as_ref(),
                "-m".as_ref(),
                manifest.as_os_str(),
            ])
            .run()
    }
}

/// The `test_*.py` files of the binding crate's `tests/` folder.
fn test_files(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(root.join(BINDING_CRATE_DIR).join("tests")) else {
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

/// The Python step: build and install `boc-py`, then pytest with warnings as errors.
/// Skipped while the binding has no tests.
pub(crate) fn run_tests(root: &Path) -> Result {
    if test_files(root).is_empty() {
        println!("python tests: none yet, skipped");
        return Ok(());
    }
    let venv = Venv::ensure(root)?;
    venv.install_binding()?;
    let tests = Path::new(BINDING_CRATE_DIR).join("tests");
    venv.python()
        .args(["-m".as_ref(), "pytest".as_ref(), "-W".as_ref(), "error".as_ref(), "-ra".as_ref(), tests.as_os_str()])
        .run()
}
