//! The announce glue: the task that runs the trackers' `Announcer` one announce at a time, the
//! session's `Announce` commands handed to it, its results handed back, and the give-up rule
//! (`get` without `--wait`, alone, after [`ANNOUNCE_ATTEMPTS`] failures in a row).
//!
//! Which tracker to ask and what an answer means is the announcer's business, never this file's.

use std::time::Duration;

use enjambre_core::tracker::AnnounceEvent;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use super::{DriveError, Driver, Input, STOP_GRACE};
use crate::peer::announce::{AnnounceError, AnnounceParams, Announced, Announcer};

/// Consecutive failed announces, with no peer ever met, before giving up.
const ANNOUNCE_ATTEMPTS: u32 = 3;

impl<const BYTES: usize, const RX: usize> Driver<BYTES, RX> {
    /// Hand an announce to the announcer task; with no tracker, answer it at once (an hour).
    pub(super) fn announce(
        &mut self,
        event: AnnounceEvent,
        uploaded: u64,
        downloaded: u64,
        left: u64,
    ) {
        if !self.has_trackers {
            // Nothing to announce to: peers come from --peer and incoming connections.
            let now = self.now();
            let hour = enjambre_core::Duration::from_secs(3600);
            self.session.handle_announce_ok(now, hour, None);
            return;
        }
        let bitfield = Some(self.session.have().as_bytes().to_vec());
        let params = AnnounceParams {
            event,
            uploaded,
            downloaded,
            left,
            bitfield,
        };
        if self.announce_tx.send(params).is_ok() {
            self.announces_in_flight += 1;
        }
    }

    /// Take an announce's result; give up when no tracker answers and no peer is known.
    pub(super) fn announced(
        &mut self,
        now: enjambre_core::Instant,
        result: Result<Announced, AnnounceError>,
    ) {
        self.announces_in_flight -= 1;
        match result {
            Ok(a) => {
                self.announce_failures = 0;
                tracing::info!(tracker = %a.tracker, peers = a.peers.len(), "announced");
                let interval = core_duration(a.interval);
                let min = a.min_interval.map(core_duration);
                self.session.handle_announce_ok(now, interval, min);
                self.session.handle_peers(now, a.peers);
            }
            Err(e) => {
                self.session.handle_announce_failed(now);
                if self.shutdown_at.is_some() {
                    return;
                }
                self.announce_failures += 1;
                tracing::info!(error = %e, "announce failed");
                if self.announce_failures == 1 {
                    // Through the display, so a progress bar is not broken by it.
                    self.progress
                        .note(&format!("announce failed, retrying: {e}"));
                }
                let alone =
                    !self.met_a_peer && self.extra_peers.is_empty() && self.conns.is_empty();
                let give_up = !self.keep_trying && !self.complete;
                if self.announce_failures >= ANNOUNCE_ATTEMPTS && alone && give_up {
                    let msg = format!(
                        "tracker unreachable after {} attempts: {e}",
                        self.announce_failures
                    );
                    self.fail(DriveError::TrackerUnreachable(msg));
                }
            }
        }
    }
}

fn core_duration(d: Duration) -> enjambre_core::Duration {
    enjambre_core::Duration::from_millis(d.as_millis() as u64)
}

/// Run the announces the loop asks for, one at a time; a `stopped` one gets [`STOP_GRACE`].
pub(super) async fn announce_loop(
    mut announcer: Announcer,
    mut rx: UnboundedReceiver<AnnounceParams>,
    tx: UnboundedSender<Input>,
) {
    while let Some(params) = rx.recv().await {
        let result = if announcer.is_empty() {
            Err(AnnounceError(Vec::new()))
        } else if params.event == AnnounceEvent::Stopped {
            // Never hold the exit for long on a tracker that has gone away.
            match tokio::time::timeout(STOP_GRACE, announcer.announce(&params)).await {
                Ok(r) => r,
                Err(_) => Err(AnnounceError(Vec::new())),
            }
        } else {
            announcer.announce(&params).await
        };
        if tx.send(Input::Announced(result)).is_err() {
            return;
        }
    }
}
