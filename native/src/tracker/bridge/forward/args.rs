//! Command-line flags of the announce relay (part of the bridge).

/// How the relay announces to the trackers a page's `.torrent` names.
#[derive(clap::Args, Debug, Clone)]
pub struct ForwardArgs {
    /// Turn the announce relay off (`POST /bridge/torrent/…` answers 404).
    #[arg(long)]
    pub no_bridge_forward: bool,
    /// Let the relay reach trackers, and the bridge dial relayed peers, at loopback, private,
    /// link-local and other non-public addresses (for tests; never on a public tracker).
    #[arg(long)]
    pub bridge_forward_private: bool,
    /// Relay one torrent's announces at most this often, in seconds (and never more often
    /// than the remote tracker's min interval).
    #[arg(long, default_value_t = 30.0, value_name = "SECS")]
    pub bridge_forward_every: f64,
    /// Largest `.torrent` a page may hand the relay, in bytes.
    #[arg(long, default_value_t = 8 << 20, value_name = "BYTES")]
    pub bridge_forward_max_torrent: usize,
}
