//! The board seeder on a host TAP device, end to end (`tap-e2e.sh` does the work): inside a
//! network namespace, `enjambre tracker` and this program; aria2, two libtorrent and
//! Transmission download the embedded file at once through the tracker, byte-identical; the
//! tracker's swarm API shows the board as a complete seed learned by poll; a fifth peer is
//! refused while four hold the slots and served once one leaves; hostile peers (garbage, another
//! torrent, a request past the end, of 1 MiB, a 1 MiB message) are closed and a peer that never
//! reads holds only its own slot, while an honest peer keeps downloading the whole file; the
//! program's RSS does not grow across them (it has no heap: every buffer is a `static`, so
//! only pages touched for the first time could add to it, and the four leeches touched them
//! first); then the board boots again, announces to opentracker, and the four download again.
//!
//! Skipped, saying why, unless root with `ip`, `aria2c`, `curl`, Transmission, opentracker,
//! dnsmasq, python3-libtorrent and an `enjambre` binary (`ENJAMBRE_BIN`, else the root workspace's
//! `target/{release,debug}`).

mod common;

use std::path::Path;

#[test]
fn clients_and_hostile_peers_at_the_seeder_on_a_tap() {
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
    // Resident pages may move by a few as the allocator of `std` (logging) reuses its own.
    let env = [("RSS_TOLERANCE_KB", "64")];
    common::run_e2e("ejtap", &torrent, &file, &tracker, &command, &env);
}
