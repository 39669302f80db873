// The page's own download in real headless Chromium: the wasm peer in its worker joins a swarm
// of an enjambre seed and an aria2 seed through the tracker's bridge, is reloaded in the middle
// (the worker dies with blocks in flight), resumes from OPFS without losing what it stored,
// finishes, and saves a file whose SHA-256 is the source's. Prints the bytes the bridge carried
// to the page against the file size: what the reload cost.
//
// Run from the repository root after `web/build.sh` and `cargo build --release -p enjambre`:
//   node tests/web/download.mjs      (ENJAMBRE_BIN overrides target/release/enjambre)

import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync, readFileSync } from 'node:fs';
import { randomBytes, createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, check, freePort, run, until, launch, finish } from './harness.mjs';

const dir = mkdtempSync(join(tmpdir(), 'enjambre-web-dl-'));

async function bridgeBytes(base) {
  const m = await (await fetch(`${base}/metrics`)).text();
  const line = m.split('\n').find((l) => l.startsWith('enjambre_bridge_bytes_to_clients_total'));
  return line ? Number(line.split(' ')[1]) : NaN;
}

async function main() {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const size = 6 << 20;
  const seedDir = join(dir, 'seed');
  mkdirSync(seedDir);
  const data = join(seedDir, 'web-download.bin');
  writeFileSync(data, randomBytes(size));
  const sha = createHash('sha256').update(readFileSync(data)).digest('hex');
  const torrent = join(dir, 'web-download.torrent');
  execFileSync(BIN, ['create', data, '-o', torrent, '--piece-length', '65536', '--tracker', `${base}/announce`]);
  run(null, ['tracker', '--listen', `127.0.0.1:${port}`, '--torrent', torrent, '--interval', '2', '--min-interval', '1'], 'tracker');
  await until('the tracker', () => fetch(`${base}/swarms`).then((r) => r.ok, () => false), 10000);
  // The tracker serves the wasm web/build.sh just built, not an older one.
  const served = Buffer.from(await (await fetch(`${base}/pkg/enjambre_wasm_bg.wasm`)).arrayBuffer());
  const built = readFileSync('web/pkg/enjambre_wasm_bg.wasm');
  check(served.equals(built), `the served wasm is the one in web/pkg (${built.length} bytes)`);
  // Two seeds of two clients, each slow enough that a reload lands in the middle.
  run(null, ['seed', torrent, '--data', data, '--port', '0', '--max-upload-rate', '1M', '-q'], 'enjambre seed');
  const ariaPort = await freePort();
  run('aria2c', ['-V', '--seed-ratio=0.0', '--bt-seed-unverified=true', `--dir=${seedDir}`,
    `--listen-port=${ariaPort}`, '--enable-dht=false', '--enable-peer-exchange=false',
    '--bt-enable-lpd=false', '--max-overall-upload-limit=1M', '--console-log-level=warn',
    '--summary-interval=0', torrent], 'aria2 seed');
  await until('both seeds listed', async () => {
    const s = await (await fetch(`${base}/swarms`)).json();
    const list = Array.isArray(s) ? s : s.swarms ?? [];
    return list.some((x) => (x.seeders ?? x.seeds ?? 0) >= 2);
  }, 30000);

  const ctx = await launch(join(dir, 'profile'), { width: 1100, height: 1300 }, { acceptDownloads: true });
  const page = ctx.pages()[0] ?? await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const status = () => page.evaluate(() => {
    const e = document.getElementById('download-status');
    return { state: e.dataset.state, verified: Number(e.dataset.verified ?? 0),
      pieces: Number(e.dataset.pieces ?? 0), error: document.getElementById('error')?.textContent ?? '' };
  });

  await page.goto(`${base}/`);
  await page.setInputFiles('#torrent-file', torrent);
  const half = await until('a third of the pieces', async () => {
    const s = await status();
    if (s.state === 'error') throw new Error(`page error: ${s.error}`);
    return s.verified >= 32 && s;
  }, 60000);
  check(half.state === 'downloading', `downloading through the bridge (${half.verified} of ${half.pieces} pieces)`);
  await page.screenshot({ path: join(dir, 'before-reload.png'), fullPage: true });

  // Reload: the worker dies mid-piece. The page reopens the same torrent from OPFS.
  await page.reload();
  await page.setInputFiles('#torrent-file', torrent);
  const reopened = await until('the reopened torrent', async () => {
    const s = await status();
    return s.pieces > 0 && s;
  }, 20000);
  check(reopened.verified >= half.verified,
    `after the reload ${reopened.verified} pieces were already there (≥ ${half.verified} before)`);
  const done = await until('the download to finish', async () => {
    const s = await status();
    if (s.state === 'error') throw new Error(`page error: ${s.error}`);
    return s.state === 'complete' && s;
  }, 90000);
  check(done.verified === done.pieces, `complete: ${done.verified} of ${done.pieces} pieces verified`);
  // Pieces stored before the reload are drawn as held too, not only those fetched after it.
  const drawn = await page.evaluate(() => window.enjambre.dl.state.reduce((a, b) => a + b, 0));
  check(drawn === done.pieces, `the page draws ${drawn} of ${done.pieces} pieces as verified`);
  await page.screenshot({ path: join(dir, 'complete.png'), fullPage: true });

  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#save')]);
  const saved = await download.path();
  const got = createHash('sha256').update(readFileSync(saved)).digest('hex');
  check(got === sha, `the saved file's SHA-256 is the source's (${got.slice(0, 16)}…)`);

  const carried = await bridgeBytes(base);
  console.log(`bridge carried ${carried} bytes to the page for a ${size}-byte file `
    + `(${((carried / size - 1) * 100).toFixed(2)} % over, protocol overhead and the reload included)`);
  check(carried < size * 1.25, 'the reload cost less than a quarter of the file (blocks in flight when the worker died)');
  check(errors.length === 0, `no script errors${errors.length ? ': ' + errors.join('; ') : ''}`);
  console.log(`screenshots in ${dir}`);
  await ctx.close();
}

await finish(main);
