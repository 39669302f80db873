//! When to announce, and with which event.

use super::output::Command;
use crate::tracker::AnnounceEvent;
use crate::{Duration, Instant};

/// Announce scheduling: `started` first, then on the tracker's interval (sooner, at the min
/// interval, while a download has no peer), `completed` when the download finishes, `stopped`
/// at shutdown; failures retry with doubling backoff.
pub(crate) struct Announce {
    next: Option<Instant>,
    /// When a peerless download may ask again, after the last success.
    peerless_next: Option<Instant>,
    pending: Option<AnnounceEvent>,
    in_flight: bool,
    /// The event of the announce in flight.
    sent: Option<AnnounceEvent>,
    /// An event to announce again at the next attempt (a `completed` that failed).
    retry: Option<AnnounceEvent>,
    /// Announce `stopped` once the `completed` pending or in flight is done.
    stop_after: bool,
    started_ok: bool,
    failures: u32,
}

impl Announce {
    pub(crate) const fn new() -> Self {
        Announce {
            next: None,
            peerless_next: None,
            pending: Some(AnnounceEvent::Started),
            in_flight: false,
            sent: None,
            retry: None,
            stop_after: false,
            started_ok: false,
            failures: 0,
        }
    }

    /// Make the periodic announce pending when due; `peerless`: a download with no peer.
    pub(crate) fn tick(&mut self, now: Instant, peerless: bool) {
        if self.in_flight || self.pending.is_some() {
            return;
        }
        if self.due(peerless).is_some_and(|t| now >= t) {
            self.next = None;
            self.peerless_next = None;
            self.pending = Some(match self.retry.take() {
                Some(event) => event,
                None if self.started_ok => AnnounceEvent::None,
                None => AnnounceEvent::Started,
            });
        }
    }

    pub(crate) fn poll(&mut self, uploaded: u64, downloaded: u64, left: u64) -> Option<Command> {
        if self.in_flight && self.pending != Some(AnnounceEvent::Stopped) {
            return None;
        }
        let event = self.pending.take()?;
        self.in_flight = true;
        self.sent = Some(event);
        Some(Command::Announce {
            event,
            uploaded,
            downloaded,
            left,
        })
    }

    pub(crate) fn ok(
        &mut self,
        now: Instant,
        interval: Duration,
        min_interval: Option<Duration>,
        peerless: Duration,
    ) {
        self.in_flight = false;
        self.sent = None;
        if self.stop_after {
            self.stop_after = false;
            self.pending = Some(AnnounceEvent::Stopped);
        }
        self.started_ok = true;
        self.failures = 0;
        let wait = interval
            .max(min_interval.unwrap_or(Duration::ZERO))
            .max(Duration::from_secs(1));
        let soon = min_interval
            .unwrap_or(peerless)
            .max(Duration::from_secs(1))
            .min(wait);
        if self.pending.is_none() {
            self.next = Some(now + wait);
            self.peerless_next = Some(now + soon);
        }
    }

    pub(crate) fn failed(&mut self, now: Instant, retry: Duration) {
        self.in_flight = false;
        if self.sent.take() == Some(AnnounceEvent::Completed) {
            self.retry = Some(AnnounceEvent::Completed);
        }
        if self.stop_after {
            // Leaving: the `completed` is lost, the `stopped` still goes out.
            self.stop_after = false;
            self.retry = None;
            self.pending = Some(AnnounceEvent::Stopped);
        }
        self.failures = self.failures.saturating_add(1);
        let wait = Duration::from_millis(
            retry
                .as_millis()
                .saturating_mul(1 << (self.failures - 1).min(6)),
        );
        if self.pending.is_none() {
            self.next = Some(now + wait);
            self.peerless_next = None;
        }
    }

    pub(crate) fn completed(&mut self) {
        if self.started_ok || self.in_flight {
            self.pending = Some(AnnounceEvent::Completed);
        }
    }

    pub(crate) fn stop(&mut self) {
        self.next = None;
        self.peerless_next = None;
        let completing = self.pending == Some(AnnounceEvent::Completed)
            || self.sent == Some(AnnounceEvent::Completed);
        if completing {
            // The tracker counts completions on `completed`: send it first, then `stopped`.
            self.stop_after = true;
            return;
        }
        self.pending = if self.started_ok || self.in_flight {
            Some(AnnounceEvent::Stopped)
        } else {
            None
        };
    }

    /// When `tick` next has something to do.
    pub(crate) fn deadline(&self, peerless: bool) -> Option<Instant> {
        if self.in_flight || self.pending.is_some() {
            None
        } else {
            self.due(peerless)
        }
    }

    fn due(&self, peerless: bool) -> Option<Instant> {
        match (self.next, self.peerless_next) {
            (Some(next), Some(soon)) if peerless => Some(next.min(soon)),
            (next, _) => next,
        }
    }
}
