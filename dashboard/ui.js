// ui.js — small DOM helpers shared by the views: element builder, number
// formats, error boxes, a pager, the activation colour scale and its legend,
// token rendering, and the SVG histogram. No framework; every string is put
// in the page as text (never as HTML).

export function el(tag, attrs, ...children) {
  const svg = ['svg', 'rect', 'line', 'text', 'title', 'g', 'path'].includes(tag);
  const e = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.setAttribute('class', v);
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

export const link = (href, text, attrs) => el('a', { href, ...attrs }, text);
export const featureHref = (dict, f) => `#/d/${encodeURIComponent(dict)}/f/${f}`;
export const featureLink = (dict, f, text) =>
  link(featureHref(dict, f), text ?? `#${f}`, { class: 'feature-link', 'data-dict': dict, 'data-feature': f });

// Numbers: int64 fields come as strings in protobuf JSON.
export const num = (v) => (v === undefined || v === null || v === '' ? 0 : Number(v));
export function fmt(v, digits = 4) {
  const x = num(v);
  if (!Number.isFinite(x)) return String(v);
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1e5 || a < 1e-3) return x.toExponential(2);
  return Number(x.toPrecision(digits)).toString();
}
// Six significant digits, never exponent-truncated (token titles).
export const precise = (v) => String(Number(num(v).toPrecision(6)));
export const fmtInt = (v) => num(v).toLocaleString('en-US');
export function fmtBytes(v) {
  let x = num(v);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (x >= 1024 && i < units.length - 1) { x /= 1024; i++; }
  return `${i ? x.toFixed(1) : x} ${units[i]}`;
}
export const fmtPct = (v, d = 1) => `${(num(v) * 100).toFixed(d)}%`;
// "ARCHITECTURE_TOPK" → "topk"
export const enumName = (v, prefix) => String(v || '').replace(prefix, '').toLowerCase() || '—';

export function errorBox(err, what) {
  const code = err && err.code ? err.code : 'ERROR';
  const msg = err && (err.detail || err.message) ? (err.detail || err.message) : String(err);
  return el('div', { class: 'error', role: 'alert', 'data-code': code },
    el('strong', {}, what ? `${what}: ` : '', code), ' — ', msg);
}

export const loading = (what) => el('p', { class: 'loading' }, `Loading ${what}…`);

// A section that fills itself from an async producer; shows loading, then
// the content or the error. data-state tells tests when it is done.
export function lazySection(title, id, produce) {
  const body = el('div', { class: 'section-body' }, loading(title.toLowerCase()));
  const sec = el('section', { id, class: 'card', 'data-state': 'loading' }, el('h2', {}, title), body);
  Promise.resolve().then(produce).then((content) => {
    body.replaceChildren(...[content].flat().filter(Boolean));
    sec.dataset.state = 'ready';
  }, (err) => {
    if (err && err.name === 'AbortError') return;
    body.replaceChildren(errorBox(err));
    sec.dataset.state = 'error';
  });
  return sec;
}

// Prev / "page X of Y" / next; onGo(page) with 0-based pages.
export function pager(page, pages, onGo, label = 'page') {
  const go = (p) => (ev) => { ev.preventDefault(); onGo(p); };
  return el('nav', { class: 'pager', 'aria-label': label },
    el('button', { type: 'button', class: 'prev', disabled: page <= 0, onclick: go(page - 1) }, '‹ prev'),
    el('span', { class: 'page-of' }, `${label} ${fmtInt(page + 1)} of ${fmtInt(Math.max(pages, 1))}`),
    el('button', { type: 'button', class: 'next', disabled: page >= pages - 1, onclick: go(page + 1) }, 'next ›'));
}

export function table(headers, rows, attrs) {
  return el('table', attrs || {},
    el('thead', {}, el('tr', {}, headers.map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, rows.map((r) => el('tr', {}, r.map((c) => el('td', {}, c))))));
}

// Key/value list for metrics.
export function facts(pairs) {
  return el('dl', { class: 'facts' },
    pairs.filter(Boolean).map(([k, v]) => el('div', {}, el('dt', {}, k), el('dd', {}, v))));
}

// ---- Activation colour scale ---------------------------------------------
// ColorBrewer YlOrBr (sequential, colour-blind safe); the text colour is the
// one of black/white with the higher contrast against the shade.
const STOPS = [[255, 255, 229], [254, 227, 145], [254, 153, 41], [217, 95, 14], [153, 52, 4]];
function lin(c) { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; }
export function shade(t) {
  t = Math.min(1, Math.max(0, t));
  const x = t * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(x));
  const f = x - i;
  const rgb = STOPS[i].map((c, j) => Math.round(c + (STOPS[i + 1][j] - c) * f));
  const L = 0.2126 * lin(rgb[0]) + 0.7152 * lin(rgb[1]) + 0.0722 * lin(rgb[2]);
  const fg = (L + 0.05) / 0.05 >= 1.05 / (L + 0.05) ? '#000' : '#fff';
  return { bg: `rgb(${rgb.join(',')})`, fg };
}

