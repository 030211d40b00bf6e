//! `cargo xtask tidy`: textual house-style checks over the repository's own files.
//!
//! Each check is a plain function from one file's text to its violations; the walk
//! (`check_repository`) feeds it every source file outside build output, `.git` and
//! Python virtual environments. The `repository_is_tidy` test at the bottom runs the
//! same walk, so `cargo test` enforces the checks too. The checks:
//!
//! 1. Every `.rs` file opens with a `//!` module doc line.
//! 2. Atomics come from one shim: `std::sync::atomic` (or `core::sync::atomic`) is
//!    named only in files called `primitive.rs` or `loom.rs`. Code that is not
//!    production code is exempt: anything under a `tests/` or `benches/` directory,
//!    `xtask/`, files named `tests.rs` or `*_tests.rs`, and the tail of a file from an
//!    inline `#[cfg(test)] mod … {` onwards (unit tests sit at the end by convention).
//!    Comment lines are ignored.
//! 3. One spelling: *behavior*. The British form is found case-insensitively in
//!    `.rs`, `.md`, `.py`, `.pyi` and `.toml` files; the only exemption is the title of
//!    the paper that introduced the model, quoted verbatim.
//! 4. Every `unsafe` block and `unsafe impl` has a `// SAFETY:` comment on its line or
//!    above it: comment lines are skipped freely, and at most three code lines may sit
//!    between the comment and the `unsafe`. `unsafe fn` and `unsafe trait` are exempt.
//!
//! The checks are approximate (line based, no parser): they catch the habit, clippy's
//! `undocumented_unsafe_blocks` and review catch the rest. Words the checks look for
//! are assembled from pieces so this file does not trip them itself.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::process::Result;

/// The British spelling that is banned (assembled so this file does not contain it).
const BANNED_SPELLING: &str = concat!("behavi", "our");

/// The one place the banned spelling may appear: the paper's title, quoted verbatim.
const PAPER_TITLE: &str = concat!("When Concurrency Matters: Behavi", "our-Oriented Concurrency");

/// Extensions whose text is checked for the banned spelling.
const SPELLING_EXTENSIONS: [&str; 5] = ["rs", "md", "py", "pyi", "toml"];

/// File names allowed to name the standard atomics: the shims.
const ATOMIC_SHIM_FILES: [&str; 2] = ["primitive.rs", "loom.rs"];

/// Code lines allowed between a `// SAFETY:` comment and its `unsafe`.
const SAFETY_COMMENT_REACH: usize = 3;

/// One broken rule at one place.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Violation {
    /// Path relative to the repository root.
    path: PathBuf,
    /// 1-based line number.
    line: usize,
    message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.line, self.message)
    }
}

/// Runs every check, prints each violation as `path:line: message`, fails if any.
pub(crate) fn run(root: &Path) -> Result {
    let report = check_repository(root).map_err(|err| format!("tidy could not read the repository: {err}"))?;
    for violation in &report.violations {
        println!("{violation}");
    }
    let n_violations = report.violations.len();
    if n_violations == 0 {
        println!("tidy: {} files checked, no violations", report.n_files);
        Ok(())
    } else {
        Err(format!("tidy: {n_violations} violation(s) in {} files checked", report.n_files))
    }
}

/// What a walk over the repository found.
pub(crate) struct Report {
    /// Files whose text was checked.
    pub(crate) n_files: usize,
    pub(crate) violations: Vec<Violation>,
}

/// Checks every relevant file under `root`, in a stable (sorted) order.
pub(crate) fn check_repository(root: &Path) -> io::Result<Report> {
    let mut files = Vec::new();
    collect_files(root, &mut files)?;
    files.sort();
    let mut violations = Vec::new();
    for path in &files {
        let bytes = fs::read(path)?;
        let text = String::from_utf8_lossy(&bytes);
        let relative = path.strip_prefix(root).unwrap_or(path);
        violations.extend(check_file(relative, &text));
    }
    Ok(Report { n_files: files.len(), violations })
}

