//! The browser peer: Enjambre's core session running in a dedicated module worker.
//!
//! The page talks to `web/worker.js`, which forwards its messages to [`BrowserPeer`] (wasm
//! only); everything protocol-shaped is the core's (`enjambre_core::session::Session`, the
//! tracker client, the journal). This crate only moves bytes and keeps files:
//! - peers are WebSockets to the tracker's bridge (`/bridge/<info-hash>/<ip>:<port>`), read as a
//!   byte stream ([`feed`]) and written within the session's send window;
//! - announces are `fetch`es of `/bridge/announce?<query>` on the page's origin; a torrent
//!   naming other trackers is first handed to the tracker, whose bridge relays them ([`handover`]);
//! - the page holds a TCP port at the bridge while it runs (`listen.rs`); peers that dial it
//!   (ordinary clients, the tracker's poller) come in over WebSockets of their own;
//! - storage is the Origin Private File System through sync access handles ([`store`]).
//!
//! It never re-implements protocol logic, never keeps a download only in memory (no OPFS, no
//! download), and never prints: logs go to the console.
//!
//! The pure parts ([`torrent`], [`store`], [`state_file`], [`feed`], [`rate`]) are tested on
//! the host; the browser parts with `wasm-bindgen-test` in headless Chromium.
//!
//! In the browser the crate is `no_std` (with `alloc`), for size: a panic traps at once (std's
//! panic machinery and its formatting stay out of the wasm; with `panic = "abort"` a panic
//! ended in the same trap) and the allocator is `talc` (smaller than std's `dlmalloc`).

#![cfg_attr(all(target_arch = "wasm32", not(test)), no_std)]

extern crate alloc;

/// The names std's prelude gives, for the `no_std` build.
#[allow(unused_imports)]
mod prelude {
    pub use alloc::borrow::ToOwned;
    pub use alloc::boxed::Box;
    pub use alloc::string::{String, ToString};
    pub use alloc::vec::Vec;
    pub use alloc::{format, vec};
}

#[cfg(all(target_arch = "wasm32", not(test)))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

#[cfg(all(target_arch = "wasm32", not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

pub mod engine;
pub mod feed;
pub mod file;
pub mod rate;
pub mod selection;
pub mod staged;
pub mod state_file;
pub mod store;
pub mod text;
pub mod torrent;

#[cfg(test)]
mod engine_tests;
#[cfg(all(test, target_arch = "wasm32"))]
mod opfs_tests;
#[cfg(test)]
mod selection_tests;
#[cfg(test)]
mod store_tests;

#[cfg(target_arch = "wasm32")]
pub mod handover;
#[cfg(target_arch = "wasm32")]
mod listen;
#[cfg(target_arch = "wasm32")]
mod message;
#[cfg(target_arch = "wasm32")]
pub mod opfs;
#[cfg(target_arch = "wasm32")]
pub mod peer;
#[cfg(target_arch = "wasm32")]
mod socket;
#[cfg(target_arch = "wasm32")]
mod wake;

#[cfg(target_arch = "wasm32")]
pub use peer::BrowserPeer;
