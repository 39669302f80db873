// The page: the tracker's swarms, one swarm drawn live from its feed, and the page's own
// download run by the worker (web/worker.js, the core in wasm).
//
// It never parses a .torrent nor speaks BitTorrent: the worker does, with the same core as the
// native peer. This file only draws what the tracker's JSON and the worker's messages say.

const $ = (id) => document.getElementById(id);
const fmt = new Intl.NumberFormat('en');
/** `n` things, in words: "1 peer", "2 peers". */
const count = (n, thing) => `${fmt.format(n)} ${thing}${n === 1 ? '' : 's'}`;

// Colours, as [r, g, b]; the same as style.css.
const C = {
  poll: [0x2f, 0xb3, 0x5a],
  report: [0x3d, 0x7f, 0xe0],
  missing: [0x23, 0x28, 0x38],
  unknown: [0x4a, 0x4f, 0x5c],
  rare: [0xd0, 0x40, 0x40],
  verified: '#2fb35a',
  partial: '#e0b43d',
  block: '#ff5da2',
  empty: '#232838',
  skipped: '#171b24', // a piece of no selected file: never downloaded
};
// A bitfield this old (seconds) is drawn at its faintest.
const OLD = 600;

function bytes(n) {
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return `${n.toFixed(i && n < 10 ? 1 : 0)} ${u[i]}`;
}

function b64urlBytes(s) {
  const b = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4));
  const out = new Uint8Array(b.length);
  for (let i = 0; i < b.length; i++) out[i] = b.charCodeAt(i);
  return out;
}

function mix(a, b, t) {
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
}

function hue(text) {
  let h = 0;
  for (const ch of text) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return `hsl(${h % 360} 80% 65%)`;
}

// ---------------------------------------------------------------------------------------------
// Errors and the download status element (automation reads its data attributes).

function showError(text) {
  const e = $('error');
  e.textContent = text;
  e.hidden = false;
  setStatus({ state: 'error' }, 'error (see below)');
}

function clearError() {
  $('error').hidden = true;
  $('error').textContent = '';
}

function setStatus(s, text) {
  const el = $('download-status');
  if (s.state) el.dataset.state = s.state;
  if (s.verified !== undefined) el.dataset.verified = String(s.verified);
  if (s.pieces !== undefined) el.dataset.pieces = String(s.pieces);
  if (s.wasted !== undefined) el.dataset.wasted = String(s.wasted);
  el.textContent = text ?? el.dataset.state;
}

// ---------------------------------------------------------------------------------------------
// The swarm list.

async function loadSwarms() {
  let list;
  try {
    const r = await fetch('/swarms?limit=200');
    if (!r.ok) throw new Error(`${r.status} ${(await r.text()).trim()}`);
    list = await r.json();
  } catch (e) {
    $('swarms-table').tBodies[0].innerHTML = '';
    const row = $('swarms-table').tBodies[0].insertRow();
    row.insertCell().textContent = `cannot read the swarm list: ${e.message}`;
    return;
  }
  const body = document.createElement('tbody');
  for (const s of list.swarms ?? []) {
    const row = body.insertRow();
    row.dataset.infoHash = s.info_hash;
    row.insertCell().textContent = s.name ?? '(name unknown)';
    const h = row.insertCell();
    h.className = 'hash';
    h.textContent = s.info_hash;
    for (const v of [s.seeders, s.leechers, s.completed, s.piece_count ?? '?']) {
      row.insertCell().textContent = String(v ?? 0);
    }
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = 'Watch';
    b.addEventListener('click', () => watch(s.info_hash));
    row.insertCell().append(b);
  }
  if (!body.rows.length) body.insertRow().insertCell().textContent = 'no swarms yet';
  $('swarms-table').replaceChild(body, $('swarms-table').tBodies[0]);
}

// ---------------------------------------------------------------------------------------------
// One swarm, drawn from its live feed: a row per peer, a column per piece (or group), into one
// ImageData of one pixel per cell, scaled by CSS; only the rows that changed are redrawn.

