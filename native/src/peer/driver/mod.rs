//! The session loop: one task owns the core `Session`, feeds it every input (socket bytes,
//! connections, storage completions, announce results, the clock) and drains
//! `poll_output` until `Timeout`, handing transmits to the peers' writer tasks, writes and
//! reads to the storage thread, announces to the announcer task.
//!
//! Blocks to write travel in the very buffer the session wrote them into (no copy); socket
//! reads go from the reader task's pooled buffer straight into `handle_input`.
//!
//! This file holds the loop, its state and the dispatch of inputs; each concern has its own
//! file: building the loop (`setup`), the session's outputs (`outputs`), the sockets and the
//! closing rule (`conns`), a dial's other way in (`fallback`), storage batching (`io`), the
//! resume state (`persist`), the announcer task (`announce`), the DHT task (`dht`), stop
//! signals (`signals`) and how a run ends (`shutdown`).

mod announce;
mod conns;
mod dht;
mod fallback;
mod io;
mod outputs;
mod persist;
mod setup;
mod shutdown;
mod signals;
mod steer;
mod webseeds;

pub use self::setup::DriveSetup;
pub use self::webseeds::WebSeed;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use enjambre_core::session::{preset, PeerHandle, Resume};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use self::conns::{Conn, Pending};
use self::fallback::{Openings, Probe};
use super::announce::{AnnounceError, AnnounceParams, Announced};
use super::conn::ConnEvent;
use super::encryption::{Encryption, Opening, Secured};
use super::io_thread::{IoDone, IoOp};
use super::journal::Mark;
use super::pool::BufPool;
use super::progress::Progress;
use super::rate::RateLimit;
use super::seed_until::SeedUntil;
use super::sha1::FastSha1;
use super::storage::Storage;
use super::uplink::Steer;

/// Pieces in progress at once (the native preset's `PARTIAL`).
pub const PARTIAL: usize = 64;
/// How long to wait for the `stopped` announce at exit.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// How often the progress display is refreshed.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// Timeouts are handled at most this often, whatever deadline the session gives.
const MIN_TIMEOUT_GAP: Duration = Duration::from_millis(10);

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
    /// An outbound connection is up, dialled to `addr` opening as `first`.
    Connected {
        peer: PeerHandle,
        addr: SocketAddr,
        first: Opening,
        stream: Secured,
    },
    /// An outbound connection failed.
    ConnectFailed { peer: PeerHandle },
    /// A connection dialled again with the key exchange is up (`fallback`).
    Redialled { peer: PeerHandle, stream: Secured },
    /// Dialling it again failed.
    RedialFailed { peer: PeerHandle },
    /// Someone connected to us.
    Accepted { stream: Secured, addr: SocketAddr },
    /// The announcer's result.
    Announced(Result<Announced, AnnounceError>),
    /// Peers a DHT lookup found.
    DhtPeers(Vec<SocketAddr>),
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

/// The loop's state.
pub struct Driver<const BYTES: usize, const RX: usize> {
    session: Box<NativeSession<BYTES, RX>>,
    epoch: Instant,
    tx: UnboundedSender<Input>,
    rx: UnboundedReceiver<Input>,
    // Sockets (`conns`).
    conns: HashMap<PeerHandle, Conn>,
    connecting: HashSet<PeerHandle>,
    dead: HashSet<PeerHandle>,
    /// Peers whose socket closed while some of their bytes wait in `pending`.
    closing: HashSet<PeerHandle>,
    pending: HashMap<PeerHandle, VecDeque<Pending>>,
    /// Plaintext dials closed unanswered, being dialled again with MSE (`fallback`).
    redials: HashMap<PeerHandle, Probe>,
    /// Which way in worked with each address lately (`fallback`).
    openings: Openings,
    /// The buffer `poll_output` writes into; a `Write` takes it whole (`outputs`).
    out_buf: Vec<u8>,
    out_pool: Arc<BufPool>,
    read_pool: Arc<BufPool>,
    // Storage work (`io`).
    io_tx: Option<UnboundedSender<Vec<IoOp>>>,
    /// Storage work gathered since the last send (see `run`).
    io_batch: Vec<IoOp>,
    /// Bytes of the writes in `io_batch`.
    io_batch_bytes: usize,
    io_threads: Vec<std::thread::JoinHandle<()>>,
    ops_in_flight: usize,
    // The resume state (`persist`).
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
    // Announces (`announce`).
    announce_tx: UnboundedSender<AnnounceParams>,
    announces_in_flight: usize,
    announce_failures: u32,
    has_trackers: bool,
    met_a_peer: bool,
    // What connections and the display share.
    storage: Arc<Storage>,
    down_limit: Arc<RateLimit>,
    up_limit: Arc<RateLimit>,
    /// The automatic upload limit, unless `--no-auto-upload-limit`.
    steer: Option<Steer>,
    bind_ip: Option<IpAddr>,
    encryption: Encryption,
    progress: Progress,
    // How the run ends (`shutdown`).
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
    /// The torrent's web seeds (`webseeds`).
    web_seeds: Vec<WebSeed>,
    /// The DHT lookups and announces (`dht`), when the DHT is on.
    dht_task: Option<JoinHandle<()>>,
}

impl<const BYTES: usize, const RX: usize> Driver<BYTES, RX> {
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
        self.start_web_seeds();
        self.complete = self.session.is_done();
        if self.complete && self.exit_when_complete {
            self.progress.note("already complete");
            self.start_shutdown();
        } else if !self.has_trackers
            && self.extra_peers.is_empty()
            && self.web_seeds.is_empty()
            && self.dht_task.is_none()
            && self.exit_when_complete
        {
            let msg = "the torrent lists no tracker, no --peer or web seed was given and the DHT \
                       is off: no way to find peers";
            self.fail(DriveError::TrackerUnreachable(msg.into()));
        }
        signals::spawn(self.tx.clone());
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
                let plenty = self.io_batch_plenty();
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
                self.progress.peers(|| self.session.peer_statuses());
                next_progress = now + PROGRESS_EVERY;
                self.check_seed_until(stats.uploaded);
                self.steer_uploads(stats.uploaded);
                self.start_web_seeds();
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

    /// Take one input.
    fn handle(&mut self, input: Input) {
        let now = self.now();
        match input {
            Input::Conn(ConnEvent::Data {
                peer,
                buf,
                len,
                permit,
            }) => self.received(peer, buf, len, permit),
            Input::Conn(ConnEvent::Sent { peer, bytes }) => {
                self.session.handle_sent(now, peer, bytes);
            }
            Input::Conn(ConnEvent::Closed { peer }) => {
                // A web seed's task ends only when it gives up.
                self.web_seed_left(peer, None);
                self.socket_closed(now, peer);
            }
            Input::Connected {
                peer,
                addr,
                first,
                stream,
            } => self.connected(now, peer, (addr, first), stream),
            Input::ConnectFailed { peer } => self.connect_failed(now, peer),
            Input::Redialled { peer, stream } => self.redialled(peer, stream),
            Input::RedialFailed { peer } => self.redial_failed(now, peer),
            Input::Accepted { stream, addr } => self.accepted(now, stream, addr),
            Input::Io(reports) => {
                for report in reports {
                    self.io_done(report);
                }
            }
            Input::Announced(result) => self.announced(now, result),
            Input::DhtPeers(peers) => self.dht_found(peers),
            Input::Shutdown => {
                self.progress
                    .note("stopping (Ctrl-C again to quit at once)");
                self.start_shutdown();
            }
        }
    }
}
