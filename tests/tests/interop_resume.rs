//! Issue 5, keeping every byte: an `enjambre get` downloading from a libtorrent seed is killed
//! with SIGKILL twice and restarted on the same directory; the result is byte-identical, and,
//! counted from the seed's side, bytes the leech had written are not sent again.
//!
//! How it is measured: the data has no zero byte, so the bytes on disk that are not zero are
//! exactly the bytes the leech wrote (`W`), and each must equal the original. libtorrent reports
//! `all_time_upload`, the piece bytes it sent. A lone seed sends only what is asked, so if a
//! restarted leech never asks again for bytes it had written, what the seed sends during a run
//! is at most `size - W` of the kill before it; anything above is bytes fetched twice.
//!
//! - Kill 0 is early: as soon as the first bytes are on disk. The restart must trust what it
//!   saved at start and journaled since (no re-hashing), like every restart here.
//! - Kill 1 is quiet: the seed is paused first (it drops the connection, mid-block as it comes),
//!   and the leech is killed 1.5 s later, when its resume state (saved every second) has caught
//!   up with the disk. Nothing written may be fetched again.
//! - Kill 2 is busy: the leech is killed while bytes stream in. The resume state is saved once a
//!   second; the write journal covers the bytes written since. Only a write caught between its
//!   `pwrite` and its journal record may be fetched again: at most one block.

use std::path::Path;
use std::time::{Duration, Instant};

use enjambre_tests::clients::enjambre::{Peer, PeerOpts};
use enjambre_tests::clients::fixture::Fixture;
use enjambre_tests::clients::libtorrent::{self, Libtorrent};
use enjambre_tests::clients::{assert_same_file, have, loopback, poll_until, Scratch};

const MIB: usize = 1 << 20;
const PIECE: usize = 256 * 1024;
/// How often the leech saves its resume state (the core's default), plus slack.
const PERSIST: Duration = Duration::from_millis(1200);
/// What a kill between a `pwrite` and its journal record can cost: one block.
const BLOCK: u64 = 16 * 1024;

/// The leech's bytes on disk (not zero), each checked against the data.
fn written(fx: &Fixture, out: &Path) -> u64 {
    let disk = std::fs::read(fx.file_in(out)).unwrap_or_default();
    assert!(
        disk.len() <= fx.bytes.len(),
        "the partial file is longer than the data"
    );
    let wrong = disk
        .iter()
        .zip(&fx.bytes)
        .position(|(&d, &e)| d != 0 && d != e);
    assert!(
        wrong.is_none(),
        "byte {wrong:?} on disk differs from the data"
    );
    disk.iter().filter(|&&b| b != 0).count() as u64
}

/// Pieces partly on disk (some bytes, not all).
fn partial_pieces(fx: &Fixture, out: &Path) -> usize {
    let disk = std::fs::read(fx.file_in(out)).unwrap_or_default();
    disk.chunks(PIECE)
        .filter(|c| {
            let n = c.iter().filter(|&&b| b != 0).count();
            n > 0 && n < c.len()
        })
        .count()
}

/// The seed's upload counter once it has stopped moving (libtorrent adds to it once a second).
fn settled_upload(seed: &Libtorrent) -> u64 {
    let mut last = seed.status().uploaded;
    let mut since = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(8);
    while Instant::now() < deadline && since.elapsed() < Duration::from_millis(1500) {
        std::thread::sleep(Duration::from_millis(100));
        let now = seed.status().uploaded;
        if now != last {
            last = now;
            since = Instant::now();
        }
    }
    last
}

/// Sample `W` every 50 ms until it reaches `target`; returns the samples.
fn write_until(fx: &Fixture, out: &Path, target: u64, leech: &mut Peer) -> Vec<(Instant, u64)> {
    let mut samples = Vec::new();
    let reached = poll_until(Duration::from_secs(30), || {
        leech.proc.assert_running();
        let w = written(fx, out);
        samples.push((Instant::now(), w));
        (w >= target).then_some(())
    });
    assert!(
        reached.is_some(),
        "the leech never wrote {target} bytes\n{}",
        leech.proc.report()
    );
    samples
}

