//! The peer side of `enjambre`: `get` and `seed`, a thin tokio shell around the core Session.
//!
//! Exit codes: 0 complete and verified (or stopped cleanly while seeding), 1 other errors,
//! 2 a bad `.torrent` (or one whose paths collide), 3 no tracker reachable and no peer, 4 a full
//! disk or other storage failure (or a file in the way that is longer than the torrent says),
//! 5 seeding data of which no piece matches the torrent (a partial match is seeded).

pub mod announce;
pub mod args;
pub mod conn;
pub mod dht;
pub mod driver;
pub mod encryption;
pub mod http_tracker;
pub mod io_thread;
pub mod journal;
pub mod layout;
pub mod magnet;
pub mod parts;
pub mod pool;
pub mod progress;
pub mod rate;
pub mod restore;
pub mod resume_file;
pub mod seed_until;
pub mod select;
pub mod sha1;
pub mod storage;
pub mod tls;
pub mod udp_tracker;
pub mod uplink;
pub mod verify;
pub mod webseed;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use enjambre_core::bitfield::Bitfield;
use enjambre_core::metainfo::Metainfo;
use enjambre_core::select::{wanted_bytes, wanted_pieces};
use enjambre_core::session::Config;
use enjambre_core::{Geometry, InfoHash, PeerId};
use tokio::net::TcpListener;

use self::announce::{AnnounceTimeouts, Announcer};
use self::args::{CommonArgs, GetArgs, SeedArgs};
use self::dht::{dht_for, start_dht, DhtNode};
use self::driver::{DriveError, DriveSetup, Driver, NativeResume, NativeSession, Outcome};
use self::encryption::Encryption;
use self::journal::Mark;
use self::layout::{check_distinct, stored_name};
use self::parts::{parts_path, Parts};
use self::progress::{Mode, Progress};
use self::resume_file::ResumeFile;
use self::seed_until::SeedUntil;
use self::select::Selection;
use self::storage::{safe_relative, Access, FileLayout, Storage, StorageError};

/// A failure with its exit code.
#[derive(Debug)]
pub struct Failure {
    /// Process exit code.
    pub code: i32,
    /// What to tell the user.
    pub message: String,
}

impl Failure {
    /// A failure exiting with `code`.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }

    fn storage(e: StorageError) -> Self {
        Failure::new(4, e.to_string())
    }
}

