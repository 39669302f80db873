//! Progress for people and scripts: a status line fitted to the terminal's width, plain lines
//! when something changes (at least once a minute) otherwise, JSON lines on stdout with
//! `--json`, or nothing with `--quiet`. Rates are those of the last few seconds.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use enjambre_core::session::{DiscardCause, Event, PeerStatus, Stats};
use enjambre_core::PieceIndex;
use indicatif::{ProgressBar, ProgressStyle};

use super::rate::RateMeter;

/// Plain lines: never closer together than this…
const LINE_MIN_GAP: Duration = Duration::from_secs(5);
/// …and never further apart than this.
const LINE_MAX_GAP: Duration = Duration::from_secs(60);

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A bar on stderr.
    Bar,
    /// A line on stderr every few seconds.
    Plain,
    /// JSON lines on stdout.
    Json,
    /// Nothing but errors.
    Quiet,
}

impl Mode {
    /// The bar on a terminal, plain lines otherwise, JSON or nothing when asked.
    pub fn detect(json: bool, quiet: bool) -> Self {
        if json {
            Mode::Json
        } else if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bar
        } else {
            Mode::Plain
        }
    }
}

/// Decides when a plain line is due: when what it shows (pieces, peers) changed, at most every
/// [`LINE_MIN_GAP`], and at least every [`LINE_MAX_GAP`].
#[derive(Debug, Default)]
struct LineThrottle {
    last: Option<(Instant, (u32, usize))>,
}

impl LineThrottle {
    fn due(&mut self, now: Instant, shown: (u32, usize)) -> bool {
        let due = match self.last {
            None => true,
            Some((at, before)) => {
                let gap = now.duration_since(at);
                (shown != before && gap >= LINE_MIN_GAP) || gap >= LINE_MAX_GAP
            }
        };
        if due {
            self.last = Some((now, shown));
        }
        due
    }
}

/// What the status line shows.
#[derive(Debug, Clone, PartialEq)]
pub struct View<'a> {
    /// The torrent's name.
    pub name: &'a str,
    /// Bytes verified.
    pub done: u64,
    /// Bytes in the torrent.
    pub total: u64,
    /// Download rate, bytes per second.
    pub down: u64,
    /// Upload rate, bytes per second.
    pub up: u64,
    /// Connected peers.
    pub peers: usize,
}

impl View<'_> {
    fn eta(&self) -> Option<u64> {
        let left = self.total.saturating_sub(self.done);
        (self.down > 0 && left > 0).then(|| left.div_ceil(self.down))
    }
}

/// Parts of the status line, in the order shown.
#[derive(Clone, Copy, PartialEq)]
enum Part {
    Bar,
    Pct,
    Sizes,
    Down,
    Up,
    Peers,
    Eta,
}

/// The status line in at most `width` columns: the richest layout that fits, dropping the byte
/// counts, the ETA, the bar, the peers and the upload rate in turn, then cutting the name.
pub fn status_line(v: &View<'_>, width: usize) -> String {
    use Part::*;
    const LAYOUTS: [&[Part]; 6] = [
        &[Bar, Pct, Sizes, Down, Up, Peers, Eta],
        &[Bar, Pct, Down, Up, Peers, Eta],
        &[Bar, Pct, Down, Up, Peers],
        &[Pct, Down, Up, Peers],
        &[Pct, Down, Up],
        &[Pct, Down],
    ];
    let name = cut(v.name, (width / 4).max(12));
    for layout in LAYOUTS {
        if let Some(line) = try_layout(v, &name, layout, width) {
            return line;
        }
    }
    // Very narrow: the percentage and the download rate, and as much of the name as fits.
    let tail = format!(" {} {}", part(v, Pct), part(v, Down));
    let room = width.saturating_sub(tail.chars().count());
    let line = format!("{}{tail}", cut(v.name, room));
    line.chars().take(width).collect()
}

