//! `get --only`, `--skip` and `--files`: which of a torrent's files to download. The pieces
//! that follows from are the core's (`enjambre_core::select`).

use enjambre_core::metainfo::{FileEntry, Metainfo};
use enjambre_core::select::glob_match;

use super::Failure;

/// The user's file selection, as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Globs of files to download.
    pub only: Vec<String>,
    /// Globs of files not to download.
    pub skip: Vec<String>,
    /// Index lists (`0,2,5-7`) of files to download.
    pub files: Vec<String>,
}

impl Selection {
    /// Whether the user narrowed anything.
    pub fn is_some(&self) -> bool {
        !(self.only.is_empty() && self.skip.is_empty() && self.files.is_empty())
    }

    /// Return, per file of `meta` (pad files included, never selected), whether to download
    /// it; `None` when nothing was narrowed. A glob matching no file, an index out of range or
    /// a selection of nothing is an error (exit code 2).
    pub fn resolve(&self, meta: &Metainfo<'_>) -> Result<Option<Vec<bool>>, Failure> {
        if !self.is_some() {
            return Ok(None);
        }
        // Globs match the path as `info` shows it (below the torrent's name) or without the name.
        let shown = |f: &FileEntry<'_>| match meta.is_multi_file() {
            true => format!("{}/{}", meta.name, f.path),
            false => f.path.to_string(),
        };
        let paths: Vec<(String, String, bool)> = (meta.files())
            .map(|f| (shown(&f), f.path.to_string(), f.pad))
            .collect();
        let count = paths.len();
        let narrowing = !(self.only.is_empty() && self.files.is_empty());
        let mut chosen = vec![!narrowing; count];
        for list in &self.files {
            for i in parse_indexes(list, count)? {
                chosen[i] = true;
            }
        }
        let matching = |glob: &str, flag: &str| {
            let hits: Vec<usize> = (paths.iter().enumerate())
                .filter(|(_, (full, rel, pad))| {
                    !pad && (glob_match(glob, full) || glob_match(glob, rel))
                })
                .map(|(i, _)| i)
                .collect();
            if hits.is_empty() {
                return Err(Failure::new(
                    2,
                    format!("{flag} {glob:?} matches no file of the torrent (see `enjambre info`)"),
                ));
            }
            Ok(hits)
        };
        for glob in &self.only {
            for i in matching(glob, "--only")? {
                chosen[i] = true;
            }
        }
        for glob in &self.skip {
            for i in matching(glob, "--skip")? {
                chosen[i] = false;
            }
        }
        for (c, (_, _, pad)) in chosen.iter_mut().zip(&paths) {
            *c &= !pad;
        }
        let wanted_bytes: u64 = (meta.files())
            .filter(|f| chosen[f.index])
            .map(|f| f.length)
            .sum();
        if !chosen.iter().any(|&c| c) {
            return Err(Failure::new(2, "the selection leaves no file to download"));
        }
        if wanted_bytes == 0 {
            return Err(Failure::new(
                2,
                "the files selected are all empty: nothing to download",
            ));
        }
        Ok(Some(chosen))
    }
}

/// Parse `0,2,5-7` into indexes below `count`.
fn parse_indexes(list: &str, count: usize) -> Result<Vec<usize>, Failure> {
    let bad = |why: String| Failure::new(2, format!("--files {list:?}: {why}"));
    let number = |s: &str| {
        s.trim()
            .parse::<usize>()
            .map_err(|_| bad(format!("{:?} is not a file index", s.trim())))
    };
    let mut out = Vec::new();
    for part in list.split(',').filter(|p| !p.trim().is_empty()) {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (number(a)?, number(b)?),
            None => (number(part)?, number(part)?),
        };
        if first > last {
            return Err(bad(format!("{first}-{last} is an empty range")));
        }
        if last >= count {
            return Err(bad(format!(
                "index {last} is out of range: the torrent has {count} files (0 to {})",
                count - 1
            )));
        }
        out.extend(first..=last);
    }
    if out.is_empty() {
        return Err(bad("no index given".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::parse_indexes;

    #[test]
    fn index_lists_and_ranges() {
        assert_eq!(parse_indexes("0,2,5-7", 8).unwrap(), [0, 2, 5, 6, 7]);
        assert_eq!(parse_indexes(" 3 ", 4).unwrap(), [3]);
        assert!(parse_indexes("8", 8)
            .unwrap_err()
            .message
            .contains("out of range"));
        assert!(parse_indexes("2-1", 8).is_err());
        assert!(parse_indexes("x", 8).is_err());
        assert!(parse_indexes(",", 8).is_err());
        assert_eq!(parse_indexes("9", 8).unwrap_err().code, 2);
    }
}
