// The browser peer's module worker: loads the wasm build of `enjambre-wasm` and forwards the
// page's commands to it; every message to the page comes from the wasm side (see wasm/README.md).
import init, { BrowserPeer } from '/pkg/enjambre_wasm.js';

const ready = init().then(() => new BrowserPeer((msg) => self.postMessage(msg)));

self.onmessage = async (event) => {
  const msg = event.data || {};
  let peer;
  try {
    peer = await ready;
  } catch (e) {
    self.postMessage({ type: 'error', text: `the browser peer failed to load: ${e}` });
    return;
  }
  switch (msg.cmd) {
    case 'open': await peer.open(new Uint8Array(msg.torrent)); break;
    case 'start': peer.start(); break;
    case 'stop': peer.stop(); break;
    case 'select': peer.select(new Uint8Array(msg.files)); break;
    case 'save': await peer.save(); break;
    default: self.postMessage({ type: 'error', text: `unknown command ${msg.cmd}` });
  }
};
