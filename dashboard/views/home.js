// views/home.js — #/ : every loaded dictionary with its metrics (d_in, d_sae,
// architecture, k, model, hook, index state and progress, weight bytes).
// Refreshes itself every 2 s while an index is still queued or building.
import { call } from '../api.js';
import { el, enumName, fmtBytes, fmtInt, fmtPct, link, num, table } from '../ui.js';

export function indexCell(ix) {
  ix = ix || {};
  const state = enumName(ix.state, 'INDEX_STATE_');
  const parts = [el('span', { class: `state state-${state}`, 'data-index-state': ix.state || '' }, state)];
  if (state === 'building' || state === 'queued') parts.push(` ${fmtPct(ix.progress)}`);
  if (ix.factory) parts.push(el('small', {}, ` ${ix.factory}${ix.exact ? ' exact' : ''}`));
  const nb = enumName(ix.neighboursState, 'INDEX_STATE_');
  parts.push(el('br'), el('small', {}, `neighbours ${nb}`,
    nb === 'building' ? ` ${fmtInt(ix.neighboursDone)}` : ''));
  if (ix.error) parts.push(el('br'), el('small', { class: 'error-text' }, ix.error));
  return parts;
}

export async function render(ctx) {
  ctx.setCrumbs([['dictionaries']]);
  const { dictionaries = [] } = await call('ListDictionaries', {}, ctx.signal);
  const rows = dictionaries.map((d) => [
    link(`#/d/${encodeURIComponent(d.id)}`, d.id, { class: 'dict-link' }),
    d.modelName || '—', el('code', {}, d.hookName || '—'),
    fmtInt(d.dIn), fmtInt(d.dSae), enumName(d.architecture, 'ARCHITECTURE_'),
    num(d.k) ? String(d.k) : '—', indexCell(d.index), fmtBytes(d.weightBytes),
  ]);
  ctx.view.replaceChildren(
    el('h1', {}, 'Dictionaries'),
    dictionaries.length
      ? table(['id', 'model', 'hook', 'd_in', 'd_sae', 'arch', 'k', 'index', 'weights'], rows,
        { class: 'dicts', id: 'dictionaries' })
      : el('p', { class: 'empty' }, 'No dictionaries are loaded. Load one with ',
        el('code', {}, 'saedict load ID PATH'), ' or start saedictd with ', el('code', {}, '--demo'), '.'));
  const busy = dictionaries.some((d) => ['INDEX_STATE_QUEUED', 'INDEX_STATE_BUILDING'].includes(d.index && d.index.state)
    || ['INDEX_STATE_QUEUED', 'INDEX_STATE_BUILDING'].includes(d.index && d.index.neighboursState));
  if (busy) {
    const t = setTimeout(() => { if (!ctx.signal.aborted) render(ctx).catch(() => {}); }, 2000);
    ctx.signal.addEventListener('abort', () => clearTimeout(t));
  }
}
