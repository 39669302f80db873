//! `enjambre create`: hash a file or a directory and write a `.torrent` for it.
//!
//! Files of a directory are taken in byte order of their relative paths, regular files only
//! (symlinks and special files are skipped, with a warning), so the same tree always gives the
//! same info-hash. The `.torrent` being written is never one of the files, even when it is
//! written inside the shared directory, and an existing one is only replaced with `--force`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use enjambre_core::metainfo::{write_torrent, FileSpec, Metainfo, TorrentSpec};
use sha1::{Digest, Sha1};

/// Arguments of `enjambre create`.
#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// The file or directory to share.
    pub path: PathBuf,
    /// Tracker announce URL; repeat for more tiers, or give `URL,URL` for several in one tier.
    #[arg(short, long = "tracker", value_name = "URL")]
    pub trackers: Vec<String>,
    /// Piece length in bytes (a power of two, 16 KiB or more); chosen from the size by default.
    #[arg(long, value_name = "N")]
    pub piece_length: Option<u32>,
    /// Where to write the torrent (default: NAME.torrent in the current directory).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Mark the torrent private (BEP 27).
    #[arg(long)]
    pub private: bool,
    /// A free-text comment.
    #[arg(long)]
    pub comment: Option<String>,
    /// Replace the output file if it exists.
    #[arg(short, long)]
    pub force: bool,
    /// Also write a flash image (header, info dictionary, file) for a board to seed.
    #[arg(long, value_name = "OUT.bin")]
    pub flash_image: Option<PathBuf>,
    /// A web seed (BEP 19): an http(s) URL serving the file (or, ending with `/`, the directory
    /// holding it under the torrent's name); repeat for more.
    #[arg(long = "web-seed", value_name = "URL")]
    pub web_seeds: Vec<String>,
}

/// One file to hash: where it is and its path inside the torrent.
struct Input {
    disk: PathBuf,
    components: Vec<String>,
    length: u64,
}

/// A torrent written by [`build`].
pub struct Built {
    /// The `.torrent` bytes.
    pub bytes: Vec<u8>,
    /// The torrent's name.
    pub name: String,
    /// Its info-hash.
    pub info_hash: enjambre_core::InfoHash,
    /// Total bytes, file count, piece count and piece length, for the summary line.
    pub total: u64,
    /// Number of files.
    pub files: usize,
    /// Number of pieces.
    pub pieces: usize,
    /// Piece length.
    pub piece_length: u32,
}

/// Run `enjambre create`.
pub fn run(args: CreateArgs) -> anyhow::Result<()> {
    let out = output_path(&args, &torrent_name(&args.path)?);
    // Checked before hashing, which can take long, and again by `create_new` when writing.
    if out.exists() && !args.force {
        bail!("{} exists; use --force to replace it", out.display());
    }
    let built = build(&args)?;
    let mut options = OpenOptions::new();
    options.write(true);
    if args.force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    options
        .open(&out)
        .and_then(|mut f| f.write_all(&built.bytes))
        .with_context(|| format!("writing {}", out.display()))?;
    println!(
        "{}: {} ({} bytes in {} file{}, {} pieces of {} bytes), info-hash {}",
        out.display(),
        built.name,
        built.total,
        built.files,
        if built.files == 1 { "" } else { "s" },
        built.pieces,
        built.piece_length,
        built.info_hash
    );
    if let Some(image) = &args.flash_image {
        crate::create_flash::write(&built.bytes, &args.path, image, args.force)?;
    }
    if args.trackers.is_empty() {
        eprintln!("warning: no --tracker given; peers will need --peer to find each other");
    }
    Ok(())
}

