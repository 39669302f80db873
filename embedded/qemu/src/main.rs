//! The board seeder in QEMU `mps2-an386` (Cortex-M4F): Ethernet through the machine's LAN9118
//! (our own driver), the static address `10.77.0.2/24` (gateway `10.77.0.1`), and
//! `enjambre-embedded` serving the file embedded at build time. Only this `main`, the device
//! (`lan9118`) and the time driver (`time`, on SysTick) differ from the Nucleo firmware; logs
//! go to QEMU's standard output through semihosting (`log`).
#![no_std]
#![no_main]

mod executor;
mod lan9118;
mod log;
mod time;

use core::net::Ipv4Addr;

use cortex_m_rt::{entry, exception};
use cortex_m_semihosting::{debug, hprintln};
use embassy_executor::Spawner;
use embassy_net::{Ipv4Cidr, StackResources, StaticConfigV4};
use enjambre_core::{Geometry, InfoHash};
use enjambre_embedded::{Buffers, Session, Settings, Torrent};
use static_cell::{ConstStaticCell, StaticCell};

use lan9118::Lan9118;

mod seeded {
    include!(concat!(env!("OUT_DIR"), "/seeded.rs"));
}

/// Socket buffers: 1 KiB to receive (requests are 17 bytes), 4 KiB to send.
type SocketBuffers = Buffers<1024, 4096>;
/// The TCP port peers connect to.
const PORT: u16 = 6881;
/// The board's address, and the host's side of the network (gateway, tracker).
const ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);

static SESSION: ConstStaticCell<Session> = ConstStaticCell::new(Session::EMPTY);
static BUFFERS: ConstStaticCell<SocketBuffers> = ConstStaticCell::new(SocketBuffers::new());
/// The peer sockets, the announce socket and DNS.
static RESOURCES: StaticCell<StackResources<{ enjambre_embedded::SOCKETS + 2 }>> =
    StaticCell::new();

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, Lan9118>) -> ! {
    runner.run().await
}

#[embassy_executor::task]
async fn main_task(spawner: Spawner) -> ! {
    ::log::info!(
        "enjambre board seeder: {}, {} bytes, info-hash {}",
        seeded::NAME,
        seeded::LENGTH,
        env!("SEED_INFO_HASH")
    );
    // No random source on this machine: the seed comes from the info-hash, so two QEMU boards
    // seeding the same file share a peer id and a MAC address.
    let mut seed = [0; 8];
    seed.copy_from_slice(&seeded::INFO_HASH[..8]);
    let seed = u64::from_le_bytes(seed);

    let device = match Lan9118::new(enjambre_embedded::mac_address(seed)) {
        Ok(d) => d,
        Err(e) => panic!("no LAN9118 (BYTE_TEST {:#x})", e.byte_test),
    };
    let config = embassy_net::Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(ADDRESS, 24),
        gateway: Some(GATEWAY),
        dns_servers: Default::default(),
    });
    let (stack, runner) =
        embassy_net::new(device, config, RESOURCES.init(StackResources::new()), seed);
    spawner.spawn(net_task(runner).expect("net task"));

    let settings = Settings::board(PORT, seed);
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
    if let Some(c) = stack.config_v4() {
        ::log::info!("address {}: peers connect to port {}", c.address, PORT);
    }
    enjambre_embedded::run(
        stack,
        session,
        &torrent,
        &settings,
        seeded::FILE,
        BUFFERS.take(),
    )
    .await
}

#[entry]
fn main() -> ! {
    log::init(::log::LevelFilter::Info);
    let core = cortex_m::Peripherals::take().expect("core peripherals");
    time::start(core.SYST);
    executor::run(|spawner| spawner.spawn(main_task(spawner).expect("main task")))
}

/// Every device interrupt lands here (no device crate names them); only the LAN9118's is on.
// SAFETY: cortex-m-rt requires this handler to be an `unsafe fn`; it calls nothing unsafe.
#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    if irqn == lan9118::IRQ as i16 {
        lan9118::on_interrupt();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    hprintln!("panic: {}", info);
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
