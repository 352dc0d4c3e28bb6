// lib/stories.mjs — the stories260k test data (../shared/data/stories260k,
// its README) sent to a saedictd over the JSON gateway: the two TopK SAEs
// loaded, the corpus "stories" ingested into each over POST /v1/Ingest
// (NDJSON, a few documents per line: int32 token ids and float16
// activations as base64, token strings from vocab.json).
import fs from 'node:fs';
import path from 'node:path';

// A .npy file → { descr, shape, data: Buffer of the array bytes }.
export function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12);
  const header = buf.toString('latin1', start, start + hlen);
  const descr = header.match(/'descr':\s*'([^']+)'/)[1];
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${file}: Fortran order`);
  const shape = header.match(/'shape':\s*\(([^)]*)\)/)[1].split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  return { descr, shape, data: buf.subarray(start + hlen) };
}

export function loadStories(dir) {
  const tokens = readNpy(path.join(dir, 'tokens.npy'));
  const acts = readNpy(path.join(dir, 'acts_layer2.npy'));
  if (tokens.descr !== '<i4' || acts.descr !== '<f2') throw new Error(`unexpected dtypes ${tokens.descr} ${acts.descr}`);
  const vocab = JSON.parse(fs.readFileSync(path.join(dir, 'vocab.json'), 'utf8'));
  const docs = fs.readFileSync(path.join(dir, 'docs.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  return { tokens, acts, vocab, docs, dIn: acts.shape[1] };
}

// NDJSON body of IngestRequest lines, `perLine` documents each.
export function ingestBody(stories, dictionaryId, corpus, docs, perLine = 20) {
  const { tokens, acts, vocab, dIn } = stories;
  const lines = [];
  for (let i = 0; i < docs.length; i += perLine) {
    const documents = docs.slice(i, i + perLine).map((d) => {
      const ids = tokens.data.subarray(d.start * 4, (d.start + d.length) * 4);
      const strs = [];
      for (let j = 0; j < d.length; j++) strs.push(vocab[ids.readInt32LE(j * 4)]);
      return {
        docId: String(d.doc_id),
        tokenIds: Buffer.from(ids).toString('base64'),
        tokenStrings: strs,
        activations: { dtype: 'DTYPE_F16', shape: [d.length, dIn],
          data: Buffer.from(acts.data.subarray(d.start * dIn * 2, (d.start + d.length) * dIn * 2)).toString('base64') },
      };
    });
    lines.push(JSON.stringify({ dictionaryId, corpus, documents }));
  }
  return lines.join('\n') + '\n';
}

// Loads topk_l2_a and topk_l2_b and ingests "stories" into both (in
// request bodies of ~100 documents); returns the acknowledged token counts.
export async function setupStories(server, dir) {
  const stories = loadStories(dir);
  const out = {};
  for (const id of ['topk_l2_a', 'topk_l2_b']) {
    await server.api('LoadDictionary', { id, path: id });
    let tokens = 0;
    for (let i = 0; i < stories.docs.length; i += 100) {
      const acks = await server.api('Ingest', ingestBody(stories, id, 'stories', stories.docs.slice(i, i + 100)), { ndjson: true });
      tokens += acks.reduce((a, ack) => a + Number(ack.tokens), 0);
    }
    out[id] = tokens;
  }
  return { stories, tokens: out };
}
