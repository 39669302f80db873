//! Ctrl-C and `SIGTERM`: the first asks the loop to stop cleanly, a second exits at once.

use tokio::sync::mpsc::UnboundedSender;

use super::Input;

/// Listen for the stop signals; the first becomes [`Input::Shutdown`], a second exits (130).
pub(super) fn spawn(stop: UnboundedSender<Input>) {
    tokio::spawn(async move {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        let _ = stop.send(Input::Shutdown);
        // A second signal means "now".
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        std::process::exit(130);
    });
}
