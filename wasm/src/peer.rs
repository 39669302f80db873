//! [`BrowserPeer`], the type `web/worker.js` drives: `open`, `start`, `stop`, `select`, `save`,
//! with every message to the page posted through the function it was built with. It owns the run loop:
//! after any input, pump the engine; then sleep until the session's deadline or new input.

use crate::prelude::*;
use alloc::rc::{Rc, Weak};
use core::cell::RefCell;
use core::net::SocketAddr;

use enjambre_core::rng::Rng;
use enjambre_core::session::PeerHandle;
use enjambre_core::tracker::client::{
    Action, Announcer, Failure, Identity, Retransmit, Step, Tiers, MAX_QUERY, NUMWANT,
};
use enjambre_core::{Instant, PeerId};
use js_sys::{Function, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{Blob, Response, WorkerGlobalScope};

use crate::engine::{Engine, Note};
use crate::message::{self, Status};
use crate::opfs::{self, OpfsFile};
use crate::rate::Rate;
use crate::selection::Selection;
use crate::socket::Sockets;
use crate::store::{Files, Store};
use crate::text;
use crate::torrent::Torrent;
use crate::wake::{now, Wake};

/// How often the page hears the status, at most.
const STATUS_EVERY_MS: u64 = 200;
/// After a turn that stored bytes (and so flushed the data file before journaling them), the
/// loop rests this long before the next one, so the bytes arriving meanwhile are stored,
/// flushed and journaled together. A flush waits for the disk: with a turn per WebSocket
/// message, a 256 MiB download made 3,081 flushes taking 2.1 s of the worker's 5; resting, 181
/// taking 0.34 s. Bytes waiting in the inboxes are like bytes on the wire: `stop` (a reload, a
/// closed page) still stores and journals them.
const FLUSH_GAP_MS: i32 = 10;

/// Everything the loop, the sockets' handlers and the announces share.
pub struct Shared {
    post: Function,
    wake: Rc<Wake>,
    torrent: Option<Torrent>,
    engine: Option<Engine<OpfsFile>>,
    /// The files chosen, for a multi-file torrent, and the file keeping the choice.
    chosen: Option<(Selection, OpfsFile)>,
    sockets: Option<Sockets>,
    announcer: Option<Announcer<1>>,
    urls: Vec<String>,
    announcing: bool,
    running: bool,
    paused: bool,
    state: &'static str,
    deadline: Instant,
    last_status: Instant,
    down: Rate,
    up: Rate,
    /// Pieces to report, ascending.
    dirty: Vec<u32>,
    /// The latest block of each peer, by address text, ascending.
    blocks: Vec<(String, (u32, u32, u32))>,
    rng: Rng,
    /// This peer, for the tasks the loop spawns.
    me: Weak<RefCell<Shared>>,
}

impl Shared {
    fn post(&self, msg: JsValue) {
        let _ = self.post.call1(&JsValue::NULL, &msg);
    }

    fn fail(&mut self, text: &str) {
        web_sys::console::error_1(&text.into());
        self.state = "error";
        self.post(message::error(text));
    }

    pub(crate) fn socket_open(&mut self, peer: PeerHandle) {
        if let Some(s) = self.sockets.as_mut() {
            s.opened(peer);
        }
        if let Some(e) = self.engine.as_mut() {
            e.connected(now(), peer);
        }
        self.wake.wake();
    }

    pub(crate) fn socket_bytes(&mut self, peer: PeerHandle, bytes: &[u8]) {
        if let Some(e) = self.engine.as_mut() {
            e.received(peer, bytes);
        }
        self.wake.wake();
    }

    pub(crate) fn socket_failed(&mut self, peer: PeerHandle, addr: SocketAddr, reason: String) {
        if let Some(e) = self.engine.as_mut() {
            e.connect_failed(now(), peer);
        }
        self.post(message::peer(&text::addr(addr), "closed", &reason));
        self.wake.wake();
    }

    pub(crate) fn socket_closed(&mut self, peer: PeerHandle, addr: SocketAddr, reason: String) {
        let was_open = self.sockets.as_mut().is_some_and(|s| s.ended(peer));
        if let Some(e) = self.engine.as_mut() {
            if was_open {
                e.ended(peer);
            } else {
                e.connect_failed(now(), peer);
            }
        }
        self.post(message::peer(&text::addr(addr), "closed", &reason));
        self.wake.wake();
    }

    /// One turn of the loop; returns how long to sleep, or `None` to stop.
    fn tick(&mut self) -> Option<i32> {
        if !self.running {
            return None;
        }
        if self.paused {
            return Some(50);
        }
        let now = now();
        let (Some(engine), Some(sockets)) = (self.engine.as_mut(), self.sockets.as_mut()) else {
            return Some(50);
        };
        let waiting = sockets.confirm(now, |at, peer, n| engine.session().handle_sent(at, peer, n));
        if now >= self.deadline {
            engine.session().handle_timeout(now);
        }
        self.deadline = engine.pump(now, sockets);
        let announce = engine.take_announce();
        let notes = engine.take_notes();
        if let Some(a) = announce {
            if let Some(announcer) = self.announcer.as_mut() {
                announcer.start(a);
                self.announcing = false;
            }
        }
        self.notes(notes);
        self.drive_announce();
        if now.saturating_since(self.last_status).as_millis() >= STATUS_EVERY_MS {
            self.report(now);
        }
        let mut sleep = self.deadline.saturating_since(now).as_millis();
        sleep = sleep.min(STATUS_EVERY_MS);
        if waiting {
            sleep = sleep.min(20);
        }
        Some(sleep as i32)
    }

    fn notes(&mut self, notes: Vec<Note>) {
        for note in notes {
            match note {
                Note::Connected(a) => self.post(message::peer(&text::addr(a), "connected", "")),
                Note::Closed(a, reason) => {
                    if reason != "Disconnected" && reason != "ConnectFailed" {
                        self.post(message::peer(&text::addr(a), "closed", &reason));
                    }
                }
                Note::Block {
                    addr,
                    piece,
                    offset,
                    len,
                } => {
                    let addr = text::addr(addr);
                    match self.blocks.binary_search_by(|(a, _)| a.cmp(&addr)) {
                        Ok(k) => self.blocks[k].1 = (piece, offset, len),
                        Err(k) => self.blocks.insert(k, (addr, (piece, offset, len))),
                    }
                }
                Note::Piece(p) => self.mark_dirty(p),
                Note::Log(text) => {
                    web_sys::console::log_1(&text.as_str().into());
                    self.post(message::log(&text));
                }
                Note::Error(text) => self.fail(&text),
                Note::Completed => {
                    self.state = "complete";
                    let what = match &self.chosen {
                        Some((c, _)) if !c.is_all() => "every piece of the selected files",
                        _ => "every piece",
                    };
                    self.post(message::log(&format!("download complete: {what} verified")));
                }
            }
        }
    }

    fn choose(&mut self, flags: &[u8]) -> Result<(), String> {
        let (Some(torrent), Some(engine)) = (self.torrent.as_ref(), self.engine.as_mut()) else {
            return Err("no torrent open".into());
        };
        let Some((chosen, file)) = self.chosen.as_mut() else {
            return Err("a torrent of one file has no files to choose from".into());
        };
        let selection = Selection::from_flags(flags, torrent)?;
        selection.save(file).map_err(|e| e.0)?;
        let session = engine.session();
        selection.apply(torrent, session)?;
        *chosen = selection;
        if self.state != "error" {
            self.state = match (session.is_done(), self.running) {
                (true, _) => "complete",
                (false, true) => "downloading",
                (false, false) => "idle",
            };
        }
        self.post_wanted();
        let now = now();
        self.report(now);
        self.wake.wake();
        Ok(())
    }

    /// Tell the page which pieces the chosen files take (`null`: all of them).
    fn post_wanted(&mut self) {
        let Some(engine) = self.engine.as_mut() else {
            return;
        };
        let narrowed = self.chosen.as_ref().is_some_and(|(c, _)| !c.is_all());
        let bits = narrowed.then(|| engine.session().wanted().as_bytes());
        let msg = message::wanted(bits);
        self.post(msg);
    }

    fn mark_dirty(&mut self, piece: u32) {
        if let Err(k) = self.dirty.binary_search(&piece) {
            self.dirty.insert(k, piece);
        }
    }

    fn report(&mut self, now: Instant) {
        self.last_status = now;
        let Some(engine) = self.engine.as_mut() else {
            return;
        };
        let stats = engine.session().stats();
        let session = engine.session();
        let mut msgs = Vec::new();
        for &p in self.dirty.iter() {
            if let Some(piece) = session.geometry().piece(p) {
                let verified = session.have().get(p);
                msgs.push(message::piece(p, verified, session.piece_ranges(piece)));
            }
        }
        self.dirty.clear();
        for (addr, (piece, offset, len)) in core::mem::take(&mut self.blocks) {
            msgs.push(message::block(&addr, piece, offset, len));
        }
        let status = Status {
            state: self.state,
            verified: stats.pieces_have,
            pieces: stats.piece_count,
            wanted: session.wanted().count_ones(),
            downloaded: stats.downloaded,
            uploaded: stats.uploaded,
            wasted: stats.wasted,
            peers: stats.peers,
            down_rate: self.down.sample(now, stats.downloaded),
            up_rate: self.up.sample(now, stats.uploaded),
        };
        msgs.push(message::status(&status));
        for m in msgs {
            self.post(m);
        }
    }

    /// Ask the announcer what to do, and do it (one `fetch` at a time).
    fn drive_announce(&mut self) {
        if self.announcing {
            return;
        }
        let (Some(announcer), Some(engine)) = (self.announcer.as_mut(), self.engine.as_mut())
        else {
            return;
        };
        let listen = self.sockets.as_ref().and_then(|s| s.listen.as_ref());
        if listen.is_some_and(|l| l.pending(now())) {
            return;
        }
        let token = listen.map(|l| l.query_param()).unwrap_or_default();
        let mut query = vec![0u8; MAX_QUERY + 512];
        let at = now();
        match announcer.poll(at, &self.urls, None, &mut query) {
            None => {}
            Some(Action::GaveUp) => engine.session().handle_announce_failed(at),
            Some(Action::Udp { .. }) => {
                announcer.handle_failure(Failure::Unsupported);
                self.wake.wake();
            }
            Some(Action::Http { query, .. }) => {
                // Percent-encoded by the core: ASCII.
                let query = core::str::from_utf8(query).unwrap_or_default();
                let url = format!("{}?{query}{token}", self.urls[0]);
                self.announcing = true;
                let wake = self.wake.clone();
                let me = self.me.upgrade();
                spawn_local(async move {
                    let reply = fetch_bytes(&url).await;
                    if let Some(me) = me {
                        me.borrow_mut().announced(reply);
                    }
                    wake.wake();
                });
            }
        }
    }

    fn announced(&mut self, reply: Result<(u16, Vec<u8>), String>) {
        self.announcing = false;
        let (Some(announcer), Some(engine)) = (self.announcer.as_mut(), self.engine.as_mut())
        else {
            return;
        };
        let at = now();
        let step = match &reply {
            Ok((status, body)) => announcer.handle_http(*status, body),
            Err(_) => announcer.handle_failure(Failure::Unreachable),
        };
        match step {
            Some(Step::Answered(answer)) => {
                let session = engine.session();
                session.handle_announce_ok(at, answer.interval, answer.min_interval);
                session.handle_peers(at, answer.peers());
            }
            Some(Step::Failed {
                failure, reason, ..
            }) => {
                let text = format!("announce failed: {failure} {}", reason.unwrap_or(""));
                self.post(message::log(&text));
            }
            _ => {}
        }
    }
}

async fn fetch_bytes(url: &str) -> Result<(u16, Vec<u8>), String> {
    let scope: WorkerGlobalScope = js_sys::global().unchecked_into();
    let resp: Response = JsFuture::from(scope.fetch_with_str(url))
        .await
        .map_err(|e| opfs::describe(&e))?
        .unchecked_into();
    let buf = JsFuture::from(resp.array_buffer().map_err(|e| opfs::describe(&e))?)
        .await
        .map_err(|e| opfs::describe(&e))?;
    Ok((resp.status(), Uint8Array::new(&buf).to_vec()))
}

/// The browser peer of one worker.
#[wasm_bindgen]
pub struct BrowserPeer {
    shared: Rc<RefCell<Shared>>,
}

#[wasm_bindgen]
impl BrowserPeer {
    /// A peer that posts every message for the page through `post`.
    #[wasm_bindgen(constructor)]
    pub fn new(post: Function) -> BrowserPeer {
        let seed = (js_sys::Math::random() * (1u64 << 53) as f64) as u64;
        let shared = Rc::new_cyclic(|me| {
            RefCell::new(Shared {
                post,
                wake: Rc::new(Wake::default()),
                torrent: None,
                engine: None,
                chosen: None,
                sockets: None,
                announcer: None,
                urls: Vec::new(),
                announcing: false,
                running: false,
                paused: false,
                state: "idle",
                deadline: Instant::ZERO,
                last_status: Instant::ZERO,
                down: Rate::default(),
                up: Rate::default(),
                dirty: Vec::new(),
                blocks: Vec::new(),
                rng: Rng::new(seed),
                me: me.clone(),
            })
        });
        BrowserPeer { shared }
    }

    /// Open a `.torrent` and its storage; posts `opened` (or `error`).
    pub fn open(&self, torrent: Uint8Array) -> js_sys::Promise {
        let shared = self.shared.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            if let Err(text) = open(&shared, &torrent.to_vec()).await {
                shared.borrow_mut().fail(&text);
            }
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Start downloading (announce, connect, fetch).
    pub fn start(&self) {
        let mut s = self.shared.borrow_mut();
        if s.running || s.engine.is_none() {
            return;
        }
        s.running = true;
        if let Some(sockets) = s.sockets.as_mut() {
            sockets.listen();
        }
        if s.state != "complete" {
            s.state = "downloading";
        }
        let wake = s.wake.clone();
        drop(s);
        let shared = self.shared.clone();
        spawn_local(async move {
            loop {
                let sleep = shared.borrow_mut().tick();
                match sleep {
                    Some(ms) => {
                        let flushed = shared.borrow().engine.as_ref().is_some_and(|e| e.flushed());
                        let rest = if flushed { FLUSH_GAP_MS.min(ms) } else { 0 };
                        if rest > 0 {
                            wake.rest(rest).await;
                        }
                        wake.wait(ms - rest).await
                    }
                    None => break,
                }
            }
        });
    }

    /// Stop: close the peers, save the resume state.
    pub fn stop(&self) {
        let mut s = self.shared.borrow_mut();
        s.running = false;
        // Bytes already received are stored and journaled before the connections go.
        let s = &mut *s;
        if let (Some(engine), Some(sockets)) = (s.engine.as_mut(), s.sockets.as_mut()) {
            engine.pump(now(), sockets);
        }
        if let Some(sockets) = s.sockets.as_mut() {
            sockets.close_all();
        }
        if let Some(engine) = s.engine.as_mut() {
            engine.session().handle_shutdown(now());
            engine.persist();
        }
        if s.state == "downloading" {
            s.state = "idle";
        }
        let now = now();
        s.report(now);
    }

    /// Download only the files `flags` selects (one byte per file the `opened` message listed,
    /// non-zero for selected), and keep the choice for the next open; posts `error` when it
    /// does not fit the torrent, selects nothing or cannot be stored (nothing changes then).
    pub fn select(&self, flags: Uint8Array) {
        let mut s = self.shared.borrow_mut();
        if let Err(text) = s.choose(&flags.to_vec()) {
            s.post(message::error(&text));
        }
    }

    /// Post the data as `file` messages: one File for a single-file torrent; for a multi-file
    /// torrent one Blob per selected file, sliced from the data file, named by its path.
    pub fn save(&self) -> js_sys::Promise {
        let shared = self.shared.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            if let Err(text) = save(&shared).await {
                shared.borrow_mut().fail(&text);
            }
            Ok(JsValue::UNDEFINED)
        })
    }
}

