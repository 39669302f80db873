//! The browser peer's port: a control WebSocket to the bridge (`/bridge/listen/<info-hash>`)
//! holds a TCP port for this page while it is open. Its first message gives the port's address
//! and a token, which the page's announces carry so the tracker lists the page at that
//! address; each later message offers an inbound connection, which the page takes into its
//! session and claims with a WebSocket of its own (`/bridge/accept/<id>`, see [`crate::socket`]).
//! Closing the control socket gives the port back. A port lost while the page runs is asked for
//! again 30 s later (not when the bridge opens none); the next announce carries the new token.

use crate::prelude::*;
use alloc::rc::Weak;
use core::cell::RefCell;
use core::net::SocketAddr;

use js_sys::{Reflect, JSON};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{CloseEvent, MessageEvent, WebSocket};

use crate::peer::Shared;
use crate::wake::now;
use enjambre_core::{Duration, Instant};

/// How long announces wait for the port's token before going without it.
const WAIT_FOR_TOKEN: Duration = Duration::from_secs(3);
/// How long after losing its port the page asks again (not when the bridge opens no ports).
const ASK_AGAIN: Duration = Duration::from_secs(30);

/// What the control socket said, and its handlers.
pub struct Listen {
    ws: WebSocket,
    opened_at: Instant,
    /// The port's token, once the bridge gave it.
    token: Option<String>,
    /// The port's address as other peers dial it.
    pub addr: Option<String>,
    /// When the socket ended (refused, or closed later), and whether to ask again.
    ended: Option<(Instant, bool)>,
    _handlers: [Closure<dyn FnMut(JsValue)>; 2],
}

fn text(v: &JsValue, key: &str) -> Option<String> {
    Reflect::get(v, &key.into()).ok()?.as_string()
}

impl Listen {
    /// Ask the bridge at `origin` (`ws://host:port`) for a port for torrent `hex`.
    pub fn open(shared: Weak<RefCell<Shared>>, origin: &str, hex: &str) -> Option<Listen> {
        let ws = WebSocket::new(&format!("{origin}/bridge/listen/{hex}")).ok()?;
        let s1 = shared.clone();
        let onmessage = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
            let e: MessageEvent = e.unchecked_into();
            let Some(msg) = e.data().as_string().and_then(|t| JSON::parse(&t).ok()) else {
                return;
            };
            let Some(s) = s1.upgrade() else { return };
            let mut s = s.borrow_mut();
            if let Some(token) = text(&msg, "token") {
                let addr = text(&msg, "addr").unwrap_or_default();
                s.listening(addr, token);
            } else if let (Some(id), Some(from)) = (text(&msg, "accept"), text(&msg, "from")) {
                if let Ok(from) = from.parse::<SocketAddr>() {
                    s.socket_incoming(&id, from);
                }
            }
        });
        let onclose = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
            let e: CloseEvent = e.unchecked_into();
            let reason = match (e.code(), e.reason()) {
                (code, r) if r.is_empty() => format!("closed ({code})"),
                (code, r) => format!("{r} ({code})"),
            };
            if let Some(s) = shared.upgrade() {
                s.borrow_mut().listen_closed(reason, e.code());
            }
        });
        ws.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
        ws.set_onclose(Some(onclose.as_ref().unchecked_ref()));
        Some(Listen {
            ws,
            opened_at: now(),
            token: None,
            addr: None,
            ended: None,
            _handlers: [onmessage, onclose],
        })
    }

    /// The bridge gave the port.
    pub fn given(&mut self, addr: String, token: String) {
        self.addr = Some(addr);
        self.token = Some(token);
    }

    /// The control socket ended with close `code`; the port is gone.
    pub fn ended(&mut self, code: u16) {
        self.ended = Some((now(), code != 4503));
        self.token = None;
    }

    /// Whether to replace this (ended) control socket with a new one now.
    pub fn ask_again(&self, now: Instant) -> bool {
        matches!(self.ended, Some((at, true)) if now.saturating_since(at) >= ASK_AGAIN)
    }

    /// Whether announces should wait for the token a little longer.
    pub fn pending(&self, now: Instant) -> bool {
        self.token.is_none()
            && self.ended.is_none()
            && now.saturating_since(self.opened_at) < WAIT_FOR_TOKEN
    }

    /// What an announce query carries for the port: `&bridge_token=…`, or nothing.
    pub fn query_param(&self) -> String {
        match &self.token {
            Some(t) => format!("&bridge_token={t}"),
            None => String::new(),
        }
    }

    /// Give the port back.
    pub fn close(&self) {
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}
