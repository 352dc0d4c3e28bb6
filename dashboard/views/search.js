// views/search.js — #/search?q=...&d=DICT : explanation search
// (SearchExplanations; snippets with [[matched words]] shown as <mark>) and
// feature-id search ("dict:123", or a bare number: that feature in every
// dictionary large enough).
import { call, listDictionaries } from '../api.js';
import { el, errorBox, featureHref, featureLink, fmt, fmtInt, link, num } from '../ui.js';

// "a [[b]] c" → text nodes and <mark>b</mark>, never parsed as HTML.
export function snippet(s) {
  const out = [];
  const re = /\[\[(.*?)\]\]/g;
  let last = 0, m;
  while ((m = re.exec(s || ''))) {
    if (m.index > last) out.push(s.slice(last, m.index));
    out.push(el('mark', {}, m[1]));
    last = re.lastIndex;
  }
  if (last < (s || '').length) out.push(s.slice(last));
  return out;
}

function idResults(q, dicts) {
  const m = q.match(/^(?:([A-Za-z0-9._-]+?)\s*[:/#\s]\s*)?#?(\d+)$/);
  if (!m) return null;
  const f = Number(m[2]);
  const hits = dicts.filter((d) => (!m[1] || d.id === m[1]) && f < num(d.dSae));
  return el('section', { class: 'card', id: 'id-results' }, el('h2', {}, `Feature ${f}`),
    hits.length ? el('ul', {}, hits.map((d) => el('li', {}, featureLink(d.id, f, `${d.id} #${f}`),
      el('small', { class: 'muted' }, ` (d_sae ${fmtInt(d.dSae)})`))))
      : el('p', { class: 'empty' }, `No dictionary${m[1] ? ` named ${m[1]}` : ''} has a feature ${f}.`));
}

function form(ctx, q, dicts, only) {
  const input = el('input', { type: 'search', name: 'q', id: 'search-page-input', value: q, size: 40,
    placeholder: 'words of an explanation, or dict:123' });
  const sel = el('select', { name: 'd', id: 'search-dict' }, el('option', { value: '' }, 'all dictionaries'),
    dicts.map((d) => el('option', { value: d.id, selected: d.id === only }, d.id)));
  return el('form', { class: 'inline', id: 'search-page-form', onsubmit: (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams({ q: input.value.trim() });
    if (sel.value) p.set('d', sel.value);
    ctx.navigate(`#/search?${p}`);
  } }, input, ' in ', sel, ' ', el('button', { type: 'submit' }, 'Search'));
}

function explanationHits(r) {
  const hits = r.hits || [];
  return el('section', { class: 'card', id: 'explanation-results' },
    el('h2', {}, 'Explanations'),
    el('p', { class: 'muted' }, `${fmtInt(r.matchingExplanations)} explanations match `,
      (r.queryTerms || []).map((t) => el('code', {}, t)).flatMap((c, i) => (i ? [' ', c] : [c])),
      hits.length < num(r.matchingExplanations) ? `; the best ${hits.length} shown.` : '.'),
    hits.length ? el('ol', { class: 'hits' }, hits.map((h) => {
      const e = h.explanation || {};
      return el('li', { class: 'hit', 'data-dict': e.dictionaryId, 'data-feature': e.feature },
        link(featureHref(e.dictionaryId, e.feature), `${e.dictionaryId} #${e.feature}`, { class: 'feature-link hit-link' }),
        ' ', el('span', { class: 'snippet' }, snippet(h.snippet || e.text)),
        el('small', { class: 'muted' }, ` score ${fmt(h.score, 3)} · ${e.source || ''}`));
    })) : el('p', { class: 'empty' }, 'No explanation matches.'));
}

export async function render(ctx) {
  const q = (ctx.query.get('q') || '').trim();
  const only = ctx.query.get('d') || '';
  ctx.setCrumbs([['dictionaries', '#/'], [q ? `search “${q}”` : 'search']]);
  const dicts = await listDictionaries();
  const parts = [el('h1', {}, 'Search'), form(ctx, q, dicts, only)];
  if (!q) {
    ctx.view.replaceChildren(...parts, el('p', { class: 'muted' }, 'Search the explanations of every feature, or type dict:number.'));
    return;
  }
  const ids = idResults(q, dicts);
  if (ids) parts.push(ids);
  let r;
  try {
    r = await call('SearchExplanations', { query: q, dictionaryIds: only ? [only] : [], topN: 50 }, ctx.signal);
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    parts.push(el('section', { class: 'card', id: 'explanation-results' }, el('h2', {}, 'Explanations'),
      errorBox(err, 'explanation search')));
    ctx.view.replaceChildren(...parts);
    return;
  }
  parts.push(explanationHits(r));
  ctx.view.replaceChildren(...parts);
}