fn try_layout(v: &View<'_>, name: &str, layout: &[Part], width: usize) -> Option<String> {
    // Parts with nothing to show (no ETA yet) take no room.
    let layout: Vec<Part> = layout
        .iter()
        .copied()
        .filter(|&p| p == Part::Bar || !part(v, p).is_empty())
        .collect();
    let texts: Vec<String> = layout.iter().map(|&p| part(v, p)).collect();
    let fixed: usize =
        name.chars().count() + texts.iter().map(|t| t.chars().count() + 1).sum::<usize>();
    let mut line = name.to_string();
    for (&p, text) in layout.iter().zip(texts) {
        line.push(' ');
        if p == Part::Bar {
            // The bar takes what is left, 10 to 30 cells inside its brackets.
            let inner = width.checked_sub(fixed + 2)?.min(30);
            if inner < 10 {
                return None;
            }
            line += &bar(v, inner);
        } else {
            line += &text;
        }
    }
    (line.chars().count() <= width).then_some(line)
}

fn part(v: &View<'_>, p: Part) -> String {
    match p {
        Part::Bar => String::new(),
        Part::Pct => format!("{:.1}%", percent(v.done, v.total)),
        Part::Sizes => format!("{}/{}", human(v.done), human(v.total)),
        Part::Down => format!("↓{}/s", human(v.down)),
        Part::Up => format!("↑{}/s", human(v.up)),
        Part::Peers => format!("{} peer{}", v.peers, if v.peers == 1 { "" } else { "s" }),
        Part::Eta => v
            .eta()
            .map_or_else(String::new, |s| format!("ETA {}", duration(s))),
    }
}

fn bar(v: &View<'_>, inner: usize) -> String {
    let filled = (percent(v.done, v.total) / 100.0 * inner as f64) as usize;
    let mut s = String::with_capacity(inner + 2);
    s.push('[');
    for i in 0..inner {
        s.push(match i.cmp(&filled) {
            std::cmp::Ordering::Less => '=',
            std::cmp::Ordering::Equal if filled < inner => '>',
            _ => ' ',
        });
    }
    s.push(']');
    s
}

fn percent(done: u64, total: u64) -> f64 {
    if total == 0 {
        100.0
    } else {
        done as f64 * 100.0 / total as f64
    }
}

/// At most `max` characters of `s`, the last one `…` when cut.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    if max > 0 {
        out.push('…');
    }
    out
}

/// `42s`, `3m05s`, `2h03m`.
fn duration(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
    }
}

/// The terminal's width in columns (80 when unknown), less one so the cursor never wraps.
fn terminal_width() -> usize {
    console::Term::stderr()
        .size_checked()
        .map_or(80, |(_, cols)| usize::from(cols))
        .saturating_sub(1)
}

/// The progress display of one torrent.
pub struct Progress {
    mode: Mode,
    name: String,
    total: u64,
    bar: Option<ProgressBar>,
    started: Instant,
    last_line: Instant,
    lines: LineThrottle,
    down: RateMeter,
    up: RateMeter,
    /// Counters at the first update (restored from a resume state), to report this run's.
    base: Option<(u64, u64)>,
    /// When the next `peers` line is due, if they are printed (`--json-peers`).
    next_peers: Option<Instant>,
}

/// `peers` lines are this far apart.
const PEER_LINES_EVERY: Duration = Duration::from_secs(2);

impl Progress {
    /// Start showing progress for `name` of `total` bytes.
    pub fn new(mode: Mode, name: &str, total: u64) -> Self {
        let bar = (mode == Mode::Bar).then(|| {
            // The whole line is ours (`status_line`), fitted to the width at every update.
            let bar = ProgressBar::new(total);
            bar.set_style(ProgressStyle::with_template("{msg}").expect("valid template"));
            bar
        });
        let now = Instant::now();
        Progress {
            mode,
            name: name.to_string(),
            total,
            bar,
            started: now,
            last_line: now,
            lines: LineThrottle::default(),
            down: RateMeter::default(),
            up: RateMeter::default(),
            base: None,
            next_peers: None,
        }
    }

