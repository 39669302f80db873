//! The board seeder on a host TAP device, end to end (`tap-e2e.sh` does the work): inside a
//! network namespace, `enjambre tracker` and this program; two aria2 and two libtorrent download
//! the embedded file at once through the tracker, byte-identical; the tracker's swarm API shows the
//! board as a complete seed learned by poll; a fifth peer is refused while four hold the slots
//! and served once one leaves; a garbage-sending peer is closed while another is served.
//!
//! Skipped, saying why, unless root with `ip`, `aria2c`, `curl`, python3-libtorrent and an
//! `enjambre` binary (`ENJAMBRE_BIN`, else the root workspace's `target/{release,debug}`).

mod common;

use std::path::Path;

#[test]
fn aria2_and_libtorrent_download_from_the_seeder_on_a_tap() {
    if let Some(why) = common::missing(&[]) {
        eprintln!("SKIPPED tap end-to-end test: {why}");
        return;
    }
    let Some(tracker) = common::enjambre() else {
        eprintln!(
            "SKIPPED tap end-to-end test: no enjambre binary (cargo build --release -p enjambre \
             at the root, or set ENJAMBRE_BIN)"
        );
        return;
    };
    let seed = Path::new(env!("CARGO_BIN_EXE_enjambre-seed-tap"));
    let (file, torrent) = common::seeded(seed.parent().unwrap());
    let args = ["tap0", "10.77.0.2/24", "10.77.0.1", "6881"].map(Path::new);
    let mut command = vec![seed];
    command.extend(args);
    common::run_e2e("ejtap", &torrent, &file, &tracker, &command);
}
