// views/document.js — #/doc/DICT/CORPUS/DOC?f=N&pos=P : a stored document's
// tokens shaded by one feature (?f=) or by total activity (the sum of the
// token's latents), from GetActivations; the features firing on it
// (DocumentFeatures); a click on a token lists the features active at that
// token (DocumentFeatures with position). ?pos= outlines a token (the
// example the page was opened from).
import { call, decodeSparse } from '../api.js';
import { el, errorBox, featureLink, fmt, fmtInt, legend, num, table, tokenSpan, tokenText } from '../ui.js';

// Per-token value of `feature` (or the total when feature < 0).
function perToken(codes, feature) {
  const out = new Float64Array(codes.rows);
  for (let r = 0; r < codes.rows; r++) {
    for (let j = codes.offsets[r]; j < codes.offsets[r + 1]; j++) {
      if (feature < 0) out[r] += codes.values[j];
      else if (codes.indices[j] === feature) { out[r] = codes.values[j]; break; }
    }
  }
  return out;
}

export async function render(ctx) {
  const { dict, corpus, doc } = ctx.params;
  const base = `#/doc/${encodeURIComponent(dict)}/${encodeURIComponent(corpus)}/${doc}`;
  let feature = ctx.query.has('f') ? Number(ctx.query.get('f')) : -1;
  const target = ctx.query.has('pos') ? Number(ctx.query.get('pos')) : -1;
  ctx.setCrumbs([['dictionaries', '#/'], [dict, `#/d/${encodeURIComponent(dict)}`], [`${corpus} doc ${doc}`]]);
  const [d, acts, feats] = await Promise.all([
    call('GetDocument', { corpus, docId: doc }, ctx.signal),
    call('GetActivations', { dictionaryId: dict, corpus, docId: doc }, ctx.signal),
    call('DocumentFeatures', { dictionaryId: dict, corpus, docId: doc, n: 50 }, ctx.signal)]);
  const document_ = d.document || {};
  const ids = document_.tokenIds || [];
  const strs = document_.tokenStrings || [];
  const codes = decodeSparse(acts.codes || {});

  const tokensBox = el('div', { class: 'doc-tokens', id: 'doc-tokens', 'aria-label': 'document tokens' });
  const legendBox = el('div');
  const atToken = el('section', { class: 'card', id: 'token-features', 'data-state': 'idle' },
    el('h2', {}, 'Features at a token'), el('p', { class: 'muted' }, 'Click a token to list the features active there.'));

  const paint = () => {
    const vals = perToken(codes, feature);
    const max = vals.reduce((a, b) => Math.max(a, b), 0);
    legendBox.replaceChildren(legend(max, feature < 0 ? 'total activity' : `feature #${feature}`));
    tokensBox.replaceChildren(...ids.map((id, i) => tokenSpan(tokenText(strs[i], id), vals[i], max, {
      peak: i === target, label: feature < 0 ? 'total' : `#${feature}`, note: ` · position ${i}`,
      attrs: { 'data-pos': i, role: 'button', tabindex: 0 } })));
    tokensBox.dataset.feature = feature;
  };

  const selectToken = async (pos) => {
    tokensBox.querySelectorAll('.selected').forEach((s) => s.classList.remove('selected'));
    const span = tokensBox.querySelector(`[data-pos="${pos}"]`);
    if (span) span.classList.add('selected');
    atToken.dataset.state = 'loading';
    atToken.dataset.position = pos;
    const body = [el('h2', {}, `Features at token ${pos} `, el('code', {}, tokenText(strs[pos], ids[pos])))];
    try {
      const r = await call('DocumentFeatures', { dictionaryId: dict, corpus, docId: doc, position: pos, n: 50 });
      const fs = r.features || [];
      body.push(fs.length ? table(['feature', 'value', ''], fs.map((f) => [featureLink(dict, f.feature),
        fmt(f.maxValue), el('button', { type: 'button', class: 'linkish', onclick: () => setFeature(f.feature) }, 'highlight')]),
      { class: 'features', id: 'token-features-table' }) : el('p', { class: 'empty' }, 'No feature is active here.'));
      atToken.dataset.state = 'ready';
    } catch (err) {
      body.push(errorBox(err));
      atToken.dataset.state = 'error';
    }
    atToken.replaceChildren(...body);
  };

  const onToken = (ev) => {
    const t = ev.target.closest('[data-pos]');
    if (t && (ev.type === 'click' || ev.key === 'Enter' || ev.key === ' ')) { ev.preventDefault(); selectToken(Number(t.dataset.pos)); }
  };
  tokensBox.addEventListener('click', onToken);
  tokensBox.addEventListener('keydown', onToken);

  const sel = el('select', { id: 'highlight-select', onchange: () => setFeature(Number(sel.value)) },
    el('option', { value: -1 }, 'total activity'),
    [...new Set([...(feature >= 0 ? [feature] : []), ...(feats.features || []).map((f) => f.feature)])]
      .map((f) => el('option', { value: f, selected: f === feature }, `feature #${f}`)));
  function setFeature(f) {
    feature = f;
    sel.value = String(f);
    if (![...sel.options].some((o) => Number(o.value) === f)) sel.append(el('option', { value: f, selected: true }, `feature #${f}`));
    history.replaceState(null, '', `${base}?${new URLSearchParams({ ...(f >= 0 ? { f } : {}), ...(target >= 0 ? { pos: target } : {}) })}`);
    paint();
  }

  const featureRows = (feats.features || []).map((f) => [featureLink(dict, f.feature), fmt(f.maxValue),
    el('button', { type: 'button', class: 'linkish', onclick: () => selectToken(num(f.maxPosition)) }, `@${num(f.maxPosition)}`),
    fmtInt(f.activeTokens), fmt(f.sum),
    el('button', { type: 'button', class: 'linkish', onclick: () => setFeature(f.feature) }, 'highlight')]);

  paint();
  ctx.view.replaceChildren(
    el('h1', {}, `Document ${doc} `, el('small', { class: 'muted' }, `corpus ${corpus} · ${fmtInt(ids.length)} tokens · codes of ${dict}`)),
    el('div', { class: 'columns' },
      el('div', { class: 'col-main' },
        el('section', { class: 'card', id: 'document' }, el('h2', {}, 'Tokens'),
          el('p', { class: 'inline' }, el('label', { for: 'highlight-select' }, 'Shade by '), sel), legendBox, tokensBox),
        atToken),
      el('div', { class: 'col-side' },
        el('section', { class: 'card', id: 'doc-features' }, el('h2', {}, 'Features on this document'),
          featureRows.length ? table(['feature', 'max', 'at', 'tokens', 'sum', ''], featureRows, { class: 'features', id: 'doc-features-table' })
            : el('p', { class: 'empty' }, 'No feature fires on this document.')))));
  const t = tokensBox.querySelector('.peak');
  if (t) t.scrollIntoView({ block: 'center' });
}
