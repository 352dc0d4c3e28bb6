// views/compare.js — #/compare/A/B?method=decoder|activation&threshold=T&corpus=C
// Streams CompareDictionaries (NDJSON: progress, summary, per-feature
// matches) into typed arrays, shows the summary as soon as it arrives, then
// the histogram of best-match similarities (SVG) and paged tables of best
// and one-to-one (assigned) matches. The matches stream grows with d_sae (the
// API has no paging for it): above 131072 features in all the page asks for
// the summary only and offers the matches behind a button (?matches=1).
import { getDictionary, stream } from '../api.js';
import { el, enumName, facts, featureLink, fmt, fmtInt, fmtPct, histogram, num, pager, table } from '../ui.js';

const PER_PAGE = 25;
const BIG = 131072;

function newSide(n) {
  return { n: 0, best: new Int32Array(n).fill(-1), bestSim: new Float64Array(n), assigned: new Int32Array(n).fill(-1),
    assignedSim: new Float64Array(n), matched: new Uint8Array(n) };
}

function summaryFacts(s) {
  const act = s.method === 'COMPARE_METHOD_ACTIVATION';
  return facts([
    ['method', enumName(s.method, 'COMPARE_METHOD_')],
    ['sizes', `${fmtInt(s.sizeA)} × ${fmtInt(s.sizeB)}`], ['d_in', `${s.dInA} / ${s.dInB}`],
    ['mean max A→B', fmt(s.meanMaxAToB)], ['mean max B→A', fmt(s.meanMaxBToA)],
    ['matched A', fmtPct(s.fracMatchedA)], ['matched B', fmtPct(s.fracMatchedB)],
    ['threshold', fmt(s.matchThreshold)],
    s.hasAssignment && ['assignment mean', fmt(s.assignmentMean)],
    s.hasAssignment && ['assigned pairs', fmtInt(s.assignedPairs)],
    ['unmatched A', fmtInt(s.unmatchedA)], ['unmatched B', fmtInt(s.unmatchedB)],
    act && ['tokens', fmtInt(s.tokens)], act && ['alive A / B', `${fmtInt(s.aliveA)} / ${fmtInt(s.aliveB)}`],
    act && ['SVCCA', fmt(s.svcca)], act && s.svccaDecoder !== undefined && ['SVCCA decoder', fmt(s.svccaDecoder)],
    ['seconds', fmt(s.seconds, 3)],
  ]);
}

function simHistogram(side, threshold) {
  let lo = 0;
  for (let i = 0; i < side.n; i++) if (side.best[i] >= 0) lo = Math.min(lo, side.bestSim[i]);
  lo = Math.floor(lo * 10) / 10;
  const nb = Math.round((1 - lo) * 20) || 20;
  const w = (1 - lo) / nb;
  const counts = new Array(nb).fill(0);
  for (let i = 0; i < side.n; i++) {
    if (side.best[i] < 0) continue;
    counts[Math.min(nb - 1, Math.max(0, Math.floor((side.bestSim[i] - lo) / w)))]++;
  }
  const bins = counts.map((c, i) => ({ lower: Number((lo + i * w).toFixed(6)), upper: Number((lo + (i + 1) * w).toFixed(6)), count: c }));
  return histogram(bins, { xLabel: 'best-match similarity', threshold, label: 'match similarity histogram' });
}

// A paged table over the features of one side, sorted by `key` (descending) or by feature.
function pagedTable(id, n, cols, rowOf, simOf) {
  const box = el('div', { id, class: 'paged' });
  const order = Uint32Array.from({ length: n }, (_, i) => i);
  let sorted = 'sim';
  const byFeature = order.slice();
  order.sort((a, b) => simOf(b) - simOf(a) || a - b);
  const sortSel = el('select', { class: 'sort', onchange: () => { sorted = sortSel.value; show(0); } },
    el('option', { value: 'sim' }, 'best similarity first'), el('option', { value: 'feature' }, 'by feature'));
  const pages = Math.max(1, Math.ceil(n / PER_PAGE));
  function show(page) {
    const ix = sorted === 'sim' ? order : byFeature;
    const rows = [];
    for (let k = page * PER_PAGE; k < Math.min(n, (page + 1) * PER_PAGE); k++) rows.push(rowOf(ix[k]));
    box.replaceChildren(el('div', { class: 'inline' }, 'Sort ', sortSel, ' ', pager(page, pages, show)),
      table(cols, rows, { class: 'matches' }));
  }
  show(0);
  return box;
}

