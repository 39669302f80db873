// Shorten the wasm's import names and the JS glue's keys for them alike (web/build.sh, after
// wasm-opt, before terser): wasm-bindgen names each import `__wbg_<name>_<16 hex digits>` in
// module `./enjambre_wasm_bg.js`, some 110 imports whose hashes gzip cannot shrink. Each becomes
// `a`, `b`, … in module `a`. Fails, changing nothing, when the glue does not read as expected.
//
// Usage: node web/short-imports.mjs <file.wasm> <glue.js>
import { readFileSync, writeFileSync } from 'node:fs';

const [wasmPath, jsPath] = process.argv.slice(2);
const wasm = readFileSync(wasmPath);
let js = readFileSync(jsPath, 'utf8');
const MODULE = './enjambre_wasm_bg.js';

function uleb(buf, at) {
  let value = 0, shift = 0, byte;
  do {
    byte = buf[at++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80);
  return [value, at];
}

function putUleb(value) {
  const out = [];
  do {
    let byte = value % 128;
    value = Math.floor(value / 128);
    if (value) byte |= 0x80;
    out.push(byte);
  } while (value);
  return Buffer.from(out);
}

const name = (s) => Buffer.concat([putUleb(Buffer.byteLength(s)), Buffer.from(s)]);

// `a`, `b`, …, `z`, `A`, …, `Z`, `aa`, `ab`, …: the n-th short key.
function short(n) {
  const letters = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
  let s = '';
  do {
    s = letters[n % 52] + s;
    n = Math.floor(n / 52) - 1;
  } while (n >= 0);
  return s;
}

// The byte length of an import's description at `at` (function, table, memory, global, tag).
function descEnd(buf, at) {
  const kind = buf[at++];
  const limits = (p) => {
    const flags = buf[p++];
    [, p] = uleb(buf, p);
    if (flags & 1) [, p] = uleb(buf, p);
    return p;
  };
  if (kind === 0) return uleb(buf, at)[1];
  if (kind === 1) return limits(at + 1);
  if (kind === 2) return limits(at);
  if (kind === 3) return at + 2;
  if (kind === 4) return uleb(buf, at + 1)[1];
  throw new Error(`import kind ${kind}`);
}

function fail(why) {
  console.error(`web/short-imports.mjs: ${why}; imports left as they were`);
  process.exit(1);
}

let at = 8;
const parts = [wasm.subarray(0, 8)];
while (at < wasm.length) {
  const id = wasm[at];
  const [size, body] = uleb(wasm, at + 1);
  const end = body + size;
  if (id !== 2) {
    parts.push(wasm.subarray(at, end));
    at = end;
    continue;
  }
  let [count, p] = uleb(wasm, body);
  const section = [putUleb(count)];
  for (let i = 0; i < count; i++) {
    let len;
    [len, p] = uleb(wasm, p);
    const module = wasm.toString('utf8', p, p + len);
    p += len;
    [len, p] = uleb(wasm, p);
    const field = wasm.toString('utf8', p, p + len);
    p += len;
    const descAt = p;
    p = descEnd(wasm, p);
    if (module !== MODULE) fail(`an import from ${module}`);
    const key = short(i);
    const pattern = new RegExp(`^(\\s+)${field}: function`, 'm');
    if (!pattern.test(js)) fail(`no ${field} in the glue`);
    js = js.replace(pattern, `$1${key}: function`);
    section.push(name('a'), name(key), wasm.subarray(descAt, p));
  }
  const content = Buffer.concat(section);
  parts.push(Buffer.from([2]), putUleb(content.length), content);
  at = end;
}
const moduleKey = `"${MODULE}": import0`;
if (js.split(moduleKey).length !== 2) fail(`no ${moduleKey} in the glue`);
js = js.replace(moduleKey, 'a: import0');
writeFileSync(wasmPath, Buffer.concat(parts));
writeFileSync(jsPath, js);
