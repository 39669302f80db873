//! An `embassy-net-driver` 0.2 driver for the SMSC LAN9118 Ethernet controller of QEMU's
//! `mps2-an385`/`mps2-an386` machines (registers at `0x4020_0000`, IRQ 13).
//!
//! What it is for: giving the board seeder a network in QEMU. It moves frames by 32-bit PIO
//! through the controller's FIFOs, one frame at a time, into a receive buffer and out of a
//! transmit buffer of its own (1,536 bytes each). The receive interrupt (RX status FIFO level)
//! wakes the network task; the interrupt handler only masks the interrupt and wakes.
//!
//! What it never does: DMA, multicast or promiscuous reception, flow control, power
//! management, checksum offload, or following the link (it reports the link up once the PHY is
//! reset; QEMU's link is always up). A receive error or an oversized frame is dropped. It has
//! only been run on QEMU's model, never on a real chip.

use core::task::Context;

use embassy_net_driver::{Capabilities, HardwareAddress, LinkState};
use embassy_sync::waitqueue::AtomicWaker;

/// Where the controller's registers are mapped on `mps2-an386`.
const BASE: usize = 0x4020_0000;
/// Its interrupt line.
pub const IRQ: u16 = 13;

// Register offsets.
const RX_DATA: usize = 0x00;
const TX_DATA: usize = 0x20;
const RX_STATUS: usize = 0x40;
const TX_STATUS: usize = 0x48;
const ID_REV: usize = 0x50;
const IRQ_CFG: usize = 0x54;
const INT_STS: usize = 0x58;
const INT_EN: usize = 0x5c;
const BYTE_TEST: usize = 0x64;
const FIFO_INT: usize = 0x68;
const TX_CFG: usize = 0x70;
const HW_CFG: usize = 0x74;
const RX_FIFO_INF: usize = 0x7c;
const TX_FIFO_INF: usize = 0x80;
const PMT_CTRL: usize = 0x84;
const MAC_CSR_CMD: usize = 0xa4;
const MAC_CSR_DATA: usize = 0xa8;
// MAC registers (through MAC_CSR_CMD/DATA).
const MAC_CR: u32 = 1;
const MAC_ADDRH: u32 = 2;
const MAC_ADDRL: u32 = 3;
const MII_ACC: u32 = 6;
const MII_DATA: u32 = 7;
/// RX status FIFO level interrupt (INT_STS, INT_EN).
const RSFL: u32 = 1 << 3;
/// Largest frame without FCS.
const MTU: usize = 1514;
const BUF: usize = 1536;

/// Wakes the network task when a frame arrives.
static RX_WAKER: AtomicWaker = AtomicWaker::new();

fn read(offset: usize) -> u32 {
    // SAFETY: BASE..BASE+0x100 is the LAN9118's register block on this machine, every offset
    // used is a 32-bit register of it, and reading one has no effect on Rust-visible memory.
    unsafe { core::ptr::read_volatile((BASE + offset) as *const u32) }
}

fn write(offset: usize, value: u32) {
    // SAFETY: as in `read`; writing a register touches only the device.
    unsafe { core::ptr::write_volatile((BASE + offset) as *mut u32, value) }
}

fn mac_write(reg: u32, value: u32) {
    write(MAC_CSR_DATA, value);
    write(MAC_CSR_CMD, 1 << 31 | reg);
    while read(MAC_CSR_CMD) & 1 << 31 != 0 {}
}

fn mac_read(reg: u32) -> u32 {
    write(MAC_CSR_CMD, 1 << 31 | 1 << 30 | reg);
    while read(MAC_CSR_CMD) & 1 << 31 != 0 {}
    read(MAC_CSR_DATA)
}

/// Write PHY register `reg` (PHY address 1) through the MAC's MII registers.
fn phy_write(reg: u32, value: u32) {
    mac_write(MII_DATA, value);
    mac_write(MII_ACC, 1 << 11 | reg << 6 | 1 << 1 | 1);
    while mac_read(MII_ACC) & 1 != 0 {}
}

/// The controller's interrupt line, for the NVIC.
#[derive(Clone, Copy)]
struct Line;

// SAFETY: `number` is a valid external interrupt of this machine (13, the LAN9118).
unsafe impl cortex_m::interrupt::InterruptNumber for Line {
    fn number(self) -> u16 {
        IRQ
    }
}

/// The controller, reset and running.
pub struct Lan9118 {
    mac: [u8; 6],
    rx: [u8; BUF],
    tx: [u8; BUF],
}

/// Why [`Lan9118::new`] failed.
#[derive(Debug)]
pub struct NotFound {
    /// What `BYTE_TEST` read.
    pub byte_test: u32,
}

