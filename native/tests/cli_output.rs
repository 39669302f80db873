//! What a user sees when output goes to a file or a pipe: no colour escapes, one error style.

mod cli_support;
mod peer_support;

use std::process::Stdio;
use std::time::Duration;

use cli_support::stderr_until;
use peer_support::{create, data, enjambre, run};

#[test]
fn log_lines_into_a_pipe_carry_no_colour_escapes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.bin");
    std::fs::write(&file, data(40_000, 7)).unwrap();
    let torrent = create(&file, &dir.path().join("f.torrent"), &[], 16384);
    let mut tracker = enjambre()
        .args(["-v", "tracker", "--listen", "127.0.0.1:0", "--torrent"])
        .arg(&torrent)
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let seen = stderr_until(&mut tracker, "registered torrent", Duration::from_secs(20));
    assert!(seen.contains("registered torrent"), "no log line:\n{seen}");
    assert!(
        !seen.contains('\u{1b}'),
        "colour escapes in a pipe:\n{seen:?}"
    );
}

#[test]
fn every_command_reports_an_error_the_same_way_without_a_backtrace() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let create = run(
        enjambre()
            .arg("create")
            .arg(&missing)
            .env("RUST_BACKTRACE", "1"),
        Duration::from_secs(10),
    );
    let get = run(
        enjambre()
            .arg("get")
            .arg(&missing)
            .env("RUST_BACKTRACE", "1"),
        Duration::from_secs(10),
    );
    for (what, o) in [("create", &create), ("get", &get)] {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{what} succeeded");
        assert!(err.starts_with("error: "), "{what}: {err}");
        assert!(
            err.contains("missing"),
            "{what} does not name the path: {err}"
        );
        assert!(
            !err.contains("acktrace"),
            "{what} printed a backtrace: {err}"
        );
    }
    assert_eq!(get.status.code(), Some(2), "a torrent that cannot be read");
}
