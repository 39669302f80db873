//! The worker's messages to the page, exactly as the worker protocol names them (see
//! `wasm/README.md`): plain objects built here, posted by the caller.

use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::JsValue;

use crate::selection::Selection;
use crate::torrent::Torrent;

/// A plain object from `(key, value)` pairs.
pub fn object(fields: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in fields {
        let _ = Reflect::set(&o, &JsValue::from_str(k), v);
    }
    o.into()
}

fn s(text: &str) -> JsValue {
    JsValue::from_str(text)
}

fn n(v: f64) -> JsValue {
    JsValue::from_f64(v)
}

/// `{type:'opened', name, infoHash, pieces, pieceLength, length, files, verified, held}`: `held`
/// counts the bytes storage already holds (verified pieces and partial ranges); `files` lists
/// every file but pad files, each `{path, length, selected}` (`selected` by `chosen`: every
/// file when `None`).
pub fn opened(t: &Torrent, chosen: Option<&Selection>, verified: u32, held: u64) -> JsValue {
    let files = Array::new();
    for f in t.files.iter().filter(|f| !f.pad) {
        let selected = chosen.is_none_or(|c| c.is_selected(files.length() as usize));
        files.push(&object(&[
            ("path", s(&f.path)),
            ("length", n(f.length as f64)),
            ("selected", JsValue::from_bool(selected)),
        ]));
    }
    object(&[
        ("type", s("opened")),
        ("name", s(&t.name)),
        ("infoHash", s(&t.hex())),
        ("pieces", n(t.geometry.piece_count().into())),
        ("pieceLength", n(t.geometry.piece_length().into())),
        ("length", n(t.geometry.total_length() as f64)),
        ("files", files.into()),
        ("verified", n(verified.into())),
        ("held", n(held as f64)),
    ])
}

/// The download's state and counters.
pub struct Status<'a> {
    /// `idle`, `downloading`, `complete` or `error`.
    pub state: &'a str,
    /// Pieces verified.
    pub verified: u32,
    /// Pieces in the torrent.
    pub pieces: u32,
    /// Pieces holding a byte of a selected file (all of them unless a selection narrows it).
    pub wanted: u32,
    /// Payload bytes downloaded.
    pub downloaded: u64,
    /// Payload bytes uploaded.
    pub uploaded: u64,
    /// Payload bytes received that were not needed (endgame duplicates, corrupt pieces).
    pub wasted: u64,
    /// Connected peers.
    pub peers: usize,
    /// Bytes per second.
    pub down_rate: f64,
    /// Bytes per second.
    pub up_rate: f64,
}

/// `{type:'status', …}`.
pub fn status(st: &Status<'_>) -> JsValue {
    object(&[
        ("type", s("status")),
        ("state", s(st.state)),
        ("verified", n(st.verified.into())),
        ("pieces", n(st.pieces.into())),
        ("wanted", n(st.wanted.into())),
        ("downloaded", n(st.downloaded as f64)),
        ("uploaded", n(st.uploaded as f64)),
        ("wasted", n(st.wasted as f64)),
        ("peers", n(st.peers as f64)),
        ("downRate", n(js_sys::Math::round(st.down_rate))),
        ("upRate", n(js_sys::Math::round(st.up_rate))),
    ])
}

/// `{type:'piece', index, verified, ranges:[[start,end],…]}`.
pub fn piece(index: u32, verified: bool, ranges: impl Iterator<Item = (u32, u32)>) -> JsValue {
    let list = Array::new();
    for (a, b) in ranges {
        list.push(&Array::of2(&n(a.into()), &n(b.into())));
    }
    object(&[
        ("type", s("piece")),
        ("index", n(index.into())),
        ("verified", JsValue::from_bool(verified)),
        ("ranges", list.into()),
    ])
}

/// `{type:'peer', addr, state, reason}`.
pub fn peer(addr: &str, state: &str, reason: &str) -> JsValue {
    object(&[
        ("type", s("peer")),
        ("addr", s(addr)),
        ("state", s(state)),
        ("reason", s(reason)),
    ])
}

/// `{type:'block', addr, piece, offset, len}`.
pub fn block(addr: &str, piece: u32, offset: u32, len: u32) -> JsValue {
    object(&[
        ("type", s("block")),
        ("addr", s(addr)),
        ("piece", n(piece.into())),
        ("offset", n(offset.into())),
        ("len", n(len.into())),
    ])
}

/// `{type:'log', text}`.
pub fn log(text: &str) -> JsValue {
    object(&[("type", s("log")), ("text", s(text))])
}

/// `{type:'error', text}`.
pub fn error(text: &str) -> JsValue {
    object(&[("type", s("error")), ("text", s(text))])
}

/// `{type:'wanted', pieces}`: the session's wanted pieces as a bitfield (a `Uint8Array`, the
/// first piece in the high bit of the first byte), or `null` when every piece is wanted.
pub fn wanted(bits: Option<&[u8]>) -> JsValue {
    let pieces = bits.map_or(JsValue::NULL, |b| Uint8Array::from(b).into());
    object(&[("type", s("wanted")), ("pieces", pieces)])
}

/// `{type:'file', name, blob}`.
pub fn file(name: &str, blob: &JsValue) -> JsValue {
    object(&[
        ("type", s("file")),
        ("name", s(name)),
        ("blob", blob.clone()),
    ])
}
