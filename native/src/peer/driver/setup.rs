//! What the loop starts from ([`DriveSetup`]) and how [`Driver::new`] builds it: the pools,
//! the storage and persist threads, the accept task and the announcer task.
//!
//! Nothing here runs the loop; [`Driver::run`] does.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use enjambre_core::session::MIN_OUTPUT_BUF;
use enjambre_core::InfoHash;
use tokio::net::TcpListener;

use crate::peer::encryption::Encryption;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::fallback::Openings;
use super::{announce, conns, dht, Driver, NativeResume, NativeSession};
use crate::peer::announce::Announcer;
use crate::peer::dht::DhtNode;
use crate::peer::io_thread;
use crate::peer::journal::{Journal, Mark};
use crate::peer::pool::BufPool;
use crate::peer::progress::Progress;
use crate::peer::rate::RateLimit;
use crate::peer::resume_file::ResumeFile;
use crate::peer::seed_until::SeedUntil;
use crate::peer::storage::Storage;
use crate::peer::uplink::Steer;

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
    /// The `--encryption` policy and the torrent it keys exchanges with.
    pub encryption: Encryption,
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
    /// Lower the upload rate while our uplink's queue is long and we download (`uplink`).
    pub auto_upload_limit: bool,
    /// The display.
    pub progress: Progress,
    /// The torrent's web seeds.
    pub web_seeds: Vec<super::WebSeed>,
    /// The DHT node and the torrent's info-hash, when the DHT is on (never for a private
    /// torrent).
    pub dht: Option<(Arc<DhtNode>, InfoHash)>,
}

impl<const BYTES: usize, const RX: usize> Driver<BYTES, RX> {
    /// Prepare the loop around `session`; call [`Driver::run`] inside a tokio runtime.
    pub fn new(session: Box<NativeSession<BYTES, RX>>, epoch: Instant, setup: DriveSetup) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let out_pool = Arc::new(BufPool::new(MIN_OUTPUT_BUF, 128));
        let read_pool = Arc::new(BufPool::new(conns::READ_BUF, 16));
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
        let port = setup.listener.local_addr().map_or(0, |a| a.port());
        let dht_task = setup
            .dht
            .map(|(node, ih)| tokio::spawn(dht::dht_loop(node, ih, port, tx.clone())));
        let accept_task = tokio::spawn(conns::accept_loop(
            setup.listener,
            setup.encryption,
            tx.clone(),
        ));
        let has_trackers = !setup.announcer.is_empty();
        let (announce_tx, announce_rx) = mpsc::unbounded_channel();
        let announce_task = tokio::spawn(announce::announce_loop(
            setup.announcer,
            announce_rx,
            tx.clone(),
        ));
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
            redials: HashMap::new(),
            openings: Openings::default(),
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
            steer: setup.auto_upload_limit.then(Steer::new),
            bind_ip: setup.bind_ip,
            encryption: setup.encryption,
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
            web_seeds: setup.web_seeds,
            dht_task,
        }
    }
}