impl From<DriveError> for Failure {
    fn from(e: DriveError) -> Self {
        let code = match e {
            DriveError::TrackerUnreachable(_) => 3,
            DriveError::DiskFull(_) | DriveError::Storage(_) => 4,
        };
        Failure::new(code, e.to_string())
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// `enjambre get`.
pub fn get(args: GetArgs) -> anyhow::Result<()> {
    Ok(run_get(args)?)
}

/// `enjambre seed`.
pub fn seed(args: SeedArgs) -> anyhow::Result<()> {
    Ok(run_seed(args)?)
}

/// A parsed torrent, kept for the whole process (the session borrows its piece hashes).
struct Torrent {
    meta: Metainfo<'static>,
    /// The whole `.torrent` (for what `meta` does not keep, such as web seeds).
    bytes: &'static [u8],
    /// Web seeds named elsewhere: a magnet link's `ws=`.
    more_web_seeds: Vec<String>,
}

impl Torrent {
    fn load(path: &Path) -> Result<Self, Failure> {
        let bytes = crate::torrent_source::read(path)?;
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        let meta = Metainfo::parse(bytes).map_err(|e| {
            Failure::new(2, format!("{} is not a valid torrent: {e}", path.display()))
        })?;
        Ok(Torrent {
            meta,
            bytes,
            more_web_seeds: Vec::new(),
        })
    }

    fn geometry(&self) -> Geometry {
        self.meta.geometry()
    }

    /// The files' paths relative to the directory that holds the torrent under its name, or,
    /// when `in_place`, relative to the data itself (a multi-file torrent's directory; a single
    /// file then has the name `single_name`). Paths that collide are refused.
    fn layout(
        &self,
        single_name: Option<&str>,
        in_place: bool,
    ) -> Result<Vec<FileLayout>, Failure> {
        let bad = |e: StorageError| Failure::new(2, format!("the torrent has {e}"));
        let name = stored_name(self.meta.name);
        if !self.meta.is_multi_file() {
            let name = single_name.unwrap_or(&name);
            let length = self.geometry().total_length();
            return Ok(vec![FileLayout {
                rel: safe_relative([name]).map_err(bad)?,
                length,
                pad: false,
            }]);
        }
        let files = self
            .meta
            .files()
            .map(|f| {
                let prefix = (!in_place).then_some(&*name);
                let rel =
                    safe_relative(prefix.into_iter().chain(f.path.components())).map_err(bad)?;
                Ok(FileLayout {
                    rel,
                    length: f.length,
                    pad: f.pad,
                })
            })
            .collect::<Result<Vec<_>, Failure>>()?;
        // Pad files are never stored, and several often share a name (`.pad/16384`).
        let stored: Vec<FileLayout> = files.iter().filter(|f| !f.pad).cloned().collect();
        check_distinct(&stored)
            .map_err(|e| Failure::new(2, format!("the torrent cannot be stored: {e}")))?;
        Ok(files)
    }

    fn trackers(&self) -> Vec<(usize, String)> {
        self.meta
            .trackers()
            .map(|(tier, url)| (tier, url.to_string()))
            .collect()
    }
}

fn run_get(mut args: GetArgs) -> Result<(), Failure> {
    let launched = tokio::time::Instant::now();
    let mut dht = None;
    let mut link_web_seeds = Vec::new();
    if magnet::is_magnet(&args.torrent) {
        let link = args.torrent.to_string_lossy().into_owned();
        if args.common.port == 0 {
            // The metadata fetch announces our port before the session listens: name the one
            // it will listen on (a tracker refuses port 0).
            args.common.port = free_port(args.common.listen);
        }
        let c = &args.common;
        dht = start_dht(c);
        let found = magnet::resolve(&link, &args.output, c, args.wait, dht.as_deref())?;
        if found.fetched {
            eprintln!(
                "metadata fetched; the torrent is kept in {}",
                found.torrent.display()
            );
        }
        args.common.peers.extend(found.peers);
        args.torrent = found.torrent;
        link_web_seeds = found.web_seeds;
    }
    let mut torrent = Torrent::load(&args.torrent)?;
    torrent.more_web_seeds = link_web_seeds;
    let dht = dht_for(&torrent, &args.common, dht);
    let files = torrent.layout(None, false)?;
    let selection = Selection {
        only: std::mem::take(&mut args.only),
        skip: std::mem::take(&mut args.skip),
        files: std::mem::take(&mut args.files),
    };
    let selected = selection.resolve(&torrent.meta)?;
    let resume = ResumeFile::in_dir(&args.output, torrent.meta.info_hash);
    // Held until this function returns: one writer per download directory and torrent.
    let _lock = match resume.lock() {
        Ok(Some(lock)) => lock,
        Ok(None) => {
            return Err(Failure::new(
                1,
                format!(
                    "{} is in use: another enjambre is downloading this torrent there",
                    args.output.display()
                ),
            ))
        }
        Err(e) => {
            return Err(Failure::new(
                4,
                format!("cannot lock {}: {e}", args.output.display()),
            ))
        }
    };
    let access = if args.overwrite {
        Access::Overwrite
    } else {
        Access::Download
    };
    // With no selection nothing is skipped, but a file an earlier run skipped still gets the
    // bytes the part file holds for it.
    let parts = Parts {
        path: parts_path(&args.output, torrent.meta.info_hash),
        skipped: match &selected {
            Some(chosen) => chosen.iter().map(|c| !c).collect(),
            None => vec![false; files.len()],
        },
    };
    let storage = Storage::open_with_parts(
        &args.output,
        &files,
        torrent.geometry().piece_length(),
        access,
        Some(&parts),
    )
    .map_err(Failure::storage)?;
    // A seed limit means seeding after the download, until it is reached.
    let seed = args.seed || args.common.seed_ratio.is_some() || args.common.seed_time.is_some();
    let plan = Plan {
        torrent,
        storage: Arc::new(storage),
        resume,
        common: args.common,
        exit_when_complete: !seed,
        seeding: false,
        keep_trying: args.wait,
        launched,
        selected,
        dht,
    };
    match start(plan)? {
        Outcome::Stopped if !seed => Err(Failure::new(
            130,
            "stopped before completion; run the same command to resume",
        )),
        Outcome::Complete | Outcome::Stopped => Ok(()),
    }
}

fn run_seed(args: SeedArgs) -> Result<(), Failure> {
    let launched = tokio::time::Instant::now();
    let torrent = Torrent::load(&args.torrent)?;
    let dht = dht_for(&torrent, &args.common, None);
    let SeedData {
        root,
        files,
        state_dir,
    } = locate_seed_data(&torrent, &args.data)?;
    // Bytes of files a selective download skipped are read from its part file.
    let parts = Some(parts_path(&state_dir, torrent.meta.info_hash))
        .filter(|p| p.is_file())
        .map(|path| Parts {
            path,
            skipped: vec![true; files.len()],
        });
    let storage = Storage::open_with_parts(
        &root,
        &files,
        torrent.geometry().piece_length(),
        Access::Seed,
        parts.as_ref(),
    )
    .map_err(Failure::storage)?;
    let resume = ResumeFile::for_seed(&state_dir, &args.data, torrent.meta.info_hash);
    let plan = Plan {
        torrent,
        storage: Arc::new(storage),
        resume,
        common: args.common,
        exit_when_complete: false,
        seeding: true,
        keep_trying: false,
        launched,
        selected: None,
        dht,
    };
    start(plan).map(|_| ())
}

/// Where a seed's data is, and the directory its state goes beside.
struct SeedData {
    /// The directory the files' paths are relative to.
    root: PathBuf,
    /// The files.
    files: Vec<FileLayout>,
    /// The directory that holds (or would hold) the data under the torrent's name.
    state_dir: PathBuf,
}

/// Find a seed's data from `--data`: the data itself (the file, or a multi-file torrent's
/// directory), or the directory that contains it under the torrent's name, as `get -o` leaves
/// it. When both could be meant, the one holding more of the torrent's files wins.
fn locate_seed_data(torrent: &Torrent, data: &Path) -> Result<SeedData, Failure> {
    let meta = std::fs::metadata(data)
        .map_err(|e| Failure::new(5, format!("cannot read {}: {e}", data.display())))?;
    let parent = match data.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let contained = |files: Vec<FileLayout>| SeedData {
        root: data.to_path_buf(),
        files,
        state_dir: data.to_path_buf(),
    };
    if !torrent.meta.is_multi_file() {
        if !meta.is_dir() {
            let name = data.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
                Failure::new(5, format!("{} is not a usable file name", data.display()))
            })?;
            return Ok(SeedData {
                root: parent.clone(),
                files: torrent.layout(Some(name), true)?,
                state_dir: parent,
            });
        }
        let files = torrent.layout(None, false)?;
        let expected = data.join(&files[0].rel);
        if !expected.is_file() {
            return Err(Failure::new(
                5,
                format!(
                    "{} is a directory without the torrent's file: expected {}",
                    data.display(),
                    expected.display()
                ),
            ));
        }
        return Ok(contained(files));
    }
    let named = torrent.layout(None, false)?;
    if !meta.is_dir() {
        return Err(Failure::new(
            5,
            format!(
                "{} is not a directory: the torrent's files are expected under {}",
                data.display(),
                data.with_file_name(&*stored_name(torrent.meta.name))
                    .display()
            ),
        ));
    }
    let in_place = torrent.layout(None, true)?;
    let present = |files: &[FileLayout]| {
        files
            .iter()
            .filter(|f| !f.pad && data.join(&f.rel).is_file())
            .count()
    };
    let (here, below) = (present(&in_place), present(&named));
    if here == 0 && below == 0 {
        return Err(Failure::new(
            5,
            format!(
                "{} holds none of the torrent's files: expected {} (or {})",
                data.display(),
                data.join(&named[0].rel).display(),
                data.join(&in_place[0].rel).display()
            ),
        ));
    }
    if below > here {
        return Ok(contained(named));
    }
    Ok(SeedData {
        root: data.to_path_buf(),
        files: in_place,
        state_dir: parent,
    })
}

