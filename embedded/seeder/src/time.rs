//! The one place where embassy's clock meets the core's: both count from boot.

/// The core's `now`, read from embassy's clock.
pub(crate) fn now() -> enjambre_core::Instant {
    enjambre_core::Instant::from_millis(embassy_time::Instant::now().as_millis())
}

/// The embassy instant of a core deadline.
pub(crate) fn to_embassy(at: enjambre_core::Instant) -> embassy_time::Instant {
    embassy_time::Instant::from_millis(at.as_millis())
}
