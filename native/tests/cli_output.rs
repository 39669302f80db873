//! What a user sees when output goes to a file or a pipe: no colour escapes, one error style.

mod peer_support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use peer_support::{create, data, enjambre, run};

/// Read `child`'s stderr lines until one contains `want` (or 20 s pass); return them all.
fn stderr_until(child: &mut std::process::Child, want: &str) -> String {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = String::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
                if line.contains(want) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    seen
}

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
    let seen = stderr_until(&mut tracker, "registered torrent");
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
