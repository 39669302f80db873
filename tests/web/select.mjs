// File selection in the page, in real headless Chromium: a multi-file torrent is opened, all
// files but one are unchecked before any seed exists, and then an enjambre seed joins. The page
// fetches exactly the pieces holding a byte of the chosen file (a piece it shares with a skipped
// file is fetched whole), says it is complete, and saves that one file with the source's
// SHA-256. After a reload the choice is still there; checking a second file downloads what that
// one adds, and unchecking every file is refused with a sentence.
//
// Run from the repository root after `web/build.sh` and `cargo build --release -p enjambre`:
//   node tests/web/select.mjs      (ENJAMBRE_BIN overrides target/release/enjambre)

import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync, readFileSync } from 'node:fs';
import { randomBytes, createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, check, freePort, run, until, launch, finish } from './harness.mjs';

const dir = mkdtempSync(join(tmpdir(), 'enjambre-web-select-'));
const PIECE = 65536;
// Sizes chosen so files share pieces: a ends inside piece 4, b spans 4..20, c starts inside 20.
const FILES = [['a.bin', 300_000], ['b.bin', 1_050_000], ['c.bin', 700_000], ['d.bin', 2_000_000]];

const sha = (buf) => createHash('sha256').update(buf).digest('hex');

/// The pieces holding a byte of the files named in `names`.
function piecesOf(names) {
  const set = new Set();
  let offset = 0;
  for (const [name, size] of FILES) {
    if (names.includes(name)) {
      for (let i = Math.floor(offset / PIECE); i <= Math.floor((offset + size - 1) / PIECE); i++) set.add(i);
    }
    offset += size;
  }
  return set;
}

function pageState(page) {
  return page.evaluate(() => {
    const e = document.getElementById('download-status');
    const verified = [];
    window.enjambre.dl.state?.forEach((v, i) => { if (v) verified.push(i); });
    return { state: e.dataset.state, text: e.textContent, verified,
      boxes: [...document.querySelectorAll('#file-list input')].map((b) => b.checked),
      error: document.getElementById('error').hidden ? '' : document.getElementById('error').textContent,
      hint: document.getElementById('files-hint').textContent };
  });
}

async function complete(page, what) {
  return until(what, async () => {
    const s = await pageState(page);
    if (s.state === 'error') throw new Error(`page error: ${s.error}`);
    return s.state === 'complete' && s;
  }, 60000);
}

/// Click Save; the files the page hands over, by name, with their SHA-256.
async function saveAll(page, expect) {
  const got = {};
  const onDownload = async (d) => { got[d.suggestedFilename()] = sha(readFileSync(await d.path())); };
  page.on('download', onDownload);
  await page.click('#save');
  await until(`${expect} saved files`, () => Object.keys(got).length >= expect, 15000);
  await new Promise((r) => setTimeout(r, 1000)); // anything more would arrive now
  page.off('download', onDownload);
  return got;
}

const setEqual = (a, b) => a.length === b.size && a.every((x) => b.has(x));

