// The page in real headless Chromium: a tracker with one enjambre seed and a peer that reports
// half the pieces; the page lists the swarm, draws it live (checked by pixel), follows a peer
// joining and leaving, says plainly what is wrong with a bad .torrent, and stays fast at
// 200 peers × 10,000 pieces. Screenshots are left in the printed directory to be looked at.
//
// Run from the repository root after `cargo build --release -p enjambre`:
//   node tests/web/page.mjs        (ENJAMBRE_BIN overrides target/release/enjambre)

import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { randomBytes, createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, check, freePort, run, until, launch, finish } from './harness.mjs';

const dir = mkdtempSync(join(tmpdir(), 'enjambre-web-'));
const shots = join(dir, 'shots');
mkdirSync(shots);

const pct = (buf) => [...buf].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
const b64url = (buf) => Buffer.from(buf).toString('base64url');

async function main() {
  // A 2 MiB file in 32 pieces, its torrent, a tracker that knows it, and a seed.
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const data = join(dir, 'swarm-demo.bin');
  writeFileSync(data, randomBytes(2 << 20));
  const torrent = join(dir, 'swarm-demo.torrent');
  execFileSync(BIN, ['create', data, '-o', torrent, '--piece-length', '65536', '--tracker', `${base}/announce`]);
  const tracker = run(null, ['tracker', '--listen', `127.0.0.1:${port}`, '--torrent', torrent, '--poll-interval', '0'], 'tracker');
  await until('the tracker', async () => (await fetch(`${base}/swarms`).catch(() => null))?.ok);
  run(null, ['seed', torrent, '--data', data, '--port', '0', '-q'], 'seed');
  const swarms = await until('the seed in the swarm list', async () => {
    const j = await (await fetch(`${base}/swarms`)).json();
    return j.swarms.find((s) => s.seeders === 1) && j;
  });
  const ih = swarms.swarms[0].info_hash;
  const ihBytes = Buffer.from(ih, 'hex');
  // A leech that reports the first half of the pieces (bitfield= self-report).
  const half = Buffer.alloc(4);
  half[0] = 0xff; half[1] = 0xff;
  const announce = (port, left, extra) => fetch(`${base}/announce?info_hash=${pct(ihBytes)}` +
    `&peer_id=${pct(createHash('sha1').update(String(port)).digest())}&port=${port}` +
    `&uploaded=0&downloaded=0&left=${left}&compact=1${extra}`);
  await announce(40001, 1 << 20, `&event=started&bitfield=${b64url(half)}`);

  const ctx = await launch(join(dir, 'profile'), { width: 1100, height: 1100 });
  try {
    const page = ctx.pages()[0] ?? (await ctx.newPage());
    const consoleErrors = [];
    page.on('pageerror', (e) => consoleErrors.push(String(e)));

    // The swarm list.
    await page.goto(`${base}/`);
    const row = page.locator(`#swarms-table tr[data-info-hash="${ih}"]`);
    await row.waitFor({ timeout: 10000 });
    const cells = await row.locator('td').allTextContents();
    check(cells[0] === 'swarm-demo.bin' && cells[2] === '1' && cells[3] === '1' && cells[5] === '32',
      `the swarm list shows name, seeds, leeches and pieces: ${JSON.stringify(cells)}`);
    check(await page.locator('#download-status').getAttribute('data-state') === 'idle', 'the download status starts idle');

    // Watch it: the canvas, by pixel.
    await row.getByRole('button', { name: 'Watch' }).click();
    await until('two peers drawn', () => page.evaluate(() => window.enjambre.view.peers.size === 2 && !window.enjambre.view.frame));
    const px = await page.evaluate(() => {
      const v = window.enjambre.view;
      const c = document.getElementById('swarm-canvas');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      const at = (x, y) => Array.from(d.slice((y * c.width + x) * 4, (y * c.width + x) * 4 + 3));
      const rowOf = (match) => v.order.findIndex((a) => match(v.peers.get(a)));
      const seed = rowOf((p) => p.seed);
      const leech = rowOf((p) => !p.seed);
      const a = document.getElementById('avail-canvas');
      const ad = a.getContext('2d').getImageData(0, 0, a.width, 1).data;
      return {
        size: [c.width, c.height],
        seedFirst: at(0, seed), seedLast: at(c.width - 1, seed),
        leechFirst: at(0, leech), leechLast: at(c.width - 1, leech),
        availFirst: Array.from(ad.slice(0, 3)), availLast: Array.from(ad.slice((a.width - 1) * 4, (a.width - 1) * 4 + 3)),
      };
    });
    const near = (a, b) => a.every((v, i) => Math.abs(v - b[i]) <= 3);
    const report = [0x3d, 0x7f, 0xe0];
    const missing = [0x23, 0x28, 0x38];
    check(px.size[0] === 32 && px.size[1] === 2, `one column per piece, one row per peer: ${px.size}`);
    check(near(px.seedFirst, report) && near(px.seedLast, report), `the seed's row is every piece, by report: ${px.seedFirst} ${px.seedLast}`);
    check(near(px.leechFirst, report) && near(px.leechLast, missing), `the leech's row holds the first half: ${px.leechFirst} ${px.leechLast}`);
    check(px.availFirst.join() !== px.availLast.join(), `the availability bar tells common from rare: ${px.availFirst} vs ${px.availLast}`);
    await page.screenshot({ path: join(shots, '1-swarm.png'), fullPage: true });

    // A peer joins, then leaves: live from the feed.
    await announce(40002, 0, '&event=started');
    await until('the joining peer', () => page.evaluate(() => window.enjambre.view.peers.size === 3));
    check((await page.locator('#event-line').textContent()).includes('joined'), 'the event line says a peer joined');
    await announce(40002, 0, '&event=stopped');
    await until('the leaving peer', () => page.evaluate(() => window.enjambre.view.peers.size === 2));
    check((await page.locator('#event-line').textContent()).includes('127.0.0.1:40002 left'), 'the event line says which peer left');
    await page.locator('#swarm details summary').click();
    const tableRows = await until('the table view', async () => {
      const n = await page.locator('#swarm-table tbody tr').count();
      return n === 2 && n;
    }).catch(() => 0);
    check(tableRows === 2, `the table view lists the same peers: ${tableRows}`);

    // A bad .torrent: the error in words, and the status says error.
    await page.setInputFiles('#torrent-file', { name: 'bad.torrent', mimeType: 'application/x-bittorrent', buffer: Buffer.from('this is not bencode') });
    await page.locator('#download-status[data-state="error"]').waitFor({ timeout: 10000 });
    const err = await page.locator('#error').textContent();
    const wasm = (await fetch(`${base}/worker.js`)).ok;
    check(wasm ? /torrent/i.test(err) : /not built/.test(err), `a bad .torrent is named as such: "${err}"`);
    await page.screenshot({ path: join(shots, '2-bad-torrent.png'), fullPage: true });

    // 200 peers × 10,000 pieces, 20 peers changing ten times a second.
    const perf = await page.evaluate(async () => {
      const { view } = window.enjambre;
      const View = view.constructor;
      const grid = document.createElement('canvas');
      const avail = document.createElement('canvas');
      document.body.append(avail, grid);
      const v = new View(grid, avail);
      v.onEvent = () => {};
      const bits = () => {
        const b = new Uint8Array(1250);
        crypto.getRandomValues(b);
        let s = '';
        for (const x of b) s += String.fromCharCode(x);
        return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
      };
      const peer = (i) => ({ addr: `10.0.${i >> 8}.${i & 255}:6881`, have: 'some', bitfield: bits(), source: i % 2 ? 'poll' : 'report', bitfield_age: i });
      const t0 = performance.now();
      v.snapshot({ piece_count: 10000, peers: Array.from({ length: 200 }, (_, i) => peer(i)) });
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      const first = performance.now() - t0;
      const draws = [];
      const frames = [];
      let last = performance.now();
      for (let round = 0; round < 30; round++) {
        for (let k = 0; k < 20; k++) v.peer(peer((round * 20 + k) % 200));
        await new Promise((r) => requestAnimationFrame(r));
        draws.push(v.lastDrawMs);
        await new Promise((r) => setTimeout(r, 100));
        const now = performance.now();
        frames.push(now - last);
        last = now;
      }
      grid.remove();
      avail.remove();
      draws.sort((a, b) => a - b);
      return { first, median: draws[15], worst: draws[29], rounds: frames.reduce((a, b) => a + b) / frames.length };
    });
    console.log(`# 200 × 10,000: first full draw ${perf.first.toFixed(1)} ms; 20 rows changed: median ${perf.median.toFixed(2)} ms, worst ${perf.worst.toFixed(2)} ms; round ${perf.rounds.toFixed(0)} ms`);
    check(perf.median < 8 && perf.worst < 40, 'updates at 200 peers × 10,000 pieces stay well inside a frame');
    check(consoleErrors.length === 0, `no script errors: ${consoleErrors.join('; ')}`);
  } finally {
    await ctx.close();
  }
  console.log(`# screenshots in ${shots}`);
  if (tracker.exitCode !== null) console.log(tracker.log());
}

await finish(main);
