//! The session loop: one task owns the core `Session`, feeds it every input (socket bytes,
//! connections, storage completions, announce results, the clock) and drains
//! `poll_output` until `Timeout`, handing transmits to the peers' writer tasks, writes and
//! reads to the storage thread, announces to the announcer task.
//!
//! Blocks to write travel in the very buffer the session wrote them into (no copy); socket
//! reads go from the reader task's pooled buffer straight into `handle_input`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use enjambre_core::session::{
    preset, Command, DiscardCause, Event, Output, PeerHandle, Resume,
    StorageError as CoreStorageError, MIN_OUTPUT_BUF,
};
use enjambre_core::tracker::AnnounceEvent;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::announce::{AnnounceError, AnnounceParams, Announced, Announcer};
use super::conn::{self, ConnEvent, Outbox};
use super::io_thread::{self, IoDone, IoOp};
use super::journal::{Entry, Journal, Mark};
use super::pool::BufPool;
use super::progress::Progress;
use super::rate::RateLimit;
use super::resume_file::ResumeFile;
use super::seed_until::SeedUntil;
use super::sha1::FastSha1;
use super::storage::{Storage, StorageError};

/// Pieces in progress at once (the native preset's `PARTIAL`).
pub const PARTIAL: usize = 64;
/// Socket read size.
const READ_BUF: usize = 128 * 1024;
/// Writes gathered before the storage thread is woken, unless the loop goes idle first.
const IO_BATCH_BYTES: usize = 512 * 1024;
/// How long to wait for the `stopped` announce at exit.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// How often the progress display is refreshed.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// Timeouts are handled at most this often, whatever deadline the session gives.
const MIN_TIMEOUT_GAP: Duration = Duration::from_millis(10);
/// Consecutive failed announces, with no peer ever met, before giving up.
const ANNOUNCE_ATTEMPTS: u32 = 3;

/// The session as the native shell instantiates it.
pub type NativeSession<const BYTES: usize, const RX: usize> =
    preset::Native<FastSha1, &'static [u8], BYTES, RX>;
/// Bytes a peer's writer task holds at most: what the session hands over before the socket
/// took some. Enough to keep a fast connection busy between two turns of the loop.
pub const SEND_WINDOW: u32 = 4 << 20;
/// Its resume state.
pub type NativeResume<const BYTES: usize> = Resume<BYTES, PARTIAL>;

/// Everything that wakes the loop.
pub enum Input {
    /// From a peer's reader or writer task.
    Conn(ConnEvent),
    /// From the storage threads, in order.
    Io(Vec<IoDone>),
    /// An outbound connection is up.
    Connected { peer: PeerHandle, stream: TcpStream },
    /// An outbound connection failed.
    ConnectFailed { peer: PeerHandle },
    /// Someone connected to us.
    Accepted { stream: TcpStream, addr: SocketAddr },
    /// The announcer's result.
    Announced(Result<Announced, AnnounceError>),
    /// Ctrl-C.
    Shutdown,
}

impl From<ConnEvent> for Input {
    fn from(e: ConnEvent) -> Self {
        Input::Conn(e)
    }
}

impl From<Vec<IoDone>> for Input {
    fn from(e: Vec<IoDone>) -> Self {
        Input::Io(e)
    }
}

/// How a run ended well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every piece is verified.
    Complete,
    /// Stopped (Ctrl-C) before completion.
    Stopped,
}

/// How a run ended badly.
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    /// A write failed because the disk is full.
    #[error("{0}")]
    DiskFull(String),
    /// Another storage failure.
    #[error("{0}")]
    Storage(String),
    /// No tracker answered and there is no peer to talk to.
    #[error("{0}")]
    TrackerUnreachable(String),
}

