//! `enjambre get` meeting a new user's input: a torrent given by URL, a peer given by host name,
//! a listening port already taken.

mod cli_support;
mod peer_support;

use std::process::Stdio;
use std::time::Duration;

use cli_support::{http_server, stderr_until};
use peer_support::{create, data, enjambre, free_port, run, wait_listening, Background};

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_torrent_fetched_over_http_downloads_from_a_peer_named_by_host() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("song.bin");
    let bytes = data(300_000, 11);
    std::fs::write(&file, &bytes).unwrap();
    let torrent = create(&file, &dir.path().join("song.torrent"), &[], 16384);
    let seed_port = free_port();
    let _seed = Background::spawn(
        enjambre()
            .arg("seed")
            .arg(&torrent)
            .arg("--data")
            .arg(&file)
            .args(["--port", &seed_port.to_string(), "--listen", "127.0.0.1"]),
    );
    wait_listening(seed_port);
    let base = http_server(200, std::fs::read(&torrent).unwrap(), 1);
    let out = dir.path().join("out");
    let o = run(
        enjambre()
            .arg("get")
            .arg(format!("{base}/song.torrent"))
            .arg("-o")
            .arg(&out)
            .args(["--port", "0", "--peer", &format!("localhost:{seed_port}")]),
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(out.join("song.bin")).unwrap(), bytes);
}

#[test]
fn a_torrent_url_that_cannot_be_fetched_exits_2_and_says_why() {
    let missing = http_server(404, b"not here".to_vec(), 1);
    let huge = http_server(200, vec![b'd'; 17 << 20], 1);
    let closed = format!("http://127.0.0.1:{}", free_port());
    for (base, why) in [
        (missing, "HTTP 404"),
        (huge, "larger than"),
        (closed, "cannot fetch"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let o = run(
            enjambre()
                .arg("get")
                .arg(format!("{base}/x.torrent"))
                .arg("-o")
                .arg(dir.path()),
            Duration::from_secs(40),
        );
        assert_eq!(o.status.code(), Some(2), "{base}: {}", stderr(&o));
        assert!(stderr(&o).contains(why), "{base}: {}", stderr(&o));
    }
}

#[test]
fn a_busy_port_is_reported_when_another_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, data(20_000, 12)).unwrap();
    let torrent = create(&file, &dir.path().join("f.torrent"), &[], 16384);
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let mut get = enjambre()
        .arg("get")
        .arg(&torrent)
        .arg("-o")
        .arg(dir.path().join("out"))
        .args(["--listen", "127.0.0.1", "--port", &port.to_string()])
        .args(["--peer", &format!("127.0.0.1:{}", free_port())])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let seen = stderr_until(&mut get, "listening on port", Duration::from_secs(20));
    assert!(
        seen.contains(&format!("port {port} is in use; listening on port ")),
        "{seen}"
    );
}