async fn open(shared: &Rc<RefCell<Shared>>, bytes: &[u8]) -> Result<(), String> {
    let torrent = Torrent::parse(bytes)?;
    let hex = torrent.hex();
    let relayed = crate::handover::hand_over(&torrent, bytes).await;
    let dir = opfs::root().await?;
    let data = OpfsFile::open(&dir, &format!("{hex}.data")).await?;
    let state = OpfsFile::open(&dir, &format!("{hex}.state")).await?;
    let journal = OpfsFile::open(&dir, &format!("{hex}.journal")).await?;
    let choice = match torrent.is_multi_file() {
        true => Some(OpfsFile::open(&dir, &format!("{hex}.select")).await?),
        false => None,
    };
    let mut s = shared.borrow_mut();
    if let Some(text) = relayed {
        s.post(message::log(&text));
    }
    let journal_id = s.rng.next_u64() | 1;
    let files = Files {
        data,
        state,
        journal,
    };
    let (store, opened) =
        Store::open(files, torrent.info_hash, torrent.geometry, journal_id).map_err(|e| e.0)?;
    let mut id = *b"-EJ0001-000000000000";
    for b in id[8..].iter_mut() {
        *b = b'a' + s.rng.below(26) as u8;
    }
    let seed = s.rng.next_u64();
    let resume = opened.resume.as_deref();
    let mut engine = Engine::new(now(), &torrent, store, resume, PeerId(id), seed)?;
    let verified = engine.session().stats().pieces_have;
    let chosen = match choice {
        Some(mut file) => {
            let selection = Selection::load(&mut file, &torrent).map_err(|e| e.0)?;
            if !selection.is_all() {
                selection.apply(&torrent, engine.session())?;
            }
            Some((selection, file))
        }
        None => None,
    };
    if opened.replayed.records > 0 {
        let text = format!(
            "resumed: {} journal records replayed, {} bytes",
            opened.replayed.records, opened.replayed.bytes
        );
        s.post(message::log(&text));
    }
    let scope: WorkerGlobalScope = js_sys::global().unchecked_into();
    let origin = scope.location().origin();
    // `replacen("http", "ws", 1)` without the substring searcher.
    let ws_origin = match (0..origin.len()).find(|&i| origin.as_bytes()[i..].starts_with(b"http")) {
        Some(i) => {
            let (head, tail) = (origin.get(..i), origin.get(i + 4..));
            format!("{}ws{}", head.unwrap_or_default(), tail.unwrap_or_default())
        }
        None => origin.clone(),
    };
    s.urls = vec![format!("{origin}/bridge/announce")];
    let mut rng = Rng::new(s.rng.next_u64());
    let tiers = Tiers::new([(0u16, s.urls[0].as_str())], &mut rng).map_err(|_| "tracker list")?;
    let identity = Identity {
        info_hash: torrent.info_hash,
        peer_id: PeerId(id),
        port: 6881,
        key: s.rng.next_u32(),
        numwant: NUMWANT,
    };
    s.announcer = Some(Announcer::new(
        identity,
        tiers,
        Retransmit::BEP15,
        rng.next_u64(),
    ));
    s.sockets = Some(Sockets::new(Rc::downgrade(shared), ws_origin, hex));
    if engine.session().is_done() {
        s.state = "complete";
    }
    // What storage already holds is shown at once, as if it had just arrived.
    let session = engine.session();
    let mut held = 0;
    for piece in session.geometry().pieces() {
        let mut ranges = session.piece_ranges(piece).peekable();
        if ranges.peek().is_some() {
            s.mark_dirty(piece.get());
        }
        held += ranges.map(|(a, b)| u64::from(b - a)).sum::<u64>();
    }
    let selection = chosen.as_ref().map(|(c, _)| c);
    s.post(message::opened(&torrent, selection, verified, held));
    s.engine = Some(engine);
    s.torrent = Some(torrent);
    s.chosen = chosen;
    s.post_wanted();
    Ok(())
}

