//! The stack's high-water mark, measured: [`paint`] fills the unused stack with a pattern at
//! boot, [`peak`] finds how far down the pattern has been overwritten since. Interrupts run on
//! the same (main) stack, so they are counted too. The Nucleo and the QEMU firmware both use
//! this file (QEMU's `main` includes it by path). With the flash image's `from_raw_parts`, the
//! one place with `unsafe`: the stack is not a Rust object.

use core::ptr::{addr_of_mut, read_volatile, write_volatile};

/// What an untouched stack word holds.
const PAINT: u32 = 0x5eed_57ac;
/// Bytes left unpainted below the stack pointer at the time of painting: the painting
/// function's own frame and its callees'.
const MARGIN: usize = 256;

extern "C" {
    /// The lowest address of the stack (cortex-m-rt: the end of `.uninit`).
    static mut _stack_end: u32;
    /// The initial stack pointer (cortex-m-rt: the end of RAM).
    static mut _stack_start: u32;
}

/// The stack's lowest and highest addresses (only the symbols' addresses are taken).
fn bounds() -> (*mut u32, *mut u32) {
    (addr_of_mut!(_stack_end), addr_of_mut!(_stack_start))
}

/// Fill the stack below the current stack pointer (less [`MARGIN`]) with [`PAINT`]. Call first
/// thing in `main`.
pub fn paint() {
    let (low, _) = bounds();
    let sp = cortex_m::register::msp::read() as usize - MARGIN;
    let mut p = low;
    while (p as usize) < sp {
        // SAFETY: `p` is word-aligned, between the end of every static (`_stack_end`) and the
        // live stack (below the stack pointer, less a margin for this function's own frame):
        // memory that nothing uses yet.
        unsafe { write_volatile(p, PAINT) };
        p = p.wrapping_add(1);
    }
}

/// The most stack used since [`paint`], in bytes: from the top of the stack down to the
/// lowest word no longer painted.
pub fn peak() -> usize {
    let (low, high) = bounds();
    let mut p = low;
    // SAFETY: `p` stays word-aligned within the stack's region (`_stack_end.._stack_start`),
    // which is RAM; reading a word of it, even one in use, has no effect.
    while p < high && unsafe { read_volatile(p) } == PAINT {
        p = p.wrapping_add(1);
    }
    high as usize - p as usize
}

/// Call `report` with the high-water mark each time it has grown, looking every `every`.
pub async fn watch(every: embassy_time::Duration, report: impl Fn(usize)) -> ! {
    let mut reported = 0;
    loop {
        let peak = peak();
        if peak > reported {
            report(peak);
            reported = peak;
        }
        embassy_time::Timer::after(every).await;
    }
}
