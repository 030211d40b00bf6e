//! Child processes and timed steps: every command is echoed before it runs, inherits
//! stdin/stdout/stderr (so the closing lines of test runners stay visible to CI; a
//! teed run also keeps a copy of standard output for a summary), and a failure comes
//! back as a one-line message that names the command.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{self, Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The outcome of an xtask operation; the error is a one-line message for the user.
pub(crate) type Result<T = ()> = std::result::Result<T, String>;

/// A child process, run from the current directory (the repository root; see `main`).
pub(crate) struct Cmd {
    /// What is executed.
    program: OsString,
    /// What is printed in place of `program` (`cargo` rather than the toolchain path).
    display_name: String,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
}

impl Cmd {
    /// A command running `program`, found through `PATH`.
    pub(crate) fn new(program: impl AsRef<OsStr>) -> Self {
        let program = program.as_ref().to_os_string();
        let display_name = program.to_string_lossy().into_owned();
        Cmd { program, display_name, args: Vec::new(), envs: Vec::new() }
    }

    /// The cargo that runs xtask (`$CARGO`, set by `cargo run`), so every step uses the
    /// same toolchain as the `cargo xtask` invocation; plain `cargo` otherwise.
    pub(crate) fn cargo() -> Self {
        let mut cmd = Cmd::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cmd.display_name = "cargo".to_owned();
        cmd
    }

    /// Appends one argument.
    pub(crate) fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    /// Appends several arguments.
    pub(crate) fn args<I>(mut self, args: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<OsStr>,
    {
        self.args.extend(args.into_iter().map(|arg| arg.as_ref().to_os_string()));
        self
    }

    /// Sets an environment variable for the child only.
    pub(crate) fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.envs.push((key.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    /// Sets several environment variables for the child only.
    pub(crate) fn envs<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.envs
            .extend(vars.into_iter().map(|(key, value)| (key.as_ref().to_os_string(), value.as_ref().to_os_string())));
        self
    }

    /// Echoes the command, runs it with inherited stdio and fails unless it exits with 0.
    pub(crate) fn run(&self) -> Result {
        println!("$ {self}");
        let status =
            self.command().status().map_err(|err| format!("could not start `{}`: {err}", self.display_name))?;
        if status.success() { Ok(()) } else { Err(format!("`{self}` failed ({status})")) }
    }

    /// Like `run`, but standard output goes through xtask, which passes it on as it
    /// comes and also returns it, complete, with the exit status, for the caller to
    /// judge and summarize. Standard error stays inherited. Fails only if the command
    /// cannot be run.
    pub(crate) fn run_teed(&self) -> Result<(ExitStatus, String)> {
        println!("$ {self}");
        let mut child = self
            .command()
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|err| format!("could not start `{}`: {err}", self.display_name))?;
        let mut captured = Vec::new();
        if let Some(mut child_stdout) = child.stdout.take() {
            // Chunks, not lines: progress dots show up while a long run is under way.
            let mut chunk = [0_u8; 8192];
            let mut stdout = io::stdout();
            loop {
                let n_read = match child_stdout.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n_read) => n_read,
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                };
                captured.extend_from_slice(&chunk[..n_read]);
                // A closed stdout of xtask must not stop the child: keep draining its pipe.
                let _ = stdout.write_all(&chunk[..n_read]).and_then(|()| stdout.flush());
            }
        }
        let status = child.wait().map_err(|err| format!("could not wait for `{}`: {err}", self.display_name))?;
        Ok((status, String::from_utf8_lossy(&captured).into_owned()))
    }

    /// Runs the command without echo and returns its standard output, trimmed; fails
    /// unless it exits with 0, and then the message names the program and carries its
    /// standard error. For probes whose answer is printed, such as an interpreter's
    /// version.
    pub(crate) fn read_stdout(&self) -> Result<String> {
        let output = self
            .command()
            .stdin(Stdio::null())
            .output()
            .map_err(|err| format!("could not start `{}`: {err}", self.display_name))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
        } else {
            // The program only: a probe's arguments are often a whole script.
            let stderr = String::from_utf8_lossy(&output.stderr);
            Err(format!("`{}` failed ({}):\n{}", self.display_name, output.status, stderr.trim()))
        }
    }

    /// Runs the command silently (no echo, output discarded); true if it exits with 0.
    /// For probes such as "is cargo-nextest installed".
    pub(crate) fn succeeds_quietly(&self) -> bool {
        self.command()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.args);
        command.envs(self.envs.iter().map(|(key, value)| (key, value)));
        command
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (key, value) in &self.envs {
            write!(f, "{}={} ", key.to_string_lossy(), shell_quote(&value.to_string_lossy()))?;
        }
        f.write_str(&self.display_name)?;
        for arg in &self.args {
            write!(f, " {}", shell_quote(&arg.to_string_lossy()))?;
        }
        Ok(())
    }
}

/// Quotes `word` for display so a printed command can be pasted back into a shell.
fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain { word.to_owned() } else { format!("'{}'", word.replace('\'', r"'\''")) }
}

/// Runs one named step between banners and reports how long it took. The error names
/// the step, so the last line of a failed run says which step broke.
pub(crate) fn step(name: &str, body: impl FnOnce() -> Result) -> Result<Duration> {
    println!();
    println!("==> {name}");
    let started = Instant::now();
    let outcome = body();
    let elapsed = started.elapsed();
    match outcome {
        Ok(()) => {
            println!("<== {name}: ok ({})", seconds(elapsed));
            Ok(elapsed)
        }
        Err(err) => {
            println!("<== {name}: FAILED ({})", seconds(elapsed));
            Err(format!("step `{name}` failed after {}: {err}", seconds(elapsed)))
        }
    }
}

/// `12.3s`.
pub(crate) fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_what_a_shell_would_split() {
        let cmd = Cmd::new("cargo").env("RUSTFLAGS", "--cfg boc_loom").args(["test", "it's"]);
        assert_eq!(cmd.to_string(), r"RUSTFLAGS='--cfg boc_loom' cargo test 'it'\''s'");
    }
}
