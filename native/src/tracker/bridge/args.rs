//! Command-line flags of the WebSocket-to-TCP bridge (part of `enjambre tracker`).

/// The bridge's caps and timings.
#[derive(clap::Args, Debug, Clone)]
pub struct BridgeArgs {
    /// Turn the bridge off (`/bridge/…` answers 404).
    #[arg(long)]
    pub no_bridge: bool,
    /// Cap on bridged connections open at once.
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub bridge_max_connections: usize,
    /// Cap on bridged connections from one client address (an IPv6 /64 counts as one).
    #[arg(long, default_value_t = 24, value_name = "N")]
    pub bridge_max_per_ip: usize,
    /// Cap on bridged connections into one torrent's swarm.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub bridge_max_per_torrent: usize,
    /// Close a bridged connection after this many seconds without a byte either way.
    #[arg(long, default_value_t = 120.0, value_name = "SECS")]
    pub bridge_idle_timeout: f64,
    /// Largest WebSocket message (and frame) a client may send, in bytes.
    #[arg(long, default_value_t = 256 * 1024, value_name = "BYTES")]
    pub bridge_max_message: usize,
    #[command(flatten)]
    pub forward: super::forward::ForwardArgs,
    #[command(flatten)]
    pub inbound: super::inbound::InboundArgs,
}
