// dashboard.test.mjs — the dashboard in headless Chromium (playwright-core,
// Debian's /usr/bin/chromium) against a real saedictd started here: every
// page is checked against the JSON API's answer for the same thing
// (histogram bars, shaded examples and their peak tokens, search, neighbour
// and family links, a document and a clicked token, the comparison view,
// keyboard navigation, errors, no horizontal scrolling at 1366×768), a
// screenshot of each page goes to SAEDICT_TEST_OUTPUT_DIR, and the page
// weight and time to first render of a feature page are printed (MEASURE:).
//
// Data: ../shared/data/stories260k (SAEDICT_DATA_DIR/stories260k): topk_l2_a
// and topk_l2_b with the corpus "stories"; without it, the server's --demo
// dictionary (a visible SKIPPED: line says so). SAEDICT_BROWSER_BIG=1 adds
// a 262144-feature dictionary for the measurements (big.mjs).
// Run through run.sh (skips with exit 77 when chromium or node_modules is absent).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import { startDevProxy } from './lib/dev_proxy.mjs';
import { measureFeaturePage, noHorizontalScroll, openView } from './lib/page.mjs';
import { Saedictd } from './lib/server.mjs';
import { setupStories } from './lib/stories.mjs';

const SERVER = process.env.SAEDICT_SERVER || path.resolve('../../build/server/saedictd');
const DATA = process.env.SAEDICT_DATA_DIR || path.resolve('../../../shared/data');
const OUT = process.env.SAEDICT_TEST_OUTPUT_DIR || fs.mkdtempSync(path.join(os.tmpdir(), 'saedict-browser-out-'));
const STORIES = path.join(DATA, 'stories260k');
const HAVE_STORIES = ['docs.jsonl', 'tokens.npy', 'acts_layer2.npy', 'vocab.json', 'topk_l2_a', 'topk_l2_b']
  .every((f) => fs.existsSync(path.join(STORIES, f)));
const WORD = 'quokka';  // a word no real explanation has: the search must find ours

// The same number format as the dashboard (ui.js fmt) for comparing text.
function fmt(x) {
  x = Number(x);
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1e5 || a < 1e-3) return x.toExponential(2);
  return Number(x.toPrecision(4)).toString();
}
const close = (a, b, rel = 1e-5) => Math.abs(a - b) <= rel * Math.max(1, Math.abs(a), Math.abs(b));