class SwarmView {
  constructor(grid, avail) {
    this.grid = grid;
    this.avail = avail;
    this.peers = new Map(); // addr -> peer
    this.order = []; // addrs, row order
    this.pieces = 0;
    this.cols = 1;
    this.colOf = new Uint32Array(0);
    this.colSize = new Uint32Array(0);
    this.have = new Uint32Array(0); // availability per piece, from the rows
    this.dirty = new Set();
    this.layout = true;
    this.frame = 0;
    this.onChange = () => {};
  }

  snapshot(s) {
    this.name = s.name;
    this.peers.clear();
    this.order = [];
    const range = s.piece_count_range;
    this.setPieces(s.piece_count ?? (range ? range[1] : 0));
    for (const p of s.peers ?? []) this.peer(p, true);
    this.summary = s;
    this.relayout();
  }

  setPieces(n) {
    if (n === this.pieces) return;
    this.pieces = n;
    this.cols = Math.max(1, Math.min(n, 1200));
    this.colOf = new Uint32Array(n);
    this.colSize = new Uint32Array(this.cols);
    for (let i = 0; i < n; i++) {
      const c = Math.floor((i * this.cols) / n);
      this.colOf[i] = c;
      this.colSize[c]++;
    }
    this.have = new Uint32Array(n);
    for (const p of this.peers.values()) this.count(p, 1);
    this.relayout();
  }

  /// Add or remove a peer's pieces to the availability counts.
  count(p, sign) {
    if (p.have === 'all') {
      for (let i = 0; i < this.pieces; i++) this.have[i] += sign;
    } else if (p.bits) {
      const n = Math.min(this.pieces, p.bits.length * 8);
      for (let i = 0; i < n; i++) if ((p.bits[i >> 3] >> (7 - (i & 7))) & 1) this.have[i] += sign;
    }
  }

  peer(j, quiet) {
    const p = {
      addr: j.addr,
      client: j.client ?? '',
      have: j.have ?? 'unknown',
      bits: j.bitfield ? b64urlBytes(j.bitfield) : null,
      source: j.source,
      age: j.bitfield_age ?? 0,
      at: performance.now(),
      seed: !!j.seed,
      count: j.pieces_have,
    };
    if (!this.pieces && p.bits) this.setPieces(p.bits.length * 8);
    const old = this.peers.get(p.addr);
    if (old) {
      this.count(old, -1);
      this.dirty.add(p.addr);
    } else {
      this.order.push(p.addr);
      this.layout = true;
      if (!quiet) this.onEvent(`peer ${p.addr} joined`);
    }
    this.peers.set(p.addr, p);
    this.count(p, 1);
    this.availDirty = true;
    this.schedule();
  }

  leave(addr) {
    const old = this.peers.get(addr);
    if (!old) return;
    this.count(old, -1);
    this.peers.delete(addr);
    this.order = this.order.filter((a) => a !== addr);
    this.onEvent(`peer ${addr} left`);
    this.relayout();
  }

