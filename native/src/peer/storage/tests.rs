//! Tests of `storage`.
use super::*;
use crate::peer::parts::Parts;

fn layout(files: &[(&[&str], u64)]) -> Vec<FileLayout> {
    files
        .iter()
        .map(|(path, length)| FileLayout {
            rel: safe_relative(path.iter().copied()).unwrap(),
            length: *length,
            pad: false,
        })
        .collect()
}

#[test]
fn a_piece_spanning_three_files_lands_in_each_at_the_right_offset() {
    let dir = tempfile::tempdir().unwrap();
    // Files of 5, 0, 3 and 9 bytes; pieces of 4 bytes: piece 1 covers a[4], c[0..3].
    let files = layout(&[
        (&["t", "a"], 5),
        (&["t", "empty"], 0),
        (&["t", "sub", "c"], 3),
        (&["t", "d"], 9),
    ]);
    let s = Storage::open(dir.path(), &files, 4, Access::Download).unwrap();
    assert_eq!(s.total, 17);
    let all: Vec<u8> = (1..=17).collect();
    for (piece, chunk) in all.chunks(4).enumerate() {
        s.write_piece(piece as u32, 0, chunk).unwrap();
    }
    let read = |rel: &str| fs::read(dir.path().join(rel)).unwrap();
    assert_eq!(read("t/a"), [1, 2, 3, 4, 5]);
    assert_eq!(read("t/empty"), [0u8; 0]);
    assert_eq!(read("t/sub/c"), [6, 7, 8]);
    assert_eq!(read("t/d"), [9, 10, 11, 12, 13, 14, 15, 16, 17]);
    // Any range reads back, whatever the boundaries it crosses.
    for start in 0..17u64 {
        for end in start..=17 {
            let mut buf = vec![0; (end - start) as usize];
            s.read_at(start, &mut buf).unwrap();
            assert_eq!(buf, all[start as usize..end as usize]);
        }
    }
    let segs: Vec<(u64, usize)> = s
        .piece_segments(1, 0, 8)
        .unwrap()
        .map(|(_, o, n)| (o, n))
        .collect();
    assert_eq!(
        segs,
        [(4, 1), (0, 3), (0, 4)],
        "a[4], c[0..3], d[0..4]; the empty file is skipped"
    );
    assert!(s.piece_segments(4, 0, 2).is_err());
    // Which files a range touches (the empty one between a and c may be named too).
    assert_eq!(s.files_in(0, 5), 0..1);
    assert_eq!(s.files_in(4, 4), 0..3);
    assert_eq!(s.files_in(8, 9), 3..4);
    assert_eq!(s.stamp_of(3).unwrap().length, 9);
    let mut buf = [0u8; 3];
    s.read_piece(1, 1, &mut buf).unwrap();
    assert_eq!(buf, [6, 7, 8]);
    assert!(matches!(
        s.read_at(15, &mut buf),
        Err(StorageError::OutOfRange { .. })
    ));
    assert!(matches!(
        s.write_at(u64::MAX, &buf),
        Err(StorageError::OutOfRange { .. })
    ));
    s.flush().unwrap();
}

#[test]
fn gathered_writes_land_like_single_ones_across_every_file_boundary() {
    let files = layout(&[
        (&["t", "a"], 5),
        (&["t", "empty"], 0),
        (&["t", "sub", "c"], 3),
        (&["t", "d"], 9),
    ]);
    let all: Vec<u8> = (1..=17).collect();
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(dir.path(), &files, 4, Access::Download).unwrap();
    // Every start, every end, and the range cut into buffers at every pair of points.
    for start in 0..17usize {
        for end in start..=17 {
            for cut1 in start..=end {
                for cut2 in cut1..=end {
                    s.write_at(0, &[0; 17]).unwrap();
                    let bufs = [&all[start..cut1], &all[cut1..cut2], &all[cut2..end]];
                    s.write_vectored_at(start as u64, &bufs).unwrap();
                    let mut back = vec![0; 17];
                    s.read_at(0, &mut back).unwrap();
                    for (i, b) in back.iter().enumerate() {
                        let want = if (start..end).contains(&i) { all[i] } else { 0 };
                        assert_eq!(*b, want, "byte {i} of {start}..{end} cut at {cut1}, {cut2}");
                    }
                }
            }
        }
    }
    assert!(matches!(
        s.write_vectored_at(16, &[&[1], &[2]]),
        Err(StorageError::OutOfRange { .. })
    ));
    assert_eq!(s.piece_offset(3, 2), 14);
}