/// Collects files with a checked extension, skipping build output, `.git`, Python
/// virtual environments and caches. Symbolic links are not followed.
fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            if !is_skipped_dir(&path) {
                collect_files(&path, files)?;
            }
        } else if file_type.is_file() && extension(&path).is_some_and(is_checked_extension) {
            files.push(path);
        }
    }
    Ok(())
}

fn is_skipped_dir(dir: &Path) -> bool {
    let name = dir.file_name().map(|name| name.to_string_lossy()).unwrap_or_default();
    name == ".git"
        || name == "target"
        || name == "node_modules"
        || name == "__pycache__"
        || name.starts_with(".venv")
        || name.ends_with("_cache") // .pytest_cache, .mypy_cache, .ruff_cache
        || dir.join("pyvenv.cfg").is_file() // a virtual environment under any name
        || dir.join("CACHEDIR.TAG").is_file() // a cargo target dir under any name
}

fn extension(path: &Path) -> Option<&str> {
    path.extension().and_then(|extension| extension.to_str())
}

fn is_checked_extension(extension: &str) -> bool {
    SPELLING_EXTENSIONS.contains(&extension)
}

/// All checks that apply to one file; `path` is relative to the repository root.
fn check_file(path: &Path, text: &str) -> Vec<Violation> {
    let mut found = Vec::new();
    let mut report = |line: usize, message: String| {
        found.push(Violation { path: path.to_path_buf(), line, message });
    };
    if extension(path) == Some("rs") {
        if let Some(message) = check_module_doc(text) {
            report(1, message);
        }
        if !is_exempt_from_atomic_check(path) {
            for line in check_atomics(text) {
                report(line, "`std::sync::atomic` outside the primitive/loom shim: import the atomics from the crate's shim module".to_owned());
            }
        }
        for line in check_safety_comments(text) {
            report(line, "`unsafe` without a `// SAFETY:` comment just above it".to_owned());
        }
    }
    for line in check_spelling(text) {
        report(line, format!("spelled `{BANNED_SPELLING}`: the project writes `behavior`"));
    }
    found
}

/// Check 1: the first line is a `//!` module doc.
fn check_module_doc(text: &str) -> Option<String> {
    let first_line = text.lines().next().unwrap_or_default();
    if first_line.starts_with("//!") {
        None
    } else {
        Some("the file must open with a `//!` doc comment saying what the module is for".to_owned())
    }
}

/// Whether `path` is not production code (or is a shim), so it may name the atomics.
fn is_exempt_from_atomic_check(path: &Path) -> bool {
    let file_name = path.file_name().map(|name| name.to_string_lossy()).unwrap_or_default();
    let mut directories = path.parent().into_iter().flat_map(Path::components);
    ATOMIC_SHIM_FILES.contains(&file_name.as_ref())
        || file_name == "tests.rs"
        || file_name.ends_with("_tests.rs")
        || path.starts_with("xtask")
        || directories.any(|dir| dir.as_os_str() == "tests" || dir.as_os_str() == "benches")
}

/// Check 2: the 1-based lines that name the standard atomics, up to the start of an
/// inline `#[cfg(test)]` module.
fn check_atomics(text: &str) -> Vec<usize> {
    let mut lines = Vec::new();
    let mut after_test_cfg = false;
    for (idx, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        if is_test_cfg(code) {
            after_test_cfg = true;
        } else if after_test_cfg && !code.starts_with("#[") {
            if is_inline_module(code) {
                break; // the rest of the file is the unit-test module
            }
            after_test_cfg = false;
        }
        if names_std_atomics(code) {
            lines.push(idx + 1);
        }
    }
    lines
}

/// `#[cfg(test)]`, `#[cfg(all(test, boc_loom))]`, but not `#[cfg(not(test))]`.
fn is_test_cfg(code: &str) -> bool {
    code.starts_with("#[cfg(") && !code.contains("not(") && contains_word(code, "test")
}