/// What the loop needs besides the session.
pub struct DriveSetup {
    /// The open data files.
    pub storage: Arc<Storage>,
    /// Where the resume state goes (`None`: never persisted).
    pub resume_file: Option<ResumeFile>,
    /// The write journal that continues the resume state (`None`: no journal).
    pub journal: Option<Journal>,
    /// Flush the data files before every resume save (else states are valid for this boot).
    pub flush_data: bool,
    /// The trackers.
    pub announcer: Announcer,
    /// Accepting peers.
    pub listener: TcpListener,
    /// Source address for outbound connections (the `--listen` address when given).
    pub bind_ip: Option<IpAddr>,
    /// Peers given on the command line.
    pub extra_peers: Vec<SocketAddr>,
    /// Stop once complete (`get` without `--seed`).
    pub exit_when_complete: bool,
    /// Never give up on the trackers (`get --wait`).
    pub keep_trying: bool,
    /// When seeding stops by itself.
    pub seed_until: SeedUntil,
    /// Download and upload limits.
    pub down_limit: Option<u64>,
    /// Upload limit.
    pub up_limit: Option<u64>,
    /// The display.
    pub progress: Progress,
}

struct Conn {
    /// The peer's address, IPv4-mapped addresses as IPv4.
    ip: Option<IpAddr>,
    outbox: Arc<Outbox>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
    }
}

/// Socket bytes the session could not take yet.
struct Pending {
    buf: Vec<u8>,
    from: usize,
    len: usize,
    _permit: OwnedSemaphorePermit,
}

/// The loop's state.
pub struct Driver<const BYTES: usize, const RX: usize> {
    session: Box<NativeSession<BYTES, RX>>,
    epoch: Instant,
    tx: UnboundedSender<Input>,
    rx: UnboundedReceiver<Input>,
    conns: HashMap<PeerHandle, Conn>,
    connecting: HashSet<PeerHandle>,
    dead: HashSet<PeerHandle>,
    /// Peers whose socket closed while some of their bytes wait in `pending`.
    closing: HashSet<PeerHandle>,
    pending: HashMap<PeerHandle, VecDeque<Pending>>,
    out_buf: Vec<u8>,
    out_pool: Arc<BufPool>,
    read_pool: Arc<BufPool>,
    io_tx: Option<UnboundedSender<Vec<IoOp>>>,
    /// Storage work gathered since the last send (see `run`).
    io_batch: Vec<IoOp>,
    /// Bytes of the writes in `io_batch`.
    io_batch_bytes: usize,
    io_threads: Vec<std::thread::JoinHandle<()>>,
    ops_in_flight: usize,
    persist_tx: Option<UnboundedSender<(Vec<u8>, Mark)>>,
    persist_in_flight: bool,
    /// The journal's id (0: none) and the last record whose writes the session has heard of.
    journal: Mark,
    /// The journal mark of the state being saved.
    persisting: Mark,
    persist_wanted: bool,
    final_persist: bool,
    /// Whether the first payload byte was seen (logged once, for benchmarks).
    got_payload: bool,
    wrote_any: bool,
    resume_buf: Vec<u8>,
    announce_tx: UnboundedSender<AnnounceParams>,
    announces_in_flight: usize,
    announce_failures: u32,
    has_trackers: bool,
    met_a_peer: bool,
    storage: Arc<Storage>,
    down_limit: Arc<RateLimit>,
    up_limit: Arc<RateLimit>,
    bind_ip: Option<IpAddr>,
    progress: Progress,
    exit_when_complete: bool,
    keep_trying: bool,
    seed_until: SeedUntil,
    /// Since when the data is complete (seeding).
    seeding_since: Option<Instant>,
    extra_peers: Vec<SocketAddr>,
    shutdown_at: Option<Instant>,
    fatal: Option<DriveError>,
    complete: bool,
    accept_task: JoinHandle<()>,
    announce_task: JoinHandle<()>,
}

