//! Command-line arguments of `enjambre get` and `enjambre seed`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::encryption::Policy;

/// Flags shared by `get` and `seed`.
#[derive(clap::Args, Debug, Clone)]
pub struct CommonArgs {
    /// TCP port to accept peers on (0: any free port).
    #[arg(long, default_value_t = 6881)]
    pub port: u16,
    /// Address to accept peers on (default: all IPv4 addresses).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::IpAddr>,
    /// Connect to this peer as well as the trackers' (repeatable): IP:PORT or HOST:PORT.
    #[arg(long = "peer", value_name = "ADDR", value_parser = parse_peer)]
    pub peers: Vec<SocketAddr>,
    /// Find no peers through the DHT and answer no DHT queries: no UDP socket for it.
    /// `ENJAMBRE_NO_DHT=1` (or true, yes, on) does the same.
    #[arg(long, env = "ENJAMBRE_NO_DHT", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_dht: bool,
    /// Join the DHT through this node (repeatable): HOST:PORT, or `none` to start a DHT of
    /// our own. Besides, the nodes saved by the last run are used; the public routers only
    /// when there is neither.
    #[arg(long, value_name = "HOST:PORT")]
    pub dht_bootstrap: Vec<String>,
    /// Print progress as JSON lines on stdout.
    #[arg(long)]
    pub json: bool,
    /// With --json, also a line of type `peers` every 2 s: each connected peer's address,
    /// pieces, choke and interest both ways, rates and requests (the laboratory's records).
    #[arg(long, requires = "json")]
    pub json_peers: bool,
    /// Print no progress and no notes, only errors.
    #[arg(short, long, conflicts_with = "json")]
    pub quiet: bool,
    /// Download rate limit in bytes per second: 500k, 1.5M, 2MiB/s (k, M, G are 1024-based).
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub max_download_rate: Option<u64>,
    /// Upload rate limit in bytes per second: 500k, 1.5M, 2MiB/s (k, M, G are 1024-based).
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub max_upload_rate: Option<u64>,
    /// Never lower the upload rate by itself. By default, while downloading, uploads are
    /// limited when every upload connection's round trip shows a queue of more than 400 ms,
    /// and the limit then keeps that queue near 100 ms, so the acknowledgements of our
    /// downloads are not stuck behind our uploads (a slow uplink's bane).
    #[arg(long)]
    pub no_auto_upload_limit: bool,
    /// Flush the data to disk before every resume-state save. Without it the state is saved
    /// at once and, after a reboot (not after a crash of enjambre alone), claimed pieces are
    /// checked again before they are trusted.
    #[arg(long)]
    pub fsync: bool,
    /// Connected peers at most.
    #[arg(long, default_value_t = 50)]
    pub max_peers: usize,
    /// Super-seed (BEP 16) while we have every piece: show each peer one or two pieces at a
    /// time, pieces nobody was shown first, so the first copy uploaded spreads the whole file.
    /// For the first seed of a new swarm; peers (and the tracker's poller) see only what was
    /// shown to them.
    #[arg(long)]
    pub super_seed: bool,
    /// Stop seeding once this many times the torrent's size is uploaded (with `get`: seed
    /// after the download until then).
    #[arg(long, value_name = "RATIO", value_parser = parse_ratio)]
    pub seed_ratio: Option<f64>,
    /// Stop seeding after this long: 90s, 30m, 2h, 1d or seconds (with `get`: seed after the
    /// download for that long).
    #[arg(long, value_name = "TIME", value_parser = parse_duration)]
    pub seed_time: Option<Duration>,
    /// Message stream encryption (MSE/PE): `plaintext` (refuse it), `prefer-plaintext`
    /// (accept both, dial in plaintext), `prefer-encrypted` (accept both, dial encrypted,
    /// plaintext when that fails) or `require` (encrypted connections only).
    #[arg(long, value_name = "POLICY", value_enum, default_value_t = Policy::PreferPlaintext)]
    pub encryption: Policy,
}

