// A swarm that lives only on opentracker, joined by the page through the tracker's announce
// relay (real headless Chromium): the .torrent names opentracker alone, the worker hands it to
// the tracker (POST /bridge/torrent/<hex>), its announces through /bridge/announce are relayed
// to opentracker, and the enjambre seed opentracker lists is dialled through the bridge. The
// saved file's SHA-256 is the source's. The tracker runs with --bridge-forward-private: every
// address here is loopback.
//
// Run from the repository root after `web/build.sh` and `cargo build --release -p enjambre`:
//   node tests/web/relay.mjs      (ENJAMBRE_BIN overrides target/release/enjambre)

import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync, readFileSync, chmodSync } from 'node:fs';
import { randomBytes, createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, check, freePort, run, until, launch, finish } from './harness.mjs';

const dir = mkdtempSync(join(tmpdir(), 'enjambre-web-relay-'));

async function metric(base, name) {
  const m = await (await fetch(`${base}/metrics`)).text();
  const line = m.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : NaN;
}

async function main() {
  const size = 3 << 20;
  const seedDir = join(dir, 'seed');
  mkdirSync(seedDir);
  const data = join(seedDir, 'web-relay.bin');
  writeFileSync(data, randomBytes(size));
  const sha = createHash('sha256').update(readFileSync(data)).digest('hex');

  // opentracker (Debian's: whitelisted hashes only, runs as nobody, so its files are readable).
  const otPort = await freePort();
  const torrent = join(dir, 'web-relay.torrent');
  execFileSync(BIN, ['create', data, '-o', torrent, '--piece-length', '65536',
    '--tracker', `http://127.0.0.1:${otPort}/announce`]);
  const info = execFileSync(BIN, ['info', '--json', torrent]).toString();
  const hex = JSON.parse(info).info_hash;
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, 'wl'), `${hex}\n`, { mode: 0o644 });
  run('opentracker', ['-i', '127.0.0.1', '-p', `${otPort}`, '-P', `${otPort}`, '-u', 'nobody',
    '-w', join(dir, 'wl')], 'opentracker');
  const scrape = `http://127.0.0.1:${otPort}/scrape?info_hash=${hex.replace(/../g, '%$&')}`;
  await until('opentracker', () => fetch(scrape).then((r) => r.ok, () => false), 10000);

  // The seed announces to opentracker only; our tracker never hears of it.
  run(null, ['seed', torrent, '--data', data, '--listen', '127.0.0.2', '--port', '0', '-q'], 'enjambre seed');
  await until('the seed on opentracker', async () => {
    const body = Buffer.from(await (await fetch(scrape)).arrayBuffer()).toString('latin1');
    return body.includes('completei1e');
  }, 20000);

  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  run(null, ['tracker', '--listen', `127.0.0.1:${port}`, '--bridge-forward-private',
    '--interval', '2', '--min-interval', '1'], 'tracker');
  await until('the tracker', () => fetch(`${base}/swarms`).then((r) => r.ok, () => false), 10000);

  const ctx = await launch(join(dir, 'profile'), { width: 1100, height: 1000 }, { acceptDownloads: true });
  const page = ctx.pages()[0] ?? await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const status = () => page.evaluate(() => {
    const e = document.getElementById('download-status');
    return { state: e.dataset.state, verified: Number(e.dataset.verified ?? 0),
      pieces: Number(e.dataset.pieces ?? 0), error: document.getElementById('error')?.textContent ?? '' };
  });
  const started = Date.now();
  await page.goto(`${base}/`);
  await page.setInputFiles('#torrent-file', torrent);
  const done = await until('the download to finish', async () => {
    const s = await status();
    if (s.state === 'error') throw new Error(`page error: ${s.error}`);
    return s.state === 'complete' && s;
  }, 45000);
  check(done.verified === done.pieces,
    `complete through the relay: ${done.verified} of ${done.pieces} pieces verified in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  await page.screenshot({ path: join(dir, 'complete.png'), fullPage: true });

  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#save')]);
  const got = createHash('sha256').update(readFileSync(await download.path())).digest('hex');
  check(got === sha, `the saved file's SHA-256 is the source's (${got.slice(0, 16)}…)`);

  check(await metric(base, 'enjambre_bridge_forward_torrents_accepted_total') >= 1, 'the worker handed the tracker the .torrent');
  const answered = await metric(base, 'enjambre_bridge_forward_answered_total');
  check(answered >= 1, `opentracker answered ${answered} relayed announces`);
  check(await metric(base, 'enjambre_bridge_accepted_total') >= 1, 'the seed was dialled through the bridge');
  // opentracker lists the page too (at the tracker's address and the port the page announced):
  // the relay leaves that one out, so the bridge never dials its own host.
  const failed = await metric(base, 'enjambre_bridge_connect_failed_total');
  const refused = await metric(base, 'enjambre_bridge_refused_unlisted_total');
  check(failed === 0 && refused === 0, `no dial failed or was refused (${failed}, ${refused})`);
  const swarm = await fetch(`${base}/swarm/${hex}`);
  const peers = swarm.ok ? ((await swarm.json()).peers ?? []).length : 0;
  check(peers === 0, `our tracker's registry holds no peer of this swarm (${peers})`);
  check(errors.length === 0, `no script errors${errors.length ? ': ' + errors.join('; ') : ''}`);
  console.log(`screenshots in ${dir}`);
  await ctx.close();
}

await finish(main);