impl<const BYTES: usize, const RX: usize> Driver<BYTES, RX> {
    /// Prepare the loop around `session`; call [`Driver::run`] inside a tokio runtime.
    pub fn new(session: Box<NativeSession<BYTES, RX>>, epoch: Instant, setup: DriveSetup) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let out_pool = Arc::new(BufPool::new(MIN_OUTPUT_BUF, 128));
        let read_pool = Arc::new(BufPool::new(READ_BUF, 16));
        let (io_tx, io_rx) = mpsc::unbounded_channel();
        let journal = Mark {
            id: setup.journal.as_ref().map_or(0, Journal::id),
            seq: 0,
        };
        let mut io_threads = vec![io_thread::spawn_block_thread(
            setup.storage.clone(),
            out_pool.clone(),
            setup.journal,
            io_rx,
            tx.clone(),
        )];
        let persist_tx = setup.resume_file.map(|file| {
            let (ptx, prx) = mpsc::unbounded_channel();
            io_threads.push(io_thread::spawn_persist_thread(
                setup.storage.clone(),
                file,
                setup.flush_data,
                prx,
                tx.clone(),
            ));
            ptx
        });
        let accept_task = tokio::spawn(accept_loop(setup.listener, tx.clone()));
        let has_trackers = !setup.announcer.is_empty();
        let (announce_tx, announce_rx) = mpsc::unbounded_channel();
        let announce_task = tokio::spawn(announce_loop(setup.announcer, announce_rx, tx.clone()));
        let resume_len = NativeResume::<BYTES>::max_encoded_len();
        Driver {
            session,
            epoch,
            tx,
            rx,
            conns: HashMap::new(),
            connecting: HashSet::new(),
            dead: HashSet::new(),
            closing: HashSet::new(),
            pending: HashMap::new(),
            out_buf: out_pool.get(),
            out_pool,
            read_pool,
            io_tx: Some(io_tx),
            io_batch: Vec::new(),
            io_batch_bytes: 0,
            io_threads,
            ops_in_flight: 0,
            persist_tx,
            persist_in_flight: false,
            journal,
            persisting: Mark::default(),
            persist_wanted: false,
            final_persist: false,
            got_payload: false,
            wrote_any: false,
            resume_buf: vec![0; resume_len],
            announce_tx,
            announces_in_flight: 0,
            announce_failures: 0,
            has_trackers,
            met_a_peer: false,
            storage: setup.storage,
            down_limit: Arc::new(RateLimit::new(setup.down_limit)),
            up_limit: Arc::new(RateLimit::new(setup.up_limit)),
            bind_ip: setup.bind_ip,
            progress: setup.progress,
            exit_when_complete: setup.exit_when_complete,
            keep_trying: setup.keep_trying,
            seed_until: setup.seed_until,
            seeding_since: None,
            extra_peers: setup.extra_peers,
            shutdown_at: None,
            fatal: None,
            complete: false,
            accept_task,
            announce_task,
        }
    }

    fn now(&self) -> enjambre_core::Instant {
        enjambre_core::Instant::from_millis(self.epoch.elapsed().as_millis() as u64)
    }

    fn to_tokio(&self, t: enjambre_core::Instant) -> Instant {
        self.epoch + Duration::from_millis(t.as_millis())
    }

    /// Run until complete (when asked), Ctrl-C, or a fatal error.
    pub async fn run(mut self) -> Result<Outcome, DriveError> {
        let now = self.now();
        let extra = self.extra_peers.clone();
        self.session.handle_dial(now, extra);
        self.complete = self.session.is_complete();
        if self.complete && self.exit_when_complete {
            self.progress.note("already complete");
            self.start_shutdown();
        } else if !self.has_trackers && self.extra_peers.is_empty() && self.exit_when_complete {
            let msg = "the torrent lists no tracker and no --peer was given: no way to find peers";
            self.fail(DriveError::TrackerUnreachable(msg.into()));
        }
        let stop = self.tx.clone();
        tokio::spawn(async move {
            let Ok(mut term) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            else {
                return;
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            let _ = stop.send(Input::Shutdown);
            // A second signal means "now".
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            std::process::exit(130);
        });
        // One timer for both the session's deadline and the progress display. Timeouts are
        // checked on every turn, so a busy stream of input never starves them.
        let sleep = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(sleep);
        let mut next_progress = Instant::now();
        let mut last_timeout: Option<Instant> = None;
        let mut yielded = false;
        loop {
            let deadline = self.drain();
            // Storage work goes out once there is plenty, or when no input is left even after
            // one yield (which lets the readers add theirs): fewer, larger batches wake the
            // storage thread less often.
            if !self.io_batch.is_empty() {
                let plenty = self.io_batch_bytes >= IO_BATCH_BYTES;
                if !plenty && !yielded && self.rx.is_empty() {
                    yielded = true;
                    tokio::task::yield_now().await;
                    continue;
                }
                if plenty || self.rx.is_empty() {
                    self.send_io();
                }
            }
            yielded = false;
            if self.finished() {
                break;
            }
            let now = Instant::now();
            let due = self.to_tokio(deadline);
            let earliest_timeout = last_timeout.map_or(now, |t| t + MIN_TIMEOUT_GAP);
            if due <= now && now >= earliest_timeout {
                let now_ms = self.now();
                self.session.handle_timeout(now_ms);
                last_timeout = Some(now);
                continue;
            }
            if now >= next_progress {
                let stats = self.session.stats();
                self.progress.update(&stats);
                next_progress = now + PROGRESS_EVERY;
                self.check_seed_until(stats.uploaded);
            }
            let wake = due.max(earliest_timeout).min(next_progress);
            if sleep.deadline() != wake {
                sleep.as_mut().reset(wake);
            }
            tokio::select! {
                biased;
                input = self.rx.recv() => match input {
                    Some(input) => self.handle(input),
                    None => break,
                },
                () = &mut sleep => {}
            }
        }
        self.finish().await
    }

    /// Drain outputs until the session is idle; return its deadline.
    fn drain(&mut self) -> enjambre_core::Instant {
        loop {
            let deadline = self.drain_once();
            if !self.retry_pending() {
                return deadline;
            }
        }
    }

    fn drain_once(&mut self) -> enjambre_core::Instant {
        loop {
            let now = self.now();
            let out = self.session.poll_output(now, &mut self.out_buf);
            let write = match out {
                Output::Timeout(t) => return t,
                Output::Transmit { peer, bytes } => {
                    if let Some(c) = self.conns.get(&peer) {
                        c.outbox.push_bytes(bytes);
                    }
                    continue;
                }
                Output::Write {
                    op,
                    piece,
                    offset,
                    bytes,
                } => {
                    if !self.got_payload {
                        self.got_payload = true;
                        let ms = self.epoch.elapsed().as_secs_f64() * 1000.0;
                        tracing::info!("first payload byte {ms:.1} ms after start");
                    }
                    // A `Write`'s bytes start the buffer (the core's contract): hand it over.
                    (op, piece.get(), offset, bytes.len())
                }
                Output::Command(c) => {
                    self.command(c);
                    continue;
                }
                Output::Event(e) => {
                    self.event(e);
                    continue;
                }
            };
            let (op, piece, offset, len) = write;
            let buf = std::mem::replace(&mut self.out_buf, self.out_pool.get());
            self.io(IoOp::Write {
                op,
                piece,
                offset,
                buf,
                len,
            });
        }
    }

    fn io(&mut self, op: IoOp) {
        if self.io_tx.is_some() {
            if let IoOp::Write { len, .. } = &op {
                self.io_batch_bytes += len;
            }
            if op.reports_back() {
                self.ops_in_flight += 1;
            }
            self.io_batch.push(op);
        }
    }

    fn send_io(&mut self) {
        if self.io_batch.is_empty() {
            return;
        }
        self.io_batch_bytes = 0;
        let batch = std::mem::take(&mut self.io_batch);
        let n = batch.iter().filter(|op| op.reports_back()).count();
        let sent = self.io_tx.as_ref().is_some_and(|tx| tx.send(batch).is_ok());
        if !sent {
            self.ops_in_flight -= n;
            self.fail(DriveError::Storage("the storage thread stopped".into()));
        }
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::Connect { peer, addr } => {
                self.connecting.insert(peer);
                let tx = self.tx.clone();
                let bind = self.bind_ip;
                tokio::spawn(async move {
                    let r =
                        tokio::time::timeout(Duration::from_secs(10), connect(addr, bind)).await;
                    let _ = tx.send(match r {
                        Ok(Ok(stream)) => Input::Connected { peer, stream },
                        _ => Input::ConnectFailed { peer },
                    });
                });
            }
            Command::Close { peer, .. } => {
                if self.conns.remove(&peer).is_none() && self.connecting.contains(&peer) {
                    self.dead.insert(peer);
                }
                self.drop_pending(peer);
            }
            Command::SendBlock {
                peer,
                header,
                piece,
                offset,
                len,
            } => {
                if let Some(c) = self.conns.get(&peer) {
                    c.outbox.push_block(header, piece.get(), offset, len);
                }
            }
            Command::Read {
                op,
                piece,
                offset,
                len,
            } => {
                self.io(IoOp::Read {
                    op,
                    piece: piece.get(),
                    offset,
                    len: len as usize,
                });
            }
            Command::Announce { .. } if !self.has_trackers => {
                // Nothing to announce to: peers come from --peer and incoming connections.
                let now = self.now();
                let hour = enjambre_core::Duration::from_secs(3600);
                self.session.handle_announce_ok(now, hour, None);
            }
            Command::Announce {
                event,
                uploaded,
                downloaded,
                left,
            } => {
                let bitfield = Some(self.session.have().as_bytes().to_vec());
                let params = AnnounceParams {
                    event,
                    uploaded,
                    downloaded,
                    left,
                    bitfield,
                };
                if self.announce_tx.send(params).is_ok() {
                    self.announces_in_flight += 1;
                }
            }
            Command::PersistResume => self.persist(),
            Command::PieceVerified { piece } => {
                self.io(IoOp::Note(Entry::Verified(piece.get())));
                self.progress.fact(piece, None);
                if self.session.is_complete() {
                    self.completed();
                }
            }
            Command::PieceDiscarded { piece, cause } => {
                self.io(IoOp::Note(Entry::Discard(piece.get())));
                self.progress.fact(piece, Some(cause));
                if let DiscardCause::Storage(e) = cause {
                    tracing::warn!(piece = piece.get(), error = %e, "reading a piece back failed");
                }
            }
        }
    }

    /// Every piece is verified (said once, whether seen by the fact or the event).
    fn completed(&mut self) {
        self.complete = true;
        self.seeding_since.get_or_insert_with(Instant::now);
        if self.exit_when_complete {
            self.start_shutdown();
        }
    }

    fn event(&mut self, e: Event) {
        self.progress.event(&e);
        match e {
            Event::PeerHandshake { .. } => self.met_a_peer = true,
            Event::Completed => self.completed(),
            _ => {}
        }
    }

    fn persist(&mut self) {
        if self.persist_tx.is_none() {
            return;
        }
        if self.persist_in_flight {
            self.persist_wanted = true;
            return;
        }
        // Encoded now: every write confirmed so far is finished, so a flush that follows
        // covers all the bytes this state claims.
        let state = match self.session.encode_resume(&mut self.resume_buf) {
            Ok(bytes) => bytes.to_vec(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot encode the resume state");
                return;
            }
        };
        if let Some(tx) = &self.persist_tx {
            if tx.send((state, self.journal)).is_ok() {
                self.persisting = self.journal;
                self.persist_in_flight = true;
                self.persist_wanted = false;
            }
        }
    }

    fn handle(&mut self, input: Input) {
        let now = self.now();
        match input {
            Input::Conn(ConnEvent::Data {
                peer,
                buf,
                len,
                permit,
            }) => {
                if !self.conns.contains_key(&peer) {
                    self.read_pool.put(buf);
                    return;
                }
                let queue = self.pending.entry(peer).or_default();
                queue.push_back(Pending {
                    buf,
                    from: 0,
                    len,
                    _permit: permit,
                });
                if queue.len() == 1 {
                    self.feed(peer);
                }
            }
            Input::Conn(ConnEvent::Sent { peer, bytes }) => {
                self.session.handle_sent(now, peer, bytes);
            }
            Input::Conn(ConnEvent::Closed { peer }) => {
                if self.conns.remove(&peer).is_some() {
                    if self.pending.get(&peer).is_some_and(|q| !q.is_empty()) {
                        // Bytes that arrived before the close are still to be taken: every byte
                        // received is kept. The session hears of the close once they are in.
                        self.closing.insert(peer);
                    } else {
                        self.session.handle_closed(now, peer);
                    }
                }
            }
            Input::Connected { peer, stream } => {
                self.connecting.remove(&peer);
                if self.dead.remove(&peer) {
                    return;
                }
                self.session.handle_connected(now, peer);
                self.register(peer, stream);
            }
            Input::ConnectFailed { peer } => {
                self.connecting.remove(&peer);
                if !self.dead.remove(&peer) {
                    self.session.handle_connect_failed(now, peer);
                }
            }
            Input::Accepted { stream, addr } => {
                if self.shutdown_at.is_some() {
                    return;
                }
                let ip = addr.ip().to_canonical();
                let limit = per_ip_limit(self.session.config().max_peers);
                let same = self.conns.values().filter(|c| c.ip == Some(ip)).count();
                if same >= limit {
                    tracing::debug!(%addr, limit, "refused: too many connections from this address");
                    return;
                }
                match self.session.handle_incoming(now, addr) {
                    Ok(peer) => self.register(peer, stream),
                    Err(e) => tracing::debug!(%addr, error = %e, "refused"),
                }
            }
            Input::Io(reports) => {
                for report in reports {
                    self.io_done(report);
                }
            }
            Input::Announced(result) => {
                self.announces_in_flight -= 1;
                match result {
                    Ok(a) => {
                        self.announce_failures = 0;
                        tracing::info!(tracker = %a.tracker, peers = a.peers.len(), "announced");
                        let interval = core_duration(a.interval);
                        let min = a.min_interval.map(core_duration);
                        self.session.handle_announce_ok(now, interval, min);
                        self.session.handle_peers(now, a.peers);
                    }
                    Err(e) => {
                        self.session.handle_announce_failed(now);
                        if self.shutdown_at.is_some() {
                            return;
                        }
                        self.announce_failures += 1;
                        tracing::info!(error = %e, "announce failed");
                        if self.announce_failures == 1 {
                            // Through the display, so a progress bar is not broken by it.
                            self.progress
                                .note(&format!("announce failed, retrying: {e}"));
                        }
                        let alone = !self.met_a_peer
                            && self.extra_peers.is_empty()
                            && self.conns.is_empty();
                        let give_up = !self.keep_trying && !self.complete;
                        if self.announce_failures >= ANNOUNCE_ATTEMPTS && alone && give_up {
                            let msg = format!(
                                "tracker unreachable after {} attempts: {e}",
                                self.announce_failures
                            );
                            self.fail(DriveError::TrackerUnreachable(msg));
                        }
                    }
                }
            }
            Input::Shutdown => {
                self.progress
                    .note("stopping (Ctrl-C again to quit at once)");
                self.start_shutdown();
            }
        }
    }

    fn io_done(&mut self, report: IoDone) {
        let now = self.now();
        match report {
            IoDone::Write { op, result, buf } => {
                self.ops_in_flight -= 1;
                if !self.wrote_any {
                    self.wrote_any = true;
                    let ms = self.epoch.elapsed().as_secs_f64() * 1000.0;
                    tracing::info!("first block on disk {ms:.1} ms after start");
                }
                self.out_pool.put(buf);
                let result = result.map_err(|e| self.storage_failed(e));
                self.session.handle_write_done(now, op, result);
            }
            IoDone::Read { op, result, buf } => {
                self.ops_in_flight -= 1;
                match result {
                    Ok(len) => self.session.handle_read_done(now, op, Ok(&buf[..len])),
                    Err(e) => {
                        let e = self.storage_failed(e);
                        self.session.handle_read_done(now, op, Err(e));
                    }
                }
                self.out_pool.put(buf);
            }
            IoDone::Journaled(seq) => self.journal.seq = seq,
            IoDone::Persisted(result) => {
                self.persist_in_flight = false;
                match result {
                    Err(e) => tracing::warn!(error = %e, "resume state not saved"),
                    Ok(()) if self.persisting.id != 0 => {
                        self.io(IoOp::Trim(self.persisting.seq));
                    }
                    Ok(()) => {}
                }
                if self.persist_wanted {
                    self.persist();
                }
            }
        }
    }

    /// Offer the peer's queued bytes to the session, draining between offers.
    fn feed(&mut self, peer: PeerHandle) -> bool {
        let mut progressed = false;
        loop {
            let Some(front) = self.pending.get_mut(&peer).and_then(|q| q.front_mut()) else {
                return progressed;
            };
            let now = enjambre_core::Instant::from_millis(self.epoch.elapsed().as_millis() as u64);
            let n = self
                .session
                .handle_input(now, peer, &front.buf[front.from..front.len]);
            front.from += n;
            let done = front.from == front.len;
            if done {
                let p = self
                    .pending
                    .get_mut(&peer)
                    .and_then(VecDeque::pop_front)
                    .expect("front exists");
                self.read_pool.put(p.buf);
            }
            progressed |= n > 0;
            // Let the session consume its ring before offering more.
            self.drain_once();
            if n == 0 && !done {
                // The ring is still full after draining: wait for another input.
                let stuck = self
                    .pending
                    .get(&peer)
                    .and_then(|q| q.front())
                    .is_some_and(|f| f.from < f.len);
                if stuck {
                    return progressed;
                }
            }
        }
    }

    /// Offer every stalled peer's bytes again; true when anything was taken.
    fn retry_pending(&mut self) -> bool {
        let peers: Vec<PeerHandle> = self
            .pending
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(p, _)| *p)
            .collect();
        let mut any = false;
        for peer in peers {
            any |= self.feed(peer);
        }
        self.pending.retain(|_, q| !q.is_empty());
        let drained: Vec<PeerHandle> = self
            .closing
            .iter()
            .filter(|p| !self.pending.contains_key(p))
            .copied()
            .collect();
        for peer in drained {
            self.closing.remove(&peer);
            let now = self.now();
            self.session.handle_closed(now, peer);
            any = true;
        }
        any
    }

    fn drop_pending(&mut self, peer: PeerHandle) {
        self.closing.remove(&peer);
        if let Some(q) = self.pending.remove(&peer) {
            for p in q {
                self.read_pool.put(p.buf);
            }
        }
    }

    fn register(&mut self, peer: PeerHandle, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let ip = stream.peer_addr().ok().map(|a| a.ip().to_canonical());
        let (r, w) = stream.into_split();
        let outbox = Arc::new(Outbox::default());
        let reader = tokio::spawn(conn::reader(
            peer,
            r,
            self.read_pool.clone(),
            self.down_limit.clone(),
            self.tx.clone(),
        ));
        let writer = tokio::spawn(conn::writer(
            peer,
            w,
            outbox.clone(),
            self.storage.clone(),
            self.up_limit.clone(),
            self.tx.clone(),
        ));
        self.conns.insert(
            peer,
            Conn {
                ip,
                outbox,
                reader,
                writer,
            },
        );
    }

    /// Report a storage error to the user when it ends the run; map it for the session.
    fn storage_failed(&mut self, e: StorageError) -> CoreStorageError {
        if e.is_disk_full() {
            self.fail(DriveError::DiskFull(e.to_string()));
            CoreStorageError::NoSpace
        } else {
            self.fail(DriveError::Storage(e.to_string()));
            CoreStorageError::Io
        }
    }

    /// Stop seeding once `--seed-ratio` or `--seed-time` is reached.
    fn check_seed_until(&mut self, uploaded: u64) {
        if self.shutdown_at.is_some() || !self.complete {
            return;
        }
        let since = *self.seeding_since.get_or_insert_with(Instant::now);
        let total = self.session.geometry().total_length();
        if let Some(why) = self.seed_until.reached(uploaded, total, since.elapsed()) {
            self.progress.note(&format!("{why}; stopping"));
            self.start_shutdown();
        }
    }

    fn fail(&mut self, e: DriveError) {
        if self.fatal.is_none() {
            self.fatal = Some(e);
        }
        self.start_shutdown();
    }

    fn start_shutdown(&mut self) {
        if self.shutdown_at.is_none() {
            let now = self.now();
            self.session.handle_shutdown(now);
            self.shutdown_at = Some(Instant::now());
            self.accept_task.abort();
        }
    }

    /// Shut down once storage is idle and the state is saved (the `stopped` announce gets a
    /// short grace).
    fn finished(&mut self) -> bool {
        let Some(at) = self.shutdown_at else {
            return false;
        };
        if self.ops_in_flight > 0 {
            return false;
        }
        // One last save once storage is idle, of the state as it ends (the last piece's
        // verification may have come after the last periodic save).
        if !self.final_persist && !self.persist_in_flight {
            self.final_persist = true;
            self.persist_wanted = false;
            self.persist();
        }
        if self.persist_in_flight || self.persist_wanted {
            return false;
        }
        self.announces_in_flight == 0 || at.elapsed() >= STOP_GRACE
    }

    async fn finish(mut self) -> Result<Outcome, DriveError> {
        self.conns.clear();
        self.announce_task.abort();
        self.io_tx = None;
        self.persist_tx = None;
        for t in self.io_threads.drain(..) {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        let stats = self.session.stats();
        let complete = self.session.is_complete();
        let text = match (&self.fatal, complete) {
            (Some(e), _) => format!("stopped: {e}"),
            (None, true) if self.exit_when_complete => "complete".to_string(),
            (None, true) => "stopped seeding".to_string(),
            (None, false) => "stopped".to_string(),
        };
        self.progress.finish(&stats, &text);
        match self.fatal.take() {
            Some(e) => Err(e),
            None if complete => Ok(Outcome::Complete),
            None => Ok(Outcome::Stopped),
        }
    }
}

