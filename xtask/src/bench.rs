//! `cargo xtask bench [--python]`: runs a benchmark program and writes the section
//! of BENCHMARKS.md it reported. The one place that writes that file.
//!
//! A benchmark program (benches/runtime.rs, crates/boc-py/benches/run.py) measures
//! and prints; given `--report PATH`, it also writes its section there, as markdown.
//! This module then puts the section between its two markers in BENCHMARKS.md,
//! leaving the other sections as they are, unless `--no-write` was given. A program
//! that writes no report (run.py comparing builds with `--reference-boc-python`)
//! leaves the file alone.

use std::fs;
use std::path::{Path, PathBuf};

use crate::process::{self, Result};
use crate::python;

/// The file the sections are written to, at the repository root.
const BENCHMARKS_FILE: &str = "BENCHMARKS.md";

/// What BENCHMARKS.md starts with when it does not exist yet.
const BENCHMARKS_TITLE: &str = "# Benchmarks\n";

/// A section of BENCHMARKS.md, written by one benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    /// benches/runtime.rs.
    Rust,
    /// crates/boc-py/benches/run.py.
    Python,
}

impl Section {
    /// The section's name in its markers and in the report file's name.
    fn name(self) -> &'static str {
        match self {
            Self::Rust => "rust",
            Self::Python => "python",
        }
    }

    fn begin(self) -> String {
        format!("<!-- {} benchmarks: begin -->", self.name())
    }

    fn end(self) -> String {
        format!("<!-- {} benchmarks: end -->", self.name())
    }
}

/// `cargo xtask bench [--python] [--no-write] [-- ARGS]`: the benchmark, with
/// `bench_args` passed on, then its section written into BENCHMARKS.md.
pub(crate) fn run(root: &Path, section: Section, write: bool, bench_args: &[String]) -> Result {
    if bench_args.iter().any(|arg| arg == "--report" || arg.starts_with("--report=")) {
        return Err("`--report` is xtask's to give the benchmark: use --no-write to print only".to_owned());
    }
    let report = report_path(root, section);
    if let Some(dir) = report.parent() {
        fs::create_dir_all(dir).map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
    }
    // A report left by an earlier run must not be written as this one's.
    match fs::remove_file(&report) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            return Err(format!("cannot remove the old report {}: {err}", report.display()));
        }
        _ => {}
    }
    match section {
        Section::Rust => process::Cmd::cargo()
            .args(["bench", "--bench", "runtime", "--"])
            .arg("--report")
            .arg(&report)
            .args(bench_args)
            .run()?,
        Section::Python => python::run_benchmarks(root, &report, bench_args)?,
    }
    let text = match fs::read_to_string(&report) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            println!("bench: the benchmark reported no section (a comparison of builds); {BENCHMARKS_FILE} unchanged");
            return Ok(());
        }
        Err(err) => return Err(format!("cannot read the benchmark's report {}: {err}", report.display())),
    };
    if !write {
        println!("bench: --no-write: {BENCHMARKS_FILE} unchanged");
        return Ok(());
    }
    let path = root.join(BENCHMARKS_FILE);
    let previous = match fs::read_to_string(&path) {
        Ok(previous) => previous,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => BENCHMARKS_TITLE.to_owned(),
        Err(err) => return Err(format!("cannot read {}: {err}", path.display())),
    };
    let spliced = splice(&previous, section, &text).map_err(|err| format!("{}: {err}", path.display()))?;
    fs::write(&path, spliced).map_err(|err| format!("cannot write {}: {err}", path.display()))?;
    println!("bench: wrote the {} section of {BENCHMARKS_FILE}", section.name());
    Ok(())
}

/// Where the benchmark writes its report: in the cargo target dir, out of the
/// sources.
fn report_path(root: &Path, section: Section) -> PathBuf {
    crate::loom::target_dir(root).join(format!("bench-report-{}.md", section.name()))
}

/// `previous` with `section`'s text between its markers replaced by `text`; a
/// section that is not there yet (neither marker) is appended. A file whose
/// markers of that section are not one begin followed by one end is refused,
/// not guessed at: a guess could overwrite another section.
fn splice(previous: &str, section: Section, text: &str) -> std::result::Result<String, String> {
    let (begin, end) = (section.begin(), section.end());
    let block = format!("{begin}\n{}\n{end}", text.trim_matches('\n'));
    match (previous.matches(&begin).count(), previous.matches(&end).count()) {
        (0, 0) => Ok(format!("{}\n\n{block}\n", previous.trim_end_matches('\n'))),
        (1, 1) => {
            let start = previous.find(&begin).unwrap_or_default();
            match previous[start..].find(&end) {
                Some(stop) => {
                    let after = start + stop + end.len();
                    Ok(format!("{}{block}{}", &previous[..start], &previous[after..]))
                }
                None => Err(format!("`{end}` comes before `{begin}`; put the markers right by hand")),
            }
        }
        (n_begin, n_end) => Err(format!(
            "expected one `{begin}` and one `{end}` (or neither), found {n_begin} and {n_end}; put the markers right \
             by hand"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_replaces_only_its_own_text() {
        let file = "# Benchmarks\n\n<!-- rust benchmarks: begin -->\nold rust\n<!-- rust benchmarks: end -->\n\n\
                    <!-- python benchmarks: begin -->\nold python\n<!-- python benchmarks: end -->\n\ntail\n";
        let rust = splice(file, Section::Rust, "new rust\n").unwrap();
        assert_eq!(
            rust,
            "# Benchmarks\n\n<!-- rust benchmarks: begin -->\nnew rust\n<!-- rust benchmarks: end -->\n\n\
             <!-- python benchmarks: begin -->\nold python\n<!-- python benchmarks: end -->\n\ntail\n"
        );
        let python = splice(&rust, Section::Python, "\nnew python").unwrap();
        assert_eq!(splice(&python, Section::Python, "\nnew python").unwrap(), python, "the same text changes nothing");
        assert!(python.contains("new rust") && python.contains("\nnew python\n") && !python.contains("old"));
        assert!(python.ends_with("<!-- python benchmarks: end -->\n\ntail\n"));
    }

    #[test]
    fn a_missing_section_is_appended() {
        assert_eq!(
            splice(BENCHMARKS_TITLE, Section::Python, "table").unwrap(),
            "# Benchmarks\n\n<!-- python benchmarks: begin -->\ntable\n<!-- python benchmarks: end -->\n"
        );
    }

    #[test]
    fn broken_markers_are_refused() {
        let (begin, end) = ("<!-- rust benchmarks: begin -->\n", "<!-- rust benchmarks: end -->\n");
        let python = "<!-- python benchmarks: begin -->\np\n<!-- python benchmarks: end -->\n";
        for broken in [
            format!("{end}{begin}{python}"),
            format!("{begin}old{python}"),
            format!("{begin}x{end}{begin}y{end}{python}"),
            format!("{python}{end}"),
        ] {
            assert!(splice(&broken, Section::Rust, "new").is_err(), "{broken:?}");
        }
    }
}
