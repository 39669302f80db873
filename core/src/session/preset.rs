//! Session shapes for the three shells, so none of them spells out thirteen parameters.
//!
//! Each is a [`Session`] with its capacities chosen; `H` is the SHA-1 implementation and `P`
//! holds the piece hashes. The `size_of` of each is printed by this module's tests and quoted
//! in the README.

use super::Session;

/// A seeder on a microcontroller: 4 peers, up to 1024 pieces, no picker, no partial pieces,
/// no storage operations (blocks are sent straight from flash), a 1 KiB receive ring per peer,
/// no peer exchange (a seed dials nobody it learns of, and PEX costs a board 8.5 KB of code).
/// It only seeds: start it with every piece (a resume state whose `have` is full).
pub type McuSeeder<H, P> = McuSeederWith<H, P, 4>;

/// [`McuSeeder`] with `PEERS` peer slots instead of 4 (a board with more or less RAM).
pub type McuSeederWith<H, P, const PEERS: usize> =
    Session<H, P, PEERS, MCU_BITFIELD_BYTES, 0, 1024, 8, 0, 8, 0, 8, 1, 4, 0>;

/// Bitfield bytes of [`McuSeeder`] (1024 pieces): its resume state is
/// `Resume<MCU_BITFIELD_BYTES, 0>`.
pub const MCU_BITFIELD_BYTES: usize = 128;

/// The `poll_output` buffer enough for [`McuSeeder`], instead of
/// [`MIN_OUTPUT_BUF`](super::MIN_OUTPUT_BUF): a session that never downloads transmits only
/// small messages (a handshake, the extended handshake, `HaveAll`, rejects), and its bitfield
/// streams over several transmits; block data is never in the buffer (`SendBlock`).
pub const MCU_OUTPUT_BUF: usize = 512;

/// A peer in a browser tab: 16 peers, up to 32 768 pieces, 16 pieces downloading at once, up
/// to 512 requests each way per peer (8 MiB in flight: the worker takes its bytes in turns
/// about 10 ms apart, behind a bridge, so its round trip is long even on loopback). No peer
/// exchange: the bridge reaches only addresses a tracker lists, so a page could dial none of
/// the peers PEX would name (it cost the page's wasm 5.9 KB gzip).
pub type Browser<H, P> =
    Session<H, P, 16, 4096, 16, { 32 * 1024 }, 512, 4096, 64, 512, 64, 256, 16, 0>;

/// The native command-line peer: 50 peers, 64 pieces downloading at once, up to 256 requests
/// each way per peer (4 MiB in flight: 40 MB/s at a 100 ms round trip, 7 MB/s at 600 ms; the
/// `reqq` we advertise adds what the ring holds, `Session::ADVERTISED_REQQ`); `BYTES` and `RX`
/// grow with the torrent (the ring must hold the peer's bitfield).
pub type Native<H, P, const BYTES: usize, const RX: usize> = Session<H, P, 50, BYTES, 64, RX, 256>;

#[cfg(test)]
mod tests {
    use core::mem::size_of;
    use std::println;
    use std::sync::Mutex;

    use super::*;
    use crate::resume::ResumeState;
    use crate::session::{Command, Config, Output, MAX_RANGES};
    use crate::sha1::{Sha1 as _, Sha1Smol};
    use crate::wire::{Extensions, Handshake, Message, HANDSHAKE_LEN};
    use crate::{Geometry, InfoHash, Instant, PeerId};

    type Mcu = McuSeeder<Sha1Smol, &'static [u8]>;

    #[test]
    fn the_size_of_each_preset_and_the_mcu_seeder_fits_in_16_kib() {
        let mcu = size_of::<Mcu>();
        let browser = size_of::<Browser<Sha1Smol, std::vec::Vec<u8>>>();
        let native_small = size_of::<Native<Sha1Smol, &[u8], 4096, { 32 * 1024 }>>();
        let native_large = size_of::<Native<Sha1Smol, &[u8], 32768, { 64 * 1024 }>>();
        println!("session size_of: mcu seeder (4 peers) {mcu} B");
        println!("session size_of: browser {browser} B");
        println!("session size_of: native, up to 32768 pieces {native_small} B");
        println!("session size_of: native, up to 262144 pieces {native_large} B");
        assert!(mcu <= 16 * 1024, "{mcu} bytes");
    }

    /// Where a board keeps its session: a `static`, filled in place at boot.
    static SEEDER: Mutex<Mcu> = Mutex::new(Mcu::EMPTY);

