//! Progress for people and scripts: an indicatif bar on a terminal, a plain line every few
//! seconds otherwise, or JSON lines on stdout with `--json`.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use enjambre_core::session::{Event, Stats};
use indicatif::{ProgressBar, ProgressStyle};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A bar on stderr.
    Bar,
    /// A line on stderr every few seconds.
    Plain,
    /// JSON lines on stdout.
    Json,
}

impl Mode {
    /// The bar on a terminal, plain lines otherwise, JSON when asked.
    pub fn detect(json: bool) -> Self {
        if json {
            Mode::Json
        } else if std::io::stderr().is_terminal() {
            Mode::Bar
        } else {
            Mode::Plain
        }
    }
}

/// Rates over the last few seconds (exponential moving average).
#[derive(Debug, Default, Clone, Copy)]
struct Rate {
    last_bytes: Option<u64>,
    per_sec: f64,
}

impl Rate {
    fn update(&mut self, bytes: u64, dt: f64) -> f64 {
        // The first sample only sets the base: counters restored from a resume state are not
        // this run's transfer.
        let Some(last) = self.last_bytes.replace(bytes) else {
            return 0.0;
        };
        let delta = bytes.saturating_sub(last) as f64;
        if dt > 0.0 {
            let now = delta / dt;
            // Weight recent samples more, but keep the figure steady.
            let alpha = (dt / 2.0).min(1.0);
            self.per_sec = if self.per_sec == 0.0 {
                now
            } else {
                self.per_sec + alpha * (now - self.per_sec)
            };
        }
        self.per_sec
    }
}

/// The progress display of one torrent.
pub struct Progress {
    mode: Mode,
    name: String,
    total: u64,
    bar: Option<ProgressBar>,
    started: Instant,
    last_update: Instant,
    last_line: Instant,
    down: Rate,
    up: Rate,
    /// Counters at the first update (restored from a resume state), to report this run's.
    base: Option<(u64, u64)>,
}