  relayout() {
    this.layout = true;
    this.availDirty = true;
    this.schedule();
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.draw());
  }

  draw() {
    this.frame = 0;
    const t0 = performance.now();
    const rows = Math.max(1, this.order.length);
    if (this.layout || !this.img) {
      this.grid.width = this.cols;
      this.grid.height = rows;
      this.grid.style.height = `${rows * Math.max(2, Math.min(14, Math.floor(420 / rows)))}px`;
      this.ctx = this.grid.getContext('2d');
      this.img = this.ctx.createImageData(this.cols, rows);
      this.order.forEach((addr, r) => this.row(addr, r));
      this.ctx.putImageData(this.img, 0, 0);
      this.layout = false;
    } else {
      for (const addr of this.dirty) {
        const r = this.order.indexOf(addr);
        if (r < 0) continue;
        this.row(addr, r);
        this.ctx.putImageData(this.img, 0, 0, 0, r, this.cols, 1);
      }
    }
    this.dirty.clear();
    if (this.availDirty) this.drawAvail();
    this.lastDrawMs = performance.now() - t0;
    this.onChange();
  }

  /// Paint one peer's row into the ImageData.
  row(addr, r) {
    const p = this.peers.get(addr);
    const d = this.img.data;
    const base = r * this.cols * 4;
    const held = p.source === 'poll' ? C.poll : C.report;
    const age = p.age + (performance.now() - p.at) / 1000;
    const fresh = mix(C.missing, held, Math.max(0.4, 1 - age / OLD));
    const put = (c, rgb) => {
      const o = base + c * 4;
      d[o] = rgb[0]; d[o + 1] = rgb[1]; d[o + 2] = rgb[2]; d[o + 3] = 255;
    };
    if (p.have === 'unknown' || (p.have === 'some' && !p.bits)) {
      for (let c = 0; c < this.cols; c++) put(c, (c >> 2) & 1 ? C.unknown : C.missing);
      return;
    }
    if (p.have === 'all' || p.have === 'none') {
      for (let c = 0; c < this.cols; c++) put(c, p.have === 'all' ? fresh : C.missing);
      return;
    }
    const got = new Uint32Array(this.cols);
    const n = Math.min(this.pieces, p.bits.length * 8);
    for (let i = 0; i < n; i++) if ((p.bits[i >> 3] >> (7 - (i & 7))) & 1) got[this.colOf[i]]++;
    for (let c = 0; c < this.cols; c++) put(c, mix(C.missing, fresh, got[c] / (this.colSize[c] || 1)));
  }

  /// The availability bar: per column the rarest piece's count, darkest red when nobody has it.
  drawAvail() {
    this.availDirty = false;
    const a = this.avail;
    a.width = this.cols;
    a.height = 1;
    const ctx = a.getContext('2d');
    const img = ctx.createImageData(this.cols, 1);
    const min = new Uint32Array(this.cols).fill(0xffffffff);
    let most = 1;
    for (let i = 0; i < this.pieces; i++) {
      const c = this.colOf[i];
      if (this.have[i] < min[c]) min[c] = this.have[i];
      if (this.have[i] > most) most = this.have[i];
    }
    for (let c = 0; c < this.cols; c++) {
      const v = min[c] === 0xffffffff ? 0 : min[c];
      const rgb = v === 0 ? C.rare : mix(C.missing, C.poll, 0.25 + (0.75 * v) / most);
      img.data.set([rgb[0], rgb[1], rgb[2], 255], c * 4);
    }
    ctx.putImageData(img, 0, 0);
  }

  onEvent(text) {
    logEvent(text);
  }
}

const view = new SwarmView($('swarm-canvas'), $('avail-canvas'));
let feed = null;
let watching = null;

function watch(infoHash) {
  if (watching === infoHash) return;
  watching = infoHash;
  feed?.close();
  $('swarm').hidden = false;
  $('swarm-name').textContent = infoHash;
  feed = new EventSource(`/swarm/${infoHash}/events`);
  feed.addEventListener('snapshot', (e) => {
    const s = JSON.parse(e.data);
    view.snapshot(s);
    $('swarm-name').textContent = s.name ?? infoHash;
  });
  feed.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.type === 'peer') view.peer(m.peer);
    else if (m.type === 'leave') view.leave(m.addr);
  };
  feed.onerror = () => { $('swarm-summary').textContent = 'live feed interrupted; reconnecting…'; };
  const u = new URL(location.href);
  u.searchParams.set('watch', infoHash);
  history.replaceState(null, '', u);
}

// Ages move on by themselves: repaint every row now and then.
setInterval(() => { if (view.peers.size) view.relayout(); }, 10000);

let tableDue = false;
view.onChange = () => {
  let seeds = 0;
  for (const p of view.peers.values()) if (p.seed) seeds++;
  $('swarm-summary').textContent =
    `${count(view.peers.size, 'peer')} (${count(seeds, 'seed')}), ${count(view.pieces, 'piece')}`;
  if (!tableDue) {
    tableDue = true;
    setTimeout(fillSwarmTable, 1000);
  }
};