/// Hash the data and encode the torrent (checked by parsing it back).
pub fn build(args: &CreateArgs) -> anyhow::Result<Built> {
    for url in args
        .trackers
        .iter()
        .flat_map(|t| t.split(','))
        .map(str::trim)
    {
        if !url.is_empty() {
            check_tracker_url(url).map_err(|e| anyhow::anyhow!("--tracker {url:?}: {e}"))?;
        }
    }
    for url in &args.web_seeds {
        if !enjambre_core::metainfo::is_web_url(url) {
            bail!("--web-seed {url:?}: not an http:// or https:// URL");
        }
    }
    let name = torrent_name(&args.path)?;
    // Our own earlier output, if it sits among the files, is not part of the torrent.
    let skip = output_path(args, &name).canonicalize().ok();
    let (inputs, multi) = collect(&args.path, &name, skip.as_deref())?;
    let total: u64 = inputs.iter().map(|i| i.length).sum();
    if total == 0 {
        bail!(
            "{} holds no data: a torrent needs at least one byte",
            args.path.display()
        );
    }
    let piece_length = match args.piece_length {
        Some(n) if n >= 16 * 1024 && n.is_power_of_two() => n,
        Some(n) => bail!("--piece-length {n}: must be a power of two of at least 16384"),
        None => auto_piece_length(total),
    };
    let pieces = hash_pieces(&inputs, piece_length)?;

    let tiers: Vec<Vec<&str>> = args
        .trackers
        .iter()
        .map(|t| {
            t.split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .collect()
        })
        .collect();
    let tier_refs: Vec<&[&str]> = tiers
        .iter()
        .filter(|t| !t.is_empty())
        .map(Vec::as_slice)
        .collect();
    let paths: Vec<Vec<&str>> = inputs
        .iter()
        .map(|i| i.components.iter().map(String::as_str).collect())
        .collect();
    let files: Vec<FileSpec<'_>> = if multi {
        inputs
            .iter()
            .zip(&paths)
            .map(|(i, p)| FileSpec {
                length: i.length,
                path: p,
            })
            .collect()
    } else {
        Vec::new()
    };
    let created_by = concat!("enjambre/", env!("CARGO_PKG_VERSION"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let spec = TorrentSpec {
        name: &name,
        piece_length,
        pieces: &pieces,
        files: &files,
        length: total,
        trackers: &tier_refs,
        private: args.private,
        created_by: Some(created_by),
        creation_date: Some(now),
        comment: args.comment.as_deref(),
    };
    let bytes = with_url_list(encode(&spec)?, &args.web_seeds);
    let info_hash = Metainfo::parse(&bytes)
        .map_err(|e| anyhow::anyhow!("the torrent we wrote does not parse: {e}"))?
        .info_hash;
    Ok(Built {
        bytes,
        name,
        info_hash,
        total,
        files: inputs.len(),
        pieces: pieces.len() / 20,
        piece_length,
    })
}

/// Add `url-list` (BEP 19) to an encoded torrent: it sorts after every key the writer puts in
/// the root dictionary, so it goes just before the dictionary's end.
fn with_url_list(mut torrent: Vec<u8>, urls: &[String]) -> Vec<u8> {
    if urls.is_empty() || torrent.pop() != Some(b'e') {
        return torrent;
    }
    torrent.extend_from_slice(b"8:url-listl");
    for url in urls {
        torrent.extend_from_slice(format!("{}:{url}", url.len()).as_bytes());
    }
    torrent.extend_from_slice(b"ee");
    torrent
}

/// Aim for about 1,500 pieces: 16 KiB for small files up to 16 MiB for very large ones.
fn auto_piece_length(total: u64) -> u32 {
    let target = (total / 1500).clamp(16 * 1024, 16 * 1024 * 1024);
    target.next_power_of_two().min(16 * 1024 * 1024) as u32
}

fn encode(spec: &TorrentSpec<'_>) -> anyhow::Result<Vec<u8>> {
    let mut buf = vec![0u8; spec.pieces.len() + spec.files.len() * 128 + 4096];
    loop {
        match write_torrent(spec, &mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(enjambre_core::metainfo::WriteError::BufferTooSmall(e)) => {
                let len = e.required.max(buf.len() * 2);
                buf.resize(len, 0);
            }
            Err(e) => bail!("cannot write the torrent: {e}"),
        }
    }
}

/// The torrent's name: the shared file's or directory's own name.
fn torrent_name(path: &Path) -> anyhow::Result<String> {
    std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    path.canonicalize()
        .ok()
        .and_then(|p| p.file_name().and_then(|n| n.to_str()).map(String::from))
        .with_context(|| format!("{} has no usable (UTF-8) name", path.display()))
}

/// Where the torrent is written: `--output`, or `NAME.torrent` in the current directory.
fn output_path(args: &CreateArgs, name: &str) -> PathBuf {
    args.output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{name}.torrent")))
}

/// Check an announce URL: `http`, `https` or `udp`, a host, and a port (required for `udp`).
pub fn check_tracker_url(url: &str) -> Result<(), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or("not a URL (try http://host:port/announce or udp://host:port)")?;
    let scheme = scheme.to_ascii_lowercase();
    if !matches!(scheme.as_str(), "http" | "https" | "udp") {
        return Err(format!(
            "unsupported scheme {scheme:?} (http, https or udp)"
        ));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains spaces or control characters".into());
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err("user names are not supported in tracker URLs".into());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (ip, after) = v6.split_once(']').ok_or("unclosed [ in the host")?;
        ip.parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("{ip:?} is not an IPv6 address"))?;
        match after {
            "" => (ip, None),
            p => (ip, Some(p.strip_prefix(':').ok_or("junk after the host")?)),
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
    if !host_ok {
        return Err(format!("{host:?} is not a host name"));
    }
    match port {
        Some(p) if p.parse::<u16>().is_ok_and(|p| p > 0) => Ok(()),
        Some(p) => Err(format!("{p:?} is not a port")),
        None if scheme == "udp" => Err("a udp tracker needs a port (udp://host:port)".into()),
        None => Ok(()),
    }
}

/// Return the files in torrent order and whether the path is a directory, leaving out `skip`.
fn collect(path: &Path, name: &str, skip: Option<&Path>) -> anyhow::Result<(Vec<Input>, bool)> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.is_file() {
        let input = Input {
            disk: path.to_path_buf(),
            components: vec![name.to_string()],
            length: meta.len(),
        };
        return Ok((vec![input], false));
    }
    let mut inputs = Vec::new();
    walk(path, &mut Vec::new(), &mut inputs, skip)?;
    if inputs.is_empty() {
        bail!("{} has no files", path.display());
    }
    inputs.sort_by(|a, b| a.components.cmp(&b.components));
    Ok((inputs, true))
}

