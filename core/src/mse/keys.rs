//! The exchange's hashes: HASH(x, ...) is SHA-1 over the concatenation.

use super::dh::KEY_LEN;
use super::rc4::Rc4;
use crate::sha1::{Sha1, Sha1Smol};

pub(super) fn hash(parts: &[&[u8]]) -> [u8; 20] {
    let mut h = Sha1Smol::default();
    for p in parts {
        h.update(p);
    }
    h.finish()
}

/// HASH('req1', S): the initiator's synchronisation marker.
pub(super) fn req1(s: &[u8; KEY_LEN]) -> [u8; 20] {
    hash(&[b"req1", s])
}

/// HASH('req2', SKEY) xor HASH('req3', S): which torrent, hidden.
pub(super) fn req23(skey: &[u8; 20], s: &[u8; KEY_LEN]) -> [u8; 20] {
    xor(&hash(&[b"req2", skey]), &hash(&[b"req3", s]))
}

pub(super) fn xor(a: &[u8; 20], b: &[u8; 20]) -> [u8; 20] {
    let mut out = *a;
    for (o, b) in out.iter_mut().zip(b) {
        *o ^= b;
    }
    out
}

/// The initiator's (A's) key stream: RC4 keyed HASH('keyA', S, SKEY).
pub(super) fn stream_a(s: &[u8; KEY_LEN], skey: &[u8; 20]) -> Rc4 {
    Rc4::mse(&hash(&[b"keyA", s, skey]))
}

/// The responder's (B's) key stream: RC4 keyed HASH('keyB', S, SKEY).
pub(super) fn stream_b(s: &[u8; KEY_LEN], skey: &[u8; 20]) -> Rc4 {
    Rc4::mse(&hash(&[b"keyB", s, skey]))
}

/// Our public key then `pad_len` (at most 512) bytes of padding drawn from the private key.
pub(super) fn key_and_pad(private: &[u8; 20], pad_len: u16, out: &mut [u8]) -> usize {
    let y = super::dh::public_key(private);
    out[..KEY_LEN].copy_from_slice(&y);
    let pad = (pad_len as usize).min(super::PAD_MAX);
    let p = &mut out[KEY_LEN..KEY_LEN + pad];
    p.fill(0);
    Rc4::new(&hash(&[b"pad", private])).apply(p);
    KEY_LEN + pad
}
