// app.js — the dashboard's entry point: hash router (shareable URLs), the
// search box, keyboard shortcuts and the go-to-feature dialog. Each route's
// view is an ES module under views/ loaded on first use; it gets a context
// (params, query, the <main> element, an AbortSignal) and fills the page.
//
// Routes: #/  #/d/DICT  #/d/DICT/f/N  #/search?q=...  #/doc/DICT/CORPUS/DOC?f=N&pos=P
//         #/compare/A/B?method=decoder|activation&threshold=0.7&corpus=C
import { getDictionary, listDictionaries } from './api.js';
import { el, errorBox, featureHref, link } from './ui.js';

const ROUTES = [
  [/^\/?$/, 'home', []],
  [/^\/d\/([^/]+)\/?$/, 'dictionary', ['dict']],
  [/^\/d\/([^/]+)\/f\/(\d+)\/?$/, 'feature', ['dict', 'feature']],
  [/^\/search\/?$/, 'search', []],
  [/^\/doc\/([^/]+)\/([^/]+)\/(\d+)\/?$/, 'document', ['dict', 'corpus', 'doc']],
  [/^\/compare\/([^/]+)\/([^/]+)\/?$/, 'compare', ['a', 'b']],
];

const view = document.getElementById('view');
let current = null;  // { name, params, query, controller }

export function parseHash(hash) {
  const h = (hash || '').replace(/^#/, '');
  const q = h.indexOf('?');
  const path = q >= 0 ? h.slice(0, q) : h;
  const query = new URLSearchParams(q >= 0 ? h.slice(q + 1) : '');
  for (const [re, name, keys] of ROUTES) {
    const m = path.match(re);
    if (m) {
      const params = {};
      keys.forEach((k, i) => { params[k] = decodeURIComponent(m[i + 1]); });
      return { name, params, query };
    }
  }
  return { name: 'notfound', params: { path }, query };
}

function setCrumbs(items) {
  const nav = document.getElementById('crumbs');
  nav.replaceChildren(...items.flatMap((it, i) => [i ? ' › ' : '', it[1] ? link(it[1], it[0]) : el('span', {}, it[0])]));
  document.title = ['saedict', ...items.map((it) => it[0])].join(' · ');
}

async function route() {
  if (current) current.controller.abort();
  const hash = location.hash || '#/';
  const r = parseHash(hash);
  const controller = new AbortController();
  current = { ...r, controller };
  document.body.dataset.view = r.name;
  view.dataset.state = 'loading';
  delete view.dataset.route;
  view.replaceChildren(el('p', { class: 'loading' }, 'Loading…'));
  const ctx = { ...r, view, signal: controller.signal, setCrumbs, navigate: (h) => { location.hash = h; } };
  try {
    if (r.name === 'notfound') throw Object.assign(new Error(`no page at #${r.params.path}`), { code: 'NOT_FOUND' });
    const mod = await import(`./views/${r.name}.js`);
    await mod.render(ctx);
    if (controller.signal.aborted) return;
    view.dataset.route = hash;
    view.dataset.state = 'ready';
  } catch (err) {
    if (controller.signal.aborted || (err && err.name === 'AbortError')) return;
    console.error(err);
    view.replaceChildren(el('h1', {}, 'Something went wrong'), errorBox(err),
      el('p', {}, link('#/', 'Back to the dictionaries'), ' · ',
        el('a', { href: location.hash, onclick: (e) => { e.preventDefault(); route(); } }, 'retry')));
    view.dataset.route = hash;
    view.dataset.state = 'error';
  }
}

// "dict:123", "dict 123", "dict/123" → {dict, feature}; "123" → {feature}.
export function parseTarget(text) {
  const t = (text || '').trim();
  let m = t.match(/^([A-Za-z0-9._-]+?)\s*[:/#\s]\s*(\d+)$/);
  if (m) return { dict: m[1], feature: Number(m[2]) };
  m = t.match(/^#?(\d+)$/);
  if (m) return { feature: Number(m[1]) };
  return null;
}

// The dictionary the current page is about, if any.
const currentDict = () => (current && current.params.dict) || (current && current.params.a) || null;

async function resolveTarget(text) {
  const t = parseTarget(text);
  if (!t) throw new Error('type a feature number, or dictionary:number');
  let dict = t.dict || currentDict();
  if (!dict) {
    const all = await listDictionaries();
    if (all.length !== 1) throw new Error('which dictionary? type dictionary:number');
    dict = all[0].id;
  }
  const info = await getDictionary(dict);
  if (t.feature >= Number(info.dSae)) throw new Error(`${dict} has features 0..${Number(info.dSae) - 1}`);
  return featureHref(dict, t.feature);
}

function setupSearch() {
  const form = document.getElementById('search-form');
  const input = document.getElementById('search-input');
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const q = input.value.trim();
    if (!q) return;
    const t = parseTarget(q);
    if (t && t.dict) {
      try {
        location.hash = await resolveTarget(q);
        input.value = '';
        input.blur();
        return;
      } catch (_) { /* not a feature: search the words */ }
    }
    location.hash = `#/search?q=${encodeURIComponent(q)}`;
    input.blur();
  });
}

function setupGoto() {
  const dlg = document.getElementById('goto-dialog');
  const input = document.getElementById('goto-input');
  const msg = document.getElementById('goto-error');
  document.getElementById('goto-cancel').addEventListener('click', () => dlg.close());
  document.getElementById('goto-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const href = await resolveTarget(input.value);
      dlg.close();
      location.hash = href;
    } catch (err) {
      msg.textContent = err.detail || err.message;
    }
  });
  return () => { msg.textContent = ''; input.value = ''; dlg.showModal(); input.focus(); };
}

async function stepFeature(delta) {
  if (!current || current.name !== 'feature') return;
  const f = Number(current.params.feature) + delta;
  const info = await getDictionary(current.params.dict);
  if (f >= 0 && f < Number(info.dSae)) location.hash = featureHref(current.params.dict, f);
}

function setupKeys(openGoto) {
  document.addEventListener('keydown', (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const t = ev.target;
    if (t && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName))) {
      if (ev.key === 'Escape') t.blur();
      return;
    }
    if (document.getElementById('goto-dialog').open) return;
    if (ev.key === 'j') stepFeature(+1);
    else if (ev.key === 'k') stepFeature(-1);
    else if (ev.key === '/') { ev.preventDefault(); document.getElementById('search-input').focus(); }
    else if (ev.key === 'g') { ev.preventDefault(); openGoto(); }
    else return;
  });
}

window.addEventListener('unhandledrejection', (ev) => console.error('unhandled', ev.reason));
window.addEventListener('hashchange', route);
setupSearch();
setupKeys(setupGoto());
route();
