//! `enjambre info`: what a `.torrent` holds (name, size, files, pieces, info-hash, trackers and
//! a magnet link), as text or as one JSON object.

use enjambre_core::metainfo::Metainfo;

use crate::peer::progress::human;
use crate::peer::Failure;

/// Arguments of `enjambre info`.
#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    /// The .torrent file, or an http(s) URL of one.
    pub torrent: std::path::PathBuf,
    /// Print one JSON object on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Run `enjambre info`.
pub fn run(args: InfoArgs) -> anyhow::Result<()> {
    let bytes = crate::torrent_source::read(&args.torrent)?;
    let meta = Metainfo::parse(&bytes).map_err(|e| {
        Failure::new(
            2,
            format!("{} is not a valid torrent: {e}", args.torrent.display()),
        )
    })?;
    let web_seeds: Vec<&str> = enjambre_core::metainfo::web_seeds(&bytes).collect();
    if args.json {
        let mut j = json(&meta);
        j["web_seeds"] = serde_json::json!(web_seeds);
        println!("{j}");
    } else {
        let mut out = text(&meta);
        if !web_seeds.is_empty() {
            let at = out.find("files (index").unwrap_or(out.len());
            let list: String = web_seeds.iter().map(|u| format!("  {u}\n")).collect();
            out.insert_str(at, &format!("web seeds:\n{list}"));
        }
        print!("{out}");
    }
    Ok(())
}

/// The human-readable summary.
fn text(meta: &Metainfo<'_>) -> String {
    let g = meta.geometry();
    let files = meta.file_count();
    let mut out = format!(
        "name:       {}\ninfo-hash:  {}\nsize:       {} ({} bytes) in {files} file{}\n\
         pieces:     {} of {} ({} bytes)\nprivate:    {}\n",
        meta.name,
        meta.info_hash,
        human(g.total_length()),
        g.total_length(),
        if files == 1 { "" } else { "s" },
        g.piece_count(),
        human(u64::from(g.piece_length())),
        g.piece_length(),
        if meta.private { "yes" } else { "no" },
    );
    if let Some(c) = meta.comment {
        out += &format!("comment:    {c}\n");
    }
    if let Some(c) = meta.created_by {
        out += &format!("created by: {c}\n");
    }
    let trackers: Vec<(usize, &str)> = meta.trackers().collect();
    if trackers.is_empty() {
        out += "trackers:   none\n";
    } else {
        out += "trackers:\n";
        for (tier, url) in trackers {
            out += &format!("  tier {tier}: {url}\n");
        }
    }
    // The index is what `get --files` takes.
    out += "files (index, bytes, path):\n";
    for f in meta.files() {
        let path = if meta.is_multi_file() {
            format!("{}/{}", meta.name, f.path)
        } else {
            f.path.to_string()
        };
        let pad = if f.pad {
            "  (padding, never stored)"
        } else {
            ""
        };
        out += &format!("  {:>4}  {:>12}  {path}{pad}\n", f.index, f.length);
    }
    out += &format!("magnet:     {}\n", magnet(meta));
    out
}

/// The same facts as one JSON object.
fn json(meta: &Metainfo<'_>) -> serde_json::Value {
    let g = meta.geometry();
    let files: Vec<_> = meta
        .files()
        .map(|f| {
            let path: Vec<&str> = f.path.components().collect();
            serde_json::json!({ "index": f.index, "path": path, "length": f.length, "pad": f.pad })
        })
        .collect();
    let trackers: Vec<_> = meta
        .trackers()
        .map(|(tier, url)| serde_json::json!({ "tier": tier, "url": url }))
        .collect();
    serde_json::json!({
        "name": meta.name,
        "info_hash": meta.info_hash.to_string(),
        "total_length": g.total_length(),
        "piece_length": g.piece_length(),
        "piece_count": g.piece_count(),
        "multi_file": meta.is_multi_file(),
        "files": files,
        "trackers": trackers,
        "private": meta.private,
        "comment": meta.comment,
        "created_by": meta.created_by,
        "creation_date": meta.creation_date,
        "magnet": magnet(meta),
    })
}

/// A BEP 9 magnet link: the info-hash, the name and every tracker.
pub fn magnet(meta: &Metainfo<'_>) -> String {
    let mut link = format!(
        "magnet:?xt=urn:btih:{}&dn={}",
        meta.info_hash,
        percent_encode(meta.name)
    );
    for (_, url) in meta.trackers() {
        link += "&tr=";
        link += &percent_encode(url);
    }
    link
}

/// Percent-encode everything but RFC 3986's unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out += &format!("%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_magnet_link_escapes_the_name_and_the_trackers() {
        assert_eq!(percent_encode("a b/ñ"), "a%20b%2F%C3%B1");
        assert_eq!(percent_encode("Az09-._~"), "Az09-._~");
    }
}
