//! The QEMU board seeder, end to end: the firmware of `embedded/qemu` (built here, `cargo build
//! --release` there, announcing to `http://tracker.board.test:6969/announce`) boots in QEMU
//! `mps2-an386` on a TAP inside a network namespace of its own, takes its address by DHCP and
//! finds the tracker by DNS (dnsmasq on the namespace's side), and `tap-e2e.sh` runs the same
//! checks as for the host program:
//! aria2, two libtorrent and Transmission download the embedded file at once through
//! `enjambre tracker`, byte-identical; the tracker's swarm API shows the board as a complete
//! seed learned by poll; a fifth peer is refused while four hold the slots and served once one
//! leaves; hostile peers are closed and one that never reads holds only its slot while an
//! honest peer keeps downloading; the board boots again, announces to opentracker, and the four
//! download again. The firmware links no allocator, so its memory cannot grow; QEMU's own RSS
//! is printed, not checked; the firmware's measured stack peak is printed.
//!
//! Skipped, saying why, unless root with `ip`, `aria2c`, `curl`, Transmission, opentracker,
//! dnsmasq, `qemu-system-arm`, python3-libtorrent, the `thumbv7em-none-eabihf` target and an `enjambre`
//! binary.

mod common;

use std::path::Path;
use std::process::Command;

#[test]
fn clients_and_hostile_peers_at_the_seeder_in_qemu() {
    if let Some(why) = common::missing(&["qemu-system-arm"]) {
        eprintln!("SKIPPED qemu end-to-end test: {why}");
        return;
    }
    let Some(tracker) = common::enjambre() else {
        eprintln!(
            "SKIPPED qemu end-to-end test: no enjambre binary (cargo build --release -p enjambre \
             at the root, or set ENJAMBRE_BIN)"
        );
        return;
    };
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../qemu");
    let built = Command::new(env!("CARGO"))
        .args(["build", "--release"])
        .current_dir(&crate_dir)
        .env_remove("CARGO_TARGET_DIR")
        .env("SEED_TRACKER", "http://tracker.board.test:6969/announce")
        .status()
        .expect("cargo");
    assert!(built.success(), "building the QEMU firmware failed");
    let bin_dir = crate_dir.join("target/thumbv7em-none-eabihf/release");
    let firmware = bin_dir.join("enjambre-qemu");
    let (file, torrent) = common::seeded(&bin_dir);
    let boot = crate_dir.join("boot.sh");
    let command = [
        boot.as_path(),
        &firmware,
        Path::new("tap"),
        Path::new("tap0"),
    ];
    common::run_e2e("ejqemu", &torrent, &file, &tracker, &command, &[]);
}
