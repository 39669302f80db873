//! The board seeder on the host, over a TAP device: the same application as the firmware
//! (`enjambre-embedded`), with only `main`, the device (`embassy-net-tuntap`) and the time
//! driver (embassy-time's `std`) differing.
//!
//! `enjambre-seed-tap [TAP] [ADDRESS/PREFIX] [GATEWAY] [PORT]`, by default
//! `tap0 10.77.0.2/24 10.77.0.1 6881`. The TAP must exist (see `embedded/README.md`).

use embassy_executor::{Executor, Spawner};
use embassy_net::{Ipv4Cidr, Runner, Stack, StackResources, StaticConfigV4};
use embassy_net_tuntap::TunTapDevice;
use enjambre_core::{Geometry, InfoHash};
use enjambre_embedded::{Buffers, Session, Settings, Torrent};
use static_cell::{ConstStaticCell, StaticCell};

mod seeded {
    include!(concat!(env!("OUT_DIR"), "/seeded.rs"));
}

/// Socket buffers: 1 KiB to receive (requests are 17 bytes), 4 KiB to send (16 KiB with the
/// `tx16k` feature, for measuring what the window costs).
#[cfg(not(feature = "tx16k"))]
type SocketBuffers = Buffers<1024, 4096>;
#[cfg(feature = "tx16k")]
type SocketBuffers = Buffers<1024, 16384>;

static SESSION: ConstStaticCell<Session> = ConstStaticCell::new(Session::EMPTY);
static BUFFERS: ConstStaticCell<SocketBuffers> = ConstStaticCell::new(SocketBuffers::new());
/// The peer sockets, the announce socket and the DNS socket.
static RESOURCES: StaticCell<StackResources<{ enjambre_embedded::SOCKETS + 2 }>> =
    StaticCell::new();
static EXECUTOR: StaticCell<Executor> = StaticCell::new();

struct Args {
    tap: String,
    address: Ipv4Cidr,
    gateway: std::net::Ipv4Addr,
    port: u16,
}

fn args() -> Args {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let get = |i: usize, default: &str| a.get(i).cloned().unwrap_or_else(|| default.to_string());
    let cidr = get(1, "10.77.0.2/24");
    let (ip, prefix) = cidr.split_once('/').expect("ADDRESS/PREFIX");
    Args {
        tap: get(0, "tap0"),
        address: Ipv4Cidr::new(
            ip.parse().expect("address"),
            prefix.parse().expect("prefix"),
        ),
        gateway: get(2, "10.77.0.1").parse().expect("gateway"),
        port: get(3, "6881").parse().expect("port"),
    }
}

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, TunTapDevice>) -> ! {
    runner.run().await
}

#[embassy_executor::task]
async fn seed_task(stack: Stack<'static>, port: u16) -> ! {
    let seed = u64::from(std::process::id()) ^ 0x5eed_b0a2d;
    let settings = Settings::board(port, seed);
    let torrent = Torrent {
        info_hash: InfoHash(seeded::INFO_HASH),
        geometry: Geometry::new(seeded::PIECE_LENGTH, seeded::LENGTH).expect("geometry"),
        piece_hashes: seeded::PIECE_HASHES,
        trackers: seeded::TRACKERS,
    };
    let session = SESSION.take();
    if let Err(e) = enjambre_embedded::start(session, &torrent, &settings) {
        panic!("cannot start the session: {e}");
    }
    stack.wait_config_up().await;
    log::info!(
        "{} ({} bytes), info-hash {}, at {:?}",
        seeded::NAME,
        seeded::LENGTH,
        env!("SEED_INFO_HASH"),
        stack.config_v4().map(|c| c.address)
    );
    let buffers = BUFFERS.take();
    enjambre_embedded::run(stack, session, &torrent, &settings, seeded::FILE, buffers).await
}

#[embassy_executor::task]
async fn main_task(spawner: Spawner) {
    let args = args();
    let device = TunTapDevice::new(&args.tap).unwrap_or_else(|e| panic!("TAP {}: {e}", args.tap));
    let config = embassy_net::Config::ipv4_static(StaticConfigV4 {
        address: args.address,
        gateway: Some(args.gateway),
        dns_servers: Default::default(),
    });
    let resources = RESOURCES.init(StackResources::new());
    let (stack, runner) =
        embassy_net::new(device, config, resources, u64::from(std::process::id()));
    spawner.spawn(net_task(runner).unwrap());
    spawner.spawn(seed_task(stack, args.port).unwrap());
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp_millis()
        .init();
    let executor = EXECUTOR.init(Executor::new());
    executor.run(|spawner| spawner.spawn(main_task(spawner).unwrap()));
}
