//! The executor's idle loop: poll, then `WFI` until an interrupt. The stock cortex-m executor
//! idles with `WFE`, which QEMU runs as a yield (an idle guest used 89 % of a host core); this
//! loop sleeps for real. `__pender` only raises a flag the loop checks with interrupts masked,
//! so a wake from an interrupt between `poll` and `WFI` is never lost (a pending interrupt
//! ends `WFI` even while masked).

use core::sync::atomic::{AtomicBool, Ordering};

use embassy_executor::{raw, Spawner};
use static_cell::StaticCell;

static PENDED: AtomicBool = AtomicBool::new(true);
static EXECUTOR: StaticCell<raw::Executor> = StaticCell::new();

/// Called by the executor when a task is woken, from a task or an interrupt.
// SAFETY: the one `__pender` of this program, with the signature embassy-executor declares.
#[unsafe(export_name = "__pender")]
fn pender(_context: *mut ()) {
    PENDED.store(true, Ordering::SeqCst);
}

/// Run the executor forever; `init` spawns the first tasks.
pub fn run(init: impl FnOnce(Spawner)) -> ! {
    let executor: &'static raw::Executor = EXECUTOR.init(raw::Executor::new(core::ptr::null_mut()));
    init(executor.spawner());
    loop {
        PENDED.store(false, Ordering::SeqCst);
        // SAFETY: only this loop polls the executor, never from an interrupt, never re-entered.
        unsafe { executor.poll() };
        cortex_m::interrupt::free(|_| {
            if !PENDED.load(Ordering::SeqCst) {
                cortex_m::asm::wfi();
            }
        });
    }
}
