//! Where a torrent's files land under a directory: the top-level name kept off our own state
//! directory, and the refusal of file lists whose paths collide.

use std::borrow::Cow;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::resume_file::STATE_DIR;
use super::storage::FileLayout;

/// Why a torrent's file list cannot be stored.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LayoutError {
    /// Two files of the torrent have the same path: the second would overwrite the first.
    #[error("two files at the same path {}", .0.display())]
    Duplicate(PathBuf),
    /// A path is both a file and the directory of another file.
    #[error("{} is both a file and a directory", .0.display())]
    FileAndDirectory(PathBuf),
}

/// The name a torrent's data takes at the top of a directory: its own name, except that our
/// state directory's name (in any case, for case-insensitive filesystems) gets `-data` added,
/// so no torrent's data can reach another torrent's resume state and journal.
pub fn stored_name(name: &str) -> Cow<'_, str> {
    if name.eq_ignore_ascii_case(STATE_DIR) {
        Cow::Owned(format!("{name}-data"))
    } else {
        Cow::Borrowed(name)
    }
}

/// Refuse a file list in which two files share a path, or a file's path is the directory of
/// another (`a` and `a/b`).
pub fn check_distinct(files: &[FileLayout]) -> Result<(), LayoutError> {
    let mut seen: HashSet<&Path> = HashSet::with_capacity(files.len());
    for f in files {
        if !seen.insert(&f.rel) {
            return Err(LayoutError::Duplicate(f.rel.clone()));
        }
    }
    for f in files {
        let clash = f.rel.ancestors().skip(1).find(|dir| seen.contains(dir));
        if let Some(dir) = clash {
            return Err(LayoutError::FileAndDirectory(dir.to_path_buf()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::storage::safe_relative;

    fn files(paths: &[&[&str]]) -> Vec<FileLayout> {
        paths
            .iter()
            .map(|p| FileLayout {
                rel: safe_relative(p.iter().copied()).unwrap(),
                length: 1,
                pad: false,
            })
            .collect()
    }

    #[test]
    fn a_path_used_twice_or_as_file_and_directory_is_refused() {
        assert_eq!(
            check_distinct(&files(&[&["t", "a"], &["t", "b"], &["t", "a"]])),
            Err(LayoutError::Duplicate(PathBuf::from("t/a")))
        );
        assert_eq!(
            check_distinct(&files(&[&["t", "a", "b"], &["t", "a"]])),
            Err(LayoutError::FileAndDirectory(PathBuf::from("t/a")))
        );
        assert_eq!(
            check_distinct(&files(&[&["t", "a"], &["t", "a", "b", "c"]])),
            Err(LayoutError::FileAndDirectory(PathBuf::from("t/a")))
        );
        // Siblings that only share a prefix of their names are fine.
        assert_eq!(
            check_distinct(&files(&[&["t", "a"], &["t", "ab"], &["t", "b", "a"]])),
            Ok(())
        );
    }

    #[test]
    fn our_state_directory_name_is_never_a_torrent_s_top_level_name() {
        assert_eq!(stored_name(".enjambre"), ".enjambre-data");
        assert_eq!(stored_name(".Enjambre"), ".Enjambre-data");
        assert_eq!(stored_name("enjambre"), "enjambre");
        assert_eq!(stored_name(".enjambre-data"), ".enjambre-data");
    }
}