#[test]
fn reopening_keeps_data_and_a_seed_reads_what_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let files = layout(&[(&["f"], 10)]);
    Storage::open(dir.path(), &files, 4, Access::Download)
        .unwrap()
        .write_at(2, b"abc")
        .unwrap();
    let before = Storage::open(dir.path(), &files, 4, Access::Seed)
        .unwrap()
        .stamps()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let again = Storage::open(dir.path(), &files, 4, Access::Download).unwrap();
    assert_eq!(
        again.stamps().unwrap(),
        before,
        "resuming leaves the files' mtimes alone, so the resume state still matches them"
    );
    let mut buf = [0u8; 5];
    again.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"\0\0abc");
    let seed = Storage::open(dir.path(), &files, 4, Access::Seed).unwrap();
    seed.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"\0\0abc");
    assert!(seed.write_at(0, b"x").is_err(), "a seed never writes");
    // A seed opens whatever is there; reading what is missing says the data is missing.
    let wrong = layout(&[(&["f"], 11)]);
    let short = Storage::open(dir.path(), &wrong, 4, Access::Seed).unwrap();
    let err = short.read_at(8, &mut [0; 3]).unwrap_err();
    assert!(err.is_missing_data(), "{err}");
    let missing = layout(&[(&["g"], 1)]);
    let none = Storage::open(dir.path(), &missing, 4, Access::Seed).unwrap();
    let err = none.read_at(0, &mut [0; 1]).unwrap_err();
    assert!(err.is_missing_data(), "{err}");
}

#[test]
fn a_file_longer_than_the_torrent_is_not_shortened_without_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("t")).unwrap();
    fs::write(dir.path().join("t/b"), b"0123456789").unwrap();
    let files = layout(&[(&["t", "a"], 4), (&["t", "b"], 6)]);
    let err = Storage::open(dir.path(), &files, 4, Access::Download)
        .err()
        .expect("refused");
    assert!(
        matches!(err, StorageError::LongerThanTorrent { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("t/b is 10 bytes"), "{err}");
    assert_eq!(fs::read(dir.path().join("t/b")).unwrap(), b"0123456789");
    assert!(!dir.path().join("t/a").exists(), "nothing was created");
    let s = Storage::open(dir.path(), &files, 4, Access::Overwrite).unwrap();
    assert!(s.had_data());
    assert_eq!(fs::read(dir.path().join("t/b")).unwrap(), b"012345");
}

#[test]
fn thousands_of_files_work_with_a_few_open_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..3000).map(|i| format!("{i:04}")).collect();
    let files: Vec<FileLayout> = names
        .iter()
        .map(|n| FileLayout {
            rel: safe_relative(["t", n.as_str()]).unwrap(),
            length: 3,
            pad: false,
        })
        .collect();
    let s = Storage::open(dir.path(), &files, 16, Access::Download).unwrap();
    let all: Vec<u8> = (0..9000u32).map(|i| (i % 251) as u8).collect();
    s.write_at(0, &all).unwrap();
    s.flush().unwrap();
    let budget = open_files_budget().get();
    assert!(s.cache().len() <= budget, "at most {budget} files open");
    let seed = Storage::open(dir.path(), &files, 16, Access::Seed).unwrap();
    let mut back = vec![0; 9000];
    seed.read_at(0, &mut back).unwrap();
    assert!(back == all);
    assert_eq!(fs::read(dir.path().join("t/2999")).unwrap(), all[8997..]);
    assert!(seed.cache().len() <= budget);
}

#[test]
fn path_tricks_are_refused() {
    for bad in [
        &["..", "etc"][..],
        &["a", ".", "b"],
        &[""],
        &["a/b"],
        &["a\\b"],
        &["nul\0"],
        &["/abs"],
        &["C:x"],
        &[],
    ] {
        assert!(
            matches!(
                safe_relative(bad.iter().copied()),
                Err(StorageError::UnsafePath(_))
            ),
            "{bad:?}"
        );
    }
    assert_eq!(
        safe_relative(["a", "b c", "..d"]).unwrap(),
        PathBuf::from("a/b c/..d")
    );
}

#[test]
fn a_symlink_out_of_the_root_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("t")).unwrap();
    let files = layout(&[(&["t", "x"], 4)]);
    assert!(matches!(
        Storage::open(dir.path(), &files, 4, Access::Download),
        Err(StorageError::UnsafePath(_))
    ));
    std::os::unix::fs::symlink(outside.path().join("y"), dir.path().join("y")).unwrap();
    let files = layout(&[(&["y"], 4)]);
    assert!(matches!(
        Storage::open(dir.path(), &files, 4, Access::Download),
        Err(StorageError::UnsafePath(_))
    ));
    assert_eq!(
        fs::read_dir(outside.path()).unwrap().count(),
        0,
        "nothing was created outside"
    );
}

