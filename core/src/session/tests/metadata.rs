//! Serving the torrent's metadata (BEP 9 `ut_metadata`): what a magnet link's owner asks of us.

use super::*;
use crate::wire::MetadataMessage;

/// An info dictionary of 20,000 bytes of padding and then the torrent's piece hashes: two
/// metadata pieces, the hashes in the second.
fn info_of(t: &Torrent) -> (&'static [u8], usize) {
    let mut info = b"d1:x20000:".to_vec();
    info.resize(info.len() + 20000, b'.');
    info.extend_from_slice(std::format!("6:pieces{}:", t.hashes.len()).as_bytes());
    let at = info.len();
    info.extend_from_slice(t.hashes);
    info.push(b'e');
    (Box::leak(info.into_boxed_slice()), at)
}

/// A session started with the whole info dictionary, its `started` announce answered.
fn serving(t: &Torrent, info: &'static [u8], at: usize) -> H {
    let mut h = H::fresh(t, config(), None);
    let now = h.now;
    (h.s.start_serving_metadata(now, config(), t.info_hash, t.geometry, info, at, None)).unwrap();
    assert_eq!(h.drain().len(), 1, "the started announce");
    h.s.handle_announce_ok(h.now, secs(1800), None);
    h
}

/// Extended message 0 with `dict` as it is.
fn extended_handshake(dict: &[u8]) -> Vec<u8> {
    let mut out = ((dict.len() + 2) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&[20, 0]);
    out.extend_from_slice(dict);
    out
}

fn metadata_msg(m: MetadataMessage<'_>, ext_id: u8) -> Vec<u8> {
    let mut out = vec![0; m.encoded_len()];
    assert_eq!(m.encode(ext_id, &mut out), Ok(out.len()));
    out
}

#[test]
fn metadata_is_offered_in_the_extended_handshake_and_served_piece_by_piece() {
    let t = four_pieces();
    let (info, at) = info_of(&t);
    let size = info.len();
    let mut h = serving(&t, info, at);
    let a = h.accept(1);
    let out = h.input(a, &h.their_handshake(1, true, true));
    // Our extended handshake names our enjambre_partial id (3), our ut_metadata id (2), our
    // ut_pex id (1) and the metadata's size, spelled out.
    let ours = std::format!(
        "d1:md16:enjambre_partiali3e11:ut_metadatai2e6:ut_pexi1ee13:metadata_sizei{size}e1:pi6881e4:reqqi975e1:v12:Enjambre 0.1e"
    );
    assert_eq!(
        out,
        [
            tx(
                a,
                cat(&[
                    &our_handshake(t.info_hash),
                    &HAVE_NONE,
                    &extended_handshake(ours.as_bytes())
                ])
            ),
            Out::Ev(Event::PeerHandshake {
                peer: a,
                peer_id: pid(1)
            }),
        ]
    );
    // They receive ut_metadata as 3, and ask for both pieces and one past the end.
    assert_eq!(
        h.input(a, &extended_handshake(b"d1:md11:ut_metadatai3eee")),
        []
    );
    let ask = |piece| metadata_msg(MetadataMessage::Request { piece }, 2);
    let out = h.input(a, &cat(&[&ask(0), &ask(1), &ask(2)]));
    let data = |piece: u32, bytes: &[u8]| {
        let total_size = size as u32;
        let m = MetadataMessage::Data {
            piece,
            total_size,
            data: bytes,
        };
        metadata_msg(m, 3)
    };
    // Each reply goes to their id, the pieces exactly 16 KiB and the rest; the unknown one
    // is rejected. (A data message fills most of a buffer: one per transmit.)
    let replies: Vec<u8> = out
        .iter()
        .flat_map(|o| match o {
            Out::Tx(p, bytes) if *p == a => bytes.clone(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    let reject = metadata_msg(MetadataMessage::Reject { piece: 2 }, 3);
    assert_eq!(
        replies,
        cat(&[&data(0, &info[..16384]), &data(1, &info[16384..]), &reject])
    );
}

#[test]
fn a_session_serving_metadata_verifies_pieces_with_the_hashes_inside_it() {
    let t = four_pieces();
    let (info, at) = info_of(&t);
    let mut h = serving(&t, info, at);
    let (a, _, _) = h.peer_with(1, &bitfield(&[0b0010_0000]));
    assert_eq!(
        h.input(a, &UNCHOKE),
        [tx(a, cat(&[&request(2, 0, K16), &request(2, K16, K16)]))]
    );
    assert_eq!(h.input(a, &h.block(2, 0, K16)).len(), 1);
    assert_eq!(h.input(a, &h.block(2, K16, K16)).len(), 1);
    assert_eq!(h.write_done(0), [Out::Cmd(Command::PersistResume)]);
    let out = h.write_done(1);
    assert_eq!(out[0], Out::Cmd(Command::PieceVerified { piece: piece(2) }));
}

#[test]
fn without_the_info_dictionary_requests_go_unanswered_and_nothing_is_offered() {
    let t = four_pieces();
    let mut h = H::started(&t, config(), None);
    let a = h.accept(1);
    let out = h.input(a, &h.their_handshake(1, true, true));
    // The plain extended handshake: no ut_metadata, no metadata_size.
    let Out::Tx(_, ref ours) = out[0] else {
        panic!("{out:?}")
    };
    assert!(ours.ends_with(&our_extended_handshake()));
    assert_eq!(
        h.input(a, &extended_handshake(b"d1:md11:ut_metadatai3eee")),
        []
    );
    let ask = metadata_msg(MetadataMessage::Request { piece: 0 }, 2);
    assert_eq!(h.input(a, &ask), []);
}

#[test]
fn info_bytes_too_short_for_the_hashes_are_refused() {
    let t = four_pieces();
    let (info, at) = info_of(&t);
    let mut s = Box::new(S::empty());
    let now = Instant::from_millis(1000);
    for at in [at + 2, info.len(), usize::MAX] {
        let r = s.start_serving_metadata(now, config(), t.info_hash, t.geometry, info, at, None);
        assert_eq!(r, Err(SessionError::BadPieceHashes), "hashes at {at}");
    }
    let r = s.start_serving_metadata(now, config(), t.info_hash, t.geometry, info, at, None);
    assert_eq!(r, Ok(()));
}
