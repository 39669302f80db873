//! How a run ends: completion, `--seed-ratio`/`--seed-time`, a fatal error or a signal start
//! the shutdown; the loop then waits for storage to go idle, the last save and (briefly) the
//! `stopped` announce, and reports the outcome.

use tokio::time::Instant;

use super::{DriveError, Driver, Outcome, STOP_GRACE};

impl<const BYTES: usize, const RX: usize> Driver<BYTES, RX> {
    /// Every piece is verified (said once, whether seen by the fact or the event).
    pub(super) fn completed(&mut self) {
        self.complete = true;
        self.seeding_since.get_or_insert_with(Instant::now);
        if self.exit_when_complete {
            self.start_shutdown();
        }
    }

    /// Stop seeding once `--seed-ratio` or `--seed-time` is reached.
    pub(super) fn check_seed_until(&mut self, uploaded: u64) {
        if self.shutdown_at.is_some() || !self.complete {
            return;
        }
        let since = *self.seeding_since.get_or_insert_with(Instant::now);
        let total = self.session.geometry().total_length();
        if let Some(why) = self.seed_until.reached(uploaded, total, since.elapsed()) {
            self.progress.note(&format!("{why}; stopping"));
            self.start_shutdown();
        }
    }

    /// End the run with `e` (the first fatal error is the one reported).
    pub(super) fn fail(&mut self, e: DriveError) {
        if self.fatal.is_none() {
            self.fatal = Some(e);
        }
        self.start_shutdown();
    }

    /// Tell the session to stop (once) and accept no more peers.
    pub(super) fn start_shutdown(&mut self) {
        if self.shutdown_at.is_none() {
            let now = self.now();
            self.session.handle_shutdown(now);
            self.shutdown_at = Some(Instant::now());
            self.accept_task.abort();
        }
    }

    /// Shut down once storage is idle and the state is saved (the `stopped` announce gets a
    /// short grace).
    pub(super) fn finished(&mut self) -> bool {
        let Some(at) = self.shutdown_at else {
            return false;
        };
        if self.ops_in_flight > 0 {
            return false;
        }
        if !self.final_persist_done() {
            return false;
        }
        self.announces_in_flight == 0 || at.elapsed() >= STOP_GRACE
    }

    /// Close every connection, let the storage threads finish, and say how the run ended.
    pub(super) async fn finish(mut self) -> Result<Outcome, DriveError> {
        self.conns.clear();
        self.announce_task.abort();
        if let Some(t) = self.dht_task.take() {
            t.abort();
        }
        self.io_tx = None;
        self.persist_tx = None;
        for t in self.io_threads.drain(..) {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        let stats = self.session.stats();
        // Complete: every wanted piece (with no file selection, every piece) verified.
        let complete = self.session.is_done();
        let text = match (&self.fatal, complete) {
            (Some(e), _) => format!("stopped: {e}"),
            (None, true) if self.exit_when_complete => "complete".to_string(),
            (None, true) => "stopped seeding".to_string(),
            (None, false) => "stopped".to_string(),
        };
        self.progress.finish(&stats, &text);
        match self.fatal.take() {
            Some(e) => Err(e),
            None if complete => Ok(Outcome::Complete),
            None => Ok(Outcome::Stopped),
        }
    }
}
