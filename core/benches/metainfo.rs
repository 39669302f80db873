//! Parse time of a 10,000-piece torrent (single file, and 100 files), built with `write_torrent`,
//! and the bencode validation alone (the rest of `parse` is mostly SHA-1 of the info dict).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use enjambre_core::bencode::{decode_with, DecodeOptions};
use enjambre_core::metainfo::{write_torrent, FileSpec, Metainfo, TorrentSpec};

const PIECES: usize = 10_000;
const PIECE_LEN: u32 = 256 * 1024;

fn torrent(files: &[FileSpec<'_>], length: u64, pieces: &[u8]) -> Vec<u8> {
    let spec = TorrentSpec {
        name: "bench",
        piece_length: PIECE_LEN,
        pieces,
        files,
        length,
        trackers: &[
            &["http://tracker.example:6969/announce"],
            &["udp://backup.example:1337"],
        ],
        private: false,
        created_by: Some("enjambre bench"),
        creation_date: Some(1_700_000_000),
        comment: None,
    };
    let mut out = vec![0u8; 1 << 20];
    let n = write_torrent(&spec, &mut out).expect("bench torrent fits");
    out.truncate(n);
    out
}

fn parse(c: &mut Criterion) {
    let pieces: Vec<u8> = (0..PIECES * 20).map(|i| (i % 251) as u8).collect();
    let total = PIECES as u64 * u64::from(PIECE_LEN);

    let single = torrent(&[], total, &pieces);
    c.bench_function("parse 10k pieces, 1 file", |b| {
        b.iter(|| Metainfo::parse(black_box(&single)).unwrap().info_hash)
    });

    // The same bytes through the bencode validator alone: what parse costs besides SHA-1.
    c.bench_function("bencode validate 10k pieces, 1 file", |b| {
        b.iter(|| decode_with(black_box(&single), DecodeOptions::LENIENT).unwrap())
    });

    let names: Vec<String> = (0..100).map(|i| format!("file-{i:03}.bin")).collect();
    let paths: Vec<[&str; 2]> = names.iter().map(|n| ["dir", n.as_str()]).collect();
    let files: Vec<FileSpec<'_>> = paths
        .iter()
        .map(|p| FileSpec {
            length: total / 100,
            path: p,
        })
        .collect();
    let multi = torrent(&files, 0, &pieces);
    c.bench_function("parse 10k pieces, 100 files", |b| {
        b.iter(|| Metainfo::parse(black_box(&multi)).unwrap().info_hash)
    });
}

criterion_group!(benches, parse);
criterion_main!(benches);