    /// Print `peers` lines (JSON mode only).
    pub fn peer_lines(&mut self, on: bool) {
        self.next_peers = (on && self.mode == Mode::Json).then(Instant::now);
    }

    /// Print a `peers` line if one is due: what `statuses` gives, read only then.
    pub fn peers<I: Iterator<Item = PeerStatus>>(&mut self, statuses: impl FnOnce() -> I) {
        let now = Instant::now();
        if self.next_peers.is_none_or(|due| now < due) {
            return;
        }
        self.next_peers = Some(now + PEER_LINES_EVERY);
        let peers: Vec<_> = statuses()
            .map(|p| {
                serde_json::json!({
                    "addr": p.addr.map(|a| a.to_string()),
                    "out": p.outbound,
                    "pieces": p.pieces,
                    "am_choking": p.am_choking,
                    "am_interested": p.am_interested,
                    "peer_choking": p.peer_choking,
                    "peer_interested": p.peer_interested,
                    "optimistic": p.optimistic,
                    "down_rate": p.down_rate,
                    "up_rate": p.up_rate,
                    "requests": p.requests,
                    "max_requests": p.max_requests,
                    "uploads_queued": p.uploads_queued,
                })
            })
            .collect();
        json_line(&serde_json::json!({
            "type": "peers",
            "elapsed": self.started.elapsed().as_secs_f64(),
            "peers": peers,
        }));
    }

    /// Show a message above the bar (or as a line).
    pub fn note(&self, text: &str) {
        match (&self.bar, self.mode) {
            (Some(bar), _) => bar.println(text),
            (None, Mode::Json) => json_line(&serde_json::json!({ "type": "note", "text": text })),
            (None, Mode::Quiet) => {}
            (None, _) => eprintln!("{text}"),
        }
    }