async function main() {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const album = join(dir, 'seed', 'album');
  mkdirSync(album, { recursive: true });
  const shas = {};
  for (const [name, size] of FILES) {
    const bytes = randomBytes(size);
    writeFileSync(join(album, name), bytes);
    shas[name] = sha(bytes);
  }
  const torrent = join(dir, 'album.torrent');
  execFileSync(BIN, ['create', album, '-o', torrent, '--piece-length', String(PIECE), '--tracker', `${base}/announce`]);
  run(null, ['tracker', '--listen', `127.0.0.1:${port}`, '--torrent', torrent, '--interval', '2', '--min-interval', '1'],
    'tracker');
  await until('the tracker', () => fetch(`${base}/swarms`).then((r) => r.ok, () => false), 10000);

  const ctx = await launch(join(dir, 'profile'), { width: 1100, height: 1300 }, { acceptDownloads: true });
  let page = ctx.pages()[0] ?? await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${base}/`);
  await page.setInputFiles('#torrent-file', torrent);
  await until('the file list', () => page.evaluate(() => document.querySelectorAll('#file-list input').length === 4));
  let s = await pageState(page);
  check(s.boxes.every(Boolean), `a new torrent lists its ${s.boxes.length} files, all checked`);

  // Only c.bin, chosen while no seed exists yet.
  for (const k of [0, 1, 3]) await page.click(`#file-list input[data-k="${k}"]`);
  const onlyC = piecesOf(['c.bin']);
  const total = Math.ceil(FILES.reduce((a, [, n]) => a + n, 0) / PIECE);
  const countWanted = () => page.evaluate(() => {
    const { dl } = window.enjambre;
    let n = 0;
    for (let i = 0; dl.wanted && i < dl.pieces; i++) n += (dl.wanted[i >> 3] >> (7 - (i & 7))) & 1;
    return n;
  });
  await until('the choice drawn', countWanted);
  const drawn = await countWanted();
  check(drawn === onlyC.size, `the page marks ${drawn} of ${total} pieces as holding c.bin (${onlyC.size})`);

  const seedDir = join(dir, 'seed');
  run(null, ['seed', torrent, '--data', seedDir, '--port', '0', '-q'], 'enjambre seed');
  s = await complete(page, 'c.bin to finish');
  check(setEqual(s.verified, onlyC),
    `complete with exactly the ${onlyC.size} pieces holding c.bin verified (got ${s.verified.length} of ${total})`);
  check(s.text.includes(`hold the selected files`), `the status says so: "${s.text}"`);
  await page.screenshot({ path: join(dir, 'only-c.png'), fullPage: true });
  let saved = await saveAll(page, 1);
  check(Object.keys(saved).length === 1 && saved['c.bin'] === shas['c.bin'],
    `Save hands over c.bin alone, with the source's SHA-256 (${JSON.stringify(Object.keys(saved))})`);

  // Unchecking the last file is refused with a hint; nothing changes.
  await page.click('#file-list input[data-k="2"]');
  s = await pageState(page);
  check(s.hint === 'select at least one file to download' && s.boxes[2] && s.state === 'complete' && !s.error,
    `unchecking every file is refused: "${s.hint}" (boxes ${s.boxes}, ${s.state})`);

  // A reload keeps the choice; checking b.bin adds its pieces and nothing else.
  await page.reload();
  await page.setInputFiles('#torrent-file', torrent);
  await until('the file list again', () => page.evaluate(() => document.querySelectorAll('#file-list input').length === 4));
  s = await complete(page, 'the reopened torrent to be complete');
  check(JSON.stringify(s.boxes) === '[false,false,true,false]', `after a reload only c.bin is checked (${s.boxes})`);
  await page.click('#file-list input[data-k="1"]');
  const bAndC = piecesOf(['b.bin', 'c.bin']);
  s = await until('downloading again', async () => {
    const t = await pageState(page);
    return (t.state === 'downloading' || t.verified.length > onlyC.size) && t;
  }, 10000);
  s = await complete(page, 'b.bin and c.bin to finish');
  check(setEqual(s.verified, bAndC), `then exactly the ${bAndC.size} pieces of b.bin and c.bin (got ${s.verified.length})`);
  await page.screenshot({ path: join(dir, 'b-and-c.png'), fullPage: true });
  saved = await saveAll(page, 2);
  check(Object.keys(saved).length === 2 && saved['b.bin'] === shas['b.bin'] && saved['c.bin'] === shas['c.bin'],
    `Save hands over b.bin and c.bin, each with the source's SHA-256 (${JSON.stringify(Object.keys(saved))})`);

  check(errors.length === 0, `no script errors${errors.length ? ': ' + errors.join('; ') : ''}`);
  console.log(`screenshots in ${dir}`);
  await ctx.close();
}

await finish(main);
