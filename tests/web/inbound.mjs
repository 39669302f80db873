// The browser peer is reachable, in real headless Chromium: the page downloads a torrent from an
// enjambre seed through the bridge while holding a TCP port at the bridge; the tracker lists it
// at that port and its poller polls it there (the swarm API shows the page's bitfield with
// source "poll"); then the seed stops, and a libtorrent leech that knows nothing but the
// tracker downloads the whole file from the page alone, byte-identical.
//
// Run from the repository root after `web/build.sh` and `cargo build --release -p enjambre`:
//   node tests/web/inbound.mjs      (ENJAMBRE_BIN overrides target/release/enjambre;
//                                    ENJAMBRE_PYTHON the python3 that has libtorrent)

import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync, readFileSync, existsSync } from 'node:fs';
import { randomBytes, createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, check, freePort, run, until, launch, finish, sleep } from './harness.mjs';

const dir = mkdtempSync(join(tmpdir(), 'enjambre-web-inbound-'));
const PYTHON = process.env.ENJAMBRE_PYTHON ?? '/usr/bin/python3';

// A libtorrent leech that hears of peers only from the torrent's tracker.
const LEECH = `
import sys, time, libtorrent as lt
torrent, save = sys.argv[1:3]
s = lt.session({'listen_interfaces': '127.0.0.1:0', 'enable_dht': False, 'enable_lsd': False,
                'enable_upnp': False, 'enable_natpmp': False, 'allow_multiple_connections_per_ip': True,
                'alert_mask': 0})
h = s.add_torrent({'ti': lt.torrent_info(torrent), 'save_path': save})
print('ready', s.listen_port(), flush=True)
deadline = time.time() + 40
while time.time() < deadline:
    st = h.status()
    if st.is_seeding:
        print('done', st.total_payload_download, [str(p.ip) for p in h.get_peer_info()], flush=True)
        sys.exit(0)
    time.sleep(0.1)
print('timeout', h.status().progress, flush=True)
sys.exit(1)
`;

async function metrics(base) {
  const text = await (await fetch(`${base}/metrics`)).text();
  const get = (name) => {
    const line = text.split('\n').find((l) => l.startsWith(`enjambre_bridge_${name} `));
    return line ? Number(line.split(' ')[1]) : NaN;
  };
  return get;
}

async function main() {
  const started = Date.now();
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  // The bridge's ports: a few above a free one (ports that cannot be bound are skipped).
  const first = await freePort();
  const ports = `${first}-${Math.min(first + 7, 65535)}`;
  const size = 4 << 20;
  const seedDir = join(dir, 'seed');
  mkdirSync(seedDir);
  const data = join(seedDir, 'web-inbound.bin');
  writeFileSync(data, randomBytes(size));
  const sha = createHash('sha256').update(readFileSync(data)).digest('hex');
  const torrent = join(dir, 'web-inbound.torrent');
  execFileSync(BIN, ['create', data, '-o', torrent, '--piece-length', '65536', '--tracker', `${base}/announce`]);
  run(null, ['tracker', '--listen', `127.0.0.1:${port}`, '--torrent', torrent, '--interval', '2',
    '--min-interval', '1', '--poll-interval', '1', '--poll-grace', '0', '--bridge-ports', ports], 'tracker');
  await until('the tracker', () => fetch(`${base}/swarms`).then((r) => r.ok, () => false), 10000);
  const ih = (await (await fetch(`${base}/swarms`)).json());
  const swarms = Array.isArray(ih) ? ih : ih.swarms ?? [];
  const hex = swarms[0].info_hash;
  // Slow enough that the poller meets the page while it downloads.
  const seed = run(null, ['seed', torrent, '--data', data, '--port', '0', '--max-upload-rate', '1M', '-q'], 'enjambre seed');
  const swarm = async () => (await fetch(`${base}/swarm/${hex}`)).json();
  await until('the seed listed', async () => (await swarm()).peers?.some((p) => p.seed), 20000);

  const ctx = await launch(join(dir, 'profile'), { width: 1100, height: 1300 });
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

  // The page is listed at a bridge port, and the poller learns its pieces there.
  const bridgePort = (p) => {
    const at = Number(String(p.addr).split(':').pop());
    return at >= first && at <= first + 7;
  };
  const polled = await until('the page polled at its bridge port', async () => {
    const s = await status();
    if (s.state === 'error') throw new Error(`page error: ${s.error}`);
    // A partial bitfield: learned by poll mid-download, not claimed by the page's own left=0.
    const p = (await swarm()).peers?.find((x) => bridgePort(x) && x.source === 'poll'
      && x.pieces_have > 0 && x.pieces_have < s.pieces);
    return p && { peer: p, page: s };
  }, 30000);
  const { peer } = polled;
  console.log(`swarm API, the page: ${JSON.stringify(peer)}`);
  check(String(peer.addr).startsWith('127.0.0.1:'), `the tracker lists the page at its bridge address ${peer.addr}`);
  check(peer.source === 'poll' && typeof peer.bitfield === 'string' && peer.pieces_have !== null,
    `its bitfield was learned by poll through the bridge port mid-download (${peer.pieces_have} of ${polled.page.pieces} pieces, have=${peer.have})`);

  const done = await until('the page to finish', async () => {
    const s = await status();
    if (s.state === 'error') throw new Error(`page error: ${s.error}`);
    return s.state === 'complete' && s;
  }, 40000);
  check(done.verified === done.pieces, `the page completed: ${done.verified} of ${done.pieces} pieces`);

  // The original seed goes (its stopped announce takes it out of the swarm).
  seed.kill('SIGTERM');
  await until('the seed gone from the swarm', async () => !(await swarm()).peers?.some((p) => !bridgePort(p)), 15000);
  await sleep(300);
  const before = await metrics(base);
  const sentBefore = before('bytes_to_peers_total');

  // libtorrent, told only the tracker, downloads from the page.
  const save = join(dir, 'leech');
  mkdirSync(save);
  const leech = run(PYTHON, ['-c', LEECH, torrent, save], 'libtorrent leech');
  const code = await new Promise((res) => leech.on('exit', res));
  console.log(`libtorrent: ${leech.log().trim()}`);
  check(code === 0, 'the libtorrent leech finished');
  const got = join(save, 'web-inbound.bin');
  const gotSha = existsSync(got) ? createHash('sha256').update(readFileSync(got)).digest('hex') : '';
  check(gotSha === sha, `its file is byte-identical to the source (SHA-256 ${gotSha.slice(0, 16)}…)`);
  const after = await metrics(base);
  const carried = after('bytes_to_peers_total') - sentBefore;
  check(carried >= size, `the bridge carried ${carried} bytes from the page to TCP peers (file ${size})`);
  check(after('inbound_claimed_total') >= 2 && after('ports_open') === 1,
    `inbound connections claimed by the page: ${after('inbound_claimed_total')} (polls and libtorrent), one port open`);
  const final = (await swarm()).peers.find(bridgePort);
  console.log(`swarm API at the end, the page: source=${final?.source} have=${final?.have} seed=${final?.seed}`);
  check(errors.length === 0, `no script errors${errors.length ? ': ' + errors.join('; ') : ''}`);
  await page.screenshot({ path: join(dir, 'inbound.png'), fullPage: true });
  await ctx.close();
  console.log(`took ${((Date.now() - started) / 1000).toFixed(1)} s; screenshot in ${dir}`);
}

await finish(main);
