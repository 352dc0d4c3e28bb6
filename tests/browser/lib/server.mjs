// lib/server.mjs — a real saedictd for the browser tests: started on free
// ports (--port=0, --http_port=0) with its own temporary --data_dir, its
// HTTP port read from the log line "saedictd HTTP on 127.0.0.1:PORT", and
// stopped by its pid (SIGTERM, then SIGKILL). api() calls the JSON gateway.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export class Saedictd {
  static async start({ binary, dictionaryRoot, demo = false, extraArgs = [], timeoutMs = 120000 }) {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'saedict-browser-'));
    const args = [`--data_dir=${dataDir}`, '--port=0', '--http_port=0', '--http_address=127.0.0.1',
      '--listen_address=127.0.0.1', '--metrics_port=-1', `--demo=${demo}`, ...extraArgs];
    if (dictionaryRoot) args.push(`--dictionary_root=${dictionaryRoot}`);
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const s = new Saedictd(child, dataDir);
    s.port = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`saedictd printed no HTTP port in ${timeoutMs} ms:\n${s.log}`)), timeoutMs);
      const onData = (d) => {
        s.log += d;
        const m = s.log.match(/saedictd HTTP on 127\.0\.0\.1:(\d+)/);
        if (m) { clearTimeout(timer); resolve(Number(m[1])); }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.on('exit', (code, sig) => { clearTimeout(timer); reject(new Error(`saedictd exited (${code ?? sig}):\n${s.log}`)); });
    });
    s.base = `http://127.0.0.1:${s.port}`;
    return s;
  }

  constructor(child, dataDir) {
    this.child = child;
    this.pid = child.pid;
    this.dataDir = dataDir;
    this.log = '';
    this.exited = new Promise((r) => child.on('exit', r));
  }

  // POST /v1/<method>: JSON body → parsed JSON; NDJSON (string body) → the
  // answer's lines parsed. Throws with the server's {code, message}.
  async api(method, body, { ndjson = false } = {}) {
    const res = await fetch(`${this.base}/v1/${method}`, {
      method: 'POST',
      headers: { 'Content-Type': ndjson ? 'application/x-ndjson' : 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body || {}),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method}: HTTP ${res.status} ${text.slice(0, 500)}`);
    const type = res.headers.get('content-type') || '';
    if (ndjson || type.includes('ndjson')) return text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
    return JSON.parse(text);
  }

  async waitIndexReady(id, timeoutMs = 120000) {
    const t0 = Date.now();
    for (;;) {
      const { dictionary: d } = await this.api('GetDictionary', { id });
      const ix = d.index || {};
      if (ix.state === 'INDEX_STATE_READY' && ix.neighboursState === 'INDEX_STATE_READY') return d;
      if (ix.state === 'INDEX_STATE_FAILED') throw new Error(`index of ${id} failed: ${ix.error}`);
      if (Date.now() - t0 > timeoutMs) throw new Error(`index of ${id} not ready after ${timeoutMs} ms: ${JSON.stringify(ix)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async stop() {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      process.kill(this.pid, 'SIGTERM');
      const t = setTimeout(() => { try { process.kill(this.pid, 'SIGKILL'); } catch (_) { /* gone */ } }, 15000);
      await this.exited;
      clearTimeout(t);
    }
    fs.rmSync(this.dataDir, { recursive: true, force: true });
  }
}
