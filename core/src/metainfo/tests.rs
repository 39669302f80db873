use super::*;
use crate::bencode::{decode, Encoder};
use crate::BufferTooSmall;
use proptest::prelude::*;
use std::string::String;
use std::vec;
use std::vec::Vec;

const URL: &str = "http://t.example/announce";

fn hashes(n: usize) -> Vec<u8> {
    (0..n * 20).map(|i| (i * 7 % 251) as u8).collect()
}

fn write(spec: &TorrentSpec<'_>) -> Vec<u8> {
    let mut out = vec![0u8; 1 << 16];
    let n = write_torrent(spec, &mut out).unwrap();
    out.truncate(n);
    out
}

fn single(name: &str, piece_length: u32, length: u64, pieces: &[u8]) -> Vec<u8> {
    write(&TorrentSpec {
        name,
        piece_length,
        pieces,
        files: &[],
        length,
        trackers: &[&[URL]],
        private: false,
        created_by: None,
        creation_date: None,
        comment: None,
    })
}

#[test]
fn a_torrent_rebuilt_around_received_info_bytes_has_their_hash_and_trackers() {
    let first = single("file.bin", 16384, 40000, &hashes(3));
    let m = Metainfo::parse(&first).unwrap();
    let tiers: &[&[&str]] = &[
        &["http://a.test/announce", "udp://b.test:80"],
        &["http://c.test/x"],
    ];
    let mut out = vec![0u8; 1024];
    let n = write_torrent_with_info(m.info_bytes, tiers, &mut out).unwrap();
    let again = Metainfo::parse(&out[..n]).unwrap();
    assert_eq!(again.info_hash, m.info_hash);
    assert_eq!(again.info_bytes, m.info_bytes);
    let urls: Vec<(usize, &str)> = again.trackers().collect();
    assert_eq!(
        urls,
        [
            (0, "http://a.test/announce"),
            (0, "udp://b.test:80"),
            (1, "http://c.test/x")
        ]
    );
    // Too small a buffer says exactly how much is needed, at every size.
    for len in 0..n {
        let e = write_torrent_with_info(m.info_bytes, tiers, &mut out[..len]).unwrap_err();
        assert_eq!(e.required, n, "with {len} bytes");
    }
    // No tracker at all (a magnet link found through the DHT): only `info`.
    let n = write_torrent_with_info(m.info_bytes, &[], &mut out).unwrap();
    assert_eq!(Metainfo::parse(&out[..n]).unwrap().trackers().count(), 0);
}

#[test]
fn the_piece_hashes_are_found_inside_the_info_bytes() {
    let pieces = hashes(3);
    let bytes = single("file.bin", 16384, 40000, &pieces);
    let m = Metainfo::parse(&bytes).unwrap();
    let at = m.pieces_offset();
    assert_eq!(&m.info_bytes[at..at + 60], &pieces[..]);
}

#[test]
fn a_pure_v2_torrent_is_refused_as_such() {
    let v2 = b"d4:infod9:file treed1:xd0:d6:lengthi5e11:pieces root32:0123456789abcdef0123456789abcdefeee12:meta versioni2e4:name1:x12:piece lengthi16384eee";
    let e = Metainfo::parse(v2).unwrap_err();
    assert_eq!(e, MetainfoError::V2Only);
    assert!(std::format!("{e}").contains("pure v2"), "{e}");
    // Without `meta version` 2 a missing `pieces` is just that.
    let v1 = b"d4:infod6:lengthi5e4:name1:x12:piece lengthi16384eee";
    assert_eq!(
        Metainfo::parse(v1).unwrap_err(),
        MetainfoError::MissingField("pieces")
    );
}

