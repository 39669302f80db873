//! Tracker protocols: HTTP announce/scrape (BEP 3, 7, 23, 48) and UDP (BEP 15), both directions.

/// The `event` of an announce (BEP 3); BEP 15 numbers them none=0, completed=1, started=2, stopped=3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AnnounceEvent {
    /// A periodic announce.
    None,
    /// The download finished.
    Completed,
    /// The first announce.
    Started,
    /// The peer is leaving.
    Stopped,
}