async fn save(shared: &Rc<RefCell<Shared>>) -> Result<(), String> {
    let handle = {
        let mut s = shared.borrow_mut();
        s.paused = true;
        let engine = s.engine.as_mut().ok_or("no torrent open")?;
        engine.persist();
        let data = engine.store().data();
        data.detach();
        data.handle.clone()
    };
    let file = JsFuture::from(handle.get_file()).await;
    let attached = reattach(shared).await;
    shared.borrow_mut().paused = false;
    attached?;
    let file = file.map_err(|e| opfs::describe(&e))?;
    let s = shared.borrow();
    let torrent = s.torrent.as_ref().ok_or("no torrent open")?;
    if !torrent.is_multi_file() {
        s.post(message::file(&torrent.name, &file));
        return Ok(());
    }
    let blob: Blob = file.unchecked_into();
    let mut offset = 0f64;
    let mut k = 0;
    for f in &torrent.files {
        let end = offset + f.length as f64;
        if !f.pad {
            if s.chosen.as_ref().is_none_or(|(c, _)| c.is_selected(k)) {
                let part = blob
                    .slice_with_f64_and_f64(offset, end)
                    .map_err(|e| opfs::describe(&e))?;
                s.post(message::file(&f.path, &part));
            }
            k += 1;
        }
        offset = end;
    }
    Ok(())
}