function fillSwarmTable() {
  tableDue = false;
  const body = document.createElement('tbody');
  for (const addr of view.order) {
    const p = view.peers.get(addr);
    const row = body.insertRow();
    const held = p.have === 'all' ? view.pieces : p.count;
    const cells = [p.addr, p.client, held == null ? 'unknown' : `${fmt.format(held)} of ${fmt.format(view.pieces)}`,
      p.have === 'unknown' ? '—' : p.source, p.have === 'unknown' ? '—' : String(Math.round(p.age)), p.seed ? 'yes' : 'no'];
    for (const c of cells) row.insertCell().textContent = c;
  }
  $('swarm-table').replaceChild(body, $('swarm-table').tBodies[0]);
}

// ---------------------------------------------------------------------------------------------
// The event line.

/// Every event line shown (the last thousand), for tests and for anyone reading the console.
const events = [];

function logEvent(text) {
  events.push(text);
  if (events.length > 1000) events.shift();
  $('event-line').textContent = text;
  const li = document.createElement('li');
  li.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  const list = $('events');
  list.prepend(li);
  while (list.children.length > 50) list.lastChild.remove();
}

// ---------------------------------------------------------------------------------------------
// The page's own download, from the worker's messages.

const dl = {
  pieces: 0,
  pieceLength: 0,
  length: 0,
  state: null, // per piece: 1 verified, else undefined
  ranges: new Map(), // piece -> [[start, end], ...] while not verified
  files: [], // a multi-file torrent's files: {path, length, selected}
  wanted: null, // the worker's wanted pieces (a bitfield); null when every piece is wanted
  blocks: new Map(), // peer addr -> {piece, offset, len, at}
  rates: [], // [down, up] per status
  dirty: new Set(),
  frame: 0, // the requested animation frame, if any
  fade: 0, // the one timer that redraws while an arriving block's mark fades
  tableDirty: false, // the pieces in flight changed since the table was filled
};
let worker = null;

function pieceLen(i) {
  return i === dl.pieces - 1 ? dl.length - dl.pieceLength * (dl.pieces - 1) : dl.pieceLength;
}

function stored(i) {
  let n = 0;
  for (const [s, e] of dl.ranges.get(i) ?? []) n += e - s;
  return n;
}

async function openTorrent(buf) {
  clearError();
  const probe = await fetch('/worker.js').catch((e) => ({ ok: false, text: async () => e.message }));
  if (!probe.ok) {
    showError((await probe.text()).trim() || 'the browser peer is not available');
    return;
  }
  if (!worker) {
    worker = new Worker('/worker.js', { type: 'module' });
    worker.onmessage = (e) => onWorker(e.data);
    worker.onerror = (e) => showError(`the browser peer stopped: ${e.message ?? 'worker error'}`);
  }
  worker.postMessage({ cmd: 'open', torrent: buf }, [buf]);
}

