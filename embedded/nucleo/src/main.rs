//! The board seeder on a Nucleo-H743ZI2 (or F767ZI): Ethernet through the on-board LAN8742A
//! (RMII), an address by DHCP, and `enjambre-embedded` serving the file embedded at build time,
//! or (feature `flash-image`) the flash image at 0x0810_0000, checked at boot.
//! Only this `main`, the device and the time driver differ from the host program.
#![no_std]
#![no_main]

mod stack;

use defmt::{error, info, unwrap};
use defmt_rtt as _;
use embassy_executor::Spawner;
use embassy_net::{Runner, Stack, StackResources};
use embassy_stm32::eth::{Ethernet, GenericPhy, PacketQueue, Sma};
use embassy_stm32::peripherals::{ETH, ETH_SMA};
use embassy_stm32::rng::Rng;
use embassy_stm32::{bind_interrupts, eth, peripherals, rng};
use embassy_time::{Duration, Timer};
use enjambre_core::PeerId;
use enjambre_embedded::{Buffers, Session, Settings, Torrent};
use static_cell::ConstStaticCell;

#[cfg_attr(feature = "flash-image", allow(dead_code))] // only the trackers are used then
mod seeded {
    include!(concat!(env!("OUT_DIR"), "/seeded.rs"));
}
#[cfg(feature = "flash-image")]
mod region {
    include!(concat!(env!("OUT_DIR"), "/region.rs"));
}

bind_interrupts!(struct Irqs {
    ETH => eth::InterruptHandler;
    RNG => rng::InterruptHandler<peripherals::RNG>;
});

type Device = Ethernet<'static, ETH, GenericPhy<Sma<'static, ETH_SMA>>>;
/// Socket buffers: 512 B to receive (requests are 17 bytes; the session keeps a message until
/// it is whole in a ring of its own), 4 KiB to send.
type SocketBuffers = Buffers<512, 4096>;
/// The TCP port peers connect to.
const PORT: u16 = 6881;

static SESSION: ConstStaticCell<Session> = ConstStaticCell::new(Session::EMPTY);
static BUFFERS: ConstStaticCell<SocketBuffers> = ConstStaticCell::new(SocketBuffers::new());
/// Ethernet DMA frames: 4 to send (block data leaves in full frames) and 2 to receive (a seeder
/// receives ACKs and 17-byte requests; the network task empties the ring at each interrupt).
static PACKETS: ConstStaticCell<PacketQueue<4, 2>> = ConstStaticCell::new(PacketQueue::new());
/// The peer sockets, the announce socket, DHCP and DNS.
static RESOURCES: ConstStaticCell<StackResources<{ enjambre_embedded::SOCKETS + 3 }>> =
    ConstStaticCell::new(StackResources::new());

/// A panic logs one line and stops in a fault; `probe-rs run` then prints the backtrace, with
/// the file and line, from the debug info. Neither the panic's message nor its location is
/// read here: either keeps `core::fmt` (about 28 KiB of code) in the firmware. `defmt::unwrap!`
/// and `defmt::panic!` log their own message first.
/// A panic while logging (defmt's logger taken) panics again in here: the second one only stops.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    use core::sync::atomic::{AtomicBool, Ordering};
    static PANICKED: AtomicBool = AtomicBool::new(false);
    cortex_m::interrupt::disable();
    if !PANICKED.swap(true, Ordering::Relaxed) {
        defmt::error!("panicked (the backtrace below shows where)");
    }
    cortex_m::asm::udf()
}

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, Device>) -> ! {
    runner.run().await
}

/// Log the stack's high-water mark (see `stack.rs`) whenever it has grown, checked every 10 s.
#[embassy_executor::task]
async fn stack_task() -> ! {
    stack::watch(Duration::from_secs(10), |peak| {
        info!("stack: peak {=usize} B used", peak)
    })
    .await
}

#[embassy_executor::main]
async fn main(spawner: Spawner) -> ! {
    stack::paint();
    let (stack, runner, seed) = boot();
    spawner.spawn(unwrap!(stack_task()));
    let (torrent, file) = match seeded() {
        Ok(seeded) => seeded,
        Err(e) => loop {
            // Nothing is served; said again and again for a probe attached later.
            error!("refusing to seed: {}", e);
            Timer::after_secs(10).await;
        },
    };
    spawner.spawn(unwrap!(net_task(runner)));

    let mut peer_id = *b"-EJ0001-board0000000";
    for (i, b) in peer_id[13..].iter_mut().enumerate() {
        *b = b'0' + ((seed >> (4 * i)) % 10) as u8;
    }
    let settings = Settings {
        port: PORT,
        peer_id: PeerId(peer_id),
        seed,
    };
    let session = SESSION.take();
    unwrap!(enjambre_embedded::start(session, &torrent, &settings));

    info!("waiting for the link and a DHCP lease");
    stack.wait_config_up().await;
    if let Some(c) = stack.config_v4() {
        info!("address {}: peers connect to port {=u16}", c.address, PORT);
    }
    enjambre_embedded::run(stack, session, &torrent, &settings, file, BUFFERS.take()).await
}