/// Build raw bencode with an encoder (to craft torrents `write_torrent` refuses to write).
fn raw(build: impl FnOnce(&mut Encoder<'_>) -> Result<(), BufferTooSmall>) -> Vec<u8> {
    let mut out = vec![0u8; 1 << 16];
    let mut e = Encoder::new(&mut out);
    build(&mut e).unwrap();
    let n = e.finish();
    out.truncate(n);
    out
}

/// A multi-file torrent with one file of length 1 at each raw `path`.
fn multi_with_paths(name: &[u8], paths: &[&[&[u8]]]) -> Vec<u8> {
    let total = paths.len();
    raw(|e| {
        e.dict()?.bytes(b"info")?.dict()?.bytes(b"files")?.list()?;
        for p in paths {
            e.dict()?.bytes(b"length")?.int(1)?.bytes(b"path")?.list()?;
            for c in *p {
                e.bytes(c)?;
            }
            e.end()?.end()?;
        }
        e.end()?
            .bytes(b"name")?
            .bytes(name)?
            .bytes(b"piece length")?
            .int(1 << 14)?;
        e.bytes(b"pieces")?
            .bytes(&hashes(total.div_ceil(1 << 14)))?
            .end()?
            .end()?;
        Ok(())
    })
}

#[test]
fn single_file_is_written_exactly_and_parses_back() {
    let pieces = hashes(3);
    let t = single("a.txt", 16, 40, &pieces);
    let mut expected = Vec::new();
    expected.extend_from_slice(b"d8:announce25:http://t.example/announce4:infod6:lengthi40e");
    expected.extend_from_slice(b"4:name5:a.txt12:piece lengthi16e6:pieces60:");
    expected.extend_from_slice(&pieces);
    expected.extend_from_slice(b"ee");
    assert_eq!(t, expected);
    // Sorted keys everywhere: the strict decoder accepts it.
    assert!(decode(&t).is_ok());

    let m = Metainfo::parse(&t).unwrap();
    assert_eq!(m.name, "a.txt");
    assert!(!m.private && !m.is_multi_file());
    let g = m.geometry();
    assert_eq!(
        (g.piece_length(), g.total_length(), g.piece_count()),
        (16, 40, 3)
    );
    assert_eq!(g.piece_len(g.piece(2).unwrap()), 8);
    assert_eq!(m.pieces(), &pieces[..]);
    assert_eq!(m.piece_hash(g.piece(1).unwrap())[..], pieces[20..40]);
    assert_eq!(m.announce(), Some(URL));
    assert_eq!(m.trackers().collect::<Vec<_>>(), [(0, URL)]);
    assert_eq!(m.file_count(), 1);
    let files: Vec<_> = m.files().collect();
    assert_eq!(files.len(), 1);
    assert_eq!(
        (files[0].index, files[0].length, files[0].offset),
        (0, 40, 0)
    );
    assert_eq!(files[0].path.components().collect::<Vec<_>>(), ["a.txt"]);
    // The info-hash is the SHA-1 of the info dictionary's exact bytes, which sit in the file.
    assert_eq!(
        m.info_bytes,
        &t[t.len() - 1 - m.info_bytes.len()..t.len() - 1]
    );
    assert_eq!(m.info_hash.0, digest::<Sha1Smol>(m.info_bytes));
}

#[test]
fn multi_file_with_tiers_and_optional_fields_round_trips() {
    let files = [
        FileSpec {
            length: 3,
            path: &["dir", "one.bin"],
        },
        FileSpec {
            length: 0,
            path: &["empty"],
        },
        FileSpec {
            length: 10,
            path: &["two.bin"],
        },
    ];
    let pieces = hashes(4);
    let t = write(&TorrentSpec {
        name: "album",
        piece_length: 4,
        pieces: &pieces,
        files: &files,
        length: 0,
        trackers: &[&["udp://a:1", "http://b/ann"], &[], &["http://c/ann"]],
        private: true,
        created_by: Some("enjambre"),
        creation_date: Some(1_700_000_000),
        comment: Some("hola"),
    });
    assert!(decode(&t).is_ok(), "keys sorted");
    let m = Metainfo::parse(&t).unwrap();
    assert!(m.private && m.is_multi_file());
    assert_eq!(m.name, "album");
    assert_eq!(
        (m.comment, m.created_by, m.creation_date),
        (Some("hola"), Some("enjambre"), Some(1_700_000_000))
    );
    assert_eq!(m.announce(), Some("udp://a:1"));
    assert_eq!(
        m.trackers().collect::<Vec<_>>(),
        [(0, "udp://a:1"), (0, "http://b/ann"), (1, "http://c/ann")]
    );
    assert_eq!(m.geometry().total_length(), 13);
    assert_eq!(m.file_count(), 3);
    let got: Vec<_> = m
        .files()
        .map(|f| (f.index, f.length, f.offset, std::format!("{}", f.path)))
        .collect();
    assert_eq!(
        got,
        [
            (0, 3, 0, "dir/one.bin".into()),
            (1, 0, 3, "empty".into()),
            (2, 10, 3, String::from("two.bin"))
        ]
    );
    assert_eq!(m.info_hash.0, digest::<Sha1Smol>(m.info_bytes));
    let info = decode(&t).unwrap().as_dict().unwrap().get(b"info").unwrap();
    assert_eq!(info.span(), Some(m.info_bytes));
    assert!(m.info_bytes.ends_with(b"7:privatei1ee"));
}

#[test]
fn unsorted_keys_are_accepted_and_hashed_raw() {
    // `info` before `announce`, and `name` before `length` inside `info`.
    let mut t = Vec::new();
    t.extend_from_slice(b"d4:infod4:name5:a.txt6:lengthi3e12:piece lengthi16384e6:pieces20:");
    t.extend((0u8..20).collect::<Vec<_>>());
    t.extend_from_slice(b"e8:announce13:http://t/annce");
    let m = Metainfo::parse(&t).unwrap();
    // Computed independently with Python's hashlib over the raw info bytes.
    assert_eq!(
        m.info_hash,
        InfoHash::from_hex("726975ac4eea0b316a0440e9d6f36525055eaabd").unwrap()
    );
    assert_eq!(m.announce(), Some("http://t/annc"));
    assert_eq!(m.geometry().piece_count(), 1);
}

#[test]
fn path_traversal_and_unsafe_components_are_refused() {
    let bad: &[&[u8]] = &[
        b"..",
        b".",
        b"",
        b"a/b",
        b"/etc",
        b"a\\b",
        b"\\\\server",
        b"a\0b",
        b"C:",
        b"c:evil",
        b"a:b",
        b"\xff",
    ];
    for &c in bad {
        let t = multi_with_paths(b"dir", &[&[b"ok", c]]);
        assert_eq!(
            Metainfo::parse(&t).err(),
            Some(MetainfoError::BadPath),
            "component {c:?}"
        );
        let t = multi_with_paths(c, &[&[b"ok"]]);
        assert_eq!(
            Metainfo::parse(&t).err(),
            Some(MetainfoError::BadPath),
            "name {c:?}"
        );
    }
    let t = multi_with_paths(b"dir", &[&[]]);
    assert_eq!(
        Metainfo::parse(&t).err(),
        Some(MetainfoError::BadPath),
        "empty path list"
    );
    // Dots inside a name are fine; so is a colon that is not a drive prefix.
    let t = multi_with_paths(b"dir", &[&[b"..a", b"a.", b"...", b"1:2", b"ab:c"]]);
    assert!(Metainfo::parse(&t).is_ok());

    // The writer refuses what the parser would refuse.
    let pieces = hashes(1);
    let spec = |name, files| TorrentSpec {
        name,
        piece_length: 16,
        pieces: &pieces,
        files,
        length: 1,
        trackers: &[],
        private: false,
        created_by: None,
        creation_date: None,
        comment: None,
    };
    let mut out = [0u8; 256];
    assert_eq!(
        write_torrent(&spec("..", &[]), &mut out),
        Err(WriteError::BadPath)
    );
    assert_eq!(
        write_torrent(&spec("a/b", &[]), &mut out),
        Err(WriteError::BadPath)
    );
    let files = [FileSpec {
        length: 1,
        path: &["x", ".."],
    }];
    assert_eq!(
        write_torrent(&spec("d", &files), &mut out),
        Err(WriteError::BadPath)
    );
    let files = [FileSpec {
        length: 1,
        path: &[],
    }];
    assert_eq!(
        write_torrent(&spec("d", &files), &mut out),
        Err(WriteError::BadPath)
    );
}

fn with_announce_list(announce: Option<&[u8]>, tiers: &[&[&[u8]]]) -> Vec<u8> {
    raw(|e| {
        e.dict()?;
        if let Some(a) = announce {
            e.bytes(b"announce")?.bytes(a)?;
        }
        e.bytes(b"announce-list")?.list()?;
        for tier in tiers {
            e.list()?;
            for url in *tier {
                e.bytes(url)?;
            }
            e.end()?;
        }
        e.end()?
            .bytes(b"info")?
            .dict()?
            .bytes(b"length")?
            .int(1)?
            .bytes(b"name")?
            .bytes(b"f")?;
        e.bytes(b"piece length")?
            .int(1)?
            .bytes(b"pieces")?
            .bytes(&hashes(1))?
            .end()?
            .end()?;
        Ok(())
    })
}

#[test]
fn bep12_tiers() {
    // announce-list wins over announce; empty tiers do not take a number.
    let t = with_announce_list(
        Some(b"http://solo"),
        &[&[b"http://a"], &[], &[b"http://b", b"udp://c:80"]],
    );
    let m = Metainfo::parse(&t).unwrap();
    assert_eq!(m.announce(), Some("http://solo"));
    assert_eq!(
        m.trackers().collect::<Vec<_>>(),
        [(0, "http://a"), (1, "http://b"), (1, "udp://c:80")]
    );

    // An announce-list without URLs falls back to announce as tier 0.
    let no_tiers: &[&[&[u8]]] = &[];
    let empty_tiers: &[&[&[u8]]] = &[&[], &[]];
    for tiers in [no_tiers, empty_tiers] {
        let t = with_announce_list(Some(b"http://solo"), tiers);
        let m = Metainfo::parse(&t).unwrap();
        assert_eq!(m.trackers().collect::<Vec<_>>(), [(0, "http://solo")]);
    }
    // Neither: trackerless.
    let t = with_announce_list(None, &[]);
    assert_eq!(Metainfo::parse(&t).unwrap().trackers().count(), 0);
    // Only announce-list.
    let t = with_announce_list(None, &[&[b"http://a"]]);
    let m = Metainfo::parse(&t).unwrap();
    assert_eq!(
        (m.announce(), m.trackers().collect::<Vec<_>>()),
        (None, vec![(0, "http://a")])
    );
    // Not UTF-8, or not a list of lists.
    let t = with_announce_list(None, &[&[b"http://\xff"]]);
    assert_eq!(
        Metainfo::parse(&t).err(),
        Some(MetainfoError::WrongType("announce-list"))
    );
    let t = raw(|e| {
        e.dict()?
            .bytes(b"announce-list")?
            .list()?
            .bytes(b"http://a")?
            .end()?;
        e.bytes(b"info")?
            .dict()?
            .bytes(b"length")?
            .int(1)?
            .bytes(b"name")?
            .bytes(b"f")?;
        e.bytes(b"piece length")?
            .int(1)?
            .bytes(b"pieces")?
            .bytes(&hashes(1))?
            .end()?
            .end()?;
        Ok(())
    });
    assert_eq!(
        Metainfo::parse(&t).err(),
        Some(MetainfoError::WrongType("announce-list"))
    );
}

/// Fields of an `info` dictionary, written in sorted order, for hostile-input tests.
fn info_dict(fields: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut t = b"d4:infod".to_vec();
    for (k, v) in fields {
        t.extend_from_slice(std::format!("{}:", k.len()).as_bytes());
        t.extend_from_slice(k);
        t.extend_from_slice(v);
    }
    t.extend_from_slice(b"ee");
    t
}

#[test]
fn hostile_torrents_are_refused() {
    use MetainfoError::*;
    let p1 = [b"20:".as_slice(), &hashes(1)].concat();
    let p2 = [b"40:".as_slice(), &hashes(2)].concat();
    let cases: &[(Vec<u8>, MetainfoError)] = &[
        (b"le".to_vec(), NotADict),
        (b"de".to_vec(), MissingField("info")),
        (b"d4:info4:spame".to_vec(), NotADict),
        (info_dict(&[(b"length", b"i1e"), (b"piece length", b"i1e"), (b"pieces", &p1)]), MissingField("name")),
        (info_dict(&[(b"length", b"i1e"), (b"name", b"i1e"), (b"piece length", b"i1e"), (b"pieces", &p1)]), WrongType("name")),
        (info_dict(&[(b"length", b"i1e"), (b"name", b"1:f"), (b"pieces", &p1)]), MissingField("piece length")),
        (info_dict(&[(b"length", b"i1e"), (b"name", b"1:f"), (b"piece length", b"i1e")]), MissingField("pieces")),
        (info_dict(&[(b"length", b"i1e"), (b"name", b"1:f"), (b"piece length", b"i0e"), (b"pieces", &p1)]), BadPieceLength),
        (info_dict(&[(b"length", b"i1e"), (b"name", b"1:f"), (b"piece length", b"i-1e"), (b"pieces", &p1)]), BadPieceLength),
        (info_dict(&[(b"length", b"i1e"), (b"name", b"1:f"), (b"piece length", b"i4294967296e"), (b"pieces", &p1)]), BadPieceLength),
        (info_dict(&[(b"length", b"i1e"), (b"name", b"1:f"), (b"piece length", b"1:x"), (b"pieces", &p1)]), WrongType("piece length")),
        (info_dict(&[(b"length", b"i1e"), (b"name", b"1:f"), (b"piece length", b"i1e"), (b"pieces", b"19:0123456789012345678")]), BadPiecesLength),
        (info_dict(&[(b"length", b"i1e"), (b"name", b"1:f"), (b"piece length", b"i1e"), (b"pieces", &p2)]), LengthMismatch),
        (info_dict(&[(b"length", b"i2e"), (b"name", b"1:f"), (b"piece length", b"i1e"), (b"pieces", &p1)]), LengthMismatch),
        (info_dict(&[(b"length", b"i1e"), (b"name", b"1:f"), (b"piece length", b"i1e"), (b"pieces", b"0:")]), LengthMismatch),
        (info_dict(&[(b"length", b"i-1e"), (b"name", b"1:f"), (b"piece length", b"i1e"), (b"pieces", &p1)]), WrongType("length")),
        (info_dict(&[(b"length", b"i0e"), (b"name", b"1:f"), (b"piece length", b"i1e"), (b"pieces", b"0:")]), ZeroLength),
        (info_dict(&[(b"length", b"i8589934592e"), (b"name", b"1:f"), (b"piece length", b"i1e"), (b"pieces", &p1)]), TooManyPieces),
        (info_dict(&[(b"name", b"1:f"), (b"piece length", b"i1e"), (b"pieces", &p1)]), MissingField("length")),
        (info_dict(&[(b"files", b"le"), (b"length", b"i1e"), (b"name", b"1:f"), (b"piece length", b"i1e"), (b"pieces", &p1)]), LengthAndFiles),
        (info_dict(&[(b"files", b"le"), (b"name", b"1:f"), (b"piece length", b"i1e"), (b"pieces", &p1)]), NoFiles),
        (info_dict(&[(b"files", b"i1e"), (b"name", b"1:f"), (b"piece length", b"i1e"), (b"pieces", &p1)]), WrongType("files")),
        (info_dict(&[(b"files", b"l4:spame"), (b"name", b"1:f"), (b"piece length", b"i1e"), (b"pieces", &p1)]), WrongType("files")),
        (info_dict(&[(b"files", b"ld4:pathl1:aeee"), (b"name", b"1:f"), (b"piece length", b"i1e"), (b"pieces", &p1)]), MissingField("length")),
        (info_dict(&[(b"files", b"ld6:lengthi1eee"), (b"name", b"1:f"), (b"piece length", b"i1e"), (b"pieces", &p1)]), MissingField("path")),
        (info_dict(&[(b"files", b"ld6:lengthi1e4:path1:aee"), (b"name", b"1:f"), (b"piece length", b"i1e"), (b"pieces", &p1)]), WrongType("path")),
        (
            info_dict(&[
                (b"files", b"ld6:lengthi9223372036854775807e4:pathl1:aeed6:lengthi9223372036854775807e4:pathl1:beed6:lengthi2e4:pathl1:ceee"),
                (b"name", b"1:f"),
                (b"piece length", b"i1e"),
                (b"pieces", &p1),
            ]),
            LengthOverflow,
        ),
        (b"d4:infodee".to_vec(), MissingField("name")),
        (b"".to_vec(), Bencode(BencodeError::UnexpectedEof)),
        (b"d4:infode".to_vec(), Bencode(BencodeError::UnexpectedEof)),
        (b"dei0e".to_vec(), Bencode(BencodeError::TrailingBytes { pos: 2 })),
        (b"d1:xi-0ee".to_vec(), Bencode(BencodeError::NonCanonicalInteger { pos: 4 })),
    ];
    for (t, want) in cases {
        assert_eq!(
            Metainfo::parse(t).err(),
            Some(*want),
            "{}",
            String::from_utf8_lossy(t)
        );
    }
    let ok = info_dict(&[
        (b"length", b"i1e"),
        (b"name", b"1:f"),
        (b"piece length", b"i1e"),
        (b"pieces", &p1),
    ]);
    assert!(
        Metainfo::parse(&ok).is_ok(),
        "the base case of the table is valid"
    );
    let bad_announce = [b"d8:announcei1e".as_slice(), &ok[1..]].concat();
    assert_eq!(
        Metainfo::parse(&bad_announce).err(),
        Some(WrongType("announce"))
    );
}

#[test]
fn every_truncation_is_an_error() {
    let t = single("a.txt", 16, 40, &hashes(3));
    for cut in 0..t.len() {
        assert_eq!(
            Metainfo::parse(&t[..cut]).err(),
            Some(MetainfoError::Bencode(BencodeError::UnexpectedEof)),
            "cut at {cut}"
        );
    }
}

#[test]
fn segments_split_blocks_across_files() {
    let files = [
        FileSpec {
            length: 3,
            path: &["a"],
        },
        FileSpec {
            length: 0,
            path: &["empty"],
        },
        FileSpec {
            length: 5,
            path: &["b"],
        },
        FileSpec {
            length: 10,
            path: &["c"],
        },
    ];
    let pieces = hashes(5); // 18 bytes in pieces of 4
    let t = write(&TorrentSpec {
        name: "d",
        piece_length: 4,
        pieces: &pieces,
        files: &files,
        length: 0,
        trackers: &[],
        private: false,
        created_by: None,
        creation_date: None,
        comment: None,
    });
    let m = Metainfo::parse(&t).unwrap();
    let g = m.geometry();
    let p = |i| g.piece(i).unwrap();
    let seg = |file, file_offset, len, block_offset| Segment {
        file,
        file_offset,
        len,
        block_offset,
    };
    assert_eq!(
        m.segments(p(0), 0, 4).collect::<Vec<_>>(),
        [seg(0, 0, 3, 0), seg(2, 0, 1, 3)]
    );
    assert_eq!(
        m.segments(p(1), 1, 2).collect::<Vec<_>>(),
        [seg(2, 2, 2, 0)]
    );
    assert_eq!(
        m.segments(p(1), 3, 9).collect::<Vec<_>>(),
        [seg(2, 4, 1, 0)],
        "clipped to the piece"
    );
    assert_eq!(
        m.segments(p(4), 0, 4).collect::<Vec<_>>(),
        [seg(3, 8, 2, 0)],
        "short last piece"
    );
    assert_eq!(m.segments(p(4), 2, 4).count(), 0, "offset past the piece");
    let other = crate::geometry::Geometry::new(1, 100)
        .unwrap()
        .piece(50)
        .unwrap();
    assert_eq!(
        m.segments(other, 0, 1).count(),
        0,
        "piece of another torrent"
    );
}

#[test]
fn segments_in_splits_a_range_over_file_ends() {
    // Files of 3, 0, 5, 0 and 10 bytes: they end at 3, 3, 8, 8, 18.
    let ends = [3, 3, 8, 8, 18];
    let seg = |file, file_offset, len, block_offset| Segment {
        file,
        file_offset,
        len,
        block_offset,
    };
    let split = |start, end| segments_in(&ends, start, end).collect::<Vec<_>>();
    assert_eq!(split(0, 4), [seg(0, 0, 3, 0), seg(2, 0, 1, 3)]);
    assert_eq!(split(5, 7), [seg(2, 2, 2, 0)]);
    assert_eq!(
        split(2, 18),
        [seg(0, 2, 1, 0), seg(2, 0, 5, 1), seg(4, 0, 10, 6)],
        "empty files skipped, the last one reached"
    );
    assert_eq!(
        split(8, 9),
        [seg(4, 0, 1, 0)],
        "a range starting on a boundary"
    );
    assert_eq!(
        split(16, 30),
        [seg(4, 8, 2, 0)],
        "nothing past the last file"
    );
    assert_eq!(split(18, 20), [], "a range past every file");
    assert_eq!(split(4, 4), [], "an empty range");
    assert_eq!(segments_in(&[], 0, 5).count(), 0, "no files");
    let huge = [u64::MAX];
    assert_eq!(
        segments_in(&huge, 0, u64::MAX).count(),
        0,
        "a segment longer than u32::MAX is not given"
    );
    let garbage = [10, 4, 2];
    assert!(
        segments_in(&garbage, 0, 10).count() <= 3,
        "decreasing ends never panic"
    );
}

#[test]
fn write_reports_exact_size_when_too_small() {
    let t = single("a.txt", 16, 40, &hashes(3));
    let spec = TorrentSpec {
        name: "a.txt",
        piece_length: 16,
        pieces: &hashes(3),
        files: &[],
        length: 40,
        trackers: &[&[URL]],
        private: false,
        created_by: None,
        creation_date: None,
        comment: None,
    };
    for size in [0, 1, 10, t.len() - 1] {
        let mut out = vec![0u8; size];
        assert_eq!(
            write_torrent(&spec, &mut out),
            Err(WriteError::BufferTooSmall(BufferTooSmall {
                required: t.len()
            }))
        );
    }
    let mut out = vec![0u8; t.len()];
    assert_eq!(write_torrent(&spec, &mut out), Ok(t.len()));
    let wrong = TorrentSpec {
        pieces: &hashes(2),
        ..spec
    };
    assert_eq!(write_torrent(&wrong, &mut out), Err(WriteError::BadPieces));
    let zero = TorrentSpec {
        length: 0,
        pieces: &[],
        ..spec
    };
    assert_eq!(write_torrent(&zero, &mut out), Err(WriteError::BadLength));
    let huge = TorrentSpec {
        length: u64::MAX,
        ..spec
    };
    assert_eq!(write_torrent(&huge, &mut out), Err(WriteError::BadLength));
    let no_piece_len = TorrentSpec {
        piece_length: 0,
        ..spec
    };
    assert_eq!(
        write_torrent(&no_piece_len, &mut out),
        Err(WriteError::BadPieceLength)
    );
}

fn component() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_ .-]{1,8}".prop_filter("not . or ..", |s| s != "." && s != "..")
}

