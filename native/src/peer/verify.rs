//! Hash pieces already on disk against the torrent (seeding, or a resume whose files changed),
//! on every core.

use std::sync::atomic::{AtomicU32, Ordering};

use enjambre_core::sha1::Sha1;
use enjambre_core::Geometry;

use super::sha1::FastSha1;
use super::storage::{Storage, StorageError};

/// Check the pieces for which `wanted(piece)` is true; return the result for every piece
/// (`false` for pieces not checked). Data that is not there (a missing or short file) counts
/// as a mismatch; any other read error is returned, since it says nothing about the data.
pub fn check_pieces(
    storage: &Storage,
    geometry: Geometry,
    hashes: &[u8],
    wanted: impl Fn(u32) -> bool + Sync,
) -> Result<Vec<bool>, StorageError> {
    let count = geometry.piece_count();
    let next = AtomicU32::new(0);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let results: Vec<Result<Vec<(u32, bool)>, StorageError>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    let mut buf = vec![0u8; geometry.piece_length() as usize];
                    loop {
                        // Runs of 16 pieces keep each thread's reads sequential.
                        let start = next.fetch_add(16, Ordering::Relaxed);
                        if start >= count {
                            return Ok(out);
                        }
                        for i in start..(start + 16).min(count) {
                            if !wanted(i) {
                                continue;
                            }
                            let piece = geometry.piece(i).expect("in range");
                            let len = geometry.piece_len(piece) as usize;
                            let read = match storage.read_piece(i, 0, &mut buf[..len]) {
                                Ok(()) => true,
                                Err(e) if e.is_missing_data() => false,
                                Err(e) => {
                                    // The others stop at their next run of pieces.
                                    next.store(count, Ordering::Relaxed);
                                    return Err(e);
                                }
                            };
                            let ok = read && {
                                let mut h = FastSha1::default();
                                h.update(&buf[..len]);
                                hashes.get(i as usize * 20..i as usize * 20 + 20)
                                    == Some(&h.finish()[..])
                            };
                            out.push((i, ok));
                        }
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("hash thread panicked"))
            .collect()
    });
    let mut ok = vec![false; count as usize];
    for result in results {
        for (i, good) in result? {
            ok[i as usize] = good;
        }
    }
    Ok(ok)
}

/// Describe the pieces for which `have(piece)` is false, for a user: how many, which (runs of
/// consecutive pieces, the first few), and the files they lie in (the first few).
pub fn describe_missing(
    storage: &Storage,
    geometry: Geometry,
    have: impl Fn(u32) -> bool,
) -> String {
    const SHOWN: usize = 8;
    let count = geometry.piece_count();
    let mut runs: Vec<(u32, u32)> = Vec::new();
    let mut files: Vec<usize> = Vec::new();
    let mut missing = 0u32;
    for i in (0..count).filter(|&i| !have(i)) {
        missing += 1;
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == i => *end = i,
            _ => runs.push((i, i)),
        }
        if files.len() <= SHOWN {
            let start = u64::from(i) * u64::from(geometry.piece_length());
            let len = geometry.piece(i).map_or(0, |p| geometry.piece_len(p));
            for f in storage.files_in(start, u64::from(len)) {
                if !files.contains(&f) {
                    files.push(f);
                }
            }
        }
    }
    let mut text = format!("{missing} of {count} pieces differ from the torrent (");
    let shown: Vec<String> = runs
        .iter()
        .take(SHOWN)
        .map(|&(a, b)| {
            if a == b {
                format!("{a}")
            } else {
                format!("{a}-{b}")
            }
        })
        .collect();
    text += &shown.join(", ");
    if runs.len() > SHOWN {
        text += ", …";
    }
    text += "; in ";
    let names: Vec<String> = files
        .iter()
        .take(SHOWN)
        .map(|&f| storage.path_of(f).display().to_string())
        .collect();
    text += &names.join(", ");
    if files.len() > SHOWN {
        text += ", …";
    }
    text + ")"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::storage::{safe_relative, Access, FileLayout};
    use enjambre_core::sha1::digest;

    #[test]
    fn a_changed_byte_fails_only_its_piece() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 31 % 253) as u8).collect();
        let geometry = Geometry::new(16384, data.len() as u64).unwrap();
        let hashes: Vec<u8> = data.chunks(16384).flat_map(digest::<FastSha1>).collect();
        let files = [
            FileLayout {
                rel: safe_relative(["a"]).unwrap(),
                length: 40_000,
                pad: false,
            },
            FileLayout {
                rel: safe_relative(["b"]).unwrap(),
                length: 60_000,
                pad: false,
            },
        ];
        let storage = Storage::open(dir.path(), &files, 16384, Access::Download).unwrap();
        storage.write_at(0, &data).unwrap();
        assert!(check_pieces(&storage, geometry, &hashes, |_| true)
            .unwrap()
            .iter()
            .all(|&ok| ok));
        storage.write_at(50_000, &[data[50_000] ^ 1]).unwrap();
        let ok = check_pieces(&storage, geometry, &hashes, |_| true).unwrap();
        assert_eq!(ok.iter().filter(|&&ok| !ok).count(), 1);
        assert!(!ok[50_000 / 16384]);
        let only_first = check_pieces(&storage, geometry, &hashes, |i| i == 0).unwrap();
        assert_eq!(only_first, [true, false, false, false, false, false, false]);
        let said = describe_missing(&storage, geometry, |i| ![1, 2, 3, 6].contains(&i));
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        assert_eq!(
            said,
            format!(
                "4 of 7 pieces differ from the torrent (1-3, 6; in {}, {})",
                a.display(),
                b.display()
            )
        );

        // A missing file fails its pieces; a file that cannot be read is a storage error.
        let seed = |dir: &std::path::Path| Storage::open(dir, &files, 16384, Access::Seed).unwrap();
        std::fs::remove_file(dir.path().join("b")).unwrap();
        let ok = check_pieces(&seed(dir.path()), geometry, &hashes, |_| true).unwrap();
        assert_eq!(ok, [true, true, false, false, false, false, false]);
        std::fs::create_dir(dir.path().join("b")).unwrap();
        let err = check_pieces(&seed(dir.path()), geometry, &hashes, |_| true).unwrap_err();
        assert!(!err.is_missing_data(), "{err}");
        assert!(err.to_string().contains("Is a directory"), "{err}");
    }
}
