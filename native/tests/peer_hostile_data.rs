//! Hostile and careless input on the storage side (issue 9): torrents whose paths collide or
//! reach our state directory, `seed --data` pointing at the directory that holds the data,
//! files already in the output directory that are not ours, many files under a low open-file
//! limit, and seed data of which only some pieces verify.

mod peer_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use enjambre_core::metainfo::{write_torrent, FileSpec, TorrentSpec};
use peer_support::{data, enjambre, free_port, run, wait_listening, Background};
use sha1::{Digest, Sha1};

/// One file of a torrent built by [`torrent`]: its path components and content.
type FileData<'a> = (&'a [&'a str], Vec<u8>);

/// Write a trackerless torrent named `name` holding `files` (one file without a directory
/// when `multi` is false) to `out`.
fn torrent(out: &Path, name: &str, files: &[FileData<'_>], multi: bool, piece: u32) -> PathBuf {
    let all: Vec<u8> = files.iter().flat_map(|(_, d)| d.iter().copied()).collect();
    let pieces: Vec<u8> = all
        .chunks(piece as usize)
        .flat_map(|c| Sha1::digest(c).to_vec())
        .collect();
    let specs: Vec<FileSpec<'_>> = files
        .iter()
        .map(|(path, d)| FileSpec {
            length: d.len() as u64,
            path,
        })
        .collect();
    let spec = TorrentSpec {
        name,
        piece_length: piece,
        pieces: &pieces,
        files: if multi { &specs } else { &[] },
        length: all.len() as u64,
        trackers: &[],
        private: false,
        created_by: None,
        creation_date: None,
        comment: None,
    };
    let mut buf = vec![0u8; 1 << 20];
    let n = write_torrent(&spec, &mut buf).expect("a torrent");
    std::fs::write(out, &buf[..n]).unwrap();
    out.to_path_buf()
}

/// `movie.bin`, `len` bytes made from `seed`, laid out in `src`, and its single-file torrent
/// `dir/movie.torrent` (16 KiB pieces): the bytes and the torrent's path.
fn movie(dir: &Path, src: &Path, len: usize, seed: u64) -> (Vec<u8>, PathBuf) {
    let bytes = data(len, seed);
    let files: [FileData<'_>; 1] = [(&["movie.bin"], bytes.clone())];
    let torrent = torrent(
        &dir.join("movie.torrent"),
        "movie.bin",
        &files,
        false,
        16384,
    );
    lay_out(src, &files);
    (bytes, torrent)
}

/// Write `files` under `root` (their paths relative to it).
fn lay_out(root: &Path, files: &[FileData<'_>]) {
    for (path, bytes) in files {
        let p = path.iter().fold(root.to_path_buf(), |p, c| p.join(c));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
}

fn seed_cmd(torrent: &Path, data: &Path, port: u16) -> Command {
    let mut cmd = enjambre();
    cmd.arg("seed").arg(torrent).arg("--data").arg(data).args([
        "--port",
        &port.to_string(),
        "--listen",
        "127.0.0.1",
    ]);
    cmd
}

/// A seed in the background, once it accepts connections.
fn seed(torrent: &Path, data: &Path) -> (Background, u16) {
    let port = free_port();
    let bg = Background::spawn(&mut seed_cmd(torrent, data, port));
    wait_listening(port);
    (bg, port)
}

/// `enjambre get TORRENT -o OUT` from the seed on `seed_port` (or from nobody).
fn get(torrent: &Path, out: &Path, seed_port: Option<u16>) -> Command {
    let mut cmd = enjambre();
    cmd.arg("get")
        .arg(torrent)
        .arg("-o")
        .arg(out)
        .args(["--port", &free_port().to_string()]);
    if let Some(p) = seed_port {
        cmd.args(["--peer", &format!("127.0.0.1:{p}")]);
    }
    cmd
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn a_torrent_whose_paths_collide_is_refused_by_get_and_seed() {
    let dir = tempfile::tempdir().unwrap();
    let twice = torrent(
        &dir.path().join("twice.torrent"),
        "set",
        &[(&["a"], data(1000, 1)), (&["a"], data(1000, 2))],
        true,
        16384,
    );
    let out = dir.path().join("out");
    let o = run(&mut get(&twice, &out, None), LIMIT);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("set/a"), "{}", stderr(&o));
    assert!(!out.join("set").exists(), "nothing was written");

    let src = dir.path().join("src");
    lay_out(&src, &[(&["a"], data(1000, 1))]);
    let o = run(&mut seed_cmd(&twice, &src, free_port()), LIMIT);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("same path"), "{}", stderr(&o));

    let file_and_dir = torrent(
        &dir.path().join("nested.torrent"),
        "set",
        &[(&["a"], data(1000, 1)), (&["a", "b"], data(1000, 2))],
        true,
        16384,
    );
    let o = run(&mut get(&file_and_dir, &out, None), LIMIT);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("set/a is both a file and a directory"),
        "{}",
        stderr(&o)
    );
    let o = run(&mut seed_cmd(&file_and_dir, &src, free_port()), LIMIT);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn a_torrent_named_like_our_state_directory_cannot_touch_another_torrent_s_state() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // A first torrent, downloaded into `out`: its resume state is in `out/.enjambre/`.
    let (_movie, first) = movie(dir.path(), &dir.path().join("src"), 100_000, 3);
    let (mut s, port) = seed(&first, &dir.path().join("src").join("movie.bin"));
    let o = run(&mut get(&first, &out, Some(port)), LIMIT);
    assert!(o.status.code() == Some(0), "{}", stderr(&o));
    s.stop();
    let hash = peer_support::info_hash(&first);
    let state = out.join(".enjambre").join(format!("{hash}.resume"));
    let saved = std::fs::read(&state).unwrap();

    // A second torrent named `.enjambre` whose file is named like the first one's state.
    let resume_name = format!("{hash}.resume");
    let hostile_files: [FileData<'_>; 1] = [(&[resume_name.as_str()], data(5000, 4))];
    let hostile = torrent(
        &dir.path().join("hostile.torrent"),
        ".enjambre",
        &hostile_files,
        true,
        16384,
    );
    let src = dir.path().join("hostile-src");
    lay_out(&src, &hostile_files);
    let (mut s, port) = seed(&hostile, &src);
    let o = run(&mut get(&hostile, &out, Some(port)), LIMIT);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    s.stop();
    assert_eq!(
        std::fs::read(out.join(".enjambre-data").join(&resume_name)).unwrap(),
        hostile_files[0].1,
        "the torrent's data lands under `.enjambre-data`"
    );
    assert_eq!(
        std::fs::read(&state).unwrap(),
        saved,
        "the state is untouched"
    );

    // The first download still finds its own state, and `seed --data out` finds the second.
    let o = run(&mut get(&first, &out, None), LIMIT);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("already complete"), "{}", stderr(&o));
    let (mut s, port) = seed(&hostile, &out);
    let again = dir.path().join("again");
    let o = run(&mut get(&hostile, &again, Some(port)), LIMIT);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    s.stop();
}

#[test]
fn seed_takes_the_data_or_the_directory_that_contains_it() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let (movie, single) = movie(dir.path(), &src, 300_000, 5);
    // The directory that holds `movie.bin`, as every other client takes it.
    let (mut s, port) = seed(&single, &src);
    let out = dir.path().join("out");
    let o = run(&mut get(&single, &out, Some(port)), LIMIT);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(std::fs::read(out.join("movie.bin")).unwrap() == movie);
    s.stop();

    // A multi-file torrent: `get -o out` leaves `out/set/…`; both `out` and `out/set` seed it.
    let files: [FileData<'_>; 2] = [(&["a"], data(70_000, 6)), (&["sub", "b"], data(90_000, 7))];
    let multi = torrent(&dir.path().join("set.torrent"), "set", &files, true, 16384);
    lay_out(&out.join("set"), &files);
    for data in [out.clone(), out.join("set")] {
        let (mut s, port) = seed(&multi, &data);
        let fresh = tempfile::tempdir().unwrap();
        let o = run(&mut get(&multi, fresh.path(), Some(port)), LIMIT);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}: {}",
            data.display(),
            stderr(&o)
        );
        assert!(std::fs::read(fresh.path().join("set/sub/b")).unwrap() == files[1].1);
        s.stop();
    }

    // Neither: the error names the path expected.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = run(&mut seed_cmd(&single, &empty, free_port()), LIMIT);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let expected = empty.join("movie.bin");
    assert!(
        stderr(&o).contains(&expected.display().to_string()),
        "{}",
        stderr(&o)
    );
    let o = run(&mut seed_cmd(&multi, &empty, free_port()), LIMIT);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&empty.join("set/a").display().to_string()),
        "{}",
        stderr(&o)
    );
}

