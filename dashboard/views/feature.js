// views/feature.js — #/d/DICT/f/N : one feature. First render from one
// GetFeature (statistics, SVG histogram, top examples, explanations, decoder
// neighbours); then, each in its own section, the quantile-sampled examples
// (TopActivations), neighbours in other dictionaries with the same d_in
// (SearchSimilar) and the family tree (FeatureFamily). Tokens are shaded by
// activation relative to the feature's max; the peak token is outlined.
import { call, getDictionary, listDictionaries } from '../api.js';
import { el, enumName, facts, featureLink, fmt, fmtInt, fmtPct, histogram, lazySection, legend,
  link, num, table, tokenSpan, tokenText } from '../ui.js';

const docHref = (dict, ex, feature) =>
  `#/doc/${encodeURIComponent(dict)}/${encodeURIComponent(ex.corpus)}/${ex.docId}?f=${feature}&pos=${num(ex.position)}`;

function exampleRow(dict, feature, ex, max) {
  const peak = num(ex.peakIndex);
  const ctxTokens = (ex.context || []).map((t, i) => tokenSpan(tokenText(t.token, t.tokenId), t.value, max,
    { peak: i === peak, note: i === peak ? ' (peak)' : '' }));
  return el('li', { class: 'example', 'data-value': num(ex.value), 'data-doc': ex.docId, 'data-position': num(ex.position) },
    el('span', { class: 'ex-value', title: `activation ${fmt(ex.value, 6)}` }, fmt(ex.value)),
    el('span', { class: 'tokens' }, ctxTokens),
    link(docHref(dict, ex, feature), `${ex.corpus} ${ex.docId} @${num(ex.position)}`, { class: 'doc-link' }));
}

export function exampleList(dict, feature, examples, max, id) {
  if (!examples || !examples.length) return el('p', { class: 'empty' }, 'No examples stored (no corpus ingested, or the feature never fires).');
  return el('ol', { class: 'examples', id }, examples.map((ex) => exampleRow(dict, feature, ex, max)));
}

function statsSection(r) {
  const s = r.stats || {};
  const bins = (s.histogram || []).map((b) => ({ lower: num(b.lower), upper: num(b.upper), count: num(b.count) }));
  return el('section', { class: 'card', id: 'stats' }, el('h2', {}, 'Statistics'),
    facts([['active tokens', fmtInt(s.count)], ['of tokens', fmtInt(s.totalTokens)],
      ['density', fmtPct(s.density, 3)], ['mean', fmt(s.mean)], ['std', fmt(s.std)], ['max', fmt(s.max)]]),
    el('figure', { id: 'histogram' }, histogram(bins, { logX: true, xLabel: 'activation', label: 'activation histogram' }),
      el('figcaption', {}, `Active values in ${bins.length} log-spaced bins (empty bins left out); hover a bar for its bounds and count.`)));
}

function explanationsSection(r) {
  const ex = r.explanations || [];
  return el('section', { class: 'card', id: 'explanations' }, el('h2', {}, 'Explanations'),
    ex.length ? el('ul', { class: 'explanations' }, ex.map((e) => el('li', { 'data-id': e.id },
      el('span', { class: 'expl-text' }, e.text),
      el('small', { class: 'muted' }, ` — ${e.source || 'human'}${e.author ? `, ${e.author}` : ''}`,
        e.score !== undefined ? `, score ${fmt(e.score)}` : '', e.explainerModel ? `, ${e.explainerModel}` : ''))))
      : el('p', { class: 'empty' }, 'No explanation yet (SetExplanation or saedict explain).'));
}

function neighboursTable(items, id) {
  return table(['feature', 'cosine'], items.map((n) => [featureLink(n.dictionaryId, n.feature,
    `${n.dictionaryId} #${n.feature}`), fmt(n.cosine)]), { class: 'neighbours', id });
}

function neighboursSection(r) {
  const nb = r.neighbours || [];
  const state = enumName(r.neighboursState, 'INDEX_STATE_');
  return el('section', { class: 'card', id: 'neighbours' }, el('h2', {}, 'Nearest decoder directions'),
    nb.length ? neighboursTable(nb, 'neighbours-table')
      : el('p', { class: 'empty' }, `No neighbours (index ${state}).`));
}

// Decoder rows have the width of the hook they write: d_out for a transcoder.
const decoderWidth = (d) => String(d.dOut || d.dIn);