/// Clocks, the RNG, Ethernet and the network stack; the random seed. Not inlined into the
/// main task, so its temporaries (`embassy_net::new` builds the interface on the stack, about
/// 3.5 KiB) take stack only while it runs.
#[inline(never)]
fn boot() -> (Stack<'static>, Runner<'static, Device>, u64) {
    let p = embassy_stm32::init(clocks());

    let mut rng = Rng::new(p.RNG, Irqs);
    let mut seed = [0; 8];
    rng.fill_bytes(&mut seed);
    let seed = u64::from_le_bytes(seed);
    // A locally administered MAC from the seed.
    let mac = [
        0x02,
        0x45,
        0x4a,
        seed as u8,
        (seed >> 8) as u8,
        (seed >> 16) as u8,
    ];

    let device = Ethernet::new(
        PACKETS.take(),
        p.ETH,
        Irqs,
        p.PA1,  // REF_CLK
        p.PA7,  // CRS_DV
        p.PC4,  // RXD0
        p.PC5,  // RXD1
        p.PG13, // TXD0
        p.PB13, // TXD1
        p.PG11, // TX_EN
        mac,
        p.ETH_SMA,
        p.PA2, // MDIO
        p.PC1, // MDC
    );
    let config = embassy_net::Config::dhcpv4(Default::default());
    let (stack, runner) = embassy_net::new(device, config, RESOURCES.take(), seed);
    (stack, runner, seed)
}

/// The file embedded at build time, its hashes computed by the build script.
#[cfg(not(feature = "flash-image"))]
fn seeded() -> Result<(Torrent, &'static [u8]), enjambre_embedded::image::ImageError> {
    use enjambre_core::{Geometry, InfoHash};
    info!(
        "enjambre board seeder: {=str}, {=u64} bytes, info-hash {=str}",
        seeded::NAME,
        seeded::LENGTH,
        env!("SEED_INFO_HASH")
    );
    let torrent = Torrent {
        info_hash: InfoHash(seeded::INFO_HASH),
        geometry: unwrap!(Geometry::new(seeded::PIECE_LENGTH, seeded::LENGTH).ok()),
        piece_hashes: seeded::PIECE_HASHES,
        trackers: seeded::TRACKERS,
    };
    Ok((torrent, seeded::FILE))
}

/// The file in the flash image at `region::IMAGE_START`, checked (header, info dictionary,
/// every piece's SHA-1) before anything is served; announced to the build's `SEED_TRACKER`.
#[cfg(feature = "flash-image")]
fn seeded() -> Result<(Torrent, &'static [u8]), enjambre_embedded::image::ImageError> {
    info!(
        "enjambre board seeder: checking the flash image at {=usize:#x}",
        region::IMAGE_START
    );
    // SAFETY: `region::IMAGE_START..+IMAGE_LEN` is memory-mapped internal flash (H743 bank 2,
    // F767 sectors 8-11), always readable; build.rs ends the linker's FLASH region below it, so
    // nothing of the program is placed there, and this firmware never erases or programs flash,
    // so the bytes do not change while the `&'static [u8]` lives.
    let region: &'static [u8] =
        unsafe { core::slice::from_raw_parts(region::IMAGE_START as *const u8, region::IMAGE_LEN) };
    let image = enjambre_embedded::image::check(region)?;
    let mut hex = [0u8; 40];
    for (i, b) in image.info_hash.0.iter().enumerate() {
        hex[2 * i] = b"0123456789abcdef"[usize::from(b >> 4)];
        hex[2 * i + 1] = b"0123456789abcdef"[usize::from(b & 15)];
    }
    info!(
        "enjambre board seeder: {=str}, {=u64} bytes, info-hash {=str}, {=u32} pieces verified",
        image.name,
        image.geometry.total_length(),
        core::str::from_utf8(&hex).unwrap_or("?"),
        image.geometry.piece_count()
    );
    Ok((image.torrent(seeded::TRACKERS), image.file))
}

/// 400 MHz from the HSI (H743), 216 MHz (F767); HSI48 for the RNG.
#[cfg(feature = "h743zi")]
fn clocks() -> embassy_stm32::Config {
    use embassy_stm32::rcc::*;
    let mut config = embassy_stm32::Config::default();
    config.rcc.hsi = Some(HSIPrescaler::DIV1);
    config.rcc.csi = true;
    config.rcc.hsi48 = Some(Default::default());
    config.rcc.pll1 = Some(Pll {
        source: PllSource::HSI,
        prediv: PllPreDiv::DIV4,
        mul: PllMul::MUL50,
        fracn: None,
        divp: Some(PllDiv::DIV2),
        divq: None,
        divr: None,
    });
    config.rcc.sys = Sysclk::PLL1_P;
    config.rcc.ahb_pre = AHBPrescaler::DIV2;
    config.rcc.apb1_pre = APBPrescaler::DIV2;
    config.rcc.apb2_pre = APBPrescaler::DIV2;
    config.rcc.apb3_pre = APBPrescaler::DIV2;
    config.rcc.apb4_pre = APBPrescaler::DIV2;
    config.rcc.voltage_scale = VoltageScale::Scale1;
    config
}

#[cfg(feature = "f767zi")]
fn clocks() -> embassy_stm32::Config {
    use embassy_stm32::rcc::*;
    let mut config = embassy_stm32::Config::default();
    config.rcc.hse = Some(Hse {
        freq: embassy_stm32::time::Hertz(8_000_000),
        mode: HseMode::Bypass,
    });
    config.rcc.pll_src = PllSource::HSE;
    config.rcc.pll = Some(Pll {
        prediv: PllPreDiv::DIV4,
        mul: PllMul::MUL216,
        divp: Some(PllPDiv::DIV2),
        divq: None,
        divr: None,
    });
    config.rcc.ahb_pre = AHBPrescaler::DIV1;
    config.rcc.apb1_pre = APBPrescaler::DIV4;
    config.rcc.apb2_pre = APBPrescaler::DIV2;
    config.rcc.sys = Sysclk::PLL1_P;
    config
}