impl Lan9118 {
    /// Reset the controller, set `mac`, start the PHY's autonegotiation, turn transmit and
    /// receive on, and arm the receive interrupt (unmask IRQ [`IRQ`] in the NVIC too).
    pub fn new(mac: [u8; 6]) -> Result<Self, NotFound> {
        let byte_test = read(BYTE_TEST);
        if byte_test != 0x8765_4321 || read(ID_REV) >> 16 != 0x0118 {
            return Err(NotFound { byte_test });
        }
        write(HW_CFG, 1); // soft reset
        while read(HW_CFG) & 1 != 0 || read(PMT_CTRL) & 1 == 0 {}
        let [a, b, c, d, e, f] = mac;
        mac_write(MAC_ADDRL, u32::from_le_bytes([a, b, c, d]));
        mac_write(MAC_ADDRH, u32::from_le_bytes([e, f, 0, 0]));
        phy_write(0, 1 << 15); // PHY reset
        phy_write(0, 1 << 12 | 1 << 9); // autonegotiate, restart it
                                        // Full duplex, transmit and receive on; broadcasts accepted, no promiscuous mode.
        mac_write(MAC_CR, 1 << 20 | 1 << 3 | 1 << 2);
        write(TX_CFG, 1 << 1); // TX_ON
        write(FIFO_INT, 0); // RSFL as soon as one status word waits
        write(INT_STS, u32::MAX);
        write(INT_EN, RSFL);
        write(IRQ_CFG, 1 << 8 | 1 << 4 | 1); // on, active high, push-pull
                                             // Only now: until IRQ_CFG says active high, the idle line reads as asserted.
                                             // SAFETY: the handler (`on_interrupt`, from `DefaultHandler`) touches only the waker
                                             // and INT_EN, both safe to use from an interrupt; no critical section relies on this
                                             // line being masked.
        unsafe { cortex_m::peripheral::NVIC::unmask(Line) };
        Ok(Lan9118 {
            mac,
            rx: [0; BUF],
            tx: [0; BUF],
        })
    }

    /// Read the next frame into `self.rx`, returning its length without FCS; `None` when no
    /// frame waits. Bad or oversized frames are read and dropped.
    fn next_frame(&mut self) -> Option<usize> {
        loop {
            if read(RX_FIFO_INF) >> 16 & 0xff == 0 {
                return None;
            }
            let status = read(RX_STATUS);
            let len = (status >> 16 & 0x3fff) as usize; // with the 4-byte FCS
            let words = len.div_ceil(4);
            let good = status & 1 << 15 == 0 && (14 + 4..=BUF).contains(&len);
            for i in 0..words {
                let w = read(RX_DATA).to_le_bytes();
                if good && 4 * i < BUF {
                    let n = 4.min(BUF - 4 * i);
                    self.rx[4 * i..4 * i + n].copy_from_slice(&w[..n]);
                }
            }
            if good {
                return Some(len - 4);
            }
        }
    }
}

/// The interrupt handler's part: mask the controller's interrupt and wake the network task,
/// which re-arms it when it has read every frame.
pub fn on_interrupt() {
    write(INT_EN, 0);
    RX_WAKER.wake();
}

/// A received frame.
pub struct Rx<'a>(&'a mut [u8]);

/// Room for one frame to send.
pub struct Tx<'a>(&'a mut [u8; BUF]);

impl embassy_net_driver::RxToken for Rx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

impl embassy_net_driver::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let len = len.min(MTU);
        let r = f(&mut self.0[..len]);
        // TX_FIFO_INF's free space covers the frame and its two command words.
        while (read(TX_FIFO_INF) & 0xffff) < len as u32 + 8 {}
        // Command A: first and last segment, buffer length; B: tag 0, packet length.
        write(TX_DATA, 1 << 13 | 1 << 12 | len as u32);
        write(TX_DATA, len as u32);
        for chunk in self.0[..len].chunks(4) {
            let mut w = [0; 4];
            w[..chunk.len()].copy_from_slice(chunk);
            write(TX_DATA, u32::from_le_bytes(w));
        }
        // Drain the transmit status FIFO (nothing is retried).
        while read(TX_FIFO_INF) >> 16 & 0xff != 0 {
            read(TX_STATUS);
        }
        r
    }
}

impl embassy_net_driver::Driver for Lan9118 {
    type RxToken<'a> = Rx<'a>;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, cx: &mut Context) -> Option<(Rx<'_>, Tx<'_>)> {
        RX_WAKER.register(cx.waker());
        write(INT_STS, RSFL);
        match self.next_frame() {
            Some(len) => Some((Rx(&mut self.rx[..len]), Tx(&mut self.tx))),
            None => {
                // A frame arriving from here on sets RSFL again and interrupts.
                write(INT_EN, RSFL);
                None
            }
        }
    }

    fn transmit(&mut self, _cx: &mut Context) -> Option<Tx<'_>> {
        Some(Tx(&mut self.tx))
    }

    fn link_state(&mut self, _cx: &mut Context) -> LinkState {
        LinkState::Up
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.max_transmission_unit = MTU;
        caps
    }

    fn hardware_address(&self) -> HardwareAddress {
        HardwareAddress::Ethernet(self.mac)
    }
}