async function otherDictionaries(dict, feature, info) {
  const width = decoderWidth(info);
  const others = (await listDictionaries()).filter((d) => d.id !== dict && decoderWidth(d) === width);
  if (!others.length) return el('p', { class: 'empty' }, `No other dictionary with decoder width ${width}.`);
  const r = await call('SearchSimilar', { dictionaryId: dict, feature, against: others.map((d) => d.id), topN: 5 });
  return (r.results || []).map((res) => el('div', { class: 'other-dict', 'data-dict': res.dictionaryId },
    el('h3', {}, res.dictionaryId, el('small', { class: 'muted' }, ` ${res.indexFactory || ''}${res.exact ? ' exact' : ''}`)),
    (res.neighbours || []).length ? neighboursTable(res.neighbours) : el('p', { class: 'empty' }, 'none')));
}

function memberList(dict, members, what) {
  if (!members || !members.length) return el('p', { class: 'empty' }, `no ${what}`);
  return el('ul', { class: `family-${what}` }, members.map((m) => el('li', {},
    featureLink(dict, m.feature), el('small', { class: 'muted', title: m.reason || '' },
      ` coverage ${fmt(m.coverage, 3)}, cosine ${fmt(m.decoderCosine, 3)}, ${fmtInt(m.count)} tokens`))));
}

async function family(dict, feature) {
  const r = await call('FeatureFamily', { dictionaryId: dict, feature });
  const parents = [...(r.parents || [])].reverse();  // root first
  return [
    el('p', {}, `Family of ${fmtInt(r.familySize)} (root `, featureLink(dict, r.root), ').'),
    el('div', { class: 'family-tree' },
      el('h3', {}, 'Parents (root first)'), memberList(dict, parents, 'parents'),
      el('h3', {}, 'This feature'), el('p', {}, el('strong', {}, `#${feature}`), ` — ${fmtInt(r.count)} tokens`),
      el('h3', {}, 'Children'), memberList(dict, r.children, 'children'),
      el('h3', {}, 'Siblings'), memberList(dict, r.siblings, 'siblings')),
  ];
}

async function quantiles(dict, feature, max) {
  const r = await call('TopActivations', { dictionaryId: dict, feature, n: 1, quantileBins: 5, perBin: 3 });
  const bins = r.bins || [];
  if (!bins.length) return el('p', { class: 'empty' }, 'No quantile bins (too few activations).');
  return bins.map((b, i) => el('div', { class: 'quantile', 'data-bin': i },
    el('h3', {}, `quantiles ${fmtPct(b.quantileLower, 0)}–${fmtPct(b.quantileUpper, 0)}`,
      el('small', { class: 'muted' }, ` values ${fmt(b.valueLower)}–${fmt(b.valueUpper)}`)),
    exampleList(dict, feature, b.examples, max)));
}

export async function render(ctx) {
  const dict = ctx.params.dict;
  const feature = Number(ctx.params.feature);
  ctx.setCrumbs([['dictionaries', '#/'], [dict, `#/d/${encodeURIComponent(dict)}`], [`feature ${feature}`]]);
  const [info, r] = await Promise.all([getDictionary(dict),
    call('GetFeature', { dictionaryId: dict, feature, topN: 10, contextWindow: 8, neighbours: 10, skipFamily: true }, ctx.signal)]);
  const dSae = num(info.dSae);
  const max = num(r.stats && r.stats.max);
  const first = (r.explanations || [])[0];
  const nav = el('nav', { class: 'prevnext' },
    feature > 0 ? featureLink(dict, feature - 1, `‹ #${feature - 1}`) : el('span', {}, ''),
    el('span', { class: 'muted' }, ` feature ${fmtInt(feature)} of ${fmtInt(dSae)} `),
    feature + 1 < dSae ? featureLink(dict, feature + 1, `#${feature + 1} ›`) : el('span', {}, ''));
  nav.firstChild.classList.add('prev-feature');
  nav.lastChild.classList.add('next-feature');
  ctx.view.replaceChildren(
    el('div', { class: 'title-row' }, el('h1', {}, `${dict} #${feature}`), nav),
    first ? el('p', { class: 'lede' }, first.text) : '',
    el('div', { class: 'columns' },
      el('div', { class: 'col-main' },
        statsSection(r),
        el('section', { class: 'card', id: 'top-examples' }, el('h2', {}, 'Top examples'), legend(max),
          exampleList(dict, feature, r.topExamples, max, 'top-examples-list')),
        lazySection('Quantile-sampled examples', 'quantile-examples', () => quantiles(dict, feature, max))),
      el('div', { class: 'col-side' },
        explanationsSection(r),
        neighboursSection(r),
        lazySection('In other dictionaries', 'other-dictionaries', () => otherDictionaries(dict, feature, info)),
        lazySection('Family', 'family', () => family(dict, feature)))));
  ctx.view.dataset.firstRender = String(performance.now());
}
