//! Where a run starts from: the saved resume state, the write journal replayed over it, the
//! pieces re-checked when the files changed behind our back; and, before any new byte is
//! written, that state saved again beside a fresh journal.

use enjambre_core::{Geometry, InfoHash};

use super::driver::NativeResume;
use super::io_thread;
use super::journal::{Journal, Mark};
use super::progress::Progress;
use super::resume_file::{current_boot_id, ResumeFile, Saved};
use super::storage::{FileStamp, Storage};
use super::verify;
use super::Failure;

/// Read the resume file and replay the journal over it; when the files changed since, re-check
/// the pieces it claims. A seed without a usable resume state checks every piece.
pub fn load_resume<const BYTES: usize>(
    file: &ResumeFile,
    storage: &Storage,
    info_hash: InfoHash,
    geometry: Geometry,
    hashes: &[u8],
    seeding: bool,
    progress: &Progress,
) -> Result<Option<Box<NativeResume<BYTES>>>, Failure> {
    let count = geometry.piece_count();
    let saved = file.load().unwrap_or_else(|e| {
        progress.note(&format!(
            "ignoring unreadable {}: {e}",
            file.path().display()
        ));
        None
    });
    let mut state = saved.as_ref().and_then(|s| {
        match NativeResume::<BYTES>::decode(&s.core, info_hash, geometry) {
            Ok(state) => Some(Box::new(state)),
            Err(e) => {
                progress.note(&format!(
                    "ignoring resume state {}: {e}",
                    file.path().display()
                ));
                None
            }
        }
    });
    // A same-boot state is trusted once the files it describes are flushed; after a reboot,
    // its pieces are checked again and its partial ranges (which no hash covers) dropped.
    let trusted = saved.as_ref().is_some_and(|s| s.durability.trusted_now());
    if trusted {
        storage.flush_all().map_err(Failure::storage)?;
    }
    let mut expected = saved.as_ref().map(|s| s.stamps.clone());
    if let (Some(saved), Some(s), true) = (&saved, &mut state, trusted) {
        let replayed = replay_journal(file, saved, s, geometry, expected.as_mut());
        if replayed > 0 {
            tracing::info!(bytes = replayed, "write journal replayed");
        }
    }
    let unchanged = expected.is_some_and(|e| storage.stamps().is_ok_and(|now| now == e));
    match &mut state {
        Some(s) if !(trusted && unchanged) && s.have.count_ones() > 0 => {
            progress.note(if trusted {
                "files changed since the last run: checking the pieces already downloaded"
            } else {
                "the last run's state predates a reboot: checking the pieces already downloaded"
            });
            let ok = verify::check_pieces(storage, geometry, hashes, |i| s.have.get(i))
                .map_err(Failure::storage)?;
            for (i, good) in ok.iter().enumerate() {
                if !good {
                    s.have.set(i as u32, false);
                }
            }
            if !trusted {
                s.partial.clear();
            }
        }
        Some(s) if !trusted => s.partial.clear(),
        Some(_) => {}
        None if seeding || storage.had_data() => {
            // A seed, or a download directory whose resume state is gone: keep what matches.
            progress.note("checking the data against the torrent");
            let ok = verify::check_pieces(storage, geometry, hashes, |_| true)
                .map_err(Failure::storage)?;
            let mut fresh = Box::new(
                NativeResume::<BYTES>::new(info_hash, count)
                    .map_err(|e| Failure::new(2, e.to_string()))?,
            );
            let mut present = 0u64;
            for (i, good) in ok.iter().enumerate() {
                fresh.have.set(i as u32, *good);
                if let (true, Some(piece)) = (*good, geometry.piece(i as u32)) {
                    present += u64::from(geometry.piece_len(piece));
                }
            }
            if !seeding {
                progress.note(&format!(
                    "{} of {count} pieces ({present} of {} bytes) were already present in the \
                     files found: kept",
                    fresh.have.count_ones(),
                    geometry.total_length()
                ));
            }
            state = Some(fresh);
        }
        None => {}
    }
    Ok(state)
}

/// Apply the journal records the saved state does not include; `stamps` follows the files'
/// lengths and mtimes they recorded. Returns the bytes of writes replayed. Stops at the first
/// record that does not fit the torrent: what came before it still counts.
fn replay_journal<const BYTES: usize>(
    file: &ResumeFile,
    saved: &Saved,
    state: &mut NativeResume<BYTES>,
    geometry: Geometry,
    mut stamps: Option<&mut Vec<FileStamp>>,
) -> u64 {
    let path = Journal::path_for(file.path());
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return 0,
        Err(e) => {
            tracing::warn!(error = %e, path = %path.display(), "write journal unreadable");
            return 0;
        }
    };
    let boot = current_boot_id();
    let done = enjambre_core::journal::apply(
        state,
        &geometry,
        saved.journal,
        boot.as_ref(),
        &bytes,
        |i, stamp| {
            if let Some(s) = stamps.as_deref_mut().and_then(|s| s.get_mut(i as usize)) {
                *s = stamp;
            }
        },
    );
    if let Some(entry) = done.refused {
        tracing::warn!(
            ?entry,
            "write journal replay stopped: an entry does not fit the torrent"
        );
    }
    done.bytes
}

