//! A child process owned by a test: its stderr goes to a log file, its stdout lines (when
//! captured) are kept with the instant they arrived (and copied to a file), and it is killed when dropped, also when
//! the test panics. On Linux the child also gets SIGKILL if the test thread that started it dies.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Lines a child printed on stdout, each with when it was read.
pub type Lines = Arc<Mutex<Vec<(Instant, String)>>>;

/// A running child process; SIGKILLed and reaped on drop.
pub struct Proc {
    name: String,
    child: Option<Child>,
    log: PathBuf,
    lines: Lines,
    exit: Option<ExitStatus>,
}

impl Proc {
    /// Start `cmd` as `name`; stderr (and stdout unless `capture`) go to `dir/name.log`.
    /// With `capture`, stdout lines are collected for [`Proc::lines`] and [`Proc::wait_line`].
    /// Stdin is a pipe held open until the process is dropped (scripts may exit when it closes).
    pub fn spawn(name: &str, cmd: &mut Command, dir: &Path, capture: bool) -> Proc {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("create log file");
        let stdout = if capture {
            Stdio::piped()
        } else {
            Stdio::from(file.try_clone().expect("clone log handle"))
        };
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(stdout)
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        let lines: Lines = Arc::default();
        if let Some(out) = child.stdout.take() {
            let sink = lines.clone();
            // Also kept in `dir/name.stdout`, for a look after the test.
            let mut copy = std::fs::File::create(dir.join(format!("{name}.stdout"))).ok();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if let Some(f) = copy.as_mut() {
                        let _ = writeln!(f, "{line}");
                    }
                    sink.lock().unwrap().push((Instant::now(), line));
                }
            });
        }
        Proc {
            name: name.to_string(),
            child: Some(child),
            log,
            lines,
            exit: None,
        }
    }

    /// The name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process id (0 once reaped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Every stdout line so far (when captured).
    pub fn lines(&self) -> Vec<(Instant, String)> {
        self.lines.lock().unwrap().clone()
    }

    /// The last stdout line that satisfies `pred`.
    pub fn last_line(&self, pred: impl Fn(&str) -> bool) -> Option<String> {
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .rev()
            .find(|(_, l)| pred(l))
            .map(|(_, l)| l.clone())
    }

    /// Wait for a stdout line satisfying `pred`; panics with the logs after `limit` or if the
    /// process exits first.
    pub fn wait_line(&mut self, limit: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(l) = self.last_line(&pred) {
                return l;
            }
            if let Some(status) = self.exited() {
                // Give the reader thread a moment to drain what was printed before the exit.
                std::thread::sleep(Duration::from_millis(100));
                if let Some(l) = self.last_line(&pred) {
                    return l;
                }
                panic!(
                    "{} exited ({status}) before the expected line\n{}",
                    self.name,
                    self.report()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} printed no expected line within {limit:?}\n{}",
                self.name,
                self.report()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Write `line` and a newline to its stdin.
    pub fn send_line(&mut self, line: &str) {
        let stdin = self.child.as_mut().and_then(|c| c.stdin.as_mut());
        let sent = stdin.map(|s| writeln!(s, "{line}").and_then(|()| s.flush()));
        assert!(
            matches!(sent, Some(Ok(()))),
            "cannot write {line:?} to {}\n{}",
            self.name,
            self.report()
        );
    }

    /// The exit status if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            if let Some(c) = self.child.as_mut() {
                self.exit = c.try_wait().ok().flatten();
            }
        }
        self.exit
    }

    /// Wait for the process to exit; panics with the logs after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.exited() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {limit:?}\n{}",
                self.name,
                self.report()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Panic with the logs if the process has exited.
    pub fn assert_running(&mut self) {
        if let Some(s) = self.exited() {
            panic!("{} exited unexpectedly ({s})\n{}", self.name, self.report());
        }
    }

    /// Send `signal` (e.g. `libc::SIGTERM`) if it is still running.
    pub fn signal(&mut self, signal: i32) {
        if self.exited().is_none() {
            if let Some(c) = &self.child {
                let pid = c.id() as libc::pid_t;
                // SAFETY: kill(2) on our own child's pid, which is not reaped yet.
                unsafe {
                    libc::kill(pid, signal);
                }
            }
        }
    }

    /// SIGKILL and reap: what `kill -9` does.
    pub fn kill9(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            if let Ok(s) = c.wait() {
                self.exit.get_or_insert(s);
            }
        }
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`.
    pub fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + grace;
        while self.exited().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let clean = self.exited();
        self.kill9();
        clean
    }

    /// The log file's path.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The end of the log and of the captured stdout, for failure messages.
    pub fn report(&self) -> String {
        let mut log = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let mut bytes = Vec::new();
            let _ = f.read_to_end(&mut bytes);
            log = String::from_utf8_lossy(&bytes).into_owned();
        }
        let out: Vec<String> = self.lines().into_iter().map(|(_, l)| l).collect();
        format!(
            "--- {} log ({}), last lines:\n{}\n--- {} stdout, last lines:\n{}",
            self.name,
            self.log.display(),
            tail(&log.lines().collect::<Vec<_>>(), 40),
            self.name,
            tail(&out.iter().map(String::as_str).collect::<Vec<_>>(), 15),
        )
    }
}

fn tail(lines: &[&str], n: usize) -> String {
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}
