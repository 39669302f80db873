// The browser peer's figures, in real headless Chromium (a benchmark, not a test: it prints, it
// does not judge). For one torrent of SIZE_MIB (default 256):
//   - the ceiling: raw WebSocket throughput of this browser and this bridge, a worker reading
//     a listed TCP peer that only sends zeros, through the same `/bridge/…` path;
//   - the page's download rate from one enjambre seed, then from one libtorrent seed, each into
//     a fresh profile (nothing in OPFS), timed from opening the torrent to `complete`;
//   - the bridge's CPU seconds per GiB relayed (the tracker process, from /proc), for each
//     download and for the ceiling run;
//   - Chromium's resident memory during the download (all its processes, their peak less what
//     they hold with the page open and idle, measured just before in a profile of its own).
//
// Chromium is started here, not through playwright: a DevTools client with the Network domain
// on (playwright turns it on for every page and worker) gets a copy of every WebSocket frame,
// base64-encoded, and that copying was the limit: the raw WebSocket ceiling measured 43–78 MB/s
// that way and about 300 MB/s without it, and the page's download halved with it. So the
// ceiling page is served by this script (it reports by `fetch`), the page opens the torrent
// from a URL (`/?torrent=URL`, served here with CORS), and its progress is read from the
// tracker's swarm API: timed from the browser peer's first announce to its announce as a seed.
//
// Run from the repository root after `web/build.sh` and `cargo build --release -p enjambre`:
//   node tests/web/bench.mjs          (SIZE_MIB=1024 for the 1 GiB memory figure)
// Each Chromium's log is kept in the printed directory; DEVTOOLS_PORT=N lets a DevTools client
// look at a stuck page (attaching one changes the figures, see above).

import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, openSync, writeSync, closeSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { randomBytes, createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { createServer as httpServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { BIN, check, freePort, run, until, finish, sleep } from './harness.mjs';

const SIZE_MIB = Number(process.env.SIZE_MIB ?? 256);
const size = SIZE_MIB << 20;
const dir = mkdtempSync(join(tmpdir(), 'enjambre-web-bench-'));
const TICK = 100; // clock ticks per second in /proc/<pid>/stat

function cpuSeconds(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / TICK;
}

/// Resident bytes of every Chromium process (the browser, renderers, the GPU and utility ones).
function chromiumRss() {
  let total = 0;
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const exe = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!exe.startsWith('/usr/lib/chromium/chromium')) continue;
      const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
      if (m) total += Number(m[1]) * 1024;
    } catch { /* gone */ }
  }
  return total;
}

async function relayed(base) {
  const m = await (await fetch(`${base}/metrics`)).text();
  const get = (name) => Number(m.split('\n').find((l) => l.startsWith(name))?.split(' ')[1] ?? NaN);
  return get('enjambre_bridge_bytes_to_clients_total') + get('enjambre_bridge_bytes_to_peers_total');
}

const mb = (bytes, secs) => (bytes / secs / 1e6).toFixed(1);