/// `mod tests {`, `pub(crate) mod loom_tests {`, not `mod tests;`.
fn is_inline_module(code: &str) -> bool {
    let item = code.strip_prefix("pub(crate) ").or_else(|| code.strip_prefix("pub ")).unwrap_or(code);
    item.starts_with("mod ") && item.contains('{')
}

fn names_std_atomics(code: &str) -> bool {
    ["std::sync::", "core::sync::"].iter().any(|prefix| {
        code.match_indices(prefix).any(|(idx, _)| {
            let rest = &code[idx + prefix.len()..];
            // `std::sync::atomic::…`, and the grouped form `std::sync::{Arc, atomic::…}`.
            rest.starts_with("atomic") || (rest.starts_with('{') && contains_word(rest, "atomic"))
        })
    })
}

/// Check 3: the 1-based lines that use the banned spelling outside the paper title.
fn check_spelling(text: &str) -> Vec<usize> {
    let title = PAPER_TITLE.to_lowercase();
    text.lines()
        .enumerate()
        .filter(|(_, line)| line.to_lowercase().replace(&title, "").contains(BANNED_SPELLING))
        .map(|(idx, _)| idx + 1)
        .collect()
}

/// Check 4: the 1-based lines holding an `unsafe` block or `unsafe impl` with no
/// `// SAFETY:` comment on the line or within reach above it.
fn check_safety_comments(text: &str) -> Vec<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut missing = Vec::new();
    for (idx, line) in lines.iter().enumerate() {
        let (code, comment) = split_comment(line);
        if !has_unsafe_block_or_impl(code) || comment.contains("SAFETY:") {
            continue;
        }
        let mut n_code_lines = 0;
        let mut documented = false;
        for above in lines[..idx].iter().rev() {
            let above = above.trim_start();
            if is_comment_line(above) {
                if above.contains("SAFETY:") {
                    documented = true;
                    break;
                }
            } else {
                n_code_lines += 1;
                if n_code_lines > SAFETY_COMMENT_REACH {
                    break;
                }
            }
        }
        if !documented {
            missing.push(idx + 1);
        }
    }
    missing
}

/// Splits a line at its `//` comment (naively: a `//` inside a string literal counts).
fn split_comment(line: &str) -> (&str, &str) {
    line.find("//").map_or((line, ""), |idx| line.split_at(idx))
}

fn is_comment_line(trimmed: &str) -> bool {
    trimmed.starts_with("//") || trimmed.starts_with("/*") || trimmed.starts_with('*')
}

/// `unsafe {` (any spacing) or `unsafe impl`, as a whole word.
fn has_unsafe_block_or_impl(code: &str) -> bool {
    const KEYWORD: &str = "unsafe";
    code.match_indices(KEYWORD).any(|(idx, _)| {
        let before = code[..idx].chars().next_back();
        if before.is_some_and(is_identifier_char) {
            return false;
        }
        let rest = code[idx + KEYWORD.len()..].trim_start();
        rest.starts_with('{') || rest.strip_prefix("impl").is_some_and(|after| !after.starts_with(is_identifier_char))
    })
}

