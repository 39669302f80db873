//! Any bytes as a .torrent: parse never panics; accepted torrents are self-consistent and survive
//! a write_torrent -> parse round trip.
#![no_main]

use enjambre_core::metainfo::{write_torrent, FileSpec, Metainfo, TorrentSpec};
use enjambre_core::sha1::{digest, Sha1Smol};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = Metainfo::parse(data) else { return };
    let g = m.geometry();
    assert_eq!(m.info_hash.0, digest::<Sha1Smol>(m.info_bytes));
    assert_eq!(m.pieces().len(), g.piece_count() as usize * 20);

    let files: Vec<_> = m.files().collect();
    assert_eq!(files.len(), m.file_count());
    assert_eq!(
        files.iter().map(|f| f.length).sum::<u64>(),
        g.total_length()
    );
    for f in &files {
        for c in f.path.components() {
            assert!(!c.is_empty() && c != "." && c != ".." && !c.contains(['/', '\\', '\0']));
        }
    }
    for p in g.pieces().take(64) {
        let len = g.piece_len(p);
        let _ = m.piece_hash(p);
        let mut next = 0;
        for s in m.segments(p, 0, len) {
            assert_eq!(s.block_offset, next);
            next += s.len;
        }
        assert_eq!(next, len);
    }

    // Write the same torrent again and read it back.
    let paths: Vec<Vec<&str>> = files
        .iter()
        .map(|f| f.path.components().collect())
        .collect();
    let specs: Vec<FileSpec<'_>> = files
        .iter()
        .zip(&paths)
        .map(|(f, p)| FileSpec {
            length: f.length,
            path: p.as_slice(),
        })
        .collect();
    let mut tiers: Vec<Vec<&str>> = Vec::new();
    for (tier, url) in m.trackers() {
        if tiers.len() <= tier {
            tiers.push(Vec::new());
        }
        tiers[tier].push(url);
    }
    let tier_refs: Vec<&[&str]> = tiers.iter().map(|t| t.as_slice()).collect();
    let spec = TorrentSpec {
        name: m.name,
        piece_length: g.piece_length(),
        pieces: m.pieces(),
        files: if m.is_multi_file() { &specs } else { &[] },
        length: g.total_length(),
        trackers: &tier_refs,
        private: m.private,
        created_by: m.created_by,
        creation_date: m.creation_date,
        comment: m.comment,
    };
    let mut out = vec![0u8; data.len() * 2 + 1024];
    let n = match write_torrent(&spec, &mut out) {
        Ok(n) => n,
        Err(e) => panic!("a parsed torrent must be writable: {e}"),
    };
    let again = Metainfo::parse(&out[..n]).expect("written torrent parses");
    assert_eq!(again.geometry(), g);
    assert_eq!(again.name, m.name);
    assert_eq!(again.private, m.private);
    assert!(again
        .files()
        .map(|f| f.length)
        .eq(files.iter().map(|f| f.length)));
    assert!(again.trackers().eq(m.trackers()));
});
