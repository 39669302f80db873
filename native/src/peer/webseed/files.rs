//! Where a web seed keeps each byte of the torrent: one URL per file (BEP 19's composition, the
//! core's `write_file_url`), and the file ranges a span of torrent bytes covers. Pad files
//! (BEP 47) have no URL: their bytes are zeros and are never fetched.

use enjambre_core::metainfo::{write_file_url, Metainfo};

/// One file as a web seed serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebFile {
    /// Offset of the file's first byte in the torrent.
    pub start: u64,
    /// Its length.
    pub length: u64,
    /// Its URL; `None` for a pad file.
    pub url: Option<String>,
}

/// The files of one torrent on one web seed.
#[derive(Debug, Clone)]
pub struct WebFiles {
    /// The web seed's URL as the torrent lists it.
    pub base: String,
    files: Vec<WebFile>,
}

/// A run of torrent bytes inside one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// The file's index.
    pub file: usize,
    /// Offset in the file.
    pub offset: u64,
    /// Bytes.
    pub len: u64,
}

impl WebFiles {
    /// The files of `meta` on the web seed `base`; an error when a URL cannot be written.
    pub fn new(meta: &Metainfo<'_>, base: &str) -> Result<Self, String> {
        let multi = meta.is_multi_file();
        let mut files = Vec::with_capacity(meta.file_count());
        for f in meta.files() {
            let url = if f.pad {
                None
            } else {
                let mut out = vec![0u8; 3 * (base.len() + 64 + meta.name.len()) + 3 * 4096];
                let n = write_file_url(base, meta.name, multi, f.path.components(), &mut out)
                    .map_err(|e| format!("web seed {base}: {e}"))?;
                out.truncate(n);
                Some(String::from_utf8(out).map_err(|_| format!("web seed {base}: not UTF-8"))?)
            };
            files.push(WebFile {
                start: f.offset,
                length: f.length,
                url,
            });
        }
        Ok(WebFiles {
            base: base.to_string(),
            files,
        })
    }

    /// The file at `index`.
    pub fn file(&self, index: usize) -> &WebFile {
        &self.files[index]
    }

    /// The first run of the torrent bytes `start..end` that lies in one file (empty files are
    /// skipped); `None` when `start >= end` or past the last file.
    pub fn first_span(&self, start: u64, end: u64) -> Option<Span> {
        if start >= end {
            return None;
        }
        let file = self.files.partition_point(|f| f.start + f.length <= start);
        let f = self.files.get(file)?;
        let len = (f.start + f.length).min(end) - start;
        Some(Span {
            file,
            offset: start - f.start,
            len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(lengths: &[(u64, bool)]) -> WebFiles {
        let mut start = 0;
        let files = lengths
            .iter()
            .enumerate()
            .map(|(i, &(length, pad))| {
                let f = WebFile {
                    start,
                    length,
                    url: (!pad).then(|| format!("http://ws.test/t/{i}")),
                };
                start += length;
                f
            })
            .collect();
        WebFiles {
            base: "http://ws.test/".into(),
            files,
        }
    }

    #[test]
    fn a_piece_spanning_files_becomes_one_span_per_file() {
        let w = files(&[(10, false), (0, false), (5, true), (20, false)]);
        let mut spans = vec![];
        let (mut at, end) = (4, 30);
        while let Some(s) = w.first_span(at, end) {
            spans.push((s.file, s.offset, s.len));
            at += s.len;
        }
        assert_eq!(spans, [(0, 4, 6), (2, 0, 5), (3, 0, 15)]);
        assert_eq!(w.file(2).url, None);
        assert_eq!(w.first_span(35, 40), None);
    }
}