#[test]
fn files_already_there_are_checked_and_a_longer_one_is_never_shortened() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let (movie, single) = movie(dir.path(), &src, 300_000, 8);

    // Someone else's copy, right for its first 150,000 bytes: nine whole pieces are kept.
    let out = dir.path().join("out");
    let mut theirs = movie.clone();
    theirs[150_000..].fill(0x55);
    lay_out(&out, &[(&["movie.bin"], theirs)]);
    let (mut s, port) = seed(&single, &src);
    let o = run(&mut get(&single, &out, Some(port)), LIMIT);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("9 of 19 pieces (147456 of 300000 bytes) were already present"),
        "{}",
        stderr(&o)
    );
    assert!(std::fs::read(out.join("movie.bin")).unwrap() == movie);
    s.stop();

    // A longer file is left alone unless --overwrite.
    let longer = dir.path().join("longer");
    let mut bigger = movie.clone();
    bigger.extend_from_slice(&[7; 1000]);
    lay_out(&longer, &[(&["movie.bin"], bigger.clone())]);
    let o = run(&mut get(&single, &longer, None), LIMIT);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let named = longer.join("movie.bin").display().to_string();
    assert!(stderr(&o).contains(&named), "{}", stderr(&o));
    assert!(stderr(&o).contains("--overwrite"), "{}", stderr(&o));
    assert!(std::fs::read(longer.join("movie.bin")).unwrap() == bigger);
    let o = run(get(&single, &longer, None).arg("--overwrite"), LIMIT);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("already complete"), "{}", stderr(&o));
    assert!(std::fs::read(longer.join("movie.bin")).unwrap() == movie);
}