/// `enjambre get TORRENT [-o DIR]`.
#[derive(clap::Args, Debug, Clone)]
pub struct GetArgs {
    /// The .torrent file, an http(s) URL of one, or a magnet link (`magnet:?xt=urn:btih:…`).
    pub torrent: PathBuf,
    /// Directory to download into (the torrent's name is created inside it).
    #[arg(short, long = "output", value_name = "DIR", default_value = ".")]
    pub output: PathBuf,
    /// Keep seeding after the download completes (until Ctrl-C, --seed-ratio or --seed-time).
    #[arg(long)]
    pub seed: bool,
    /// Cut files already in DIR that are longer than the torrent says to its length (without
    /// it such a file stops the download, untouched).
    #[arg(long)]
    pub overwrite: bool,
    /// Keep asking the trackers (5 s, then doubling up to about 5 min) instead of giving up
    /// after three failed attempts with no peer.
    #[arg(long)]
    pub wait: bool,
    /// Download only the files whose path matches GLOB (repeatable). Paths are as `enjambre
    /// info` lists them, below the torrent's name; `*` and `?` stay within a directory, `**`
    /// crosses them, and a pattern without `/` also matches the file's own name.
    #[arg(long, value_name = "GLOB")]
    pub only: Vec<String>,
    /// Do not download the files whose path matches GLOB (repeatable; applied after --only
    /// and --files).
    #[arg(long, value_name = "GLOB")]
    pub skip: Vec<String>,
    /// Download only the files of these indexes, as `enjambre info` numbers them: `0,2,5-7`
    /// (repeatable; adds to --only).
    #[arg(long, value_name = "LIST")]
    pub files: Vec<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `enjambre seed TORRENT --data PATH`.
#[derive(clap::Args, Debug, Clone)]
pub struct SeedArgs {
    /// The .torrent file.
    pub torrent: PathBuf,
    /// The data: the file itself (single-file torrent) or the torrent's directory (multi-file),
    /// or the directory that contains it under the torrent's name (as `get -o DIR` leaves it).
    #[arg(long, value_name = "PATH")]
    pub data: PathBuf,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Parse a rate in bytes per second: a number, decimals allowed, then an optional unit, any case:
/// none or `B` for bytes; `k`, `kB`, `KiB` for 1024; `M`, `MB`, `MiB` for 1024²; `G`, `GB`,
/// `GiB` for 1024³; and an optional `/s`. So `1.5M`, `1MB` and `1.5 MiB/s` all work.
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t.strip_suffix("/s").unwrap_or(t).trim_end();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let bad = || format!("{s:?} is not a rate (try 500k, 1.5M or 10MiB)");
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    let n: f64 = number.parse().map_err(|_| bad())?;
    let bytes = (n * mult as f64).floor();
    if bytes >= u64::MAX as f64 {
        Err(format!("{s:?} is too large"))
    } else if bytes < 1.0 {
        Err("a rate limit must be at least one byte per second".to_string())
    } else {
        Ok(bytes as u64)
    }
}

/// Parse a seed ratio: a number above zero.
pub fn parse_ratio(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!("{s:?} is not a ratio above zero (try 1 or 2.5)")),
    }
}

/// Parse a duration: a whole number with an optional unit `s`, `m`, `h` or `d` (seconds when
/// none).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let bad = || format!("{s:?} is not a duration (try 90s, 30m, 2h or 1d)");
    let (number, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    let n: u64 = number.parse().map_err(|_| bad())?;
    match n.checked_mul(mult) {
        Some(0) => Err("a duration must be above zero".to_string()),
        Some(secs) => Ok(Duration::from_secs(secs)),
        None => Err(bad()),
    }
}

/// Parse a peer address: `IP:PORT`, `[IPv6]:PORT` or `HOST:PORT` (resolved now, IPv4 first).
pub fn parse_peer(s: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    if let Ok(addr) = s.parse() {
        return Ok(addr);
    }
    let addrs: Vec<SocketAddr> = s
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {s:?} (expected HOST:PORT): {e}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("{s:?} resolves to no address"))
}

#[cfg(test)]
mod tests {
    use super::{parse_duration, parse_peer, parse_rate, parse_ratio};
    use std::time::Duration;

    #[test]
    fn seed_limits_read_as_people_write_them() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        for bad in ["", "0", "1.5h", "5 minutes", "-1s", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_ratio("2.5"), Ok(2.5));
        for bad in ["0", "-1", "inf", "NaN", "x"] {
            assert!(parse_ratio(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rates_take_decimals_and_the_usual_unit_spellings() {
        assert_eq!(parse_rate("1000"), Ok(1000));
        assert_eq!(parse_rate("512k"), Ok(512 * 1024));
        assert_eq!(parse_rate("10M"), Ok(10 << 20));
        assert_eq!(parse_rate("2G"), Ok(2 << 30));
        assert_eq!(parse_rate("1.5M"), Ok(3 << 19));
        assert_eq!(parse_rate("1MB"), Ok(1 << 20));
        assert_eq!(parse_rate("1.5 MiB/s"), Ok(3 << 19));
        assert_eq!(parse_rate("64KiB"), Ok(64 << 10));
        assert_eq!(parse_rate("0.5k"), Ok(512));
        assert_eq!(parse_rate("300B"), Ok(300));
        for bad in [
            "",
            "k",
            "0",
            "0.1",
            "-1",
            "1.5.1M",
            "1e3",
            "1T",
            "9999999999999G",
        ] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn peers_may_be_given_by_host_name() {
        let local = parse_peer("localhost:17001").unwrap();
        assert!(local.ip().is_loopback(), "{local}");
        assert_eq!(local.port(), 17001);
        assert_eq!(parse_peer("[::1]:5").unwrap(), "[::1]:5".parse().unwrap());
        assert!(parse_peer("localhost").is_err(), "no port");
        assert!(parse_peer("localhost:port").is_err());
    }
}
