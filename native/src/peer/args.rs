//! Command-line arguments of `enjambre get` and `enjambre seed`.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Flags shared by `get` and `seed`.
#[derive(clap::Args, Debug, Clone)]
pub struct CommonArgs {
    /// TCP port to accept peers on (0: any free port).
    #[arg(long, default_value_t = 6881)]
    pub port: u16,
    /// Address to accept peers on (default: all IPv4 addresses).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::IpAddr>,
    /// Connect to this peer as well as the trackers' (repeatable).
    #[arg(long = "peer", value_name = "ADDR")]
    pub peers: Vec<SocketAddr>,
    /// Print progress as JSON lines on stdout.
    #[arg(long)]
    pub json: bool,
    /// Download rate limit, bytes per second (suffixes k, M, G: 1024-based).
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub max_download_rate: Option<u64>,
    /// Upload rate limit, bytes per second (suffixes k, M, G: 1024-based).
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub max_upload_rate: Option<u64>,
    /// Flush the data to disk before every resume-state save. Without it the state is saved
    /// at once and, after a reboot (not after a crash of enjambre alone), claimed pieces are
    /// checked again before they are trusted.
    #[arg(long)]
    pub fsync: bool,
    /// Connected peers at most.
    #[arg(long, default_value_t = 50)]
    pub max_peers: usize,
}

/// `enjambre get TORRENT [-o DIR]`.
#[derive(clap::Args, Debug, Clone)]
pub struct GetArgs {
    /// The .torrent file.
    pub torrent: PathBuf,
    /// Directory to download into (the torrent's name is created inside it).
    #[arg(short, long = "output", value_name = "DIR", default_value = ".")]
    pub output: PathBuf,
    /// Keep seeding after the download completes (until Ctrl-C).
    #[arg(long)]
    pub seed: bool,
    /// Cut files already in DIR that are longer than the torrent says to its length (without
    /// it such a file stops the download, untouched).
    #[arg(long)]
    pub overwrite: bool,
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

/// Parse `1048576`, `512k`, `10M`, `1G` (1024-based) into bytes per second.
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, mult) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 1u64 << 10),
        Some((i, 'm' | 'M')) => (&s[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    let n: u64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a rate (try 500k or 10M)"))?;
    match n.checked_mul(mult) {
        Some(0) => Err("a rate limit must be above zero".to_string()),
        Some(v) => Ok(v),
        None => Err(format!("{s:?} is too large")),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_rate;

    #[test]
    fn rates() {
        assert_eq!(parse_rate("1000"), Ok(1000));
        assert_eq!(parse_rate("512k"), Ok(512 * 1024));
        assert_eq!(parse_rate("10M"), Ok(10 << 20));
        assert_eq!(parse_rate("2G"), Ok(2 << 30));
        for bad in ["", "k", "0", "-1", "1.5M", "99999999999G"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }
}