    #[test]
    fn an_mcu_seeder_lives_in_a_static_and_serves_a_block() {
        let data: &'static [u8] = &[7u8; 40_000];
        let geometry = Geometry::new(16384, data.len() as u64).unwrap();
        let mut hashes = std::vec::Vec::new();
        for piece in data.chunks(16384) {
            let mut h = Sha1Smol::default();
            h.update(piece);
            hashes.extend_from_slice(&h.finish());
        }
        let hashes: &'static [u8] = std::boxed::Box::leak(hashes.into_boxed_slice());
        let info_hash = InfoHash(*b"a-board-seeds-this-!");
        let mut all = ResumeState::<MCU_BITFIELD_BYTES, 0, MAX_RANGES>::new(info_hash, 3).unwrap();
        all.have.fill();
        let config = Config::new(PeerId(*b"-EJ0001-board0000000"), 6881);
        let now = Instant::from_millis(5);

        let mut s = SEEDER.lock().unwrap();
        s.start(now, config, info_hash, geometry, hashes, Some(&all))
            .unwrap();
        assert!(s.is_complete());
        let addr = "10.0.0.9:51413".parse().unwrap();
        let peer = s.handle_incoming(now, addr).unwrap();
        let ext = Extensions {
            fast: true,
            extended: false,
            dht: false,
        };
        let theirs = Handshake::new(info_hash, PeerId(*b"-TT0001-leech0000000"), ext).encode();
        let mut hello = theirs[..HANDSHAKE_LEN].to_vec();
        hello.extend_from_slice(&msg(Message::HaveNone));
        hello.extend_from_slice(&msg(Message::Interested));
        assert_eq!(s.handle_input(now, peer, &hello), hello.len());
        // The small buffer a board polls with is enough for a seeder.
        let mut buf = std::vec![0u8; MCU_OUTPUT_BUF];
        assert_eq!(serve(&mut s, now, &mut buf), None);
        // Unchoked at once (a free upload slot): the leech asks for the second piece.
        let ask = msg(Message::Request {
            index: 1,
            begin: 0,
            length: 16384,
        });
        assert_eq!(s.handle_input(now, peer, &ask), ask.len());
        let served = serve(&mut s, now, &mut buf);
        assert_eq!(served, Some((1, 0, 16384)));
        assert_eq!(s.stats().uploaded, 16384);
    }

    fn msg(m: Message<'_>) -> std::vec::Vec<u8> {
        let mut b = std::vec![0; m.encoded_len()];
        m.encode(&mut b).unwrap();
        b
    }

    /// Drain as a board's shell does, every byte sent at once; the block served, if any.
    fn serve(s: &mut Mcu, now: Instant, buf: &mut [u8]) -> Option<(u32, u32, u32)> {
        let mut served = None;
        loop {
            match s.poll_output(now, buf) {
                Output::Timeout(_) => return served,
                Output::Transmit { peer, bytes } => {
                    let n = bytes.len();
                    s.handle_sent(now, peer, n);
                }
                Output::Command(Command::SendBlock {
                    peer,
                    piece,
                    offset,
                    len,
                    ..
                }) => {
                    served = Some((piece.get(), offset, len));
                    s.handle_sent(now, peer, 13 + len as usize);
                }
                Output::Command(_) | Output::Event(_) | Output::Write { .. } => {}
            }
        }
    }

    #[test]
    fn an_mcu_seeder_offers_no_peer_exchange_whatever_the_config() {
        let hashes: &'static [u8] = &[0; 20];
        let geometry = Geometry::new(16384, 16384).unwrap();
        let info_hash = InfoHash([1; 20]);
        let mut config = Config::new(PeerId([2; 20]), 6881);
        config.upload_only = true;
        assert!(config.pex);
        let mut s = std::boxed::Box::new(Mcu::EMPTY);
        let now = Instant::ZERO;
        s.start(now, config, info_hash, geometry, hashes, None)
            .unwrap();
        let peer = s
            .handle_incoming(now, "10.0.0.9:51413".parse().unwrap())
            .unwrap();
        let ext = Extensions {
            fast: true,
            extended: true,
            dht: false,
        };
        let theirs = Handshake::new(info_hash, PeerId([3; 20]), ext).encode();
        assert_eq!(s.handle_input(now, peer, &theirs), HANDSHAKE_LEN);
        let mut buf = std::vec![0u8; MCU_OUTPUT_BUF];
        let mut sent = std::vec::Vec::new();
        loop {
            match s.poll_output(now, &mut buf) {
                Output::Timeout(_) => break,
                Output::Transmit { peer, bytes } => {
                    sent.extend_from_slice(bytes);
                    let n = bytes.len();
                    s.handle_sent(now, peer, n);
                }
                _ => {}
            }
        }
        let ours = std::string::String::from_utf8_lossy(&sent).into_owned();
        assert!(ours.contains("1:md"), "no extended handshake: {ours}");
        assert!(!ours.contains("ut_pex"), "{ours}");
    }

    #[test]
    fn a_seeder_shape_refuses_incomplete_data_unless_upload_only() {
        let hashes: &'static [u8] = &[0; 20];
        let geometry = Geometry::new(16384, 16384).unwrap();
        let info_hash = InfoHash([1; 20]);
        let mut config = Config::new(PeerId([2; 20]), 6881);
        let mut s = std::boxed::Box::new(Mcu::EMPTY);
        let r = s.start(
            Instant::ZERO,
            config.clone(),
            info_hash,
            geometry,
            hashes,
            None,
        );
        assert_eq!(r, Err(crate::session::SessionError::SeedOnly));
        config.upload_only = true;
        let r = s.start(Instant::ZERO, config, info_hash, geometry, hashes, None);
        assert_eq!(r, Ok(()));
    }
}
