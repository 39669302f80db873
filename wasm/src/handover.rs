//! Handing the page's tracker a `.torrent` that names other trackers (`POST
//! /bridge/torrent/<info-hash hex>`, the raw bytes), so that its bridge relays the page's
//! announces to them. The tracker checks the torrent; this only sends it and reports the answer.

use crate::prelude::*;
use js_sys::Uint8Array;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{RequestInit, Response, WorkerGlobalScope};

use crate::opfs;
use crate::torrent::Torrent;

/// Hand `bytes` (the `.torrent` of `torrent`) over when it names trackers other than the page's
/// own; returns the line for the page's log, `None` when there was nothing to hand over.
pub async fn hand_over(torrent: &Torrent, bytes: &[u8]) -> Option<String> {
    let scope: WorkerGlobalScope = js_sys::global().unchecked_into();
    let origin = scope.location().origin();
    if !torrent.names_other_trackers(&origin) {
        return None;
    }
    let url = format!("{origin}/bridge/torrent/{}", torrent.hex());
    Some(match post(&scope, &url, bytes).await {
        Ok((200, _)) => "announces are relayed to the torrent's other trackers".into(),
        Ok((_, why)) => format!("the tracker will not relay announces: {}", why.trim_end()),
        Err(e) => format!("could not hand the torrent to the tracker: {e}"),
    })
}

async fn post(scope: &WorkerGlobalScope, url: &str, bytes: &[u8]) -> Result<(u16, String), String> {
    let init = RequestInit::new();
    init.set_method("POST");
    init.set_body(&JsValue::from(Uint8Array::from(bytes)));
    let resp: Response = JsFuture::from(scope.fetch_with_str_and_init(url, &init))
        .await
        .map_err(|e| opfs::describe(&e))?
        .unchecked_into();
    let text = JsFuture::from(resp.text().map_err(|e| opfs::describe(&e))?)
        .await
        .map_err(|e| opfs::describe(&e))?;
    Ok((resp.status(), text.as_string().unwrap_or_default()))
}