function onWorker(m) {
  switch (m.type) {
    case 'opened': {
      clearError();
      Object.assign(dl, { pieces: m.pieces, pieceLength: m.pieceLength, length: m.length, held: m.held });
      dl.state = new Uint8Array(m.pieces);
      dl.ranges.clear();
      dl.tableDirty = true;
      dl.blocks.clear();
      $('download').hidden = false;
      $('dl-name').textContent = `${m.name} (${bytes(m.length)}, ${fmt.format(m.pieces)} pieces)`;
      setStatus({ state: 'idle', verified: m.verified ?? 0, pieces: m.pieces },
        `opened: ${m.verified ?? 0} of ${m.pieces} pieces verified`);
      showFiles(m.files);
      setupPieces();
      watch(m.infoHash);
      worker.postMessage({ cmd: 'start' });
      break;
    }
    case 'status': {
      const narrowed = m.wanted < m.pieces ? ` (${fmt.format(m.wanted)} hold the selected files)` : '';
      setStatus(m, `${m.state}: ${fmt.format(m.verified)} of ${fmt.format(m.pieces)} pieces verified${narrowed}, ` +
        `${count(m.peers, 'peer')}, ↓ ${bytes(m.downRate)}/s ↑ ${bytes(m.upRate)}/s ` +
        `(${bytes(m.downloaded)} down, ${bytes(m.uploaded)} up)`);
      $('save').disabled = m.state !== 'complete';
      dl.rates.push([m.downRate, m.upRate]);
      if (dl.rates.length > 150) dl.rates.shift();
      drawRates();
      break;
    }
    case 'piece':
      if (!dl.state || m.index >= dl.pieces) break;
      if (m.verified) {
        dl.state[m.index] = 1;
        dl.ranges.delete(m.index);
      } else {
        dl.state[m.index] = 0;
        dl.ranges.set(m.index, m.ranges ?? []);
      }
      dl.tableDirty = true;
      markPiece(m.index);
      break;
    case 'wanted':
      dl.wanted = m.pieces;
      for (let i = 0; i < dl.pieces; i++) dl.dirty.add(i);
      scheduleDownload();
      break;
    case 'block':
      dl.blocks.set(m.addr, { piece: m.piece, offset: m.offset, len: m.len, at: performance.now() });
      markPiece(m.piece);
      break;
    case 'peer':
      if (m.state === 'closed') dl.blocks.delete(m.addr);
      logEvent(`peer ${m.addr} ${m.state}${m.reason ? `: ${m.reason}` : ''}`);
      break;
    case 'log':
      logEvent(m.text);
      break;
    case 'file': {
      const a = document.createElement('a');
      a.href = URL.createObjectURL(m.blob);
      a.download = m.name;
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 60000);
      break;
    }
    case 'error':
      showError(m.text);
      break;
  }
}

// The files of a multi-file torrent, each with a box: only the checked ones are downloaded (a
// piece holding a byte of one is fetched whole) and saved. The worker keeps the choice in OPFS,
// so a reload opens the torrent with it.

function showFiles(files) {
  const box = $('files');
  const list = $('file-list');
  list.textContent = '';
  dl.files = files.length > 1 ? files : [];
  box.hidden = dl.files.length === 0;
  dl.files.forEach((f, k) => {
    const li = document.createElement('li');
    const label = document.createElement('label');
    const input = document.createElement('input');
    input.type = 'checkbox';
    input.checked = f.selected;
    input.dataset.k = String(k);
    input.addEventListener('change', () => chooseFiles(input));
    label.append(input, ` ${f.path} `);
    const size = document.createElement('span');
    size.className = 'size';
    size.textContent = bytes(f.length);
    label.append(size);
    li.append(label);
    list.append(li);
  });
  showChoice();
}

function chooseFiles(changed) {
  const boxes = [...$('file-list').querySelectorAll('input')];
  // A hint, not an error: the download goes on with the files still checked.
  $('files-hint').textContent = boxes.some((b) => b.checked) ? '' : 'select at least one file to download';
  if (!boxes.some((b) => b.checked)) {
    changed.checked = true;
    return;
  }
  boxes.forEach((b, k) => { dl.files[k].selected = b.checked; });
  worker.postMessage({ cmd: 'select', files: dl.files.map((f) => (f.selected ? 1 : 0)) });
  showChoice();
}

function showChoice() {
  const chosen = dl.files.filter((f) => f.selected);
  const size = chosen.reduce((a, f) => a + f.length, 0);
  $('files-summary').textContent = `${chosen.length} of ${dl.files.length} selected, ${bytes(size)}`;
}

// Whether piece `i` is one the worker downloads (the pieces of no chosen file are drawn apart).
function wanted(i) {
  return !dl.wanted || (dl.wanted[i >> 3] >> (7 - (i & 7))) & 1;
}