/// Save `state` (or an empty one) as the start of this run, naming a new journal, and return
/// that journal ready for appending; `None` (resume saves only) when it cannot be set up.
pub fn start_journal<const BYTES: usize>(
    file: &ResumeFile,
    storage: &Storage,
    state: Option<&NativeResume<BYTES>>,
    info_hash: InfoHash,
    geometry: Geometry,
    flush: bool,
) -> Option<Journal> {
    let boot = current_boot_id()?;
    let fresh;
    let state = match state {
        Some(s) => s,
        None => {
            fresh = Box::new(NativeResume::<BYTES>::new(info_hash, geometry.piece_count()).ok()?);
            &fresh
        }
    };
    let mut buf = vec![0; NativeResume::<BYTES>::max_encoded_len()];
    let bytes = state.encode(&mut buf).ok()?;
    let path = Journal::path_for(file.path());
    let started = Journal::prepare(&path, boot)
        .map_err(|e| e.to_string())
        .and_then(|prepared| {
            let mark = Mark {
                id: prepared.id(),
                seq: 0,
            };
            // The state that names the new journal is saved before the journal replaces the
            // old one: a crash in between leaves the old journal, which no state names.
            io_thread::persist(storage, file, bytes, flush, mark)?;
            prepared.install().map_err(|e| e.to_string())
        });
    match started {
        Ok(journal) => Some(journal),
        Err(e) => {
            tracing::warn!(error = %e, "no write journal: the resume state alone is saved");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use enjambre_core::session::OpId;

    use super::*;
    use crate::peer::io_thread::{spawn_block_thread, IoDone, IoOp};
    use crate::peer::journal::Entry;
    use crate::peer::pool::BufPool;
    use crate::peer::progress::Mode;
    use crate::peer::storage::{safe_relative, Access, FileLayout};

    const HASH: InfoHash = InfoHash([0x5a; 20]);
    type State = NativeResume<4096>;

    /// Files of 5000, 0 and 12000 bytes; pieces of 4096 (piece 1 spans the first and third).
    fn layout() -> Vec<FileLayout> {
        [("a", 5000), ("b", 0), ("c", 12000)]
            .iter()
            .map(|(name, length)| FileLayout {
                rel: safe_relative(["t", name]).unwrap(),
                length: *length,
                pad: false,
            })
            .collect()
    }

    fn write(op: u32, piece: u32, offset: u32, len: usize) -> IoOp {
        IoOp::Write {
            op: OpId(op),
            piece,
            offset,
            buf: vec![0xee; len],
            len,
        }
    }

    /// Run `batches` through a block thread journaling into `journal`; wait for every report.
    fn run_batches(storage: &Arc<Storage>, journal: Journal, batches: Vec<Vec<IoOp>>) {
        let (ops_tx, ops_rx) = tokio::sync::mpsc::unbounded_channel();
        let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<Vec<IoDone>>();
        let pool = Arc::new(BufPool::new(16, 4));
        let thread = spawn_block_thread(storage.clone(), pool, Some(journal), ops_rx, done_tx);
        for batch in batches {
            ops_tx.send(batch).unwrap();
            let reports = done_rx.blocking_recv().unwrap();
            assert!(matches!(reports.last(), Some(IoDone::Journaled(_))));
        }
        drop(ops_tx);
        thread.join().unwrap();
    }

    fn load(rf: &ResumeFile, storage: &Storage, g: Geometry) -> Box<State> {
        // Wrong hashes on purpose: a re-check would drop every verified piece.
        let hashes = vec![0u8; 20 * g.piece_count() as usize];
        let progress = Progress::new(Mode::Plain, "t", g.total_length());
        load_resume::<4096>(rf, storage, HASH, g, &hashes, false, &progress)
            .unwrap()
            .expect("a saved state")
    }

    #[test]
    fn a_crash_after_journaled_writes_resumes_with_them_and_without_re_hashing() {
        let dir = tempfile::tempdir().unwrap();
        let g = Geometry::new(4096, 17_000).unwrap();
        let storage =
            Arc::new(Storage::open(dir.path(), &layout(), 4096, Access::Download).unwrap());
        let rf = ResumeFile::in_dir(dir.path(), HASH);
        let journal = start_journal::<4096>(&rf, &storage, None, HASH, g, false).unwrap();
        // Piece 0 written and verified, piece 1 half written (across a, b and c), then piece 3's
        // first block, in three batches; the process "dies" without another resume save.
        run_batches(
            &storage,
            journal,
            vec![
                vec![write(1, 0, 0, 4096)],
                vec![IoOp::Note(Entry::Verified(0)), write(2, 1, 0, 2000)],
                vec![write(3, 3, 0, 1024)],
            ],
        );
        let state = load(&rf, &storage, g);
        assert!(state.have.get(0), "verified in the journal, not re-hashed");
        let ranges: Vec<(u32, Vec<(u32, u32)>)> = state
            .partial
            .iter()
            .map(|p| (p.piece(), p.as_slice().to_vec()))
            .collect();
        assert_eq!(ranges, [(1, vec![(0, 2000)]), (3, vec![(0, 1024)])]);

        // The next run starts from that state with a new journal; a piece it discards is gone
        // after the next crash, and a file changed behind its back is noticed.
        let journal = start_journal::<4096>(&rf, &storage, Some(&state), HASH, g, false).unwrap();
        run_batches(&storage, journal, vec![vec![IoOp::Note(Entry::Discard(1))]]);
        let state = load(&rf, &storage, g);
        assert!(state.have.get(0));
        assert_eq!(
            state.partial.iter().map(|p| p.piece()).collect::<Vec<_>>(),
            [3]
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(dir.path().join("t").join("c"), vec![1u8; 12000]).unwrap();
        let state = load(&rf, &storage, g);
        assert!(
            !state.have.get(0),
            "changed files: the claimed pieces were checked again"
        );
    }
}