proptest! {
    #[test]
    fn write_parse_round_trip(
        piece_length in 1u32..64,
        files in prop::collection::vec((0u64..200, prop::collection::vec(component(), 1..4)), 0..6),
        single_len in 1u64..500,
        name in component(),
        tiers in prop::collection::vec(prop::collection::vec("[a-z]{1,6}://[a-z]{1,8}", 0..3), 0..4),
        private in any::<bool>(),
        date in prop::option::of(any::<i64>()),
    ) {
        let paths: Vec<Vec<&str>> = files.iter().map(|(_, p)| p.iter().map(|c| c.as_str()).collect()).collect();
        let specs: Vec<FileSpec<'_>> = files.iter().zip(&paths).map(|((l, _), p)| FileSpec { length: *l, path: p.as_slice() }).collect();
        let total = if specs.is_empty() { single_len } else { specs.iter().map(|f| f.length).sum() };
        prop_assume!(total > 0);
        let count = total.div_ceil(u64::from(piece_length)) as usize;
        let pieces = hashes(count);
        let tier_refs: Vec<Vec<&str>> = tiers.iter().map(|t| t.iter().map(|u| u.as_str()).collect()).collect();
        let tier_slices: Vec<&[&str]> = tier_refs.iter().map(|t| t.as_slice()).collect();
        let spec = TorrentSpec {
            name: &name, piece_length, pieces: &pieces, files: &specs, length: single_len,
            trackers: &tier_slices, private, created_by: Some("prop"), creation_date: date, comment: None,
        };
        let t = write(&spec);
        prop_assert!(decode(&t).is_ok(), "sorted keys");
        let m = Metainfo::parse(&t).unwrap();
        prop_assert_eq!(m.name, name.as_str());
        prop_assert_eq!(m.private, private);
        prop_assert_eq!(m.creation_date, date);
        prop_assert_eq!(m.info_hash.0, digest::<Sha1Smol>(m.info_bytes));
        prop_assert_eq!(m.pieces(), &pieces[..]);
        prop_assert_eq!(m.geometry().total_length(), total);
        prop_assert_eq!(m.is_multi_file(), !specs.is_empty());
        // Trackers: every URL in order, tiers renumbered over the non-empty ones.
        let want: Vec<(usize, &str)> = tier_refs.iter().filter(|t| !t.is_empty()).enumerate()
            .flat_map(|(i, t)| t.iter().map(move |u| (i, *u))).collect();
        let got: Vec<(usize, &str)> = m.trackers().collect();
        prop_assert_eq!(m.announce(), want.first().map(|x| x.1));
        prop_assert_eq!(got, want);
        // Files and their offsets.
        let got: Vec<(u64, Vec<&str>)> = m.files().map(|f| (f.length, f.path.components().collect())).collect();
        let want: Vec<(u64, Vec<&str>)> = if specs.is_empty() { vec![(single_len, vec![name.as_str()])] }
            else { specs.iter().map(|f| (f.length, f.path.to_vec())).collect() };
        prop_assert_eq!(m.file_count(), want.len());
        prop_assert_eq!(got, want);
        // Every piece maps onto the files byte for byte, in order, with nothing left over.
        let starts: Vec<u64> = m.files().map(|f| f.offset).collect();
        let ends: Vec<u64> = m.files().map(|f| f.offset + f.length).collect();
        for p in m.geometry().pieces() {
            let len = m.geometry().piece_len(p);
            let at = m.geometry().piece_offset(p);
            let by_ends: Vec<Segment> = segments_in(&ends, at, at + u64::from(len)).collect();
            prop_assert_eq!(by_ends, m.segments(p, 0, len).collect::<Vec<_>>());
            let mut next = 0u32;
            for s in m.segments(p, 0, len) {
                prop_assert_eq!(s.block_offset, next);
                prop_assert!(s.len > 0);
                let abs = m.geometry().piece_offset(p) + u64::from(next);
                prop_assert_eq!(starts[s.file] + s.file_offset, abs);
                next += s.len;
            }
            prop_assert_eq!(next, len);
        }
        // A too-small buffer is refused with the exact size.
        let mut small = vec![0u8; t.len() - 1];
        prop_assert_eq!(write_torrent(&spec, &mut small), Err(WriteError::BufferTooSmall(BufferTooSmall { required: t.len() })));
    }

    #[test]
    fn mutated_torrents_never_panic(at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let files = [FileSpec { length: 5, path: &["x", "y"] }, FileSpec { length: 9, path: &["z"] }];
        let pieces = hashes(4);
        let mut t = write(&TorrentSpec {
            name: "n", piece_length: 4, pieces: &pieces, files: &files, length: 0,
            trackers: &[&["a://b", "c://d"]], private: true, created_by: None, creation_date: None, comment: None,
        });
        let i = at.index(t.len());
        t[i] = byte;
        let t = &t[..cut.index(t.len() + 1)];
        if let Ok(m) = Metainfo::parse(t) {
            let sum: u64 = m.files().map(|f| f.length).sum();
            prop_assert_eq!(sum, m.geometry().total_length());
            for p in m.geometry().pieces() {
                let len = m.geometry().piece_len(p);
                prop_assert_eq!(m.segments(p, 0, len).map(|s| s.len).sum::<u32>(), len);
            }
        }
    }
}

