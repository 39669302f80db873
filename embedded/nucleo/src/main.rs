//! The board seeder on a Nucleo-H743ZI2 (or F767ZI): Ethernet through the on-board LAN8742A
//! (RMII), an address by DHCP, and `enjambre-embedded` serving the file embedded at build time.
//! Only this `main`, the device and the time driver differ from the host program.
#![no_std]
#![no_main]

use defmt::{info, unwrap};
use embassy_executor::Spawner;
use embassy_net::StackResources;
use embassy_stm32::eth::{Ethernet, GenericPhy, PacketQueue, Sma};
use embassy_stm32::peripherals::{ETH, ETH_SMA};
use embassy_stm32::rng::Rng;
use embassy_stm32::{bind_interrupts, eth, peripherals, rng};
use enjambre_core::{Geometry, InfoHash, PeerId};
use enjambre_embedded::{Buffers, Session, Settings, Torrent};
use static_cell::{ConstStaticCell, StaticCell};
use {defmt_rtt as _, panic_probe as _};

mod seeded {
    include!(concat!(env!("OUT_DIR"), "/seeded.rs"));
}

bind_interrupts!(struct Irqs {
    ETH => eth::InterruptHandler;
    RNG => rng::InterruptHandler<peripherals::RNG>;
});

type Device = Ethernet<'static, ETH, GenericPhy<Sma<'static, ETH_SMA>>>;
/// Socket buffers: 1 KiB to receive (requests are 17 bytes), 4 KiB to send.
type SocketBuffers = Buffers<1024, 4096>;
/// The TCP port peers connect to.
const PORT: u16 = 6881;

static SESSION: ConstStaticCell<Session> = ConstStaticCell::new(Session::EMPTY);
static BUFFERS: ConstStaticCell<SocketBuffers> = ConstStaticCell::new(SocketBuffers::new());
static PACKETS: ConstStaticCell<PacketQueue<4, 4>> = ConstStaticCell::new(PacketQueue::new());
/// The peer sockets, the announce socket, DHCP and DNS.
static RESOURCES: StaticCell<StackResources<{ enjambre_embedded::SOCKETS + 3 }>> =
    StaticCell::new();

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, Device>) -> ! {
    runner.run().await
}

#[embassy_executor::main]
async fn main(spawner: Spawner) -> ! {
    let p = embassy_stm32::init(clocks());
    info!(
        "enjambre board seeder: {=str}, {=u64} bytes, info-hash {=str}",
        seeded::NAME,
        seeded::LENGTH,
        env!("SEED_INFO_HASH")
    );

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
    let (stack, runner) =
        embassy_net::new(device, config, RESOURCES.init(StackResources::new()), seed);
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
    let torrent = Torrent {
        info_hash: InfoHash(seeded::INFO_HASH),
        geometry: unwrap!(Geometry::new(seeded::PIECE_LENGTH, seeded::LENGTH).ok()),
        piece_hashes: seeded::PIECE_HASHES,
        trackers: seeded::TRACKERS,
    };
    let session = SESSION.take();
    unwrap!(enjambre_embedded::start(session, &torrent, &settings));

    info!("waiting for the link and a DHCP lease");
    stack.wait_config_up().await;
    if let Some(c) = stack.config_v4() {
        info!("address {}: peers connect to port {=u16}", c.address, PORT);
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