/// A TCP peer that sends zeros as fast as the reader takes them, and its port.
async function blaster() {
  const chunk = Buffer.alloc(1 << 20);
  const server = createServer((s) => {
    s.on('error', () => {});
    const pump = () => { while (s.write(chunk)); };
    s.on('drain', pump);
    pump();
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return server.address().port;
}

/// Tell the tracker that `port` on loopback is in the swarm (so the bridge may dial it).
async function list(base, infoHash, port) {
  const ih = Buffer.from(infoHash, 'hex');
  const q = `info_hash=${[...ih].map((b) => '%' + b.toString(16).padStart(2, '0')).join('')}`
    + `&peer_id=-BL0001-${'x'.repeat(12)}&port=${port}&uploaded=0&downloaded=0&left=0&compact=1&event=started`;
  const r = await fetch(`${base}/announce?${q}`);
  if (!r.ok) throw new Error(`announce: ${r.status}`);
}

/// A local HTTP server answering `routes[path]` (a string, a Buffer, or a function of the body,
/// for POSTs) with CORS allowed; returns its base URL and a closer.
async function serve(routes) {
  const srv = httpServer((req, res) => {
    res.setHeader('access-control-allow-origin', '*');
    const route = routes[req.url.split('?')[0]];
    if (!route) { res.statusCode = 404; res.end(); return; }
    if (typeof route === 'function') {
      let body = '';
      req.on('data', (c) => { body += c; });
      req.on('end', () => { route(body); res.end('ok'); });
      return;
    }
    if (route.type) res.setHeader('content-type', route.type);
    res.end(route.body);
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${srv.address().port}`, close: () => srv.close() };
}

/// Headless Chromium on `url` with a fresh profile, and no DevTools client (see the top).
function chromiumAt(name, url) {
  return spawn('/usr/bin/chromium', ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
    '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--window-size=1100,900', `--user-data-dir=${join(dir, `profile-${name}`)}`, '--enable-logging=stderr', '--log-level=0', ...(process.env.DEVTOOLS_PORT ? [`--remote-debugging-port=${process.env.DEVTOOLS_PORT}`] : []), url],
  { stdio: ['ignore', 'ignore', openSync(join(dir, `chromium-${name}.log`), 'w')] });
}

async function ceiling(base, infoHash, port, seconds) {
  const url = `${base.replace('http', 'ws')}/bridge/${infoHash}/127.0.0.1:${port}`;
  const worker = `onmessage = (e) => {
    const ws = new WebSocket(e.data.url); ws.binaryType = 'arraybuffer';
    let n = 0, t0 = 0;
    ws.onmessage = (m) => { if (!t0) t0 = performance.now(); n += m.data.byteLength;
      if (performance.now() - t0 > e.data.seconds * 1000) { ws.close();
        postMessage({ bytes: n, secs: (performance.now() - t0) / 1000 }); } };
    ws.onclose = (c) => postMessage({ bytes: n, secs: (performance.now() - t0) / 1000, code: c.code });
  };`;
  const page = `<script>const w = new Worker('/worker.js');
    w.onmessage = (m) => fetch('/report', { method: 'POST', body: JSON.stringify(m.data) });
    w.postMessage({ url: ${JSON.stringify(url)}, seconds: ${seconds} });</script>`;
  let got;
  const reported = new Promise((r) => { got = r; });
  const srv = await serve({
    '/': { type: 'text/html', body: page },
    '/worker.js': { type: 'text/javascript', body: worker },
    '/report': (body) => got(JSON.parse(body)),
  });
  const browser = chromiumAt('ceiling', `${srv.url}/`);
  const result = await Promise.race([reported, sleep((seconds + 30) * 1000).then(() => null)]);
  browser.kill();
  srv.close();
  if (!result) throw new Error('the ceiling page did not report');
  return result;
}

/// The peers the tracker lists for `infoHash`.
async function peers(base, infoHash) {
  return (await (await fetch(`${base}/swarm/${infoHash}`)).json()).peers ?? [];
}

async function download(base, torrent, infoHash, name, tracker) {
  const srv = await serve({ '/t.torrent': { type: 'application/x-bittorrent', body: readFileSync(torrent) } });
  const before = new Set((await peers(base, infoHash)).map((p) => p.addr));
  // Chromium's own memory with the page open and idle (no torrent), in a profile of its own.
  const idle = chromiumAt(`${name}-idle`, `${base}/`);
  await sleep(4000);
  const idleRss = chromiumRss();
  idle.kill();
  await sleep(1000);
  const cpu0 = cpuSeconds(tracker.pid);
  const bytes0 = await relayed(base);
  const browser = chromiumAt(name, `${base}/?torrent=${encodeURIComponent(`${srv.url}/t.torrent`)}`);
  let peakRss = idleRss;
  let lastRss = 0;
  let t0 = 0;
  let mine = null;
  await until(`${name}: the download to finish`, async () => {
    if (performance.now() - lastRss > 1000) {
      peakRss = Math.max(peakRss, chromiumRss());
      lastRss = performance.now();
    }
    // The browser peer: the one that was not listed before and first announced as a leech.
    const listed = await peers(base, infoHash);
    if (!mine) {
      mine = listed.find((p) => !before.has(p.addr) && !p.seed)?.addr;
      if (mine) t0 = performance.now();
    }
    return mine && listed.find((p) => p.addr === mine)?.seed;
  }, 600000);
  const secs = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(tracker.pid) - cpu0;
  const bytes = (await relayed(base)) - bytes0;
  browser.kill();
  srv.close();
  await sleep(500);
  return { secs, cpuPerGiB: cpu / (bytes / 2 ** 30), rss: peakRss - idleRss };
}

async function main() {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const seedDir = join(dir, 'seed');
  mkdirSync(seedDir);
  const data = join(seedDir, 'web-bench.bin');
  const fd = openSync(data, 'w');
  for (let i = 0; i < SIZE_MIB; i++) writeSync(fd, randomBytes(1 << 20));
  closeSync(fd);
  const torrent = join(dir, 'web-bench.torrent');
  execFileSync(BIN, ['create', data, '-o', torrent, '--piece-length', '262144', '--tracker', `${base}/announce`]);
  const infoHash = JSON.parse(execFileSync(BIN, ['info', torrent, '--json'])).info_hash;
  // Bridge ports, so the browser peer is listed (its announces carry a port) and its progress can
  // be read from the swarm API.
  const bp = await freePort();
  const tracker = run(null, ['tracker', '--listen', `127.0.0.1:${port}`, '--torrent', torrent, '--interval', '5',
    '--bridge-ports', `${bp}-${bp + 1}`], 'tracker');
  await until('the tracker', () => fetch(`${base}/swarms`).then((r) => r.ok, () => false), 10000);

  const blast = await blaster();
  await list(base, infoHash, blast);
  const ceilCpu0 = cpuSeconds(tracker.pid);
  const ceilBytes0 = await relayed(base);
  const c = await ceiling(base, infoHash, blast, 5);
  c.cpuPerGiB = (cpuSeconds(tracker.pid) - ceilCpu0) / (((await relayed(base)) - ceilBytes0) / 2 ** 30);
  console.log(`ceiling: raw WebSocket through the bridge into a worker: ${mb(c.bytes, c.secs)} MB/s`);

  const results = [];
  const ours = run(null, ['seed', torrent, '--data', data, '--port', '0', '-q'], 'enjambre seed');
  await until('the enjambre seed listed', async () => {
    const s = await (await fetch(`${base}/swarms`)).json();
    // The blaster is listed as a seed too.
    return (Array.isArray(s) ? s : s.swarms ?? []).some((x) => (x.seeders ?? x.seeds ?? 0) >= 2);
  }, 30000);
  results.push(['enjambre seed', await download(base, torrent, infoHash, 'from-enjambre', tracker)]);
  console.log(`from the enjambre seed: ${mb(size, results[0][1].secs)} MB/s`);
  ours.kill('SIGKILL');

  const ltPort = await freePort();
  const lt = run('/usr/bin/python3', [resolve('tests/src/clients/lt_client.py'), 'seed', torrent, seedDir,
    `127.0.0.1:${ltPort}`, '--seconds', '900'], 'libtorrent seed', { stdin: 'pipe' });
  await until('the libtorrent seed ready', () => lt.log().includes('ready'), 30000);
  await sleep(2500); // its first announce replaces the enjambre seed's entry after the interval
  results.push(['libtorrent seed', await download(base, torrent, infoHash, 'from-libtorrent', tracker)]);

  const sha = createHash('sha256').update(readFileSync(data)).digest('hex').slice(0, 16);
  console.log(`\n${SIZE_MIB} MiB (sha256 ${sha}…), headless Chromium (no DevTools client), ${new Date().toISOString()}`);
  console.log('| source | seconds | MB/s | % of ceiling | bridge CPU s/GiB | Chromium RSS growth |');
  console.log('|---|---|---|---|---|---|');
  const ceil = c.bytes / c.secs;
  for (const [name, r] of results) {
    const rate = size / r.secs;
    console.log(`| ${name} | ${r.secs.toFixed(2)} | ${mb(size, r.secs)} | ${(rate / ceil * 100).toFixed(0)} % `
      + `| ${r.cpuPerGiB.toFixed(2)} | ${(r.rss / 2 ** 20).toFixed(0)} MiB |`);
  }
  console.log(`| ceiling (raw WebSocket) | ${c.secs.toFixed(2)} | ${mb(c.bytes, c.secs)} | 100 % `
    + `| ${c.cpuPerGiB.toFixed(2)} | |`);
  // The data and the profiles (their OPFS copies) are hundreds of MiB: only the logs stay.
  for (const name of readdirSync(dir)) {
    if (name === 'seed' || name.startsWith('profile-')) rmSync(join(dir, name), { recursive: true, force: true });
  }
  console.log(`Chromium logs in ${dir}`);
  check(true, 'benchmark ran');
}

await finish(main);
