//! The driver's side of the automatic upload limit (see `crate::peer::uplink`): with every
//! progress tick, the uplink's shared queueing delay and the upload counter go to the
//! [`Steer`](crate::peer::uplink::Steer), and what it decides becomes the upload limit.

use super::Driver;

impl<const BYTES: usize, const RX: usize> Driver<BYTES, RX> {
    /// Reconsider the automatic upload limit (`uploaded`: the session's upload counter).
    pub(super) fn steer_uploads(&mut self, uploaded: u64) {
        let Some(steer) = self.steer.as_mut() else {
            return;
        };
        let now = std::time::Instant::now();
        let delay = self.up_limit.uplink.shared_delay(now);
        let downloading = !self.session.is_done();
        if let Some(limit) = steer.step(now, uploaded, delay, downloading) {
            tracing::info!(
                limit = ?limit.map(|l| l as u64),
                queue_ms = ?delay.map(|d| d.as_millis()),
                "automatic upload limit"
            );
            self.up_limit.set_auto(limit);
        }
    }
}