/// `cmd` run by `sh` with at most `files` open file descriptors.
fn with_open_file_limit(cmd: &Command, files: u32) -> Command {
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(format!("ulimit -n {files} && exec \"$0\" \"$@\""))
        .arg(cmd.get_program())
        .args(cmd.get_args());
    // The command's environment too (ENJAMBRE_NO_DHT among it: no DHT in tests).
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    sh
}

#[test]
fn five_thousand_files_transfer_with_256_open_files_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<[String; 2]> = (0..5000)
        .map(|i| [format!("d{}", i / 500), format!("f{i}")])
        .collect();
    let paths: Vec<[&str; 2]> = names
        .iter()
        .map(|[a, b]| [a.as_str(), b.as_str()])
        .collect();
    let files: Vec<FileData<'_>> = paths
        .iter()
        .enumerate()
        .map(|(i, p)| (&p[..], data(100 + i % 7, i as u64)))
        .collect();
    let many = torrent(
        &dir.path().join("many.torrent"),
        "many",
        &files,
        true,
        16384,
    );
    let src = dir.path().join("many");
    lay_out(&src, &files);

    let port = free_port();
    let mut s = Background::spawn(&mut with_open_file_limit(&seed_cmd(&many, &src, port), 256));
    wait_listening(port);
    let out = dir.path().join("out");
    let o = run(
        &mut with_open_file_limit(&get(&many, &out, Some(port)), 256),
        Duration::from_secs(120),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = s.stop();
    assert!(!err.contains("error"), "{err}");
    for (path, bytes) in files.iter().step_by(97) {
        let got = std::fs::read(out.join("many").join(path[0]).join(path[1])).unwrap();
        assert!(got == *bytes, "{path:?}");
    }
}