    /// Update from the session's counters (call a few times a second).
    pub fn update(&mut self, s: &Stats) {
        self.base.get_or_insert((s.downloaded, s.uploaded));
        let now = Instant::now();
        self.down.record(now, s.downloaded);
        self.up.record(now, s.uploaded);
        let (down, up) = (self.down.per_sec(), self.up.per_sec());
        let done = self.total.saturating_sub(s.wanted_left);
        match self.mode {
            Mode::Quiet => {}
            Mode::Bar => {
                if let Some(bar) = &self.bar {
                    let view = View {
                        name: &self.name,
                        done,
                        total: self.total,
                        down: down as u64,
                        up: up as u64,
                        peers: s.peers,
                    };
                    bar.set_position(done);
                    bar.set_message(status_line(&view, terminal_width()));
                }
            }
            Mode::Plain => {
                if self.lines.due(now, (s.pieces_have, s.peers)) {
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
                        "wasted_duplicate": s.waste.duplicate,
                        "wasted_unrequested": s.waste.unrequested,
                        "wasted_corrupt": s.waste.corrupt,
                        "stalls": s.stalls,
                        "peers": s.peers,
                        "in_progress": s.in_progress,
                        "verifying": s.verifying,
                        "with_holes": s.with_holes,
                        "requests": s.requests,
                        "serving_us": s.serving_us,
                        "unchoked": s.unchoked,
                        "download_rate": down as u64,
                        "upload_rate": up as u64,
                        "elapsed": self.started.elapsed().as_secs_f64(),
                    }));
                }
            }
        }
    }

    fn line(&self, s: &Stats, down: f64, up: f64) -> String {
        let done = self.total.saturating_sub(s.wanted_left);
        let pct = if self.total == 0 {
            100.0
        } else {
            done as f64 * 100.0 / self.total as f64
        };
        let eta = if down > 0.0 && s.wanted_left > 0 {
            format!(" ETA {}s", (s.wanted_left as f64 / down).ceil() as u64)
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

    /// Report a piece verified or discarded (a durability fact of the session).
    pub fn fact(&self, piece: PieceIndex, discarded: Option<DiscardCause>) {
        if self.mode == Mode::Json {
            let v = match discarded {
                None => serde_json::json!({ "type": "piece_verified", "piece": piece.get() }),
                Some(DiscardCause::HashMismatch) => {
                    serde_json::json!({ "type": "piece_failed", "piece": piece.get() })
                }
                Some(DiscardCause::Storage(error)) => {
                    serde_json::json!({ "type": "storage_failed", "piece": piece.get(), "error": error.to_string() })
                }
            };
            json_line(&v);
            return;
        }
        if discarded == Some(DiscardCause::HashMismatch) {
            self.note(&format!(
                "piece {} failed its hash check; fetching it again",
                piece.get()
            ));
        }
    }

    /// Report a session event worth showing.
    pub fn event(&self, e: &Event) {
        if self.mode == Mode::Json {
            let v = match e {
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
        if let Event::PeerBanned { addr } = e {
            self.note(&format!("banned {addr} after repeated bad data"));
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
            bar.set_position(self.total.saturating_sub(s.wanted_left));
            bar.finish_and_clear();
        }
        match self.mode {
            Mode::Quiet => {}
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

    fn view(name: &str) -> View<'_> {
        View {
            name,
            done: 12_345_678,
            total: 27_000_000,
            down: 524_288,
            up: 1_536,
            peers: 3,
        }
    }

    #[test]
    fn the_status_line_fits_the_terminal_width() {
        let v = view("ubuntu-24.04-desktop-amd64.iso");
        let wide = status_line(&v, 120);
        assert_eq!(wide.chars().count(), 120, "the bar takes the room left");
        assert_eq!(
            wide,
            "ubuntu-24.04-desktop-amd64.iso [==========>            ] 45.7% \
             11.8 MiB/25.7 MiB ↓512.0 KiB/s ↑1.5 KiB/s 3 peers ETA 28s"
        );
        let at80 = status_line(&v, 79);
        assert!(at80.chars().count() <= 79, "{at80}");
        assert!(
            at80.contains("[") && at80.contains("45.7%") && at80.contains("ETA 28s"),
            "{at80}"
        );
        assert!(
            at80.contains("↓512.0 KiB/s") && at80.contains("3 peers"),
            "{at80}"
        );
        let at60 = status_line(&v, 59);
        assert!(at60.chars().count() <= 59, "{at60}");
        assert!(
            at60.contains("45.7%") && at60.contains("↓512.0 KiB/s"),
            "{at60}"
        );
        let idle = View {
            down: 0,
            ..view("a")
        };
        assert_eq!(
            status_line(&idle, 60),
            "a [==========>             ] 45.7% ↓0 B/s ↑1.5 KiB/s 3 peers",
            "no ETA without a rate, and no empty gap for it"
        );
        for width in [20, 30, 40, 50, 60, 70, 80, 100] {
            for name in ["a", "ubuntu-24.04-desktop-amd64.iso", &"x".repeat(200)] {
                let line = status_line(&view(name), width);
                assert!(line.chars().count() <= width, "{width}: {line}");
                assert!(line.contains("45.7%"), "{width}: {line}");
            }
        }
    }

    #[test]
    fn a_quiet_seed_prints_a_line_a_minute_and_a_busy_download_every_few_seconds() {
        let start = Instant::now();
        let mut lines = LineThrottle::default();
        let mut printed = 0;
        // Ten minutes of an idle seed, updated four times a second.
        for i in 0..2400u64 {
            if lines.due(start + Duration::from_millis(250 * i), (100, 0)) {
                printed += 1;
            }
        }
        assert_eq!(printed, 10);
        // A peer arrives: shown at once (at least five seconds after the last line).
        let later = start + Duration::from_secs(600);
        assert!(lines.due(later, (100, 1)));
        // A download verifying a piece every update: one line every five seconds.
        printed = 0;
        for i in 1..=240u32 {
            if lines.due(later + Duration::from_millis(250 * u64::from(i)), (i, 1)) {
                printed += 1;
            }
        }
        assert_eq!(printed, 12);
    }
}