describe('dashboard', { timeout: 280000 }, () => {
  const env = {};  // server, browser, page, base, A, B, corpus, F
  let shot = 0;
  const screenshot = async (name) => {
    fs.mkdirSync(OUT, { recursive: true });
    await env.page.screenshot({ path: path.join(OUT, `${String(++shot).padStart(2, '0')}-${name}.png`), fullPage: true });
  };
  const open = (hash) => openView(env.page, env.base, hash);

  before(async () => {
    if (HAVE_STORIES) {
      env.server = await Saedictd.start({ binary: SERVER, dictionaryRoot: STORIES });
      const t0 = Date.now();
      await setupStories(env.server, STORIES);
      env.A = 'topk_l2_a'; env.B = 'topk_l2_b'; env.corpus = 'stories';
      console.log(`# stories260k loaded and ingested into ${env.A} and ${env.B} in ${Date.now() - t0} ms`);
    } else {
      console.log(`SKIPPED: ${STORIES} absent; the page checks run on the server's --demo dictionary instead`);
      env.server = await Saedictd.start({ binary: SERVER, demo: true });
      env.A = 'demo'; env.B = null; env.corpus = 'demo';
    }
    for (const id of [env.A, env.B].filter(Boolean)) await env.server.waitIndexReady(id);
    // The feature under test: the strongest on document 0; give it (and a
    // neighbour) an explanation with WORD in it.
    const df = await env.server.api('DocumentFeatures', { dictionaryId: env.A, corpus: env.corpus, docId: '0', n: 5 });
    env.F = df.features[0].feature;
    const doc = (await env.server.api('GetDocument', { corpus: env.corpus, docId: '0' })).document;
    const tok = (doc.tokenStrings || [])[Number(df.features[0].maxPosition)] || '?';
    await env.server.api('SetExplanation', { dictionaryId: env.A, feature: env.F,
      text: `${WORD} test explanation: fires on ${JSON.stringify(tok)} in story text`, source: 'browser-test', score: 0.5 });
    await env.server.api('SetExplanation', { dictionaryId: env.A, feature: df.features[1].feature,
      text: `another ${WORD} marker for the second feature`, source: 'browser-test' });
    env.browser = await chromium.launch({ executablePath: process.env.SAEDICT_CHROMIUM || '/usr/bin/chromium',
      headless: true, args: ['--no-sandbox'] });
    env.base = env.server.base;
    if (process.env.SAEDICT_DASHBOARD_DIR) {  // dashboard files from disk (lib/dev_proxy.mjs)
      env.proxy = await startDevProxy(process.env.SAEDICT_DASHBOARD_DIR, env.server.base);
      env.base = env.proxy.base;
    }
    env.context = await env.browser.newContext({ viewport: { width: 1366, height: 768 } });
    env.page = await env.context.newPage();
    env.pageErrors = [];
    env.page.on('pageerror', (e) => env.pageErrors.push(String(e)));
    console.log(`# server pid ${env.server.pid} on ${env.server.base}; feature under test ${env.A} #${env.F}; screenshots in ${OUT}`);
  });

  after(async () => {
    if (env.browser) await env.browser.close();
    if (env.proxy) await env.proxy.close();
    if (env.server) await env.server.stop();
  });

  it('home lists the dictionaries with their metrics', async () => {
    await open('#/');
    const { dictionaries } = await env.server.api('ListDictionaries', {});
    const rows = await env.page.$$eval('#dictionaries tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
    assert.equal(rows.length, dictionaries.length);
    for (const d of dictionaries) {
      const r = rows.find((x) => x[0] === d.id);
      assert.ok(r, `row of ${d.id}`);
      assert.equal(r[3], Number(d.dIn).toLocaleString('en-US'));
      assert.equal(r[4], Number(d.dSae).toLocaleString('en-US'));
      assert.match(r[7], /ready/);
    }
    await noHorizontalScroll(env.page);
    await screenshot('home');
  });

  it('dictionary page: info, paged ids, paged families, jump box', async () => {
    await open(`#/d/${env.A}`);
    const info = (await env.server.api('GetDictionary', { id: env.A })).dictionary;
    const text = await env.page.textContent('#dict-info');
    assert.ok(text.includes(Number(info.dSae).toLocaleString('en-US')), 'd_sae shown');
    const ids = () => env.page.$$eval('#feature-ids .id-grid a', (as) => as.map((a) => Number(a.textContent)));
    assert.deepEqual(await ids(), [...Array(Math.min(100, Number(info.dSae))).keys()]);
    if (Number(info.dSae) > 100) {
      await env.page.click('#feature-ids .pager .next');
      assert.equal((await ids())[0], 100);
      await env.page.click('#feature-ids .pager .prev');
    }
    await env.page.waitForSelector('#families:not([data-state=loading])');
    const fam = await env.server.api('ListFamilies', { dictionaryId: env.A, pageSize: 20 });
    const roots = await env.page.$$eval('#families table.families tbody tr td:first-child a', (as) => as.map((a) => Number(a.dataset.feature)));
    assert.deepEqual(roots, (fam.families || []).map((f) => f.root));
    if (fam.nextPageToken) {
      const fam2 = await env.server.api('ListFamilies', { dictionaryId: env.A, pageSize: 20, pageToken: fam.nextPageToken });
      await env.page.click('#families .pager .next');
      await env.page.waitForFunction((r) => document.querySelector('#families td a')?.dataset.feature === String(r),
        fam2.families[0].root);
      await env.page.click('#families .pager .prev');
      await env.page.waitForFunction((r) => document.querySelector('#families td a')?.dataset.feature === String(r),
        fam.families[0].root);
    }
    console.log(`# ${env.A}: ${fam.totalFamilies} families`);
    await noHorizontalScroll(env.page);
    await screenshot('dictionary');
    await env.page.fill('#jump-input', '42');
    await env.page.press('#jump-input', 'Enter');
    await env.page.waitForFunction((h) => document.getElementById('view').dataset.route === h, `#/d/${env.A}/f/42`);
  });

  it('feature page: statistics and histogram match GetFeature', async () => {
    const r = await env.server.api('GetFeature', { dictionaryId: env.A, feature: env.F, topN: 10, contextWindow: 8, neighbours: 10, skipFamily: true });
    await open(`#/d/${env.A}/f/${env.F}`);
    const bars = await env.page.$$eval('#histogram rect.bar', (rs) => rs.map((b) => ({
      lower: Number(b.dataset.lower), upper: Number(b.dataset.upper), count: Number(b.dataset.count),
      height: Number(b.getAttribute('height')), title: b.querySelector('title').textContent })));
    const bins = r.stats.histogram;
    assert.ok(bins.length > 0, 'the feature has a histogram');
    assert.equal(bars.length, bins.length, 'one bar per bin');
    const maxCount = Math.max(...bins.map((b) => Number(b.count)));
    const maxH = Math.max(...bars.map((b) => b.height));
    bins.forEach((b, i) => {
      assert.equal(bars[i].lower, b.lower);
      assert.equal(bars[i].upper, b.upper);
      assert.equal(bars[i].count, Number(b.count));
      assert.ok(Math.abs(bars[i].height / maxH - Number(b.count) / maxCount) < 0.01, `bar ${i} height`);
      assert.ok(bars[i].title.endsWith(`: ${Number(b.count).toLocaleString('en-US')}`), bars[i].title);
    });
    const stats = await env.page.textContent('#stats .facts');
    assert.ok(stats.includes(Number(r.stats.count).toLocaleString('en-US')), 'active count shown');
    assert.ok(stats.includes(fmt(r.stats.max)), `max ${fmt(r.stats.max)} shown`);
    assert.ok(stats.includes(fmt(r.stats.mean)), 'mean shown');
    const expl = await env.page.textContent('#explanations');
    assert.ok(expl.includes(`${WORD} test explanation`), 'explanation shown');
  });

  it('feature page: examples shaded by activation with the peak token marked', async () => {
    const r = await env.server.api('GetFeature', { dictionaryId: env.A, feature: env.F, topN: 10, contextWindow: 8, neighbours: 10, skipFamily: true });
    const shown = await env.page.$$eval('#top-examples-list > li', (lis) => lis.map((li) => ({
      value: Number(li.dataset.value), doc: li.dataset.doc, position: Number(li.dataset.position),
      tokens: [...li.querySelectorAll('.tok')].map((t) => ({ text: t.textContent, value: Number(t.dataset.value),
        peak: t.classList.contains('peak'), title: t.title, bg: getComputedStyle(t).backgroundColor })) })));
    assert.equal(shown.length, r.topExamples.length);
    r.topExamples.forEach((ex, i) => {
      const s = shown[i];
      assert.equal(s.value, ex.value);
      assert.equal(s.doc, String(ex.docId));
      assert.equal(s.position, Number(ex.position));
      assert.equal(s.tokens.length, ex.context.length);
      const peaks = s.tokens.filter((t) => t.peak);
      assert.equal(peaks.length, 1, 'one peak token');
      assert.equal(s.tokens.indexOf(peaks[0]), ex.peakIndex);
      assert.equal(peaks[0].value, ex.value);
      ex.context.forEach((c, j) => {
        const t = s.tokens[j];
        assert.equal(t.value, c.value);
        const m = t.title.match(/value (\S+)/);
        assert.ok(m && close(Number(m[1]), c.value), `title ${t.title} vs ${c.value}`);
        const shaded = t.bg !== 'rgba(0, 0, 0, 0)' && t.bg !== 'transparent';
        assert.equal(shaded, c.value > 0, `token ${j} of example ${i} shaded iff active (${t.bg})`);
      });
    });
    // The strongest example's peak is the darkest shade (value == max).
    if (r.topExamples[0].value === r.stats.max) {
      assert.equal(shown[0].tokens[r.topExamples[0].peakIndex].bg, 'rgb(153, 52, 4)');
    }
    await env.page.waitForSelector('#quantile-examples:not([data-state=loading])');
    const ta = await env.server.api('TopActivations', { dictionaryId: env.A, feature: env.F, n: 1, quantileBins: 5, perBin: 3 });
    assert.equal(await env.page.locator('#quantile-examples .quantile').count(), (ta.bins || []).length);
    const qv = await env.page.$$eval('#quantile-examples li.example', (lis) => lis.map((li) => Number(li.dataset.value)));
    assert.deepEqual(qv, (ta.bins || []).flatMap((b) => (b.examples || []).map((e) => e.value)));
    for (const sel of ['#other-dictionaries', '#family']) await env.page.waitForSelector(`${sel}:not([data-state=loading])`);
    assert.equal(await env.page.locator('#view .error').count(), 0, 'no error on the feature page');
    await noHorizontalScroll(env.page);
    await screenshot('feature');
  });

  it('search by explanation finds the feature and its link opens it', async () => {
    await open('#/');
    await env.page.fill('#search-input', WORD);
    await env.page.press('#search-input', 'Enter');
    await env.page.waitForFunction((h) => document.getElementById('view').dataset.route === h, `#/search?q=${WORD}`);
    const api = await env.server.api('SearchExplanations', { query: WORD, topN: 50 });
    const hits = await env.page.$$eval('#explanation-results .hit', (hs) => hs.map((h) => ({
      dict: h.dataset.dict, feature: Number(h.dataset.feature), marks: [...h.querySelectorAll('mark')].map((m) => m.textContent) })));
    assert.deepEqual(hits.map((h) => [h.dict, h.feature]), api.hits.map((h) => [h.explanation.dictionaryId, h.explanation.feature]));
    const ours = hits.find((h) => h.dict === env.A && h.feature === env.F);
    assert.ok(ours, 'the feature is found');
    assert.deepEqual(ours.marks, [WORD]);
    await noHorizontalScroll(env.page);
    await screenshot('search');
    await env.page.click(`#explanation-results .hit[data-feature="${env.F}"] a.hit-link`);
    await env.page.waitForFunction((h) => document.getElementById('view').dataset.route === h, `#/d/${env.A}/f/${env.F}`);
    // Search by id goes straight to the feature.
    await env.page.fill('#search-input', `${env.A}:7`);
    await env.page.press('#search-input', 'Enter');
    await env.page.waitForFunction((h) => document.getElementById('view').dataset.route === h, `#/d/${env.A}/f/7`);
  });

  it('neighbour links open the neighbour, in this and other dictionaries', async () => {
    const r = await env.server.api('GetFeature', { dictionaryId: env.A, feature: env.F, neighbours: 10, skipFamily: true });
    await open(`#/d/${env.A}/f/${env.F}`);
    const nb = await env.page.$$eval('#neighbours-table a.feature-link', (as) => as.map((a) => Number(a.dataset.feature)));
    assert.deepEqual(nb, r.neighbours.map((n) => n.feature));
    if (env.B) {
      await env.page.waitForSelector('#other-dictionaries[data-state=ready]');
      const ss = await env.server.api('SearchSimilar', { dictionaryId: env.A, feature: env.F, against: [env.B], topN: 5 });
      const other = await env.page.$$eval(`#other-dictionaries .other-dict[data-dict="${env.B}"] a.feature-link`,
        (as) => as.map((a) => Number(a.dataset.feature)));
      assert.deepEqual(other, ss.results[0].neighbours.map((n) => n.feature));
      await env.page.click(`#other-dictionaries .other-dict[data-dict="${env.B}"] a.feature-link`);
      await env.page.waitForFunction((h) => document.getElementById('view').dataset.route === h, `#/d/${env.B}/f/${other[0]}`);
      await env.page.goBack();
      await openView(env.page, null, `#/d/${env.A}/f/${env.F}`);
    } else {
      console.log('# no second dictionary (demo): the other-dictionaries links are not followed');
    }
    await env.page.click('#neighbours-table a.feature-link');
    await env.page.waitForFunction((h) => document.getElementById('view').dataset.route === h, `#/d/${env.A}/f/${nb[0]}`);
    assert.match(await env.page.textContent('h1'), new RegExp(`#${nb[0]}$`));
  });

  it('family tree: members match FeatureFamily and open their pages', async () => {
    const fams = await env.server.api('ListFamilies', { dictionaryId: env.A, pageSize: 50 });
    const withChildren = [];
    for (const f of (fams.families || []).filter((x) => x.members.length > 1).slice(0, 5)) {
      const ff = await env.server.api('FeatureFamily', { dictionaryId: env.A, feature: f.root });
      if ((ff.children || []).length) withChildren.push(ff);
    }
    const ff = withChildren[0] || await env.server.api('FeatureFamily', { dictionaryId: env.A, feature: env.F });
    await open(`#/d/${env.A}/f/${ff.feature}`);
    await env.page.waitForSelector('#family[data-state=ready]');
    const got = await env.page.$$eval('#family .family-children a', (as) => as.map((a) => Number(a.dataset.feature)));
    assert.deepEqual(got, (ff.children || []).map((m) => m.feature));
    const text = await env.page.textContent('#family');
    assert.ok(text.includes(`Family of ${Number(ff.familySize).toLocaleString('en-US')}`));
    await screenshot('family');
    if (!got.length) { console.log(`# ${env.A} has no family with children: the child link is not followed`); return; }
    await env.page.click('#family .family-children a');
    await env.page.waitForFunction((h) => document.getElementById('view').dataset.route === h, `#/d/${env.A}/f/${got[0]}`);
    await env.page.waitForSelector('#family[data-state=ready]');
    const parents = await env.page.$$eval('#family .family-parents a', (as) => as.map((a) => Number(a.dataset.feature)));
    assert.ok(parents.includes(ff.feature), `the child lists ${ff.feature} among its parents`);
  });

  it('document page: opened from an example; a clicked token lists its features', async () => {
    const r = await env.server.api('GetFeature', { dictionaryId: env.A, feature: env.F, topN: 10, skipFamily: true });
    const ex = r.topExamples[0];
    await open(`#/d/${env.A}/f/${env.F}`);
    await env.page.click('#top-examples-list > li:first-child a.doc-link');
    const hash = `#/doc/${env.A}/${ex.corpus}/${ex.docId}?f=${env.F}&pos=${Number(ex.position)}`;
    await env.page.waitForFunction((h) => document.getElementById('view').dataset.route === h, hash);
    const doc = (await env.server.api('GetDocument', { corpus: ex.corpus, docId: ex.docId })).document;
    const toks = await env.page.$$eval('#doc-tokens .tok', (ts) => ts.map((t) => ({ pos: Number(t.dataset.pos),
      value: Number(t.dataset.value), peak: t.classList.contains('peak'), text: t.textContent })));
    assert.equal(toks.length, doc.tokenIds.length);
    const peak = toks.filter((t) => t.peak);
    assert.equal(peak.length, 1);
    assert.equal(peak[0].pos, Number(ex.position));
    assert.ok(close(peak[0].value, ex.value), `document shading of #${env.F} at the example (${peak[0].value} vs ${ex.value})`);
    const whole = await env.server.api('DocumentFeatures', { dictionaryId: env.A, corpus: ex.corpus, docId: ex.docId, n: 50 });
    const listed = await env.page.$$eval('#doc-features-table tbody tr td:first-child a', (as) => as.map((a) => Number(a.dataset.feature)));
    assert.deepEqual(listed, whole.features.map((f) => f.feature));
    // Click a token: the features active there, as DocumentFeatures with position says.
    const pos = Number(ex.position);
    await env.page.click(`#doc-tokens .tok[data-pos="${pos}"]`);
    await env.page.waitForSelector(`#token-features[data-position="${pos}"][data-state=ready]`);
    const at = await env.server.api('DocumentFeatures', { dictionaryId: env.A, corpus: ex.corpus, docId: ex.docId, position: String(pos), n: 50 });
    const rows = await env.page.$$eval('#token-features-table tbody tr', (trs) => trs.map((tr) => ({
      feature: Number(tr.querySelector('a').dataset.feature), value: tr.cells[1].textContent })));
    assert.deepEqual(rows.map((x) => x.feature), at.features.map((f) => f.feature));
    rows.forEach((x, i) => assert.equal(x.value, fmt(at.features[i].maxValue)));
    assert.ok(rows.some((x) => x.feature === env.F), 'the feature is active at its example');
    await noHorizontalScroll(env.page);
    await screenshot('document');
    // Total activity shading, then a feature link from the token list.
    await env.page.selectOption('#highlight-select', '-1');
    await env.page.waitForSelector('#doc-tokens[data-feature="-1"]');
    await env.page.click('#token-features-table tbody tr:first-child a');
    await env.page.waitForFunction((h) => document.getElementById('view').dataset.route === h, `#/d/${env.A}/f/${rows[0].feature}`);
  });

  it('comparison view: summary, similarity histogram and match tables', async () => {
    const B = env.B || env.A;
    if (!env.B) console.log('# demo: comparing the demo dictionary with itself');
    const msgs = await env.server.api('CompareDictionaries', { dictionaryA: env.A, dictionaryB: B, method: 'COMPARE_METHOD_DECODER', matchThreshold: 0.7 });
    const summary = msgs.find((m) => m.summary).summary;
    const matchesA = msgs.filter((m) => m.matches && m.matches.side === 'COMPARE_SIDE_A').flatMap((m) => m.matches.matches);
    await open(`#/compare/${env.A}/${B}?method=decoder`);
    await env.page.waitForSelector('#compare-matches[data-state=ready]');
    const facts = Object.fromEntries(await env.page.$$eval('#compare-summary .facts > div',
      (ds) => ds.map((d) => [d.querySelector('dt').textContent, d.querySelector('dd').textContent])));
    assert.equal(facts['mean max A→B'], fmt(summary.meanMaxAToB));
    assert.equal(facts['mean max B→A'], fmt(summary.meanMaxBToA));
    assert.equal(facts['matched A'], `${(summary.fracMatchedA * 100).toFixed(1)}%`);
    if (summary.hasAssignment) assert.equal(facts['assigned pairs'], Number(summary.assignedPairs).toLocaleString('en-US'));
    const counts = await env.page.$$eval('#compare-histogram rect.bar', (rs) => rs.map((r) => Number(r.dataset.count)));
    assert.equal(counts.reduce((a, b) => a + b, 0), matchesA.filter((m) => Number(m.bestPartner) >= 0).length);
    const best = await env.page.$$eval('#best-A table tbody tr', (trs) => trs.map((tr) => ({
      feature: Number(tr.cells[0].querySelector('a').dataset.feature), partner: tr.cells[1].querySelector('a')?.dataset.feature,
      sim: tr.cells[2].textContent })));
    assert.equal(best.length, Math.min(25, matchesA.length));
    const sorted = [...matchesA].sort((x, y) => y.bestSimilarity - x.bestSimilarity || Number(x.feature) - Number(y.feature));
    best.forEach((row, i) => {
      assert.equal(row.feature, Number(sorted[i].feature));
      assert.equal(row.partner, String(sorted[i].bestPartner));
      assert.equal(row.sim, fmt(sorted[i].bestSimilarity));
    });
    if (summary.hasAssignment) {
      const assigned = await env.page.locator('#assigned-A table tbody tr').count();
      assert.equal(assigned, Math.min(25, matchesA.length));
    }
    await env.page.click('#best-A .pager .next');
    const second = await env.page.$eval('#best-A table tbody tr td a', (a) => Number(a.dataset.feature));
    assert.equal(second, Number(sorted[25].feature));
    await noHorizontalScroll(env.page);
    await screenshot('compare');
    // The activation method over the shared corpus (stories: both dictionaries hold it).
    if (env.B) {
      const act = (await env.server.api('CompareDictionaries', { dictionaryA: env.A, dictionaryB: env.B,
        method: 'COMPARE_METHOD_ACTIVATION', corpus: env.corpus, matchThreshold: 0.7, skipMatches: true })).find((x) => x.summary).summary;
      await open(`#/compare/${env.A}/${env.B}?method=activation&corpus=${env.corpus}`);
      await env.page.waitForSelector('#compare-matches[data-state=ready]');
      const f2 = Object.fromEntries(await env.page.$$eval('#compare-summary .facts > div',
        (ds) => ds.map((d) => [d.querySelector('dt').textContent, d.querySelector('dd').textContent])));
      assert.equal(f2.method, 'activation');
      assert.equal(f2.tokens, Number(act.tokens).toLocaleString('en-US'));
      assert.equal(f2['mean max A→B'], fmt(act.meanMaxAToB));
      assert.ok(await env.page.locator('#best-A table tbody tr').count() > 0);
    }
  });

  it('keyboard: j/k step features, / focuses search, g opens go-to', async () => {
    const f = Math.min(env.F, 500);
    await open(`#/d/${env.A}/f/${f}`);
    await env.page.keyboard.press('j');
    await env.page.waitForFunction((h) => document.getElementById('view').dataset.route === h, `#/d/${env.A}/f/${f + 1}`);
    await env.page.keyboard.press('k');
    await env.page.waitForFunction((h) => document.getElementById('view').dataset.route === h, `#/d/${env.A}/f/${f}`);
    await env.page.keyboard.press('/');
    assert.equal(await env.page.evaluate(() => document.activeElement.id), 'search-input');
    await env.page.keyboard.press('Escape');
    await env.page.keyboard.press('g');
    await env.page.waitForSelector('#goto-dialog[open]');
    await env.page.keyboard.type('3');
    await env.page.keyboard.press('Enter');
    await env.page.waitForFunction((h) => document.getElementById('view').dataset.route === h, `#/d/${env.A}/f/3`);
    const help = await env.page.textContent('#help');
    assert.match(help, /j.*k.*next\/previous feature/);
  });

  it('API errors are readable messages, never a blank page', async () => {
    await open('#/d/no_such_dictionary');
    const box = await env.page.waitForSelector('#view .error');
    assert.equal(await box.getAttribute('data-code'), 'NOT_FOUND');
    assert.match(await box.textContent(), /no_such_dictionary/);
    await open(`#/d/${env.A}/f/99999999`);
    assert.ok(await env.page.locator('#view .error').count() > 0);
    await screenshot('error');
    assert.deepEqual(env.pageErrors, [], 'no uncaught page errors');
  });

  it('measures page weight and first render of a feature page', async () => {
    const runs = [];
    for (let i = 0; i < 5; i++) runs.push(await measureFeaturePage(env.browser, env.base, `#/d/${env.A}/f/${env.F}`));
    runs.sort((x, y) => x.firstRender - y.firstRender);
    const m = runs[2];
    const dSae = (await env.server.api('GetDictionary', { id: env.A })).dictionary.dSae;
    console.log(`MEASURE: feature page ${env.A} #${env.F} (d_sae ${dSae}), 5 cold loads: first render median ` +
      `${m.firstRender.toFixed(0)} ms (min ${runs[0].firstRender.toFixed(0)}, max ${runs[4].firstRender.toFixed(0)}), ` +
      `all sections ${m.complete.toFixed(0)} ms, ${m.requests} requests, ${m.bytes} bytes transferred ` +
      `(${m.apiBytes} of them API answers; largest ${m.largest})`);
    console.log(`# median run's requests: ${m.timeline.join('; ')}`);
    assert.ok(m.firstRender > 0);
  });
});
