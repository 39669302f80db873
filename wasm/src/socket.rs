//! Peer connections: one WebSocket per peer to the bridge, `/bridge/<info-hash>/<ip>:<port>`
//! on the page's origin. Bytes are a stream both ways; what was sent is confirmed to the
//! session as `bufferedAmount` drains, so no more than the send window waits in a socket.
//! Inbound connections (peers that dialled this page's bridge port, [`crate::listen`]) are
//! WebSockets to `/bridge/accept/<id>`, the same in every other way; what the session sends
//! them before the socket opens waits in the connection.

use crate::prelude::*;
use alloc::rc::Weak;
use core::cell::RefCell;
use core::net::SocketAddr;

use enjambre_core::session::{CloseReason, PeerHandle};
use enjambre_core::Instant;
use js_sys::{ArrayBuffer, Uint8Array};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

use crate::engine::Net;
use crate::listen::Listen;
use crate::peer::Shared;
use crate::text;

struct Conn {
    peer: PeerHandle,
    ws: WebSocket,
    /// Whether the bridge accepted it (the WebSocket opened).
    open: bool,
    /// A peer that dialled us: the session counts it connected from the start.
    inbound: bool,
    /// Bytes sent before the socket opened (inbound only).
    early: Vec<u8>,
    /// Bytes handed to `send`, and of those confirmed to the session.
    queued: u64,
    confirmed: u64,
    _handlers: [Closure<dyn FnMut(JsValueOr)>; 3],
}

type JsValueOr = wasm_bindgen::JsValue;

/// The open connections, by peer.
pub struct Sockets {
    /// Where callbacks deliver input.
    pub shared: Weak<RefCell<Shared>>,
    /// `ws://host:port` or `wss://host:port` of the page's origin.
    pub origin: String,
    /// The torrent's info-hash, hex.
    pub hex: String,
    conns: Vec<Conn>,
    /// Connections that ended inside their own handler: dropped at the next tick, not while
    /// their closure runs.
    ended: Vec<Conn>,
    /// This page's port at the bridge, while it holds one.
    pub listen: Option<Listen>,
}

/// The bridge path of `addr`: `ip:port`, IPv6 in brackets.
pub fn bridge_target(addr: SocketAddr) -> String {
    let mut out = String::new();
    let v6 = addr.is_ipv6();
    if v6 {
        out.push('[');
    }
    text::push_ip(&mut out, addr.ip());
    out.push_str(if v6 { "]:" } else { ":" });
    text::push_u64(&mut out, addr.port().into());
    out
}

impl Sockets {
    /// No connections yet.
    pub fn new(shared: Weak<RefCell<Shared>>, origin: String, hex: String) -> Self {
        Sockets {
            shared,
            origin,
            hex,
            conns: Vec::new(),
            ended: Vec::new(),
            listen: None,
        }
    }

    /// Confirm to the session what the sockets took since the last call; whether anything
    /// is still waiting in a socket.
    pub fn confirm(
        &mut self,
        now: Instant,
        mut sent: impl FnMut(Instant, PeerHandle, usize),
    ) -> bool {
        self.ended.clear();
        // Outside the old control socket's handlers: it can go now.
        if self.listen.as_ref().is_some_and(|l| l.ask_again(now)) {
            self.listen = Listen::open(self.shared.clone(), &self.origin, &self.hex);
        }
        let mut waiting = false;
        for c in self.conns.iter_mut() {
            let taken = c.queued.saturating_sub(u64::from(c.ws.buffered_amount()));
            if taken > c.confirmed {
                sent(now, c.peer, (taken - c.confirmed) as usize);
                c.confirmed = taken;
            }
            waiting |= c.queued > c.confirmed;
        }
        waiting
    }

    /// Ask the bridge for a port, unless one is held or asked for.
    pub fn listen(&mut self) {
        if self.listen.is_none() {
            self.listen = Listen::open(self.shared.clone(), &self.origin, &self.hex);
        }
    }

    /// Open the WebSocket of `peer`, who dialled this page's port (connection `id`).
    pub fn accept(&mut self, peer: PeerHandle, id: &str, addr: SocketAddr) {
        let url = format!("{}/bridge/accept/{id}", self.origin);
        self.open(peer, &url, addr, true);
    }

