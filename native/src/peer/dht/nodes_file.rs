//! The DHT routing table kept across runs: the nodes' addresses, one `IP:PORT` a line, in
//! `$XDG_STATE_HOME/enjambre/dht.nodes` (else `~/.local/state/enjambre/dht.nodes`), read at
//! start to join the DHT without the public routers, rewritten as the table changes.
//!
//! Several processes may share it: each write goes through a temporary file of its own renamed
//! into place, so a reader sees one whole table, never a mix. It never holds anything but
//! addresses.

use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};

/// Addresses kept at most (a full routing table holds a few hundred).
const MAX_NODES: usize = 512;

/// The file holding the saved routing table.
#[derive(Debug, Clone)]
pub struct NodesFile {
    path: PathBuf,
}

impl NodesFile {
    /// The user's file, or `None` when there is no state directory.
    pub fn for_user() -> Option<Self> {
        dirs::state_dir().map(|d| NodesFile {
            path: d.join("enjambre").join("dht.nodes"),
        })
    }

    /// A file at `path`.
    #[cfg(test)]
    pub fn at(path: &Path) -> Self {
        NodesFile {
            path: path.to_path_buf(),
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved nodes; none when the file is missing or unreadable (lines that are no
    /// address are skipped).
    pub fn load(&self) -> Vec<SocketAddrV4> {
        let Ok(text) = std::fs::read_to_string(&self.path) else {
            return Vec::new();
        };
        text.lines()
            .filter_map(|l| l.trim().parse().ok())
            .take(MAX_NODES)
            .collect()
    }

    /// Replace the saved nodes with `nodes` (an empty table is not saved: it would forget
    /// nodes that may still be there next time).
    pub fn save(&self, nodes: &[SocketAddrV4]) -> std::io::Result<()> {
        if nodes.is_empty() {
            return Ok(());
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let mut text = String::new();
        for n in nodes.iter().take(MAX_NODES) {
            text.push_str(&n.to_string());
            text.push('\n');
        }
        let tmp = dir.join(format!(".dht.nodes.{}", std::process::id()));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::NodesFile;

    #[test]
    fn a_saved_table_reads_back_and_an_empty_one_keeps_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let file = NodesFile::at(&dir.path().join("state").join("dht.nodes"));
        assert!(file.load().is_empty(), "no file yet");
        let nodes = [
            "127.0.0.1:6881".parse().unwrap(),
            "127.0.0.2:7000".parse().unwrap(),
        ];
        file.save(&nodes).unwrap();
        file.save(&[]).unwrap();
        assert_eq!(file.load(), nodes);
        std::fs::write(file.path(), "garbage\n127.0.0.3:1\n\n").unwrap();
        assert_eq!(file.load(), ["127.0.0.3:1".parse().unwrap()]);
    }
}