function matchTables(A, B, sideName, side, summary) {
  const [me, other] = sideName === 'A' ? [A, B] : [B, A];
  const partner = (p) => (p >= 0 ? featureLink(other, p, `${other} #${p}`) : '—');
  const out = [el('div', {}, el('h3', {}, `Best matches of ${me} in ${other}`),
    pagedTable(`best-${sideName}`, side.n, ['feature', 'best partner', 'similarity', 'matched'],
      (i) => [featureLink(me, i, `${me} #${i}`), partner(side.best[i]), side.best[i] >= 0 ? fmt(side.bestSim[i]) : '—',
        side.matched[i] ? '✓' : ''], (i) => (side.best[i] >= 0 ? side.bestSim[i] : -Infinity)))];
  if (summary.hasAssignment) {
    out.push(el('div', {}, el('h3', {}, 'One-to-one (assigned) matches'),
      pagedTable(`assigned-${sideName}`, side.n, ['feature', 'assigned partner', 'similarity'],
        (i) => [featureLink(me, i, `${me} #${i}`), partner(side.assigned[i]), side.assigned[i] >= 0 ? fmt(side.assignedSim[i]) : '—'],
        (i) => (side.assigned[i] >= 0 ? side.assignedSim[i] : -Infinity))));
  }
  return el('div', { class: 'match-tables' }, out);
}

export async function render(ctx) {
  const { a, b } = ctx.params;
  const method = ctx.query.get('method') === 'activation' ? 'COMPARE_METHOD_ACTIVATION' : 'COMPARE_METHOD_DECODER';
  const threshold = ctx.query.has('threshold') ? Number(ctx.query.get('threshold')) : 0.7;
  const corpus = ctx.query.get('corpus') || '';
  ctx.setCrumbs([['dictionaries', '#/'], [a, `#/d/${encodeURIComponent(a)}`], [`compare with ${b}`]]);
  const [ia, ib] = await Promise.all([getDictionary(a), getDictionary(b)]);
  const wantMatches = num(ia.dSae) + num(ib.dSae) <= BIG || ctx.query.get('matches') === '1';
  const progress = el('p', { class: 'progress', id: 'compare-progress' }, 'Comparing…');
  const summaryBox = el('section', { class: 'card', id: 'compare-summary', 'data-state': 'loading' }, el('h2', {}, 'Summary'), progress);
  const matchesBox = el('section', { class: 'card', id: 'compare-matches', 'data-state': 'loading' }, el('h2', {}, 'Matches'));
  ctx.view.replaceChildren(el('h1', {}, `${a} vs ${b}`,
    el('small', { class: 'muted' }, ` ${enumName(method, 'COMPARE_METHOD_')}${corpus ? ` on ${corpus}` : ''}`)), summaryBox, matchesBox);

  const sides = { A: newSide(num(ia.dSae)), B: newSide(num(ib.dSae)) };
  let summary = null;
  const body = { dictionaryA: a, dictionaryB: b, method, matchThreshold: threshold, skipMatches: !wantMatches };
  if (corpus) body.corpus = corpus;
  await stream('CompareDictionaries', body, (m) => {
    if (m.progress) progress.textContent = `${m.progress.phase} ${fmtPct(m.progress.fraction, 0)}`;
    if (m.summary) {
      summary = m.summary;
      summaryBox.replaceChildren(el('h2', {}, 'Summary'), summaryFacts(summary));
      summaryBox.dataset.state = 'ready';
      matchesBox.append(el('p', { class: 'loading' }, wantMatches ? 'Receiving matches…' : ''));
    }
    if (m.matches) {
      const side = sides[m.matches.side === 'COMPARE_SIDE_B' ? 'B' : 'A'];
      for (const x of m.matches.matches || []) {
        const i = num(x.feature);
        if (i >= side.best.length) continue;
        side.best[i] = num(x.bestPartner); side.bestSim[i] = num(x.bestSimilarity);
        side.assigned[i] = num(x.assignedPartner); side.assignedSim[i] = num(x.assignedSimilarity);
        side.matched[i] = x.matched ? 1 : 0;
        side.n = Math.max(side.n, i + 1);
      }
    }
  }, ctx.signal);
  if (!summary) throw Object.assign(new Error('the comparison stream ended without a summary'), { code: 'INTERNAL' });
  if (!wantMatches) {
    const q = new URLSearchParams(ctx.query);
    q.set('matches', '1');
    matchesBox.replaceChildren(el('h2', {}, 'Matches'), el('p', {},
      `${fmtInt(num(ia.dSae) + num(ib.dSae))} features: the per-feature matches (a stream that grows with d_sae) are not loaded. `,
      el('a', { href: `#/compare/${encodeURIComponent(a)}/${encodeURIComponent(b)}?${q}`, id: 'load-matches' }, 'Load them')));
    matchesBox.dataset.state = 'ready';
    return;
  }
  const sideSel = el('select', { id: 'compare-side', onchange: () => showSide(sideSel.value) },
    el('option', { value: 'A' }, `${a} → ${b}`), el('option', { value: 'B' }, `${b} → ${a}`));
  const sideBox = el('div');
  function showSide(s) {
    sideBox.replaceChildren(el('figure', { id: 'compare-histogram' }, simHistogram(sides[s], threshold),
      el('figcaption', {}, `Best-match similarity of each feature of ${s === 'A' ? a : b}; the line is the match threshold.`)),
    matchTables(a, b, s, sides[s], summary));
  }
  showSide('A');
  matchesBox.replaceChildren(el('h2', {}, 'Matches'), el('p', { class: 'inline' }, el('label', { for: 'compare-side' }, 'Side '), sideSel), sideBox);
  matchesBox.dataset.state = 'ready';
}