export function legend(max, what = 'activation') {
  const grad = STOPS.map((s, i) => `rgb(${s.join(',')}) ${(i / (STOPS.length - 1)) * 100}%`).join(',');
  return el('div', { class: 'legend', 'aria-label': `${what} colour scale` },
    el('span', {}, '0'),
    el('span', { class: 'legend-bar', style: `background: linear-gradient(to right, ${grad})` }),
    el('span', {}, fmt(max)),
    el('span', { class: 'legend-note' }, ` ${what}; `, el('span', { class: 'tok peak' }, 'peak'), ' token outlined'));
}

// How a token string is shown: visible newline/tab, ids when no strings.
export function tokenText(s, id) {
  if (s === undefined || s === null || s === '') return `⟨${id}⟩`;
  return s.replace(/\n/g, '↵').replace(/\t/g, '⇥');
}

// One token span shaded by value/max; title carries the exact value.
export function tokenSpan(text, value, max, extra = {}) {
  const v = num(value);
  const attrs = { class: `tok${v > 0 ? ' on' : ''}${extra.peak ? ' peak' : ''}`, 'data-value': v,
    title: `${JSON.stringify(text)} · ${extra.label || 'value'} ${precise(v)}${extra.note || ''}` };
  if (v > 0) {
    const s = shade(max > 0 ? v / max : 1);
    attrs.style = `background:${s.bg};color:${s.fg}`;
  }
  for (const [k, x] of Object.entries(extra.attrs || {})) attrs[k] = x;
  return el('span', attrs, text);
}

// ---- SVG histogram --------------------------------------------------------
// bins: [{lower, upper, count}] (numbers). Bars carry data-lower/-upper/
// -count and a <title>. logX: bar positions on a log axis (log-spaced bins).
export function histogram(bins, opts = {}) {
  const W = opts.width || 640, H = opts.height || 180, padL = 48, padB = 30, padT = 10, padR = 10;
  const svg = el('svg', { class: 'histogram', viewBox: `0 0 ${W} ${H}`, role: 'img',
    'aria-label': opts.label || 'histogram', 'data-bins': bins.length, preserveAspectRatio: 'xMidYMid meet' });
  if (!bins.length) {
    svg.append(el('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'no data'));
    return svg;
  }
  const logX = opts.logX && bins.every((b) => b.lower > 0);
  const tx = logX ? Math.log : (x) => x;
  const x0 = tx(Math.min(...bins.map((b) => b.lower)));
  const x1 = tx(Math.max(...bins.map((b) => b.upper)));
  const maxC = Math.max(...bins.map((b) => b.count), 1);
  const sx = (x) => padL + ((tx(x) - x0) / (x1 - x0 || 1)) * (W - padL - padR);
  const sy = (c) => (c / maxC) * (H - padB - padT);
  svg.dataset.maxCount = maxC;
  bins.forEach((b, i) => {
    const x = sx(b.lower), w = Math.max(1, sx(b.upper) - x - 0.5), h = sy(b.count);
    svg.append(el('rect', { class: 'bar', x: x.toFixed(2), y: (H - padB - h).toFixed(2), width: w.toFixed(2),
      height: h.toFixed(2), 'data-index': i, 'data-lower': b.lower, 'data-upper': b.upper, 'data-count': b.count },
    el('title', {}, `[${fmt(b.lower, 5)}, ${fmt(b.upper, 5)}): ${fmtInt(b.count)}`)));
  });
  if (opts.threshold !== undefined && opts.threshold >= Math.min(...bins.map((b) => b.lower))) {
    const tX = sx(opts.threshold);
    svg.append(el('line', { class: 'threshold', x1: tX, x2: tX, y1: padT, y2: H - padB }),
      el('text', { x: tX + 3, y: padT + 10, class: 'axis' }, `threshold ${opts.threshold}`));
  }
  const lo = Math.min(...bins.map((b) => b.lower)), hi = Math.max(...bins.map((b) => b.upper));
  svg.append(
    el('line', { class: 'axis-line', x1: padL, x2: W - padR, y1: H - padB, y2: H - padB }),
    el('line', { class: 'axis-line', x1: padL, x2: padL, y1: padT, y2: H - padB }),
    el('text', { class: 'axis', x: padL, y: H - padB + 14, 'text-anchor': 'start' }, fmt(lo)),
    el('text', { class: 'axis', x: W - padR, y: H - padB + 14, 'text-anchor': 'end' }, fmt(hi)),
    el('text', { class: 'axis', x: (W + padL) / 2, y: H - 4, 'text-anchor': 'middle' },
      (opts.xLabel || 'value') + (logX ? ' (log scale)' : '')),
    el('text', { class: 'axis', x: padL - 4, y: padT + 8, 'text-anchor': 'end' }, fmtInt(maxC)),
    el('text', { class: 'axis', x: padL - 4, y: H - padB, 'text-anchor': 'end' }, '0'));
  return svg;
}
