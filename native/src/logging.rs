//! Log setup: `tracing` to stderr, level from `-v` flags unless `RUST_LOG` is set; colour only
//! when stderr is a terminal and `NO_COLOR` is not set.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Install the global subscriber.
pub fn init(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour())
        .init();
}

/// Whether stderr may carry colour escapes: a terminal, and no `NO_COLOR` (any non-empty value,
/// as <https://no-color.org> defines it).
pub fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