/// A 1 MiB tmpfs (needs root; skipped otherwise): a 2 MiB torrent is refused at
/// preallocation, with an error that says the disk is full.
#[test]
fn a_full_disk_is_reported_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(dir.path())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(self.0).status();
        }
    }
    let _guard = Unmount(dir.path());
    let files = layout(&[(&["big"], 2 << 20)]);
    let err = Storage::open(dir.path(), &files, 1 << 16, Access::Download)
        .err()
        .expect("must not fit");
    assert!(err.is_disk_full(), "{err}");
    assert!(err.to_string().contains("no space left"), "{err}");
    // A write that hits ENOSPC (a filesystem without fallocate) says the same.
    let err = StorageError::io("writing", Path::new("x"), io::Error::from_raw_os_error(28));
    assert!(err.is_disk_full(), "{err}");
}

#[test]
fn a_pad_file_is_never_stored_and_reads_as_zeros() {
    let dir = tempfile::tempdir().unwrap();
    // a (5 bytes), a pad of 3 aligning b to the second piece of 8, b (6 bytes), a last pad of 2.
    let mut files = layout(&[
        (&["t", "a"], 5),
        (&["t", ".pad", "3"], 3),
        (&["t", "b"], 6),
        (&["t", ".pad", "2"], 2),
    ]);
    files[1].pad = true;
    files[3].pad = true;
    let s = Storage::open(dir.path(), &files, 8, Access::Download).unwrap();
    // What a seed sends for the pads (zeros) is dropped, the rest lands in its files.
    s.write_piece(0, 0, &[1, 2, 3, 4, 5, 0, 0, 0]).unwrap();
    s.write_piece(1, 0, &[6, 7, 8, 9, 10, 11, 0, 0]).unwrap();
    assert_eq!(fs::read(dir.path().join("t/a")).unwrap(), [1, 2, 3, 4, 5]);
    assert_eq!(
        fs::read(dir.path().join("t/b")).unwrap(),
        [6, 7, 8, 9, 10, 11]
    );
    assert!(!dir.path().join("t/.pad").exists(), "no pad file on disk");
    // Reading a piece gives the pads' zeros, so it verifies and can be uploaded.
    let mut buf = [9u8; 8];
    s.read_piece(0, 0, &mut buf).unwrap();
    assert_eq!(buf, [1, 2, 3, 4, 5, 0, 0, 0]);
    // Blocks touching a pad are read rather than sent from a file.
    assert!(s.touches_pad(0, 4, 4));
    assert!(!s.touches_pad(0, 0, 5));
    assert!(s.touches_pad(1, 6, 2));
    assert_eq!(s.stamp_of(1).unwrap().length, 3);
    assert_eq!(s.stamps().unwrap().len(), 4);
    s.flush_all().unwrap();
    // Seeding the same data (no pad on disk) reads the same.
    let seed = Storage::open(dir.path(), &files, 8, Access::Seed).unwrap();
    let mut buf = [9u8; 8];
    seed.read_piece(1, 0, &mut buf).unwrap();
    assert_eq!(buf, [6, 7, 8, 9, 10, 11, 0, 0]);
}

#[test]
fn a_skipped_file_lives_in_the_part_file_until_a_later_open_selects_it() {
    let dir = tempfile::tempdir().unwrap();
    // Files of 5, 3 and 9 bytes, pieces of 4; only c is selected: pieces 1 and 2 straddle.
    let files = layout(&[(&["t", "a"], 5), (&["t", "c"], 3), (&["t", "d"], 9)]);
    let parts = Parts {
        path: dir.path().join(".enjambre").join("x.parts"),
        skipped: vec![true, false, true],
    };
    let s =
        Storage::open_with_parts(dir.path(), &files, 4, Access::Download, Some(&parts)).unwrap();
    s.write_piece(1, 0, &[5, 6, 7, 8]).unwrap(); // a[4], c[0..3]
    s.write_piece(2, 0, &[9, 10, 11, 12]).unwrap(); // d[0..4]
    assert!(!dir.path().join("t/a").exists() && !dir.path().join("t/d").exists());
    assert_eq!(fs::read(dir.path().join("t/c")).unwrap(), [6, 7, 8]);
    let mut buf = [0u8; 8];
    s.read_at(4, &mut buf).unwrap();
    assert_eq!(buf, [5, 6, 7, 8, 9, 10, 11, 12]);
    // The part file's stamp follows the files kept in it.
    assert_eq!(s.parts_stamp_index(0), Some(3));
    assert_eq!(s.parts_stamp_index(1), None);
    assert_eq!(s.stamps().unwrap().len(), 4);
    drop(s);

    // Everything selected: a and d are created with the bytes the part file holds.
    let all = Parts {
        skipped: vec![false; 3],
        ..parts
    };
    let s = Storage::open_with_parts(dir.path(), &files, 4, Access::Download, Some(&all)).unwrap();
    assert_eq!(fs::read(dir.path().join("t/a")).unwrap(), [0, 0, 0, 0, 5]);
    assert_eq!(
        fs::read(dir.path().join("t/d")).unwrap()[..4],
        [9, 10, 11, 12]
    );
    assert_eq!(s.stamps().unwrap().len(), 3);
}
