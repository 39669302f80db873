//! The board seeder in QEMU `mps2-an386` (Cortex-M4F): Ethernet through the machine's LAN9118
//! (our own driver), an address by DHCP like the Nucleo firmware (QEMU's user-mode network
//! serves one; on a TAP, whoever runs it does), and `enjambre-embedded` serving the file
//! embedded at build time. Only this `main`, the device (`lan9118`) and the time driver
//! (`time`, on SysTick) differ from the Nucleo firmware; logs go to QEMU's standard output
//! through semihosting (`log`). The stack is painted at boot and its high-water mark logged as
//! it grows (`stack`, the Nucleo firmware's own file), so the peak is measured here, not only
//! bounded.
#![no_std]
#![no_main]

mod executor;
mod lan9118;
mod log;
#[path = "../../nucleo/src/stack.rs"]
mod stack;
mod time;

use cortex_m_rt::{entry, exception};
use cortex_m_semihosting::{debug, hprintln};
use embassy_executor::Spawner;
use embassy_net::StackResources;
use embassy_time::Duration;
use enjambre_core::{Geometry, InfoHash};
use enjambre_embedded::{Buffers, Session, Settings, Torrent};
use static_cell::{ConstStaticCell, StaticCell};

use lan9118::Lan9118;

mod seeded {
    include!(concat!(env!("OUT_DIR"), "/seeded.rs"));
}

/// Socket buffers: 1 KiB to receive (requests are 17 bytes), 4 KiB to send (16 KiB with the
/// `tx16k` feature, for measuring what the window costs).
#[cfg(not(feature = "tx16k"))]
type SocketBuffers = Buffers<1024, 4096>;
#[cfg(feature = "tx16k")]
type SocketBuffers = Buffers<1024, 16384>;
/// The TCP port peers connect to.
const PORT: u16 = 6881;

static SESSION: ConstStaticCell<Session> = ConstStaticCell::new(Session::EMPTY);
static BUFFERS: ConstStaticCell<SocketBuffers> = ConstStaticCell::new(SocketBuffers::new());
/// The peer sockets, the announce socket, DHCP and DNS.
static RESOURCES: StaticCell<StackResources<{ enjambre_embedded::SOCKETS + 3 }>> =
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
    let config = embassy_net::Config::dhcpv4(Default::default());
    let (stack, runner) =
        embassy_net::new(device, config, RESOURCES.init(StackResources::new()), seed);
    spawner.spawn(net_task(runner).expect("net task"));
    spawner.spawn(stack_task().expect("stack task"));

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
    ::log::info!("waiting for a DHCP lease");
    stack.wait_config_up().await;
    if let Some(c) = stack.config_v4() {
        ::log::info!(
            "address {} (gateway {:?}, DNS {:?}): peers connect to port {}",
            c.address,
            c.gateway,
            c.dns_servers.as_slice(),
            PORT
        );
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

/// Logs the stack's high-water mark each time it has grown, looking every second.
#[embassy_executor::task]
async fn stack_task() -> ! {
    stack::watch(Duration::from_secs(1), |peak| {
        ::log::info!("stack peak {} B", peak)
    })
    .await
}

#[entry]
fn main() -> ! {
    stack::paint();
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
