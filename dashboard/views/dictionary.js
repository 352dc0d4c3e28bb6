// views/dictionary.js — #/d/DICT : one dictionary's info and index state, a
// jump-to-feature box, a compare-with picker, the feature ids in client-side
// pages of 100 (?page=N; nothing loads all features), and its families paged
// with ListFamilies page tokens.
import { call, getDictionary, listDictionaries } from '../api.js';
import { el, enumName, errorBox, facts, featureLink, fmt, fmtBytes, fmtInt, lazySection, num,
  pager, table } from '../ui.js';
import { indexCell } from './home.js';

const IDS_PER_PAGE = 100;
const FAMILIES_PER_PAGE = 20;

function idsSection(dict, dSae, page0) {
  const pages = Math.max(1, Math.ceil(dSae / IDS_PER_PAGE));
  const sec = el('section', { class: 'card', id: 'feature-ids' }, el('h2', {}, 'Features'));
  const body = el('div');
  sec.append(body);
  const show = (page) => {
    page = Math.min(Math.max(0, page), pages - 1);
    const first = page * IDS_PER_PAGE;
    const last = Math.min(dSae, first + IDS_PER_PAGE);
    const ids = [];
    for (let f = first; f < last; f++) ids.push(featureLink(dict, f, String(f)));
    body.replaceChildren(pager(page, pages, show),
      el('div', { class: 'id-grid', 'data-first': first, 'data-last': last - 1 }, ids));
    const h = `#/d/${encodeURIComponent(dict)}${page ? `?page=${page}` : ''}`;
    if (location.hash !== h) history.replaceState(null, '', h);
  };
  show(page0);
  return sec;
}

function familiesSection(dict) {
  const tokens = [''];  // page tokens seen: tokens[i] opens page i
  const sec = el('section', { class: 'card', id: 'families', 'data-state': 'loading' }, el('h2', {}, 'Families'));
  const body = el('div', {}, el('p', { class: 'loading' }, 'Loading families (the first time scans the corpus)…'));
  sec.append(body);
  const show = async (page) => {
    sec.dataset.state = 'loading';
    try {
      const r = await call('ListFamilies', { dictionaryId: dict, pageSize: FAMILIES_PER_PAGE, pageToken: tokens[page] });
      if (r.nextPageToken) tokens[page + 1] = r.nextPageToken;
      const total = num(r.totalFamilies);
      const pages = Math.max(1, Math.ceil(total / FAMILIES_PER_PAGE));
      const rows = (r.families || []).map((fam) => {
        const members = fam.members || [];
        const shown = members.slice(0, 24).map((m) => featureLink(dict, m, String(m)));
        return [featureLink(dict, fam.root), fmtInt(members.length), String(fam.depth || 0), fmtInt(fam.rootCount),
          el('span', { class: 'members' }, shown.flatMap((a, i) => (i ? [' ', a] : [a])),
            members.length > 24 ? ` … +${members.length - 24}` : '')];
      });
      const pv = r.provenance || {};
      body.replaceChildren(
        el('p', { class: 'muted' }, `${fmtInt(total)} families over ${fmtInt(pv.tokens)} tokens `,
          `(decoder cosine ≥ ${fmt(pv.minDecoderCosine)}, coverage ≥ ${fmt(pv.minCoverage)}).`),
        total ? pager(page, pages, (p) => { if (p < tokens.length) show(p); }, 'families page') : '',
        rows.length ? table(['root', 'size', 'depth', 'root count', 'members'], rows, { class: 'families' })
          : el('p', { class: 'empty' }, 'No families: the dictionary has no stored corpus, or no feature nests in another.'));
      sec.dataset.state = 'ready';
    } catch (err) {
      body.replaceChildren(errorBox(err, 'families'));
      sec.dataset.state = 'error';
    }
  };
  show(0);
  return sec;
}

function jumpBox(ctx, dict, dSae) {
  const input = el('input', { type: 'number', min: 0, max: dSae - 1, name: 'feature', id: 'jump-input',
    placeholder: `0…${dSae - 1}`, required: true });
  return el('form', { class: 'inline', id: 'jump-form', onsubmit: (ev) => {
    ev.preventDefault();
    const f = Number(input.value);
    if (Number.isInteger(f) && f >= 0 && f < dSae) ctx.navigate(`#/d/${encodeURIComponent(dict)}/f/${f}`);
  } }, el('label', { for: 'jump-input' }, 'Jump to feature '), input, el('button', { type: 'submit' }, 'Open'));
}

async function comparePicker(ctx, info) {
  const others = (await listDictionaries()).filter((d) => d.id !== info.id);
  if (!others.length) return el('p', { class: 'empty' }, 'Load a second dictionary to compare with.');
  const sel = el('select', { id: 'compare-with', name: 'with' },
    others.map((d) => el('option', { value: d.id },
      `${d.id} (d_in ${d.dIn}, d_sae ${fmtInt(d.dSae)})${d.dIn === info.dIn ? '' : ' — activation only'}`)));
  const method = el('select', { id: 'compare-method', name: 'method' },
    el('option', { value: 'decoder' }, 'decoder cosine'), el('option', { value: 'activation' }, 'activation correlation'));
  const corpus = el('input', { id: 'compare-corpus', name: 'corpus', placeholder: 'corpus (activation method)', size: 18 });
  return el('form', { class: 'inline', id: 'compare-form', onsubmit: (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams({ method: method.value });
    if (method.value === 'activation') q.set('corpus', corpus.value.trim());
    ctx.navigate(`#/compare/${encodeURIComponent(info.id)}/${encodeURIComponent(sel.value)}?${q}`);
  } }, el('label', { for: 'compare-with' }, 'Compare with '), sel, ' ', method, ' ', corpus, ' ',
  el('button', { type: 'submit' }, 'Compare'));
}

export async function render(ctx) {
  const dict = ctx.params.dict;
  ctx.setCrumbs([['dictionaries', '#/'], [dict]]);
  const info = await getDictionary(dict);
  const dSae = num(info.dSae);
  ctx.view.replaceChildren(
    el('h1', {}, `Dictionary ${dict}`),
    el('section', { class: 'card', id: 'dict-info' },
      facts([
        ['model', info.modelName || '—'], ['hook', el('code', {}, info.hookName || '—')],
        ['d_in', fmtInt(info.dIn)], ['d_sae', fmtInt(dSae)],
        ...(info.dOut ? [['transcoder', info.skipConnection ? 'yes, with W_skip' : 'yes'],
          ['hook out', el('code', {}, info.hookNameOut || '—')], ['d_out', fmtInt(info.dOut)]] : []),
        ['architecture', enumName(info.architecture, 'ARCHITECTURE_')], ['k', num(info.k) ? String(info.k) : '—'],
        ['format', enumName(info.sourceFormat, 'SOURCE_FORMAT_')], ['source', info.sourcePath || '—'],
        ['weights', fmtBytes(info.weightBytes)], ['compute mode', enumName(info.defaultComputeMode, 'COMPUTE_MODE_')],
        ['index', indexCell(info.index)],
        ['sha256', el('code', { class: 'hash' }, (info.weightsSha256 || '').slice(0, 16) + '…')],
      ]),
      jumpBox(ctx, dict, dSae)),
    lazySection('Compare', 'compare-picker', () => comparePicker(ctx, info)),
    idsSection(dict, dSae, Number(ctx.query.get('page') || 0)),
    familiesSection(dict));
}
