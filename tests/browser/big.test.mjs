// big.test.mjs — the dashboard on a 262144-feature dictionary (not part of
// CTest's browser_dashboard: it writes ~128 MB and takes minutes; run it
// with `SAEDICT_SERVER=... node --test big.test.mjs`). A random TopK SAE
// (d_in 64, k 16, unit decoder rows, W_enc = W_dec^T) in SAELens layout is
// loaded, the first 40 stories260k documents ingested, and the home,
// dictionary and feature pages opened cold: time to first render and bytes
// transferred printed (MEASURE:), and no API answer may exceed 1 MiB
// (nothing the pages ask for grows with d_sae).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import { measureFeaturePage } from './lib/page.mjs';
import { Saedictd } from './lib/server.mjs';
import { ingestBody, loadStories } from './lib/stories.mjs';

const SERVER = process.env.SAEDICT_SERVER || path.resolve('../../build/server/saedictd');
const STORIES = path.join(process.env.SAEDICT_DATA_DIR || path.resolve('../../../shared/data'), 'stories260k');
const D_SAE = Number(process.env.SAEDICT_BIG_D_SAE || 262144);
const D_IN = 64;

// A deterministic random SAELens TopK folder.
function writeBigSae(dir) {
  fs.mkdirSync(dir, { recursive: true });
  let seed = 12345;
  const rand = () => { seed = (seed * 1103515245 + 12345) >>> 0; return seed / 4294967296; };
  const gauss = () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
  const wDec = new Float32Array(D_SAE * D_IN);
  for (let f = 0; f < D_SAE; f++) {
    let n = 0;
    for (let i = 0; i < D_IN; i++) { const v = gauss(); wDec[f * D_IN + i] = v; n += v * v; }
    n = Math.sqrt(n);
    for (let i = 0; i < D_IN; i++) wDec[f * D_IN + i] /= n;
  }
  const wEnc = new Float32Array(D_IN * D_SAE);
  for (let f = 0; f < D_SAE; f++) for (let i = 0; i < D_IN; i++) wEnc[i * D_SAE + f] = wDec[f * D_IN + i];
  const tensors = [['W_enc', [D_IN, D_SAE], wEnc], ['b_enc', [D_SAE], new Float32Array(D_SAE)],
    ['W_dec', [D_SAE, D_IN], wDec], ['b_dec', [D_IN], new Float32Array(D_IN)]];
  const header = {};
  let off = 0;
  for (const [name, shape, data] of tensors) { header[name] = { dtype: 'F32', shape, data_offsets: [off, off + data.byteLength] }; off += data.byteLength; }
  let h = JSON.stringify(header);
  h += ' '.repeat((8 - (h.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  const fd = fs.openSync(path.join(dir, 'sae_weights.safetensors'), 'w');
  fs.writeSync(fd, len);
  fs.writeSync(fd, h);
  for (const [, , data] of tensors) fs.writeSync(fd, Buffer.from(data.buffer));
  fs.closeSync(fd);
  fs.writeFileSync(path.join(dir, 'cfg.json'), JSON.stringify({ architecture: 'topk', d_in: D_IN, d_sae: D_SAE, dtype: 'float32',
    device: 'cpu', apply_b_dec_to_input: true, normalize_activations: 'none', k: 16,
    metadata: { model_name: 'random-big', hook_name: 'blocks.2.hook_resid_pre' } }));
}

// Cold load of `hash` until the view is done: ms to done, bytes, largest answer.
async function coldLoad(browser, base, hash) {
  const context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
  const page = await context.newPage();
  try {
    await page.goto(`${base}/${hash}`);
    await page.waitForFunction((h) => document.getElementById('view').dataset.route === h, hash, { timeout: 120000 });
    const ready = await page.evaluate(() => performance.now());
    return { ready, ...(await page.evaluate(() => {
      const es = [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')];
      const big = es.reduce((a, e) => (e.transferSize > a.transferSize ? e : a), { transferSize: 0, name: '' });
      return { bytes: es.reduce((a, e) => a + e.transferSize, 0), requests: es.length, largest: big.transferSize,
        largestName: big.name ? new URL(big.name).pathname : '' };
    })) };
  } finally {
    await context.close();
  }
}

describe('dashboard on a big dictionary', { timeout: 1800000 }, () => {
  const env = {};
  before(async () => {
    env.root = fs.mkdtempSync(path.join(os.tmpdir(), 'saedict-big-'));
    let t = Date.now();
    writeBigSae(path.join(env.root, 'big'));
    console.log(`# wrote a ${D_SAE}-feature SAE in ${Date.now() - t} ms`);
    env.server = await Saedictd.start({ binary: SERVER, dictionaryRoot: env.root });
    t = Date.now();
    await env.server.api('LoadDictionary', { id: 'big', path: 'big' });
    console.log(`# LoadDictionary ${Date.now() - t} ms`);
    if (fs.existsSync(path.join(STORIES, 'docs.jsonl'))) {
      const stories = loadStories(STORIES);
      t = Date.now();
      await env.server.api('Ingest', ingestBody(stories, 'big', 'stories', stories.docs.slice(0, 40), 10), { ndjson: true });
      console.log(`# ingested 40 documents in ${Date.now() - t} ms`);
    } else {
      console.log(`SKIPPED: ${STORIES} absent; the big dictionary has no corpus (empty feature pages)`);
    }
    env.browser = await chromium.launch({ executablePath: process.env.SAEDICT_CHROMIUM || '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
  });
  after(async () => {
    if (env.browser) await env.browser.close();
    if (env.server) await env.server.stop();
    fs.rmSync(env.root, { recursive: true, force: true });
  });

  it('home, dictionary and feature pages load without answers that grow with d_sae', async () => {
    const ix = (await env.server.api('GetDictionary', { id: 'big' })).dictionary.index;
    console.log(`# index now: ${ix.state} ${ix.factory} neighbours ${ix.neighboursState}`);
    let f = 0;
    try {
      const df = await env.server.api('DocumentFeatures', { dictionaryId: 'big', corpus: 'stories', docId: '0', n: 1 });
      f = df.features[0].feature;
    } catch (_) { /* no corpus */ }
    for (const hash of ['#/', '#/d/big', `#/d/big/f/${f}`]) {
      const m = await coldLoad(env.browser, env.server.base, hash);
      console.log(`MEASURE: big (d_sae ${D_SAE}) ${hash}: view done ${m.ready.toFixed(0)} ms, ${m.requests} requests, ` +
        `${m.bytes} bytes; largest ${m.largestName} ${m.largest} B`);
      assert.ok(m.largest < 1 << 20, `${hash}: an answer of ${m.largest} bytes`);
    }
    const runs = [];
    for (let i = 0; i < 5; i++) runs.push(await measureFeaturePage(env.browser, env.server.base, `#/d/big/f/${f}`));
    runs.sort((x, y) => x.firstRender - y.firstRender);
    const m = runs[2];
    console.log(`MEASURE: feature page big #${f} (d_sae ${D_SAE}), 5 cold loads: first render median ${m.firstRender.toFixed(0)} ms ` +
      `(min ${runs[0].firstRender.toFixed(0)}, max ${runs[4].firstRender.toFixed(0)}), all sections ${m.complete.toFixed(0)} ms, ` +
      `${m.requests} requests, ${m.bytes} bytes (${m.apiBytes} API; largest ${m.largest})`);
    console.log(`# median run's requests: ${m.timeline.join('; ')}`);
    const ix2 = (await env.server.api('GetDictionary', { id: 'big' })).dictionary.index;
    console.log(`# index at the end: ${ix2.state} neighbours ${ix2.neighboursState} ${ix2.neighboursDone}`);
  });
});
