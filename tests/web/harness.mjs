// What the browser tests share: the enjambre binary, child processes killed at the end,
// checks counted, free loopback ports, waiting for a condition, and Chromium launched the way
// the recipe says (Debian's /usr/bin/chromium, never a downloaded browser).

import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { resolve } from 'node:path';
import { chromium } from 'playwright-core';

export const BIN = resolve(process.env.ENJAMBRE_BIN ?? 'target/release/enjambre');
const children = [];
let failures = 0;

/// Print one check's result; failures make the script exit 1.
export function check(ok, what) {
  console.log(`${ok ? 'ok' : 'FAIL'} - ${what}`);
  if (!ok) failures++;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/// A port free for both TCP and UDP on loopback (the tracker serves both on one port).
export async function freePort() {
  for (;;) {
    const port = await new Promise((res) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = s.address().port;
        s.close(() => res(p));
      });
    });
    const udpFree = await new Promise((res) => {
      const u = createSocket('udp4');
      u.once('error', () => res(false));
      u.bind(port, '127.0.0.1', () => u.close(() => res(true)));
    });
    if (udpFree) return port;
  }
}

/// Start `cmd args` (the enjambre binary when `cmd` is null), its output kept for the report.
/// `stdin: 'pipe'` keeps its standard input open (the libtorrent client leaves when it closes).
export function run(cmd, args, name, { stdin = 'ignore' } = {}) {
  const c = spawn(cmd ?? BIN, args, { stdio: [stdin, 'pipe', 'pipe'] });
  let log = '';
  c.stdout.on('data', (d) => { log += d; });
  c.stderr.on('data', (d) => { log += d; });
  c.log = () => log;
  c.name = name;
  children.push(c);
  return c;
}

/// Poll `f` until it returns something truthy, or fail after `ms`.
export async function until(what, f, ms = 15000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/// Headless Chromium with a persistent profile in `profile` (OPFS survives reloads there).
export function launch(profile, viewport, extra = {}) {
  return chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    ...extra,
  });
}

/// Run `main`, print the children's output on failure, kill them, exit 1 on any failure.
export async function finish(main) {
  try {
    await main();
  } catch (e) {
    failures++;
    console.log(`FAIL - ${e.stack ?? e}`);
    for (const c of children) console.log(`--- ${c.name}\n${c.log().slice(-3000)}`);
  } finally {
    for (const c of children) c.kill('SIGKILL');
  }
  process.exit(failures ? 1 : 0);
}
