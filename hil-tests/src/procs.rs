//! Child processes that never outlive the bench: each [`Proc`] is stopped (SIGTERM, then SIGKILL
//! after a grace period) when dropped, so a failing test or a Ctrl-C leaves no strays.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running child process with its stderr captured to a log file.
#[derive(Debug)]
pub struct Proc {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Proc {
    /// Starts `cmd`, sending stderr (and stdout unless `capture_stdout`) to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Self, String> {
        let file =
            std::fs::File::create(log).map_err(|e| format!("create {}: {e}", log.display()))?;
        let file2 = file.try_clone().map_err(|e| e.to_string())?;
        cmd.stdin(Stdio::null()).stdout(file).stderr(file2);
        let child = cmd
            .spawn()
            .map_err(|e| format!("start {name} ({cmd:?}): {e}"))?;
        Ok(Self {
            name: name.to_owned(),
            child: Some(child),
            log: log.to_owned(),
        })
    }

    /// Starts `cmd` and waits until a stdout line starts with `prefix`; returns the process and
    /// the rest of that line. Later stdout lines go to the log file.
    pub fn spawn_until_line(
        name: &str,
        mut cmd: Command,
        log: &Path,
        prefix: &str,
        timeout: Duration,
    ) -> Result<(Self, String), String> {
        let file =
            std::fs::File::create(log).map_err(|e| format!("create {}: {e}", log.display()))?;
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(file);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("start {name} ({cmd:?}): {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let (tx, rx) = mpsc::channel();
        let prefix_owned = prefix.to_owned();
        let log_path = log.with_extension("stdout");
        std::thread::spawn(move || {
            let mut sent = false;
            let mut out = std::fs::File::create(&log_path).ok();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !sent && let Some(rest) = line.strip_prefix(&prefix_owned) {
                    let _ = tx.send(rest.trim().to_owned());
                    sent = true;
                }
                if let Some(f) = out.as_mut() {
                    use std::io::Write;
                    let _ = writeln!(f, "{line}");
                }
            }
        });
        let mut proc = Self {
            name: name.to_owned(),
            child: Some(child),
            log: log.to_owned(),
        };
        match rx.recv_timeout(timeout) {
            Ok(rest) => Ok((proc, rest)),
            Err(_) => {
                proc.stop();
                Err(format!(
                    "{name} did not print '{prefix}' within {timeout:?}; its log:\n{}",
                    proc.log_tail(40)
                ))
            }
        }
    }

    /// Process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The exit status if the process has ended.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Waits up to `timeout` for the process to end by itself.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let t = Instant::now();
        while t.elapsed() < timeout {
            if let Some(s) = self.try_status() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Sends a signal by name (`TERM`, `KILL`, `INT`, `STOP`, `CONT`) with the system `kill`.
    pub fn signal(&self, sig: &str) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(pid.to_string())
                .stderr(Stdio::null())
                .status();
        }
    }

    /// Stops the process: SIGTERM, up to 5 s grace, then SIGKILL; always reaps it.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        self.child.as_ref()?;
        let status = match self.try_status() {
            Some(s) => Some(s),
            None => {
                self.signal("TERM");
                match self.wait_timeout(Duration::from_secs(5)) {
                    Some(s) => Some(s),
                    None => {
                        let c = self.child.as_mut()?;
                        let _ = c.kill();
                        c.wait().ok()
                    }
                }
            }
        };
        self.child = None;
        status
    }

    /// The last `n` lines of the log, for error messages.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// The process's name as given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}
