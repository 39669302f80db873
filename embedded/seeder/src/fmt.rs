//! Log macros that go to `defmt` on the firmware, to `log` on the host, and nowhere without
//! either feature. Arguments must implement both `defmt::Format` and `Debug`/`Display`.
#![allow(unused_macros)]

#[cfg(all(feature = "defmt", feature = "log"))]
compile_error!("features `defmt` and `log` are exclusive");

macro_rules! info {
    ($($t:tt)*) => {{
        #[cfg(feature = "defmt")]
        ::defmt::info!($($t)*);
        #[cfg(feature = "log")]
        ::log::info!($($t)*);
        #[cfg(not(any(feature = "defmt", feature = "log")))]
        let _ = format_args!($($t)*);
    }};
}

macro_rules! warn {
    ($($t:tt)*) => {{
        #[cfg(feature = "defmt")]
        ::defmt::warn!($($t)*);
        #[cfg(feature = "log")]
        ::log::warn!($($t)*);
        #[cfg(not(any(feature = "defmt", feature = "log")))]
        let _ = format_args!($($t)*);
    }};
}

macro_rules! debug {
    ($($t:tt)*) => {{
        #[cfg(feature = "defmt")]
        ::defmt::debug!($($t)*);
        #[cfg(feature = "log")]
        ::log::debug!($($t)*);
        #[cfg(not(any(feature = "defmt", feature = "log")))]
        let _ = format_args!($($t)*);
    }};
}
