//! `cargo xtask demo`: the project's main job, the runnable demonstration.
//!
//! Today it is the Rust example `examples/demo.rs`. Once the Python package exists
//! the demo is `crates/boc-py/examples/demo.py`: as soon as that file is present it
//! replaces the Rust one (the binding is built into the virtual environment first),
//! so the switch needs no change here.

use std::path::Path;

use crate::process::{Cmd, Result};
use crate::python;

/// The Python demo, relative to the binding crate.
const PYTHON_DEMO: &str = "examples/demo.py";

/// Runs the demo; `demo_args` are passed to the demo program.
pub(crate) fn run(root: &Path, demo_args: &[String]) -> Result {
    let python_demo = Path::new(python::BINDING_CRATE_DIR).join(PYTHON_DEMO);
    if root.join(&python_demo).is_file() { run_python(root, &python_demo, demo_args) } else { run_rust(demo_args) }
}

fn run_rust(demo_args: &[String]) -> Result {
    let mut cmd = Cmd::cargo().args(["run", "--release", "--example", "demo"]);
    if !demo_args.is_empty() {
        cmd = cmd.arg("--").args(demo_args);
    }
    cmd.run()
}

fn run_python(root: &Path, script: &Path, demo_args: &[String]) -> Result {
    let venv = python::primary_venv(root)?;
    venv.python().arg(script).args(demo_args).run()
}
