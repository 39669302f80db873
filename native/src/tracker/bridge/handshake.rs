//! The server side of the WebSocket opening handshake (RFC 6455 §4.2), over a request head the
//! tracker's HTTP loop has already parsed.

use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

fn header<'r>(req: &'r httparse::Request<'_, '_>, name: &str) -> Option<&'r [u8]> {
    req.headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
}

fn has_token(value: Option<&[u8]>, token: &str) -> bool {
    value.is_some_and(|v| {
        v.split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// The `101 Switching Protocols` head for a valid handshake, or the status and text refusing it.
pub fn accept(req: &httparse::Request<'_, '_>) -> Result<String, (&'static str, String)> {
    let bad = |why: &str| ("400 Bad Request", format!("{why}\n"));
    if !has_token(header(req, "upgrade"), "websocket")
        || !has_token(header(req, "connection"), "upgrade")
    {
        return Err(bad(
            "the bridge speaks WebSocket only: expected Upgrade: websocket",
        ));
    }
    if header(req, "sec-websocket-version") != Some(b"13") {
        return Err((
            "426 Upgrade Required\r\nSec-WebSocket-Version: 13",
            "WebSocket version 13 only\n".into(),
        ));
    }
    let key = header(req, "sec-websocket-key")
        .map(|k| k.trim_ascii())
        .filter(|k| !k.is_empty() && k.len() <= 64)
        .ok_or_else(|| bad("missing Sec-WebSocket-Key"))?;
    Ok(format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key)
    ))
}