/// Everything decided before the loop starts.
struct Plan {
    torrent: Torrent,
    storage: Arc<Storage>,
    resume: ResumeFile,
    common: CommonArgs,
    exit_when_complete: bool,
    seeding: bool,
    /// Never give up on the trackers (`get --wait`).
    keep_trying: bool,
    /// When the command started (the clock's origin, so "first byte" times count everything).
    launched: tokio::time::Instant,
    /// Per file, whether to download it (`get --only/--skip/--files`); `None`: all.
    selected: Option<Vec<bool>>,
    /// The DHT node (`None`: off, or a private torrent).
    dht: Option<Arc<DhtNode>>,
}

/// Pick the session's bitfield capacity from the piece count, then run.
fn start(plan: Plan) -> Result<Outcome, Failure> {
    let count = plan.torrent.geometry().piece_count() as usize;
    // The receive ring must hold the largest non-`Piece` message: a bitfield of BYTES bytes.
    if count <= 4096 * 8 {
        start_sized::<4096, { 32 * 1024 }>(plan)
    } else if count <= 32768 * 8 {
        start_sized::<32768, { 64 * 1024 }>(plan)
    } else {
        Err(Failure::new(
            2,
            format!(
                "the torrent has {count} pieces; at most {} are supported",
                32768 * 8
            ),
        ))
    }
}