fn walk(
    dir: &Path,
    prefix: &mut Vec<String>,
    out: &mut Vec<Input>,
    skip: Option<&Path>,
) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let disk = entry.path();
        let Some(component) = entry.file_name().to_str().map(String::from) else {
            bail!("{}: file names in a torrent must be UTF-8", disk.display());
        };
        let kind = entry
            .file_type()
            .with_context(|| format!("reading {}", disk.display()))?;
        prefix.push(component);
        if kind.is_dir() {
            walk(&disk, prefix, out, skip)?;
        } else if kind.is_file() && skip.is_some() && disk.canonicalize().ok().as_deref() == skip {
            eprintln!(
                "note: leaving out {} (the torrent being written)",
                disk.display()
            );
        } else if kind.is_file() {
            let length = entry
                .metadata()
                .with_context(|| format!("reading {}", disk.display()))?
                .len();
            out.push(Input {
                disk,
                components: prefix.clone(),
                length,
            });
        } else {
            eprintln!("warning: skipping {} (not a regular file)", disk.display());
        }
        prefix.pop();
    }
    Ok(())
}

/// Hash the concatenated files piece by piece.
fn hash_pieces(inputs: &[Input], piece_length: u32) -> anyhow::Result<Vec<u8>> {
    let total: u64 = inputs.iter().map(|i| i.length).sum();
    let mut pieces = Vec::with_capacity((total.div_ceil(u64::from(piece_length)) * 20) as usize);
    let mut hasher = Sha1::new();
    let mut in_piece = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    for input in inputs {
        let mut file =
            File::open(&input.disk).with_context(|| format!("opening {}", input.disk.display()))?;
        let mut left = input.length;
        while left > 0 {
            let want = (piece_length as usize - in_piece)
                .min(buf.len())
                .min(left as usize);
            let n = file
                .read(&mut buf[..want])
                .with_context(|| format!("reading {}", input.disk.display()))?;
            if n == 0 {
                bail!("{} shrank while it was being hashed", input.disk.display());
            }
            hasher.update(&buf[..n]);
            in_piece += n;
            left -= n as u64;
            if in_piece == piece_length as usize {
                pieces.extend_from_slice(&hasher.finalize_reset());
                in_piece = 0;
            }
        }
    }
    if in_piece > 0 {
        pieces.extend_from_slice(&hasher.finalize());
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piece_length_grows_with_size() {
        assert_eq!(auto_piece_length(1), 16 * 1024);
        assert_eq!(auto_piece_length(1 << 30), 1 << 20);
        assert_eq!(auto_piece_length(u64::MAX), 16 << 20);
    }

    #[test]
    fn pieces_cross_file_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join("a"), &data[..30_000]).unwrap();
        std::fs::write(dir.path().join("b"), &data[30_000..]).unwrap();
        let (inputs, multi) = collect(dir.path(), "d", None).unwrap();
        assert!(multi);
        let pieces = hash_pieces(&inputs, 16384).unwrap();
        let want: Vec<u8> = data
            .chunks(16384)
            .flat_map(|c| Sha1::digest(c).to_vec())
            .collect();
        assert_eq!(pieces, want);
    }

    #[test]
    fn tracker_urls_need_a_known_scheme_a_host_and_a_port_for_udp() {
        for good in [
            "http://127.0.0.1:6969/announce",
            "https://tracker.example/announce",
            "udp://tracker.example:1337",
            "udp://[::1]:6969/announce",
            "HTTP://t.example:80/a?x=1",
        ] {
            assert_eq!(check_tracker_url(good), Ok(()), "{good}");
        }
        for bad in [
            "notaurl",
            "ftp://t.example/announce",
            "http:///announce",
            "udp://t.example",
            "udp://t.example:0",
            "http://t.example:99999/announce",
            "http://t example/announce",
            "udp://[::1:6969",
        ] {
            assert!(check_tracker_url(bad).is_err(), "{bad}");
        }
    }
}