    /// Close every connection, and the port.
    pub fn close_all(&mut self) {
        if let Some(l) = self.listen.take() {
            l.close();
        }
        for c in self.conns.drain(..) {
            silence(&c.ws);
            let _ = c.ws.close();
        }
    }

    fn forget(&mut self, peer: PeerHandle) -> Option<Conn> {
        let k = self.conns.iter().position(|c| c.peer == peer)?;
        Some(self.conns.swap_remove(k))
    }
}

fn silence(ws: &WebSocket) {
    ws.set_onopen(None);
    ws.set_onmessage(None);
    ws.set_onclose(None);
}

impl Net for Sockets {
    fn connect(&mut self, peer: PeerHandle, addr: SocketAddr) {
        let url = format!(
            "{}/bridge/{}/{}",
            self.origin,
            self.hex,
            bridge_target(addr)
        );
        self.open(peer, &url, addr, false);
    }

    fn send(&mut self, peer: PeerHandle, bytes: &[u8]) {
        let Some(c) = self.conns.iter_mut().find(|c| c.peer == peer) else {
            return;
        };
        if !c.open {
            c.early.extend_from_slice(bytes);
        } else if c.ws.send_with_u8_array(bytes).is_ok() {
            c.queued += bytes.len() as u64;
        }
    }

    fn close(&mut self, peer: PeerHandle, _reason: CloseReason) {
        if let Some(c) = self.forget(peer) {
            silence(&c.ws);
            let _ = c.ws.close();
        }
    }
}

impl Sockets {
    fn open(&mut self, peer: PeerHandle, url: &str, addr: SocketAddr, inbound: bool) {
        let shared = self.shared.clone();
        let Ok(ws) = WebSocket::new(url) else {
            if let Some(s) = shared.upgrade() {
                s.borrow_mut()
                    .socket_failed(peer, addr, "bad bridge URL".into());
            }
            return;
        };
        ws.set_binary_type(BinaryType::Arraybuffer);
        let s1 = shared.clone();
        let onopen = Closure::<dyn FnMut(JsValueOr)>::new(move |_| {
            if let Some(s) = s1.upgrade() {
                s.borrow_mut().socket_open(peer);
            }
        });
        let s2 = shared.clone();
        let onmessage = Closure::<dyn FnMut(JsValueOr)>::new(move |e: JsValueOr| {
            let e: MessageEvent = e.unchecked_into();
            if let (Some(s), Ok(buf)) = (s2.upgrade(), e.data().dyn_into::<ArrayBuffer>()) {
                s.borrow_mut()
                    .socket_bytes(peer, &Uint8Array::new(&buf).to_vec());
            }
        });
        let s3 = shared;
        let onclose = Closure::<dyn FnMut(JsValueOr)>::new(move |e: JsValueOr| {
            let e: CloseEvent = e.unchecked_into();
            let reason = match (e.code(), e.reason()) {
                (code, r) if r.is_empty() => format!("closed ({code})"),
                (code, r) => format!("{r} ({code})"),
            };
            if let Some(s) = s3.upgrade() {
                s.borrow_mut().socket_closed(peer, addr, reason);
            }
        });
        ws.set_onopen(Some(onopen.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
        ws.set_onclose(Some(onclose.as_ref().unchecked_ref()));
        self.conns.push(Conn {
            peer,
            ws,
            open: false,
            inbound,
            early: Vec::new(),
            queued: 0,
            confirmed: 0,
            _handlers: [onopen, onmessage, onclose],
        });
    }

    /// The socket of `peer` opened.
    pub fn opened(&mut self, peer: PeerHandle) {
        if let Some(c) = self.conns.iter_mut().find(|c| c.peer == peer) {
            c.open = true;
            let early = core::mem::take(&mut c.early);
            if !early.is_empty() && c.ws.send_with_u8_array(&early).is_ok() {
                c.queued += early.len() as u64;
            }
        }
    }

    /// The socket of `peer` ended by itself: drop it (its handlers with it, at the next tick);
    /// whether the session counted it connected (it had opened, or the peer dialled us).
    pub fn ended(&mut self, peer: PeerHandle) -> bool {
        let Some(c) = self.forget(peer) else {
            return false;
        };
        silence(&c.ws);
        let open = c.open || c.inbound;
        self.ended.push(c);
        open
    }
}