fn start_sized<const BYTES: usize, const RX: usize>(plan: Plan) -> Result<Outcome, Failure> {
    let Plan {
        torrent,
        storage,
        resume,
        common,
        exit_when_complete,
        seeding,
        keep_trying,
        launched,
        selected,
        dht,
    } = plan;
    let meta = torrent.meta;
    let trackers = torrent.trackers();
    let web_seeds = if seeding {
        Vec::new()
    } else {
        torrent.web_seeds()
    };
    let info_hash = meta.info_hash;
    let geometry = meta.geometry();
    let hashes: &'static [u8] = meta.pieces();
    let mode = Mode::detect(common.json, common.quiet);
    let mut wanted = Box::new(Bitfield::<BYTES>::empty());
    let cannot = |e| Failure::new(2, format!("cannot select files: {e}"));
    match &selected {
        Some(s) => wanted_pieces(&geometry, meta.files(), |f| s[f.index], &mut wanted),
        // No selection: every piece, whatever its files.
        None => wanted.reset(geometry.piece_count()).map(|()| wanted.fill()),
    }
    .map_err(cannot)?;
    let mut progress = Progress::new(mode, meta.name, wanted_bytes(&geometry, &wanted));
    progress.peer_lines(common.json_peers);
    if let Some(s) = &selected {
        let files = meta.files().filter(|f| !f.pad).count();
        let chosen = meta.files().filter(|f| s[f.index]);
        let bytes: u64 = chosen.clone().map(|f| f.length).sum();
        progress.note(&format!(
            "downloading {} of {files} files ({bytes} bytes; {} of {} pieces)",
            chosen.count(),
            wanted.count_ones(),
            geometry.piece_count()
        ));
    }

    let state = restore::load_resume::<BYTES>(
        &resume, &storage, info_hash, geometry, hashes, seeding, &progress,
    )?;
    // A seed serves the pieces that verify and names the others; with none, it has nothing
    // to offer and the data is most likely not this torrent's.
    let mut upload_only = false;
    if seeding {
        let count = geometry.piece_count();
        let have = state.as_ref().map_or(0, |s| s.have.count_ones());
        if have == 0 {
            return Err(Failure::new(
                5,
                format!("the data does not match the torrent: {count} of {count} pieces differ"),
            ));
        }
        if let Some(s) = state.as_ref().filter(|_| have < count) {
            progress.note(&format!(
                "{}: seeding the other {have}",
                verify::describe_missing(&storage, geometry, |i| s.have.get(i))
            ));
            upload_only = true;
        }
        // Remember the check, so the next start is instant (ignored if the directory is read-only).
        if let Some(s) = &state {
            let mut buf = vec![0; NativeResume::<BYTES>::max_encoded_len()];
            if let Ok(bytes) = s.encode(&mut buf) {
                let _ = io_thread::persist(&storage, &resume, bytes, common.fsync, Mark::default());
            }
        }
    }

    // Before any new byte is written, the state this run starts from is saved beside a new
    // journal of the writes to come (a seed writes nothing).
    let journal = if seeding {
        None
    } else {
        restore::start_journal(
            &resume,
            &storage,
            state.as_deref(),
            info_hash,
            geometry,
            common.fsync,
        )
    };

    // One thread for the session and every socket: handing bytes between them costs no
    // wake-up. Disk writes and flushes have their own threads.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(1, format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async move {
        let listen_ip = common.listen.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let listener = bind_listener(listen_ip, common.port).await?;
        let port = listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or(common.port);
        if common.port != 0 && port != common.port {
            progress.note(&format!(
                "port {} is in use; listening on port {port} instead",
                common.port
            ));
        }
        progress.note(&format!(
            "{} ({}), listening on port {port}",
            meta.name, info_hash
        ));
        if let Some(node) = &dht {
            progress.note(&format!("DHT node on UDP port {}", node.port()));
        }
        let peer_id = new_peer_id();
        let mut config = Config::new(peer_id, port);
        config.max_peers = common.max_peers.clamp(1, NativeSession::<BYTES, RX>::SLOTS);
        config.send_window = driver::SEND_WINDOW;
        config.seed = rand::random();
        config.upload_only = upload_only;
        config.super_seed = common.super_seed;
        // A private torrent's peers come from its trackers only (BEP 27): no peer exchange.
        config.pex = !meta.private;
        config.dht_port = dht.as_ref().map(|n| n.port());
        let epoch = launched;
        let info = (meta.info_bytes, meta.pieces_offset());
        let mut session = build_session::<BYTES, RX>(config, info_hash, geometry, info, state)?;
        session
            .set_wanted(&wanted)
            .map_err(|e| Failure::new(2, format!("cannot select files: {e}")))?;
        let announcer = Announcer::new(
            info_hash,
            peer_id,
            port,
            trackers,
            AnnounceTimeouts::default(),
            common.listen,
        );
        let setup = DriveSetup {
            storage,
            resume_file: Some(resume),
            journal,
            flush_data: common.fsync,
            announcer,
            listener,
            bind_ip: common.listen,
            encryption: Encryption {
                policy: common.encryption,
                info_hash: info_hash.0,
            },
            extra_peers: common.peers.clone(),
            exit_when_complete,
            keep_trying,
            seed_until: SeedUntil {
                ratio: common.seed_ratio,
                time: common.seed_time,
            },
            down_limit: common.max_download_rate,
            up_limit: common.max_upload_rate,
            auto_upload_limit: !common.no_auto_upload_limit,
            progress,
            web_seeds,
            dht: dht.clone().map(|node| (node, info_hash)),
        };
        let outcome = Driver::new(session, epoch, setup).run().await;
        if let Some(node) = dht {
            node.save().await;
        }
        outcome.map_err(Failure::from)
    })
}