impl Progress {
    /// Start showing progress for `name` of `total` bytes.
    pub fn new(mode: Mode, name: &str, total: u64) -> Self {
        let bar = (mode == Mode::Bar).then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30.cyan/blue}] {bytes}/{total_bytes} {msg} ETA {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(name.to_string());
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        let now = Instant::now();
        Progress {
            mode,
            name: name.to_string(),
            total,
            bar,
            started: now,
            last_update: now,
            last_line: now,
            down: Rate::default(),
            up: Rate::default(),
            base: None,
        }
    }

    /// Show a message above the bar (or as a line).
    pub fn note(&self, text: &str) {
        match (&self.bar, self.mode) {
            (Some(bar), _) => bar.println(text),
            (None, Mode::Json) => json_line(&serde_json::json!({ "type": "note", "text": text })),
            (None, _) => eprintln!("{text}"),
        }
    }

    /// Update from the session's counters (call a few times a second).
    pub fn update(&mut self, s: &Stats) {
        self.base.get_or_insert((s.downloaded, s.uploaded));
        let now = Instant::now();
        let dt = now.duration_since(self.last_update).as_secs_f64();
        self.last_update = now;
        let down = self.down.update(s.downloaded, dt);
        let up = self.up.update(s.uploaded, dt);
        let done = self.total.saturating_sub(s.left);
        match self.mode {
            Mode::Bar => {
                if let Some(bar) = &self.bar {
                    bar.set_position(done);
                    bar.set_message(format!(
                        "↓ {}/s ↑ {}/s {} peer{}",
                        human(down as u64),
                        human(up as u64),
                        s.peers,
                        if s.peers == 1 { "" } else { "s" }
                    ));
                }
            }
            Mode::Plain => {
                if now.duration_since(self.last_line) >= Duration::from_secs(2) {
                    self.last_line = now;
                    eprintln!("{}", self.line(s, down, up));
                }
            }
            Mode::Json => {
                if now.duration_since(self.last_line) >= Duration::from_secs(1) {
                    self.last_line = now;
                    json_line(&serde_json::json!({
                        "type": "progress",
                        "name": self.name,
                        "pieces_have": s.pieces_have,
                        "piece_count": s.piece_count,
                        "bytes_done": done,
                        "bytes_total": self.total,
                        "downloaded": s.downloaded,
                        "uploaded": s.uploaded,
                        "wasted": s.wasted,
                        "peers": s.peers,
                        "download_rate": down as u64,
                        "upload_rate": up as u64,
                        "elapsed": self.started.elapsed().as_secs_f64(),
                    }));
                }
            }
        }
    }

    fn line(&self, s: &Stats, down: f64, up: f64) -> String {
        let done = self.total.saturating_sub(s.left);
        let pct = if self.total == 0 {
            100.0
        } else {
            done as f64 * 100.0 / self.total as f64
        };
        let eta = if down > 0.0 && s.left > 0 {
            format!(" ETA {}s", (s.left as f64 / down).ceil() as u64)
        } else {
            String::new()
        };
        format!(
            "{}: {pct:.1}% of {}, ↓ {}/s ↑ {}/s, {} peer{}{eta}",
            self.name,
            human(self.total),
            human(down as u64),
            human(up as u64),
            s.peers,
            if s.peers == 1 { "" } else { "s" }
        )
    }

    /// Report a session event worth showing.
    pub fn event(&self, e: &Event) {
        if self.mode == Mode::Json {
            let v = match e {
                Event::PieceVerified { piece } => {
                    serde_json::json!({ "type": "piece_verified", "piece": piece.get() })
                }
                Event::PieceFailed { piece } => {
                    serde_json::json!({ "type": "piece_failed", "piece": piece.get() })
                }
                Event::PeerConnected { addr, .. } => {
                    serde_json::json!({ "type": "peer_connected", "addr": addr.to_string() })
                }
                Event::PeerClosed { reason, .. } => {
                    serde_json::json!({ "type": "peer_closed", "reason": reason.to_string() })
                }
                Event::PeerBanned { addr } => {
                    serde_json::json!({ "type": "peer_banned", "addr": addr.to_string() })
                }
                Event::StorageFailed { piece, error } => {
                    serde_json::json!({ "type": "storage_failed", "piece": piece.get(), "error": error.to_string() })
                }
                Event::Completed => {
                    serde_json::json!({ "type": "completed", "elapsed": self.started.elapsed().as_secs_f64() })
                }
                _ => return,
            };
            json_line(&v);
            return;
        }
        match e {
            Event::PieceFailed { piece } => self.note(&format!(
                "piece {} failed its hash check; fetching it again",
                piece.get()
            )),
            Event::PeerBanned { addr } => {
                self.note(&format!("banned {addr} after repeated bad data"))
            }
            _ => {}
        }
    }

    /// Final line: what happened, how long it took.
    pub fn finish(&mut self, s: &Stats, text: &str) {
        let secs = self.started.elapsed().as_secs_f64();
        let (down0, up0) = self.base.unwrap_or((s.downloaded, s.uploaded));
        let (run_down, run_up) = (
            s.downloaded.saturating_sub(down0),
            s.uploaded.saturating_sub(up0),
        );
        if let Some(bar) = self.bar.take() {
            bar.set_position(self.total.saturating_sub(s.left));
            bar.finish_and_clear();
        }
        match self.mode {
            Mode::Json => json_line(&serde_json::json!({
                "type": "finished",
                "text": text,
                "downloaded": s.downloaded,
                "uploaded": s.uploaded,
                "run_downloaded": run_down,
                "run_uploaded": run_up,
                "left": s.left,
                "elapsed": secs,
            })),
            _ => eprintln!(
                "{}: {text} ({} down, {} up in {secs:.1} s)",
                self.name,
                human(run_down),
                human(run_up)
            ),
        }
    }
}

fn json_line(v: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

/// `1.5 GiB`, `12.0 MiB`, `512 B`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(1 << 30), "1.0 GiB");
    }

    #[test]
    fn rate_follows_the_counter() {
        let mut r = Rate::default();
        assert_eq!(
            r.update(5_000_000, 1.0),
            0.0,
            "a restored counter is no transfer"
        );
        assert_eq!(r.update(5_001_000, 1.0), 1000.0);
        let later = r.update(5_003_000, 1.0);
        assert!(later > 1000.0 && later <= 2000.0, "{later}");
    }
}