/// Run `cmd` (a `get --json`) until it has verified `pieces` pieces, then stop it; panics if
/// that takes longer than `limit`.
fn get_until_verified(cmd: &mut Command, pieces: usize, limit: Duration) {
    use std::io::BufRead;
    let mut child = Background(Some(
        cmd.arg("--json")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn"),
    ));
    let stdout = child.0.as_mut().unwrap().stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let verified = std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter(|l| l.contains("\"piece_verified\""));
        for (n, _) in verified.enumerate() {
            if tx.send(n + 1).is_err() {
                return;
            }
        }
    });
    let deadline = std::time::Instant::now() + limit;
    let mut seen = 0;
    while seen < pieces {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        seen = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("only {seen} of {pieces} pieces verified in {limit:?}"));
    }
}

#[test]
fn a_seed_with_a_bad_piece_serves_the_others_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    let (movie, single) = movie(dir.path(), &good, 200_000, 9);
    let (_full, full_port) = seed(&single, &good);
    // Piece 9 of 13 is damaged. The partial seed knows the full one, but only serves: it
    // neither asks for piece 9 nor writes into the data it was given.
    let mut damaged = movie.clone();
    damaged[150_000] ^= 0xff;
    let bad = dir.path().join("bad");
    lay_out(&bad, &[(&["movie.bin"], damaged.clone())]);
    let port = free_port();
    let mut partial = Background::spawn(
        seed_cmd(&single, &bad, port).args(["--peer", &format!("127.0.0.1:{full_port}")]),
    );
    wait_listening(port);
    get_until_verified(
        &mut get(&single, &dir.path().join("out"), Some(port)),
        12,
        LIMIT,
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        partial.0.as_mut().unwrap().try_wait().unwrap().is_none(),
        "the partial seed keeps running"
    );
    let err = partial.stop();
    let named = bad.join("movie.bin").display().to_string();
    assert!(
        err.contains(&format!(
            "1 of 13 pieces differ from the torrent (9; in {named}): seeding the other 12"
        )),
        "{err}"
    );
    assert!(std::fs::read(bad.join("movie.bin")).unwrap() == damaged);
}

/// Needs root to mount a read-only tmpfs; skipped otherwise.
#[test]
fn a_seed_on_read_only_media_keeps_its_state_in_the_user_s_state_directory() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    std::fs::create_dir(&media).unwrap();
    let mount = |args: &[&str]| {
        Command::new("mount")
            .args(args)
            .arg(&media)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !mount(&["-t", "tmpfs", "-o", "size=4m", "tmpfs"]) {
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _guard = Unmount(&media);
    let movie = data(100_000, 10);
    lay_out(&media, &[(&["movie.bin"], movie.clone())]);
    assert!(mount(&["-o", "remount,ro"]), "remount read-only");
    let single = torrent(
        &dir.path().join("movie.torrent"),
        "movie.bin",
        &[(&["movie.bin"], movie)],
        false,
        16384,
    );
    let state = dir.path().join("state");
    let port = free_port();
    let mut s = Background::spawn(
        seed_cmd(&single, &media.join("movie.bin"), port).env("XDG_STATE_HOME", &state),
    );
    wait_listening(port);
    let o = run(
        &mut get(&single, &dir.path().join("out"), Some(port)),
        LIMIT,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = s.stop();
    let hash = peer_support::info_hash(&single);
    assert!(
        state
            .join("enjambre")
            .join(format!("{hash}.resume"))
            .is_file(),
        "{err}"
    );
    assert!(!err.contains("Read-only"), "{err}");
}
