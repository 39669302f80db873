//! OPFS storage for the worker: each file is a `FileSystemSyncAccessHandle` (synchronous,
//! worker only) behind the [`File`] trait. Where OPFS is missing, opening fails with
//! [`OPFS_MISSING`]: there is no in-memory fallback.

use crate::prelude::*;
use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    FileSystemDirectoryHandle, FileSystemFileHandle, FileSystemGetFileOptions,
    FileSystemReadWriteOptions, FileSystemSyncAccessHandle, WorkerGlobalScope,
};

use crate::file::{File, IoError};

/// What the page shows when the browser has no OPFS.
pub const OPFS_MISSING: &str = "OPFS is not available in this browser: downloads need it";

/// One OPFS file, open for synchronous access.
pub struct OpfsFile {
    /// The file, for `getFile()` when saving.
    pub handle: FileSystemFileHandle,
    access: Option<FileSystemSyncAccessHandle>,
}

fn err(e: JsValue) -> IoError {
    IoError(describe(&e))
}

/// A JS error as one line of text.
pub fn describe(e: &JsValue) -> String {
    if let Some(e) = e.dyn_ref::<js_sys::Error>() {
        return format!("{}: {}", String::from(e.name()), String::from(e.message()));
    }
    e.as_string().unwrap_or_else(|| format!("{e:?}"))
}

/// The origin's private directory; [`OPFS_MISSING`] when there is none.
pub async fn root() -> Result<FileSystemDirectoryHandle, String> {
    let scope: WorkerGlobalScope = js_sys::global()
        .dyn_into()
        .map_err(|_| OPFS_MISSING.to_string())?;
    let storage = scope.navigator().storage();
    let has = |obj: &JsValue, name: &str| Reflect::has(obj, &name.into()).unwrap_or(false);
    if storage.is_undefined() || !has(&storage, "getDirectory") {
        return Err(OPFS_MISSING.into());
    }
    let dir = JsFuture::from(storage.get_directory())
        .await
        .map_err(|e| format!("{OPFS_MISSING} ({})", describe(&e)))?;
    Ok(dir.unchecked_into())
}

impl OpfsFile {
    /// Open (creating) `name` in `dir` for synchronous access.
    pub async fn open(dir: &FileSystemDirectoryHandle, name: &str) -> Result<OpfsFile, String> {
        let options = FileSystemGetFileOptions::new();
        options.set_create(true);
        let handle: FileSystemFileHandle =
            JsFuture::from(dir.get_file_handle_with_options(name, &options))
                .await
                .map_err(|e| format!("opening {name}: {}", describe(&e)))?
                .unchecked_into();
        let mut file = OpfsFile {
            handle,
            access: None,
        };
        file.attach()
            .await
            .map_err(|e| format!("opening {name}: {}", e.0))?;
        Ok(file)
    }

    /// Take the sync access handle (again).
    pub async fn attach(&mut self) -> Result<(), IoError> {
        if !Reflect::has(&self.handle, &"createSyncAccessHandle".into()).unwrap_or(false) {
            return Err(IoError(OPFS_MISSING.into()));
        }
        let access = JsFuture::from(self.handle.create_sync_access_handle())
            .await
            .map_err(err)?;
        self.access = Some(access.unchecked_into());
        Ok(())
    }

    /// Let go of the sync access handle (so `getFile()` can read the file).
    pub fn detach(&mut self) {
        if let Some(access) = self.access.take() {
            let _ = access.flush();
            access.close();
        }
    }

    fn access(&self) -> Result<&FileSystemSyncAccessHandle, IoError> {
        self.access
            .as_ref()
            .ok_or_else(|| IoError("file is closed".into()))
    }
}

impl Drop for OpfsFile {
    fn drop(&mut self) {
        self.detach();
    }
}

impl File for OpfsFile {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, IoError> {
        let options = FileSystemReadWriteOptions::new();
        options.set_at(offset as f64);
        let n = (self.access()?)
            .read_with_u8_array_and_options(buf, &options)
            .map_err(err)?;
        Ok(n as usize)
    }

    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<(), IoError> {
        let options = FileSystemReadWriteOptions::new();
        options.set_at(offset as f64);
        let n = (self.access()?)
            .write_with_u8_array_and_options(bytes, &options)
            .map_err(err)?;
        if (n as usize) < bytes.len() {
            return Err(IoError(
                "short write: the storage quota may be exceeded".into(),
            ));
        }
        Ok(())
    }

    fn size(&mut self) -> Result<u64, IoError> {
        Ok(self.access()?.get_size().map_err(err)? as u64)
    }

    fn truncate(&mut self, len: u64) -> Result<(), IoError> {
        self.access()?.truncate_with_f64(len as f64).map_err(err)
    }

    fn flush(&mut self) -> Result<(), IoError> {
        self.access()?.flush().map_err(err)
    }
}

/// Copy `bytes` into a new JS array (for `postMessage`).
pub fn to_js(bytes: &[u8]) -> Uint8Array {
    Uint8Array::from(bytes)
}