/// Torrents made by real clients (and by us), with the info-hashes those clients report.
mod vectors {
    use super::*;

    const TRANSMISSION_SINGLE: &[u8] =
        include_bytes!("../../tests/vectors/transmission-single.torrent");
    const TRANSMISSION_MULTI: &[u8] =
        include_bytes!("../../tests/vectors/transmission-multi.torrent");
    const LIBTORRENT_V1: &[u8] = include_bytes!("../../tests/vectors/libtorrent-v1-multi.torrent");
    const LIBTORRENT_HYBRID: &[u8] =
        include_bytes!("../../tests/vectors/libtorrent-hybrid-multi.torrent");
    const ENJAMBRE_SINGLE: &[u8] = include_bytes!("../../tests/vectors/enjambre-single.torrent");
    const ENJAMBRE_MULTI: &[u8] = include_bytes!("../../tests/vectors/enjambre-multi.torrent");

    fn hash(hex: &str) -> InfoHash {
        InfoHash::from_hex(hex).unwrap()
    }

    fn files(m: &Metainfo<'_>) -> Vec<(String, u64)> {
        m.files()
            .map(|f| (std::format!("{}", f.path), f.length))
            .collect()
    }

    #[test]
    fn transmission_torrents() {
        let m = Metainfo::parse(TRANSMISSION_SINGLE).unwrap();
        assert_eq!(
            m.info_hash,
            hash("3341231c760907875d7e5a897e5aef9076b55a1a")
        );
        assert_eq!(
            (
                m.name,
                m.geometry().piece_count(),
                m.geometry().total_length()
            ),
            ("hello.bin", 7, 100_000)
        );
        assert_eq!(m.comment, Some("enjambre test vector"));
        assert_eq!(
            m.trackers().collect::<Vec<_>>(),
            [(0, "http://tracker.example/announce")]
        );

        let m = Metainfo::parse(TRANSMISSION_MULTI).unwrap();
        assert_eq!(
            m.info_hash,
            hash("83469b42e1ff988be3c03addc90818ff2a4b0270")
        );
        assert!(m.private && m.is_multi_file());
        assert_eq!(m.geometry().piece_length(), 32 * 1024);
        assert_eq!(
            files(&m),
            [("a.bin".into(), 40_000), ("sub/b.bin".into(), 30_000)]
        );
        assert_eq!(
            m.trackers().collect::<Vec<_>>(),
            [
                (0, "http://a.example/announce"),
                (1, "udp://b.example:6969")
            ]
        );
    }

