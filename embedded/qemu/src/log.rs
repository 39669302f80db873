//! The `log` logger of the QEMU firmware: one line per record on QEMU's standard output, through
//! semihosting (QEMU runs with `-semihosting-config enable=on,target=native`). On a board
//! without a debugger attached this would halt: QEMU only.

use cortex_m_semihosting::hprintln;
use log::{LevelFilter, Metadata, Record};

struct Semihosting;

static LOGGER: Semihosting = Semihosting;

impl log::Log for Semihosting {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if self.enabled(record.metadata()) {
            let ms = embassy_time::Instant::now().as_millis();
            hprintln!(
                "{}.{:03} {:<5} {}",
                ms / 1000,
                ms % 1000,
                record.level(),
                record.args()
            );
        }
    }

    fn flush(&self) {}
}

/// Install the logger at `level`.
pub fn init(level: LevelFilter) {
    // Only fails when called twice; the first logger stays.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}
