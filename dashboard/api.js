// api.js — the dashboard's only door to saedictd: POST /v1/<Method> on the
// same origin (the HTTP/JSON gateway), JSON in, JSON out; NDJSON streams read
// line by line as they arrive. Errors become ApiError with the gRPC code name
// and the server's message, so views can show them as text.

export class ApiError extends Error {
  constructor(method, status, code, message) {
    super(`${method}: ${code} (HTTP ${status}): ${message}`);
    this.method = method;
    this.status = status;
    this.code = code;
    this.detail = message;
  }
}

async function errorOf(method, res) {
  let code = `HTTP_${res.status}`;
  let message = res.statusText || 'request failed';
  try {
    const text = await res.text();
    try {
      const j = JSON.parse(text);
      code = j.code || code;
      message = j.message || message;
    } catch (_) {
      if (text) message = text.slice(0, 500);
    }
  } catch (_) { /* body unreadable: keep the status line */ }
  return new ApiError(method, res.status, code, message);
}

async function post(method, body, signal) {
  let res;
  try {
    res = await fetch(`/v1/${method}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body || {}),
      signal,
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(method, 0, 'UNAVAILABLE', `the server did not answer (${e.message})`);
  }
  if (!res.ok) throw await errorOf(method, res);
  return res;
}

// One unary call: the response message as a plain object.
export async function call(method, body, signal) {
  const res = await post(method, body, signal);
  return res.json();
}

// A server-streaming call: onMessage(obj) for every NDJSON line, as it
// arrives. Resolves when the stream ends.
export async function stream(method, body, onMessage, signal) {
  const res = await post(method, body, signal);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (value) buf += decoder.decode(value, { stream: true });
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) handleLine(method, line, onMessage);
    }
    if (done) break;
  }
  buf += decoder.decode();
  if (buf.trim()) handleLine(method, buf.trim(), onMessage);
}

function handleLine(method, line, onMessage) {
  const obj = JSON.parse(line);
  // A stream that fails after it started ends with {"error":{code,message}}.
  if (obj && obj.error && typeof obj.error === 'object' && Object.keys(obj).length === 1) {
    throw new ApiError(method, 200, obj.error.code, obj.error.message);
  }
  onMessage(obj);
}

// Short-lived cache of the dictionary list and infos (many pages need d_sae
// or the dictionaries with the same d_in); 5 s keeps index progress fresh.
const cache = new Map();
async function cached(key, fn) {
  const hit = cache.get(key);
  if (hit && Date.now() - hit.at < 5000) return hit.promise;
  const promise = fn();
  cache.set(key, { at: Date.now(), promise });
  promise.catch(() => cache.delete(key));
  return promise;
}

export function listDictionaries() {
  return cached('list', () => call('ListDictionaries', {}).then((r) => r.dictionaries || []));
}

export function getDictionary(id) {
  return cached(`dict:${id}`, () => call('GetDictionary', { id }).then((r) => r.dictionary));
}

// Little-endian typed views of a base64 protobuf `bytes` field.
export function b64bytes(s) {
  const bin = atob(s || '');
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// SparseCodes (CSR) → { rows, offsets: Float64Array, indices: Uint32Array,
// values: Float32Array }. uint64 offsets are read as two uint32 halves.
export function decodeSparse(codes) {
  const off = new DataView(b64bytes(codes.rowOffsets).buffer);
  const rows = Number(codes.numRows || 0);
  const offsets = new Float64Array(rows + 1);
  for (let i = 0; i <= rows && i * 8 + 8 <= off.byteLength; i++) {
    offsets[i] = off.getUint32(i * 8, true) + off.getUint32(i * 8 + 4, true) * 4294967296;
  }
  const ib = b64bytes(codes.indices);
  const vb = b64bytes(codes.values);
  const idv = new DataView(ib.buffer);
  const vdv = new DataView(vb.buffer);
  const n = ib.length / 4;
  const indices = new Uint32Array(n);
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    indices[i] = idv.getUint32(i * 4, true);
    values[i] = vdv.getFloat32(i * 4, true);
  }
  return { rows, offsets, indices, values };
}