    #[test]
    fn libtorrent_torrents_v1_and_hybrid() {
        let m = Metainfo::parse(LIBTORRENT_V1).unwrap();
        assert_eq!(
            m.info_hash,
            hash("eb4f87fa73fc237fe60e74e19a424428106f93a1")
        );
        assert_eq!(
            files(&m),
            [
                ("a.bin".into(), 40_000),
                ("empty.txt".into(), 0),
                ("sub/b.bin".into(), 30_000)
            ]
        );
        assert_eq!(m.trackers().map(|t| t.0).collect::<Vec<_>>(), [0, 1]);

        // A v1+v2 hybrid: the v1 view has BEP 47 pad files; the v1 hash covers the whole info dict.
        let m = Metainfo::parse(LIBTORRENT_HYBRID).unwrap();
        assert_eq!(
            m.info_hash,
            hash("b71b498d4fb50305a19c4b9183820f9d25b071ac")
        );
        assert_eq!(m.geometry().total_length(), 81_920);
        assert_eq!(
            files(&m),
            [
                ("a.bin".into(), 40_000),
                (".pad/9152".into(), 9152),
                ("empty.txt".into(), 0),
                ("sub/b.bin".into(), 30_000),
                (".pad/2768".into(), 2768)
            ]
        );
        // They are marked (`attr` `p`), so a shell never stores them as files.
        let pads: Vec<bool> = m.files().map(|f| f.pad).collect();
        assert_eq!(pads, [false, true, false, false, true]);
        // Pad files align b.bin to a piece boundary: piece 3 starts it.
        let p3 = m.geometry().piece(3).unwrap();
        assert_eq!(
            m.segments(p3, 0, 16384).collect::<Vec<_>>()[0],
            Segment {
                file: 3,
                file_offset: 0,
                len: 16384,
                block_offset: 0
            }
        );
    }