// The pieces grid: a cell per piece, filled in proportion to its stored bytes.
const grid = { cell: 1, cols: 1 };

function setupPieces() {
  const c = $('pieces-canvas');
  const w = c.width;
  const h = c.height;
  grid.cell = Math.max(1, Math.min(24, Math.floor(Math.sqrt((w * h) / Math.max(1, dl.pieces)))));
  grid.cols = Math.max(1, Math.floor(w / grid.cell));
  const ctx = c.getContext('2d');
  ctx.fillStyle = '#171b24';
  ctx.fillRect(0, 0, w, h);
  for (let i = 0; i < dl.pieces; i++) dl.dirty.add(i);
  scheduleDownload();
}

function markPiece(i) {
  dl.dirty.add(i);
  scheduleDownload();
}

function scheduleDownload() {
  if (!dl.frame) dl.frame = requestAnimationFrame(drawDownload);
}

function drawDownload() {
  dl.frame = 0;
  const ctx = $('pieces-canvas').getContext('2d');
  const now = performance.now();
  const arriving = new Set();
  for (const [addr, b] of dl.blocks) {
    if (now - b.at > 1500) dl.blocks.delete(addr);
    else arriving.add(b.piece);
  }
  const { cell, cols } = grid;
  const gap = cell > 3 ? 1 : 0;
  for (const i of dl.dirty) {
    const x = (i % cols) * cell;
    const y = Math.floor(i / cols) * cell;
    const skipped = !wanted(i) && !dl.state[i];
    ctx.fillStyle = skipped ? C.skipped : C.empty;
    ctx.fillRect(x, y, cell - gap, cell - gap);
    if (skipped) {
      ctx.strokeStyle = C.empty;
      ctx.strokeRect(x + 0.5, y + 0.5, cell - gap - 1, cell - gap - 1);
    }
    if (dl.state[i]) {
      ctx.fillStyle = C.verified;
      ctx.fillRect(x, y, cell - gap, cell - gap);
    } else {
      const f = stored(i) / pieceLen(i);
      if (f > 0) {
        ctx.fillStyle = C.partial;
        ctx.fillRect(x, y, Math.max(1, (cell - gap) * f), cell - gap);
      }
      if (arriving.has(i)) {
        ctx.fillStyle = C.block;
        ctx.fillRect(x, y + cell - gap - Math.max(1, cell >> 2), cell - gap, Math.max(1, cell >> 2));
      }
    }
  }
  dl.dirty.clear();
  // Pieces whose "arriving" mark must fade.
  for (const p of arriving) dl.dirty.add(p);
  drawInflight(now);
  // One timer at a time: a timer per frame would start a new chain of redraws with every
  // worker message, until the page redrew at the display's full rate and starved the worker.
  if (dl.blocks.size && !dl.fade) {
    dl.fade = setTimeout(() => {
      dl.fade = 0;
      scheduleDownload();
    }, 250);
  }
  if (dl.tableDirty) fillDownloadTable();
}

// Pieces in flight, each bar one piece to the exact byte; the block arriving now in its peer's colour.
function drawInflight(now) {
  const c = $('inflight-canvas');
  const partial = [...dl.ranges.keys()].sort((a, b) => a - b).slice(0, 16);
  const rowH = 18;
  const h = Math.max(1, partial.length) * rowH;
  if (c.height !== h) {
    c.height = h;
    c.style.height = `${h}px`;
  }
  const ctx = c.getContext('2d');
  ctx.fillStyle = '#171b24';
  ctx.fillRect(0, 0, c.width, h);
  ctx.font = '12px system-ui, sans-serif';
  ctx.textBaseline = 'middle';
  const x0 = 90;
  const x1 = c.width - 170;
  partial.forEach((i, r) => {
    const y = r * rowH;
    const len = pieceLen(i);
    const scale = (x1 - x0) / len;
    ctx.fillStyle = '#8a93a6';
    ctx.fillText(`piece ${i}`, 4, y + rowH / 2);
    ctx.fillStyle = C.empty;
    ctx.fillRect(x0, y + 3, x1 - x0, rowH - 6);
    ctx.fillStyle = C.partial;
    for (const [s, e] of dl.ranges.get(i)) ctx.fillRect(x0 + s * scale, y + 3, Math.max(1, (e - s) * scale), rowH - 6);
    for (const [addr, b] of dl.blocks) {
      if (b.piece !== i || now - b.at > 1500) continue;
      ctx.fillStyle = hue(addr);
      ctx.fillRect(x0 + b.offset * scale, y + 1, Math.max(2, b.len * scale), rowH - 2);
      ctx.fillText(`← ${addr}`, x1 + 6, y + rowH / 2);
    }
  });
}