/// Connections at most from one address: a quarter of the peer slots, between 2 and 8, so no
/// single host fills them.
fn per_ip_limit(max_peers: usize) -> usize {
    max_peers.div_ceil(4).clamp(2, 8)
}

fn core_duration(d: Duration) -> enjambre_core::Duration {
    enjambre_core::Duration::from_millis(d.as_millis() as u64)
}

async fn connect(addr: SocketAddr, bind: Option<IpAddr>) -> std::io::Result<TcpStream> {
    super::http_tracker::connect_from(addr, bind).await
}

async fn accept_loop(listener: TcpListener, tx: UnboundedSender<Input>) {
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                if tx.send(Input::Accepted { stream, addr }).is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn announce_loop(
    mut announcer: Announcer,
    mut rx: UnboundedReceiver<AnnounceParams>,
    tx: UnboundedSender<Input>,
) {
    while let Some(params) = rx.recv().await {
        let result = if announcer.is_empty() {
            Err(AnnounceError(Vec::new()))
        } else if params.event == AnnounceEvent::Stopped {
            // Never hold the exit for long on a tracker that has gone away.
            match tokio::time::timeout(STOP_GRACE, announcer.announce(&params)).await {
                Ok(r) => r,
                Err(_) => Err(AnnounceError(Vec::new())),
            }
        } else {
            announcer.announce(&params).await
        };
        if tx.send(Input::Announced(result)).is_err() {
            return;
        }
    }
}