#[test]
fn a_leech_killed_three_times_resumes_without_refetching_written_bytes() {
    if !have("libtorrent") {
        return;
    }
    let dir = Scratch::new("resume-after-kill");
    let fx = Fixture::new(&dir, "resume-after-kill", 6 * MIB, PIECE as u32, &[]);
    let size = fx.bytes.len() as u64;
    let o = libtorrent::Opts {
        upload_limit: 2 * MIB as u64,
        ..Default::default()
    };
    let src = fx.seed_dir("libtorrent-seed");
    let mut seed = Libtorrent::seed("libtorrent-seed", &fx.dir, &fx.torrent, &src, o);
    let out = fx.empty_dir("leech");
    let opts = PeerOpts {
        ip: loopback(),
        peers: vec![seed.addr],
        ..PeerOpts::default()
    };
    let start = |run: u32| {
        Peer::get(
            &format!("leech-run{run}"),
            &fx.dir,
            &fx.torrent,
            &out,
            opts.clone(),
        )
    };

    // Run 0, early kill: the first bytes just landed.
    let mut leech = start(0);
    write_until(&fx, &out, 1, &mut leech);
    leech.proc.kill9();
    let w0 = written(&fx, &out);
    let up0 = settled_upload(&seed);

    // Run 1, quiet kill: the seed stops mid-stream, the leech saves its state, then dies.
    let mut leech = start(1);
    let mut restarts = Vec::new();
    write_until(&fx, &out, size / 4, &mut leech);
    seed.set_paused(true);
    let w1_settled = poll_until(Duration::from_secs(10), || {
        let a = written(&fx, &out);
        std::thread::sleep(Duration::from_millis(300));
        (written(&fx, &out) == a).then_some(a)
    });
    assert!(
        w1_settled.is_some(),
        "the leech kept writing after the seed paused"
    );
    std::thread::sleep(PERSIST + Duration::from_millis(300));
    leech.proc.kill9();
    restarts.push(leech);
    let (w1, up1) = (written(&fx, &out), settled_upload(&seed));
    let partial1 = partial_pieces(&fx, &out);

    // Run 2, busy kill: killed while bytes stream in.
    seed.set_paused(false);
    let mut leech = start(2);
    write_until(&fx, &out, w1 + (size - w1) / 2, &mut leech);
    leech.proc.kill9();
    restarts.push(leech);
    let (w2, up2) = (written(&fx, &out), settled_upload(&seed));
    let partial2 = partial_pieces(&fx, &out);
    let sent2 = up2 - up1;

    // Run 3 completes.
    let mut leech = start(3);
    leech.wait_complete(Duration::from_secs(60));
    let sent3 = settled_upload(&seed) - up2;
    // The journal also follows the files' mtimes: a restart trusts its state without hashing.
    restarts.push(leech);
    for (run, leech) in restarts.iter().enumerate() {
        let rechecked = leech
            .proc
            .last_line(|l| l.contains("checking the pieces already downloaded"));
        assert_eq!(
            rechecked,
            None,
            "run {} distrusted its resume state",
            run + 1
        );
    }
    assert_same_file(&fx.file_in(&out), &fx.bytes, "the resumed leech");

    eprintln!(
        "kill 0 (early): {w0} bytes on disk\nkill 1 (quiet): {w1} bytes on disk, {partial1} pieces partly written; run 2 was sent \
         {sent2} of the {} missing\nkill 2 (busy): {w2} bytes on disk, {partial2} pieces partly written; run 3 was sent {sent3} \
         of the {} missing, {} fetched again",
        size - w1,
        size - w2,
        sent3.saturating_sub(size - w2)
    );
    assert!(
        up0 <= size,
        "run 0: the seed sent {up0} bytes, more than the file"
    );

    assert!(
        partial1 > 0,
        "the quiet kill left no piece partly written: nothing to resume mid-piece"
    );
    assert!(
        sent2 <= size - w1,
        "after the quiet kill the seed sent {sent2} bytes, but only {} were missing: {} bytes \
         the leech had written (and had time to record) were fetched again",
        size - w1,
        sent2 - (size - w1)
    );
    assert!(
        sent3 <= size - w2 + BLOCK,
        "after the busy kill the seed sent {sent3} bytes, but only {} were missing: {} bytes the \
         leech had written were fetched again (the journal allows at most one block)",
        size - w2,
        sent3 - (size - w2)
    );
}
