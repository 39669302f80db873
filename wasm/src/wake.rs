//! The run loop's sleep: until a deadline, or until a socket or an announce wakes it. No busy
//! loop: one `setTimeout` per wait, cleared when woken early.

use core::cell::RefCell;

use js_sys::{Function, Promise};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::WorkerGlobalScope;

/// Wakes the loop; shared by everything that gives it input.
#[derive(Default)]
pub struct Wake {
    resolve: RefCell<Option<Function>>,
    pending: RefCell<bool>,
}

impl Wake {
    /// New input: end the current wait (or the next one at once).
    pub fn wake(&self) {
        match self.resolve.borrow_mut().take() {
            Some(resolve) => {
                let _ = resolve.call0(&wasm_bindgen::JsValue::NULL);
            }
            None => *self.pending.borrow_mut() = true,
        }
    }

    /// Wait `ms` milliseconds, whatever wakes it meanwhile (a wake then ends the next
    /// [`Wake::wait`] at once): lets input gather into one turn.
    pub async fn rest(&self, ms: i32) {
        let mut resolve = None;
        let promise = Promise::new(&mut |res, _| resolve = Some(res));
        let resolve = resolve.expect("the executor runs at once");
        let scope: WorkerGlobalScope = js_sys::global().unchecked_into();
        let _ = scope.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms.max(0));
        let _ = JsFuture::from(promise).await;
    }

    /// Wait `ms` milliseconds or until woken.
    pub async fn wait(&self, ms: i32) {
        if core::mem::take(&mut *self.pending.borrow_mut()) {
            return;
        }
        let mut resolve = None;
        let promise = Promise::new(&mut |res, _| resolve = Some(res));
        let resolve = resolve.expect("the executor runs at once");
        let scope: WorkerGlobalScope = js_sys::global().unchecked_into();
        let timer = scope
            .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms.max(0))
            .ok();
        *self.resolve.borrow_mut() = Some(resolve);
        let _ = JsFuture::from(promise).await;
        self.resolve.borrow_mut().take();
        if let Some(id) = timer {
            scope.clear_timeout_with_handle(id);
        }
    }
}

/// `performance.now()` as the core's [`enjambre_core::Instant`].
pub fn now() -> enjambre_core::Instant {
    let scope: WorkerGlobalScope = js_sys::global().unchecked_into();
    let ms = scope.performance().map(|p| p.now()).unwrap_or(0.0);
    enjambre_core::Instant::from_millis(ms as u64)
}
