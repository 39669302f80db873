// The page's own download in real headless Chromium: the wasm peer in its worker joins a swarm
// of an enjambre, an aria2 and a libtorrent seed through the tracker's bridge, is reloaded in
// the middle (the worker dies with blocks in flight), resumes from OPFS without losing what it
// stored, finishes, and saves a file whose SHA-256 is the source's; the seeds' own upload
// counters say what the reload cost (at most the block each seed had on the wire). Then a
// second torrent from two enjambre seeds, one killed in the middle of a piece: the piece
// continues from the other at the byte where it stopped.
//
// Run from the repository root after `web/build.sh` and `cargo build --release -p enjambre`:
//   node tests/web/download.mjs      (ENJAMBRE_BIN overrides target/release/enjambre)

import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync, readFileSync } from 'node:fs';
import { randomBytes, createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { BIN, check, freePort, run, until, launch, finish, sleep } from './harness.mjs';

const dir = mkdtempSync(join(tmpdir(), 'enjambre-web-dl-'));

/// The last `uploaded` of an `enjambre seed --json` (its progress line comes once a second).
function enjambreUploaded(seed) {
  const lines = seed.log().split('\n').filter((l) => l.startsWith('{"'));
  const last = lines.map((l) => JSON.parse(l)).filter((j) => j.type === 'progress').pop();
  return last?.uploaded ?? NaN;
}

/// The libtorrent client's all-time payload upload, from its last status line.
function libtorrentUploaded(seed) {
  const last = seed.log().split('\n').filter((l) => l.startsWith('status ')).pop();
  return Number(last?.split(' ')[4] ?? NaN);
}

async function aria2Uploaded(rpcPort) {
  const r = await fetch(`http://127.0.0.1:${rpcPort}/jsonrpc`, {
    method: 'POST',
    body: JSON.stringify({ jsonrpc: '2.0', id: '1', method: 'aria2.tellActive', params: [['uploadLength']] }),
  });
  const j = await r.json();
  return j.result.reduce((a, t) => a + Number(t.uploadLength), 0);
}

function makeTorrent(name, size, pieceLength, base) {
  const seedDir = join(dir, `seed-${name}`);
  mkdirSync(seedDir);
  const data = join(seedDir, `${name}.bin`);
  writeFileSync(data, randomBytes(size));
  const sha = createHash('sha256').update(readFileSync(data)).digest('hex');
  const torrent = join(dir, `${name}.torrent`);
  execFileSync(BIN, ['create', data, '-o', torrent, '--piece-length', String(pieceLength), '--tracker', `${base}/announce`]);
  return { seedDir, data, sha, torrent, size };
}

async function seeders(base, n) {
  await until(`${n} seeds listed`, async () => {
    const s = await (await fetch(`${base}/swarms`)).json();
    const list = Array.isArray(s) ? s : s.swarms ?? [];
    return list.some((x) => (x.seeders ?? x.seeds ?? 0) >= n);
  }, 30000);
}

function watcher(page) {
  return () => page.evaluate(() => {
    const e = document.getElementById('download-status');
    return { state: e.dataset.state, verified: Number(e.dataset.verified ?? 0),
      pieces: Number(e.dataset.pieces ?? 0), wasted: Number(e.dataset.wasted ?? 0),
      error: document.getElementById('error')?.textContent ?? '' };
  });
}

async function complete(status, what) {
  return until(what, async () => {
    const s = await status();
    if (s.state === 'error') throw new Error(`page error: ${s.error}`);
    return s.state === 'complete' && s;
  }, 90000);
}

async function saved(page) {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#save')]);
  return createHash('sha256').update(readFileSync(await download.path())).digest('hex');
}

async function main() {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  // Big enough that a reload lands in the middle; pieces of 64 KiB, blocks of 16 KiB.
  const one = makeTorrent('web-download', 8 << 20, 65536, base);
  // Pieces of 256 KiB at 256 KiB/s per seed: a seed killed is always in the middle of one.
  const two = makeTorrent('web-failover', 3 << 20, 262144, base);
  run(null, ['tracker', '--listen', `127.0.0.1:${port}`, '--torrent', one.torrent, '--torrent', two.torrent,
    '--interval', '2', '--min-interval', '1'], 'tracker');
  await until('the tracker', () => fetch(`${base}/swarms`).then((r) => r.ok, () => false), 10000);
  // The tracker serves the wasm web/build.sh just built, not an older one.
  const served = Buffer.from(await (await fetch(`${base}/pkg/enjambre_wasm_bg.wasm`)).arrayBuffer());
  const built = readFileSync('web/pkg/enjambre_wasm_bg.wasm');
  check(served.equals(built), `the served wasm is the one in web/pkg (${built.length} bytes)`);

  // Three seeds of three clients, each slow enough that a reload lands in the middle.
  const ours = run(null, ['seed', one.torrent, '--data', one.data, '--port', '0', '--max-upload-rate', '512k', '--json'],
    'enjambre seed');
  const ariaPort = await freePort();
  const ariaRpc = await freePort();
  run('aria2c', ['-V', '--seed-ratio=0.0', '--bt-seed-unverified=true', `--dir=${one.seedDir}`,
    `--listen-port=${ariaPort}`, '--enable-dht=false', '--enable-peer-exchange=false',
    '--bt-enable-lpd=false', '--max-overall-upload-limit=512K', '--console-log-level=warn',
    '--summary-interval=0', '--enable-rpc', `--rpc-listen-port=${ariaRpc}`, one.torrent], 'aria2 seed');
  const ltPort = await freePort();
  const lt = run('/usr/bin/python3', [resolve('tests/src/clients/lt_client.py'), 'seed', one.torrent, one.seedDir,
    `127.0.0.1:${ltPort}`, '--upload-limit', String(512 << 10)], 'libtorrent seed', { stdin: 'pipe' });
  await seeders(base, 3);

  const ctx = await launch(join(dir, 'profile'), { width: 1100, height: 1300 }, { acceptDownloads: true });
  let page = ctx.pages()[0] ?? await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  let status = watcher(page);

  await page.goto(`${base}/`);
  await page.setInputFiles('#torrent-file', one.torrent);
  const half = await until('a quarter of the pieces', async () => {
    const s = await status();
    if (s.state === 'error') throw new Error(`page error: ${s.error}`);
    return s.verified >= 32 && s;
  }, 60000);
  check(half.state === 'downloading', `downloading through the bridge (${half.verified} of ${half.pieces} pieces)`);
  await page.screenshot({ path: join(dir, 'before-reload.png'), fullPage: true });

  // Reload: the worker dies mid-piece. Once the seeds have counted what they sent until then,
  // the page reopens the same torrent from OPFS and says how many bytes it holds.
  await page.reload();
  await sleep(2500); // the seeds' counters settle (enjambre's progress line comes once a second)
  const sent = { enjambre: enjambreUploaded(ours), aria2: await aria2Uploaded(ariaRpc), libtorrent: libtorrentUploaded(lt) };
  const before = sent.enjambre + sent.aria2 + sent.libtorrent;
  await page.setInputFiles('#torrent-file', one.torrent);
  const held = await until('the reopened torrent', () => page.evaluate(() => window.enjambre.dl.held), 20000);
  const reopened = await status();
  check(reopened.verified >= half.verified,
    `after the reload ${reopened.verified} pieces were already there (≥ ${half.verified} before)`);
  // What the reload cost, counted by the seeds: payload they sent before it that the page does
  // not hold after it (bytes on the wire when the worker died), which it must fetch again.
  console.log(`before the reload the seeds sent ${JSON.stringify(sent)} = ${before} payload bytes; `
    + `the reopened page holds ${held}`);
  // Each seed may have had one block on the wire when the page closed its connections, and a
  // worker short of CPU still has what Chromium queued for it (a quarter second of the seeds'
  // rate at most). On an idle machine it is 0–2 blocks; before every turn ended with its
  // journal record and leaving stopped the peer, 229–966 KB.
  const seeds = Object.keys(sent).length;
  const bound = seeds * 16384 + Math.round(seeds * (512 << 10) / 4);
  check(before - held <= bound, `the reload cost ${before - held} bytes sent twice `
    + `(at most one 16 KiB block per seed and a quarter second of their rate: ${bound})`);
  const done = await complete(status, 'the download to finish');
  check(done.verified === done.pieces, `complete: ${done.verified} of ${done.pieces} pieces verified`);
  // Pieces stored before the reload are drawn as held too, not only those fetched after it.
  const drawn = await page.evaluate(() => window.enjambre.dl.state.reduce((a, b) => a + b, 0));
  check(drawn === done.pieces, `the page draws ${drawn} of ${done.pieces} pieces as verified`);
  await page.screenshot({ path: join(dir, 'complete.png'), fullPage: true });
  const got = await saved(page);
  check(got === one.sha, `the saved file's SHA-256 is the source's (${got.slice(0, 16)}…)`);

  // A seed killed in the middle of a piece: the piece continues from the other at the exact byte.
  const portA = await freePort();
  const portB = await freePort();
  const a = run(null, ['seed', two.torrent, '--data', two.data, '--port', String(portA), '--max-upload-rate', '256k', '-q'], 'seed A');
  run(null, ['seed', two.torrent, '--data', two.data, '--port', String(portB), '--max-upload-rate', '256k', '-q'], 'seed B');
  await page.close();
  page = await ctx.newPage();
  page.on('pageerror', (e) => errors.push(String(e)));
  status = watcher(page);
  await page.goto(`${base}/`);
  await until('seeds A and B listed', async () => {
    const s = await (await fetch(`${base}/swarms`)).json();
    return (Array.isArray(s) ? s : s.swarms ?? []).some((x) => x.name === 'web-failover.bin' && (x.seeders ?? x.seeds) >= 2);
  }, 30000);
  await page.setInputFiles('#torrent-file', two.torrent);
  const fromA = `127.0.0.1:${portA}`;
  // Killed while its latest block lies in a piece not yet verified: in the middle of a piece.
  await until('seed A in the middle of a piece, after the first piece', () => page.evaluate((addr) => {
    const { dl } = window.enjambre;
    const b = dl.blocks.get(addr);
    return b && dl.state[b.piece] !== 1 && dl.ranges.has(b.piece)
      && Number(document.getElementById('download-status').dataset.verified) >= 1;
  }, fromA), 60000);
  a.kill('SIGKILL');
  const line = await until('the piece seed A left to continue from seed B', () => page.evaluate(
    (addr) => window.enjambre.events.find((t) => t.startsWith(`peer ${addr} left; piece`)), fromA), 30000);
  const at = Number(line.match(/at byte ([\d,]+)/)[1].replaceAll(',', ''));
  check(at > 0 && line.endsWith(`from 127.0.0.1:${portB}`), `seed A killed: "${line}"`);
  const done2 = await complete(status, 'the second download to finish');
  await page.screenshot({ path: join(dir, 'failover.png'), fullPage: true });
  const got2 = await saved(page);
  check(got2 === two.sha, `after the failover the file's SHA-256 is the source's (${done2.verified} pieces)`);

  check(errors.length === 0, `no script errors${errors.length ? ': ' + errors.join('; ') : ''}`);
  console.log(`screenshots in ${dir}`);
  await ctx.close();
}

await finish(main);