function fillDownloadTable() {
  dl.tableDirty = false;
  const body = document.createElement('tbody');
  for (const i of [...dl.ranges.keys()].sort((a, b) => a - b).slice(0, 64)) {
    const row = body.insertRow();
    row.insertCell().textContent = String(i);
    row.insertCell().textContent = `${fmt.format(stored(i))} of ${fmt.format(pieceLen(i))}`;
    row.insertCell().textContent = 'no';
  }
  $('download-table').replaceChild(body, $('download-table').tBodies[0]);
}

function drawRates() {
  const c = $('rates-canvas');
  const ctx = c.getContext('2d');
  ctx.fillStyle = '#171b24';
  ctx.fillRect(0, 0, c.width, c.height);
  const top = Math.max(1, ...dl.rates.map(([d, u]) => Math.max(d, u)));
  const step = c.width / 150;
  for (const [k, colour] of [[0, '#2fb35a'], [1, '#3d7fe0']]) {
    ctx.strokeStyle = colour;
    ctx.lineWidth = 2;
    ctx.beginPath();
    dl.rates.forEach((r, i) => {
      const y = c.height - 4 - (r[k] / top) * (c.height - 12);
      if (i) ctx.lineTo(i * step, y); else ctx.moveTo(i * step, y);
    });
    ctx.stroke();
  }
  ctx.fillStyle = '#8a93a6';
  ctx.font = '11px system-ui, sans-serif';
  ctx.fillText(`${bytes(top)}/s`, 4, 11);
}

// ---------------------------------------------------------------------------------------------
// Opening a torrent: picker, drag and drop, ?torrent=<url>; and the controls.

$('torrent-file').addEventListener('change', async (e) => {
  const f = e.target.files[0];
  if (f) openTorrent(await f.arrayBuffer());
});
document.addEventListener('dragover', (e) => {
  e.preventDefault();
  document.body.classList.add('dragging');
});
document.addEventListener('dragleave', () => document.body.classList.remove('dragging'));
document.addEventListener('drop', async (e) => {
  e.preventDefault();
  document.body.classList.remove('dragging');
  const f = e.dataTransfer.files[0];
  if (f) openTorrent(await f.arrayBuffer());
});
$('start').addEventListener('click', () => worker?.postMessage({ cmd: 'start' }));
$('stop').addEventListener('click', () => worker?.postMessage({ cmd: 'stop' }));
$('save').addEventListener('click', () => worker?.postMessage({ cmd: 'save' }));

async function fromUrl(url) {
  try {
    const r = await fetch(url);
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    openTorrent(await r.arrayBuffer());
  } catch (e) {
    showError(`cannot fetch the torrent at ${url}: ${e.message}`);
  }
}

const params = new URLSearchParams(location.search);
if (params.get('torrent')) fromUrl(params.get('torrent'));
if (params.get('watch')) watch(params.get('watch'));
loadSwarms();
setInterval(loadSwarms, 5000);

// For tests and the curious console: the swarm view and the download model.
window.enjambre = { view, dl, watch, events };

// Leaving the page (a reload, a closed tab): the peer closes its connections and saves its state
// at once, so the seeds stop sending bytes that nobody would store.
addEventListener('pagehide', () => worker?.postMessage({ cmd: 'stop' }));
