//! The storage the peer needs from a file: positioned reads and writes, length, flush. OPFS's
//! `FileSystemSyncAccessHandle` provides it in the worker ([`crate::opfs`]); [`MemFile`] stands
//! in for it in host tests. Never buffers: every call reaches the file.

use crate::prelude::*;
/// A storage operation failed; the text says why, for the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoError(pub String);

/// A file read and written at byte offsets, synchronously.
pub trait File {
    /// Read up to `buf.len()` bytes at `offset`; returns how many were read (fewer at the end).
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, IoError>;
    /// Write all of `bytes` at `offset`, growing the file when needed.
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<(), IoError>;
    /// The file's length in bytes.
    fn size(&mut self) -> Result<u64, IoError>;
    /// Cut or extend the file to `len` bytes.
    fn truncate(&mut self, len: u64) -> Result<(), IoError>;
    /// Make what was written durable.
    fn flush(&mut self) -> Result<(), IoError>;

    /// The whole file.
    fn read_all(&mut self) -> Result<Vec<u8>, IoError> {
        let mut buf = vec![0; self.size()? as usize];
        let n = self.read_at(0, &mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }
}

/// A file in memory, for tests: its bytes are public so a test can look and tamper.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemFile {
    /// The file's contents.
    pub bytes: Vec<u8>,
    /// How many times it was flushed.
    pub flushes: usize,
    /// How many times it was written to.
    pub writes: usize,
}

impl File for MemFile {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, IoError> {
        let start = (offset as usize).min(self.bytes.len());
        let n = buf.len().min(self.bytes.len() - start);
        buf[..n].copy_from_slice(&self.bytes[start..start + n]);
        Ok(n)
    }

    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<(), IoError> {
        self.writes += 1;
        let end = offset as usize + bytes.len();
        if self.bytes.len() < end {
            self.bytes.resize(end, 0);
        }
        self.bytes[offset as usize..end].copy_from_slice(bytes);
        Ok(())
    }

    fn size(&mut self) -> Result<u64, IoError> {
        Ok(self.bytes.len() as u64)
    }

    fn truncate(&mut self, len: u64) -> Result<(), IoError> {
        self.bytes.resize(len as usize, 0);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), IoError> {
        self.flushes += 1;
        Ok(())
    }
}
