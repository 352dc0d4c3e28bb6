// lib/dev_proxy.mjs — for working on the dashboard without rebuilding
// saedictd: with SAEDICT_DASHBOARD_DIR set, the tests open the pages through
// this proxy on 127.0.0.1, which serves the dashboard files from that folder
// and forwards /v1/* to the real server. Not used otherwise.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml',
  '.json': 'application/json', '.png': 'image/png', '.ico': 'image/x-icon', '.txt': 'text/plain; charset=utf-8' };

export function startDevProxy(dir, upstream) {
  const root = path.resolve(dir);
  const server = http.createServer((req, res) => {
    if (req.url.startsWith('/v1/') || req.url.startsWith('/api/') || req.url === '/healthz') {
      const up = http.request(`${upstream}${req.url}`, { method: req.method, headers: req.headers }, (u) => {
        res.writeHead(u.statusCode, u.headers);
        u.pipe(res);
      });
      up.on('error', (e) => { res.writeHead(502); res.end(String(e)); });
      req.pipe(up);
      return;
    }
    const rel = decodeURIComponent(req.url.split('?')[0]).replace(/^\/+/, '') || 'index.html';
    const file = path.resolve(root, rel);
    if (!file.startsWith(root + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ code: 'NOT_FOUND', message: `no file ${rel}` }));
      return;
    }
    res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream', 'Cache-Control': 'no-cache' });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    resolve({ base: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) });
  }));
}