    /// Our own output, accepted by Transmission 3.00 (`transmission-show`), aria2 1.36 (`aria2c -S`)
    /// and libtorrent 2.0.8 (which also re-checked the data against it) with these hashes;
    /// writing the parsed fields again gives the same bytes.
    #[test]
    fn enjambre_torrents_accepted_by_clients_are_reproduced() {
        let cases = [
            (ENJAMBRE_SINGLE, "1aec2f5b01b13400c365cb1825ecacb59b7a3244"),
            (ENJAMBRE_MULTI, "b92fee0121e9d6337577430f49e656aee81db462"),
        ];
        for (bytes, hex) in cases {
            let m = Metainfo::parse(bytes).unwrap();
            assert_eq!(m.info_hash, hash(hex));
            let paths: Vec<Vec<&str>> = m.files().map(|f| f.path.components().collect()).collect();
            let specs: Vec<FileSpec<'_>> = m
                .files()
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
            let again = write(&TorrentSpec {
                name: m.name,
                piece_length: m.geometry().piece_length(),
                pieces: m.pieces(),
                files: if m.is_multi_file() { &specs } else { &[] },
                length: m.geometry().total_length(),
                trackers: &tier_refs,
                private: m.private,
                created_by: m.created_by,
                creation_date: m.creation_date,
                comment: m.comment,
            });
            assert_eq!(again, bytes);
        }
    }
}