fn is_identifier_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether `word` occurs in `text` with no identifier character on either side.
fn contains_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(idx, _)| {
        let before = text[..idx].chars().next_back();
        let after = text[idx + word.len()..].chars().next();
        !before.is_some_and(is_identifier_char) && !after.is_some_and(is_identifier_char)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `unsafe {`, assembled so this file passes its own check.
    const UNSAFE_BLOCK: &str = concat!("unsafe", " {");

    #[test]
    fn repository_is_tidy() {
        let report = check_repository(&crate::project_root()).expect("read the repository");
        let listing: Vec<String> = report.violations.iter().map(ToString::to_string).collect();
        assert!(listing.is_empty(), "tidy found {} violation(s):\n{}", listing.len(), listing.join("\n"));
    }

    #[test]
    fn module_doc_must_be_the_first_line() {
        assert_eq!(check_module_doc("//! The queue.\nfn f() {}\n"), None);
        assert!(check_module_doc("// The queue.\n").is_some());
        assert!(check_module_doc("\n//! The queue.\n").is_some());
        assert!(check_module_doc("").is_some());
    }

    #[test]
    fn atomics_only_in_shims_and_test_code() {
        let text = "//! doc\n// std::sync::atomic in a comment\nuse std::sync::atomic::AtomicUsize;\nuse core::sync::{Arc, atomic::Ordering};\nuse std::sync::Arc;\n";
        assert_eq!(check_atomics(text), vec![3, 4]);
        let with_tests = "//! doc\n#[cfg(test)]\nmod tests;\nuse std::sync::atomic::AtomicU8;\n#[cfg(all(test, boc_loom))]\n#[allow(unused)]\nmod loom_tests {\n    use std::sync::atomic::AtomicU8;\n}\n";
        assert_eq!(check_atomics(with_tests), vec![4]);
        let not_test = "#[cfg(not(test))]\nmod real {\n    use std::sync::atomic::AtomicU8;\n}\n";
        assert_eq!(check_atomics(not_test), vec![3]);

        assert!(is_exempt_from_atomic_check(Path::new("crates/boc-core/src/primitive.rs")));
        assert!(is_exempt_from_atomic_check(Path::new("crates/boc-core/src/loom.rs")));
        assert!(is_exempt_from_atomic_check(Path::new("crates/boc-core/tests/fifo.rs")));
        assert!(is_exempt_from_atomic_check(Path::new("benches/runtime.rs")));
        assert!(is_exempt_from_atomic_check(Path::new("xtask/src/main.rs")));
        assert!(is_exempt_from_atomic_check(Path::new("crates/boc-core/src/queue/tests.rs")));
        assert!(!is_exempt_from_atomic_check(Path::new("crates/boc-core/src/queue.rs")));
        assert!(!is_exempt_from_atomic_check(Path::new("tests.rs/src/lib.rs")));
        assert!(!is_exempt_from_atomic_check(Path::new("examples/demo.rs")));
    }

    #[test]
    fn one_spelling_except_the_paper_title() {
        let british = BANNED_SPELLING.replacen('b', "B", 1);
        let text = format!("ok: behavior\n{british}s\nsee \"{PAPER_TITLE}\"\n{PAPER_TITLE}, a {BANNED_SPELLING}\n");
        assert_eq!(check_spelling(&text), vec![2, 4]);
    }

    #[test]
    fn unsafe_needs_a_safety_comment_within_reach() {
        let documented = format!(
            "// SAFETY: the slot is initialized.\n// (a second comment line)\nlet a = 1;\nlet b = 2;\nlet v = {UNSAFE_BLOCK} read() }};\n"
        );
        assert!(check_safety_comments(&documented).is_empty());

        let too_far = format!("// SAFETY: stale.\n1;\n2;\n3;\n4;\nlet v = {UNSAFE_BLOCK} read() }};\n");
        assert_eq!(check_safety_comments(&too_far), vec![6]);

        let same_line = format!("let v = {UNSAFE_BLOCK} read() }}; // SAFETY: initialized\n");
        assert!(check_safety_comments(&same_line).is_empty());

        let unsafe_impl = concat!("unsafe", " impl<T: Send> Send for Cown<T> {}\n");
        assert_eq!(check_safety_comments(unsafe_impl), vec![1]);

        let exempt = concat!(
            "unsafe",
            " fn f() {}\n",
            "unsafe",
            " trait T {}\n",
            "fn not_unsafe() {}\n",
            "let impl_unsafe",
            "{ x } = y;\n",
            "// ",
            "unsafe",
            " { in a comment }\n",
        );
        assert!(check_safety_comments(exempt).is_empty());
    }

    #[test]
    fn checks_apply_by_extension() {
        let violations = check_file(Path::new("README.md"), "# boc\n");
        assert!(violations.is_empty(), "markdown needs no module doc: {violations:?}");
        let violations = check_file(Path::new("src/lib.rs"), "fn f() {}\n");
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].to_string().split(": ").next(), Some("src/lib.rs:1"));
    }
}