async fn reattach(shared: &Rc<RefCell<Shared>>) -> Result<(), String> {
    // Detached by `save`; while paused the loop does not touch storage.
    let mut engine = shared.borrow_mut().engine.take().ok_or("no torrent open")?;
    let result = engine.store().data().attach().await;
    shared.borrow_mut().engine = Some(engine);
    result.map_err(|e| e.0)
}

/// The page's port at the bridge (see `listen.rs`).
impl Shared {
    pub(crate) fn listening(&mut self, addr: String, token: String) {
        self.post(message::log(&format!(
            "reachable: other peers dial this page at {addr} (through the bridge)"
        )));
        if let Some(l) = self.sockets.as_mut().and_then(|s| s.listen.as_mut()) {
            l.given(addr, token);
        }
        self.wake.wake();
    }

    pub(crate) fn listen_closed(&mut self, reason: String, code: u16) {
        if let Some(l) = self.sockets.as_mut().and_then(|s| s.listen.as_mut()) {
            l.ended(code);
        }
        let then = if code == 4503 {
            "this page only dials out"
        } else {
            "asking again in 30 s"
        };
        self.post(message::log(&format!(
            "the bridge port is closed: {reason}; {then}"
        )));
        self.wake.wake();
    }

    pub(crate) fn socket_incoming(&mut self, id: &str, from: SocketAddr) {
        let (Some(engine), Some(sockets)) = (self.engine.as_mut(), self.sockets.as_mut()) else {
            return;
        };
        match engine.incoming(now(), from) {
            Ok(peer) => sockets.accept(peer, id, from),
            Err(why) => web_sys::console::log_1(
                &format!("peer {} turned away: {why}", text::addr(from)).into(),
            ),
        }
        self.wake.wake();
    }
}