/// Build the session on the heap, on a thread with a large stack: it is megabytes, and
/// building it may pass through the stack.
fn build_session<const BYTES: usize, const RX: usize>(
    config: Config,
    info_hash: InfoHash,
    geometry: Geometry,
    (info, hashes_at): (&'static [u8], usize),
    state: Option<Box<NativeResume<BYTES>>>,
) -> Result<Box<NativeSession<BYTES, RX>>, Failure> {
    std::thread::Builder::new()
        .name("enjambre-init".into())
        .stack_size(64 << 20)
        .spawn(move || {
            let mut session = Box::new(NativeSession::<BYTES, RX>::empty());
            let now = enjambre_core::Instant::ZERO;
            // The whole info dictionary, so peers with only a magnet link get it from us.
            let resume = state.as_deref();
            (session
                .start_serving_metadata(now, config, info_hash, geometry, info, hashes_at, resume))
            .map(|()| session)
        })
        .map_err(|e| Failure::new(1, format!("cannot start: {e}")))?
        .join()
        .map_err(|_| Failure::new(1, "session setup panicked"))?
        .map_err(|e| Failure::new(2, format!("cannot start the session: {e}")))
}

/// Listen on `port`, or one of the nine after it, or any free port.
async fn bind_listener(ip: IpAddr, port: u16) -> Result<TcpListener, Failure> {
    let mut last = None;
    let candidates = (0..10u16)
        .filter_map(|i| port.checked_add(i))
        .filter(|p| port != 0 || *p == 0);
    for p in candidates.chain([0]) {
        match TcpListener::bind(SocketAddr::new(ip, p)).await {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(Failure::new(
        1,
        format!(
            "cannot listen on {ip}: {}",
            last.map_or_else(String::new, |e| e.to_string())
        ),
    ))
}

/// A TCP port free on `ip` now (0 when none is found: the session then takes any).
fn free_port(ip: Option<IpAddr>) -> u16 {
    let ip = ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    std::net::TcpListener::bind(SocketAddr::new(ip, 0))
        .and_then(|l| l.local_addr())
        .map_or(0, |a| a.port())
}

/// An Azureus-style id: `-EJ0100-` and twelve random bytes.
fn new_peer_id() -> PeerId {
    let mut id = [0u8; 20];
    id[..8].copy_from_slice(b"-EJ0100-");
    for b in &mut id[8..] {
        *b = rand::random::<u8>();
    }
    PeerId(id)
}
