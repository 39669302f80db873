// Where the browser peer's worker spends its time: a sampling CPU profile of every dedicated
// worker of the Chromium listening for DevTools on DEVTOOLS_PORT, summed by function (self
// time), printed when the worker goes away or after PROFILE_SECONDS. A tool, not a test.
//
// Attach only the Profiler domain: a client with the Network domain on makes Chromium copy
// every WebSocket frame to it (see bench.mjs). Build the wasm with its names for readable rows
// (web/build.sh with KEEP_NAMES=1), then, in two terminals:
//   DEVTOOLS_PORT=9333 node tests/web/bench.mjs
//   node --experimental-websocket tests/web/profile-worker.mjs      (node 20; 22 needs no flag)
// PROFILE_OUT=PREFIX also writes each profile as PREFIX.<ms>.json (Chromium's cpuprofile format).

const PORT = Number(process.env.DEVTOOLS_PORT ?? 9333);
const SECONDS = Number(process.env.PROFILE_SECONDS ?? 3);
const TOP = Number(process.env.TOP ?? 25);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function browserSocket() {
  for (;;) {
    try {
      const v = await (await fetch(`http://127.0.0.1:${PORT}/json/version`)).json();
      return v.webSocketDebuggerUrl;
    } catch {
      await sleep(100);
    }
  }
}

function summarize(profile, label) {
  const self = new Map();
  const dt = new Map();
  const { nodes, samples, timeDeltas } = profile;
  const byId = new Map(nodes.map((n) => [n.id, n]));
  let total = 0;
  samples.forEach((id, i) => {
    const d = timeDeltas[i] ?? 0;
    dt.set(id, (dt.get(id) ?? 0) + d);
    total += d;
  });
  for (const [id, d] of dt) {
    const f = byId.get(id).callFrame;
    const where = f.url ? ` ${f.url.split('/').pop()}${f.functionName ? '' : `:${f.lineNumber + 1}`}` : '';
    const name = `${f.functionName || '(anonymous)'}${where}`;
    self.set(name, (self.get(name) ?? 0) + d);
  }
  const rows = [...self].sort((a, b) => b[1] - a[1]).slice(0, TOP);
  console.log(`\n${label}: ${(total / 1e6).toFixed(2)} s sampled`);
  for (const [name, d] of rows) {
    console.log(`${(d / 1e3).toFixed(0).padStart(7)} ms ${(d / total * 100).toFixed(1).padStart(5)} %  ${name}`);
  }
}

async function session() {
  const ws = new WebSocket(await browserSocket());
  await new Promise((r) => ws.addEventListener('open', r, { once: true }));
  let next = 1;
  const pending = new Map();
  const send = (method, params = {}, sessionId) => new Promise((resolve, reject) => {
    const id = next++;
    pending.set(id, { resolve, reject });
    ws.send(JSON.stringify({ id, method, params, sessionId }));
  });
  const closed = new Promise((r) => ws.addEventListener('close', r, { once: true }));
  ws.addEventListener('message', async (ev) => {
    const m = JSON.parse(ev.data);
    if (m.id && pending.has(m.id)) {
      const p = pending.get(m.id);
      pending.delete(m.id);
      if (m.error) p.reject(new Error(m.error.message)); else p.resolve(m.result);
      return;
    }
    if (m.method === 'Target.attachedToTarget') {
      const { sessionId, targetInfo } = m.params;
      if (targetInfo.type === 'page') {
        await send('Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: false, flatten: true }, sessionId);
      } else if (targetInfo.type === 'worker') {
        await send('Profiler.enable', {}, sessionId);
        await send('Profiler.setSamplingInterval', { interval: 200 }, sessionId);
        await send('Profiler.start', {}, sessionId);
        await sleep(SECONDS * 1000);
        try {
          const { profile } = await send('Profiler.stop', {}, sessionId);
          summarize(profile, `worker ${targetInfo.url.split('/').pop()}`);
          if (process.env.PROFILE_OUT) {
            const out = `${process.env.PROFILE_OUT}.${Date.now()}.json`;
            (await import('node:fs')).writeFileSync(out, JSON.stringify(profile));
            console.log(`profile written to ${out}`);
          }
        } catch (e) {
          console.log(`worker gone before the profile was taken: ${e.message}`);
        }
      }
    }
  });
  await send('Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: false, flatten: true });
  await closed;
}

for (;;) {
  await session().catch((e) => console.log(`devtools: ${e.message}`));
  await sleep(200);
}
