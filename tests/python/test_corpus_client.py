"""The corpus API end to end (proto/saedict/v1/saedict.proto): a real saedictd,
the Python client's ingest / get_document / get_activations / get_feature /
top_activations / document_features / create_checkpoint on a small random
corpus under the built-in `demo` dictionary (random TopK, d_in 64, d_sae
512, k 16), checked against the client's own encode of the same activations
and numpy. Also the `saedict` CLI's corpus commands against the same server."""
import json
import os
import subprocess

import grpc
import numpy as np
import pytest

from saedict.v1 import saedict_pb2 as pb

D_IN, D_SAE = 64, 512
LENGTHS = [12, 30, 7, 25, 16]  # tokens per document


def make_corpus(seed, lengths=LENGTHS, first_id=1000, vocab=50, d_in=D_IN):
    """[(doc_id, token_ids int32, activations f32 [n, d_in], token_strings)]."""
    rng = np.random.default_rng(seed)
    docs = []
    for i, n in enumerate(lengths):
        ids = rng.integers(0, vocab, n).astype(np.int32)
        acts = rng.standard_normal((n, d_in)).astype(np.float32)
        docs.append((first_id + i, ids, acts, [f" w{t}" if t % 7 else "\n" for t in ids]))
    return docs


def expected_batches(lengths, batch_tokens):
    """Document indices per batch: whole documents, up to batch_tokens each."""
    batches, current, tokens = [], [], 0
    for i, n in enumerate(lengths):
        if current and tokens + n > batch_tokens:
            batches.append(current)
            current, tokens = [], 0
        current.append(i)
        tokens += n
    return batches + ([current] if current else [])


def stored_dense(client, corpus, docs):
    """The stored codes of every document, stacked [T, d_sae], and (doc_id, pos) per row."""
    rows, where = [], []
    for doc_id, ids, _, _ in docs:
        rows.append(client.get_activations("demo", corpus, doc_id, dense=True))
        where += [(doc_id, p) for p in range(len(ids))]
    return np.vstack(rows), where


def assert_codes_match(got, want, rtol):
    """Same support and values; a near-tie may swap the k-th latent on one row
    (ingest and encode batch rows differently, so BLAS rounds differently)."""
    differing = np.flatnonzero(((got != 0) != (want != 0)).any(axis=1))
    assert len(differing) <= 1, differing
    both = (got != 0) & (want != 0)
    np.testing.assert_allclose(got[both], want[both], rtol=rtol, atol=1e-6)


def rpc_code(fn, *args, **kwargs):
    with pytest.raises(grpc.RpcError) as e:
        fn(*args, **kwargs)
    return e.value.code()


def test_ingest_acks_and_document_round_trip(server):
    c = server.client
    docs = make_corpus(0)
    seen = []
    summary = c.ingest("demo", "web", docs, batch_tokens=40, progress=seen.append)
    batches = expected_batches(LENGTHS, 40)
    assert batches == [[0], [1, 2], [3], [4]]
    acks = summary["acks"]
    assert seen == acks and len(acks) == len(batches)
    total_docs = total_tokens = 0
    for i, (ack, batch) in enumerate(zip(acks, batches)):
        tokens = sum(LENGTHS[j] for j in batch)
        total_docs += len(batch)
        total_tokens += tokens
        assert (ack.batch, ack.documents, ack.tokens, ack.replaced_documents) == \
            (i, len(batch), tokens, 0)
        assert (ack.total_documents, ack.total_tokens) == (total_docs, total_tokens)
    assert summary["documents"] == 5 and summary["tokens"] == sum(LENGTHS)
    assert summary["replaced_documents"] == 0

    for doc_id, ids, _, strings in docs:
        doc = c.get_document("web", doc_id)
        assert (doc.corpus, doc.doc_id) == ("web", doc_id)
        np.testing.assert_array_equal(doc.token_ids, ids)
        assert doc.token_strings == strings
        assert doc.text == "".join(strings)
    assert rpc_code(c.get_document, "web", 1) == grpc.StatusCode.NOT_FOUND
    assert rpc_code(c.get_document, "nocorpus", 1000) == grpc.StatusCode.NOT_FOUND

    # Without strings the document has none.
    c.ingest("demo", "ids", [(5, docs[0][1], docs[0][2], None)])
    assert c.get_document("ids", 5).token_strings == []


def test_get_activations_equals_direct_encode(server):
    c = server.client
    docs = make_corpus(1)
    c.ingest("demo", "web", docs, batch_tokens=50)
    for doc_id, ids, acts, _ in docs:
        codes = c.get_activations("demo", "web", doc_id)
        assert codes.precision == "f32"
        assert (codes.num_rows, codes.num_features) == (len(ids), D_SAE)
        assert np.all(np.diff(codes.row_offsets) == 16)  # demo: topk, k = 16
        assert_codes_match(codes.to_dense(), c.encode("demo", acts).to_dense(), rtol=1e-5)
    assert rpc_code(c.get_activations, "demo", "web", 1) == grpc.StatusCode.NOT_FOUND
    assert rpc_code(c.get_activations, "nope", "web", 1000) == grpc.StatusCode.NOT_FOUND

    # f16 storage: half the bytes, ~1e-3 relative error; activations sent as f16.
    half = [(d, ids, acts.astype(np.float16), s) for d, ids, acts, s in make_corpus(2)]
    c.ingest("demo", "half", half, value_precision="f16")
    for doc_id, _, acts, _ in half:
        codes = c.get_activations("demo", "half", doc_id)
        assert codes.precision == "f16"
        assert_codes_match(codes.to_dense(), c.encode("demo", acts).to_dense(), rtol=2e-3)


def test_feature_stats_and_examples(server):
    c = server.client
    docs = make_corpus(3)
    c.ingest("demo", "web", docs)
    z, where = stored_dense(c, "web", docs)
    tokens = {doc_id: (ids, strings) for doc_id, ids, _, strings in docs}
    row_of = {w: r for r, w in enumerate(where)}
    counts = (z != 0).sum(axis=0)
    f = int(np.argmax(counts))
    active = z[:, f][z[:, f] != 0]

    resp = c.get_feature("demo", f, top_n=5, context_window=3)
    s = resp.stats
    assert (resp.dictionary_id, resp.feature) == ("demo", f)
    assert s.count == len(active) == counts[f]
    assert s.total_tokens == len(z)
    assert s.density == pytest.approx(len(active) / len(z))
    assert s.mean == pytest.approx(active.mean(), rel=1e-5)
    assert (s.std == pytest.approx(active.std(), rel=1e-4)
            or s.std == pytest.approx(active.std(ddof=1), rel=1e-4))
    assert s.max == pytest.approx(active.max(), rel=1e-6)
    assert sum(b.count for b in s.histogram) == len(active)
    for b in s.histogram:  # log-spaced bins, empty ones left out
        assert b.lower < b.upper and b.count > 0
        assert b.count == np.count_nonzero((active >= b.lower) & (active < b.upper))
    assert [b.lower for b in s.histogram] == sorted(b.lower for b in s.histogram)

    def check_example(e, window):
        assert e.corpus == "web"
        r = row_of[(e.doc_id, e.position)]
        assert e.value == pytest.approx(z[r, f], rel=1e-6)
        ids, strings = tokens[e.doc_id]
        start, end = max(0, e.position - window), min(len(ids), e.position + window + 1)
        assert [t.token_id for t in e.context] == ids[start:end].tolist()
        assert [t.token for t in e.context] == strings[start:end]
        assert e.peak_index == e.position - start
        assert e.context[e.peak_index].value == pytest.approx(e.value)
        for t, p in zip(e.context, range(start, end)):
            assert t.value == pytest.approx(z[row_of[(e.doc_id, p)], f], rel=1e-6, abs=0)

    values = [e.value for e in resp.top_examples]
    assert len(values) == min(5, len(active))
    assert values == sorted(values, reverse=True)
    np.testing.assert_allclose(values, np.sort(active)[::-1][:len(values)], rtol=1e-6)
    for e in resp.top_examples:
        check_example(e, 3)

    top = c.top_activations("demo", f, n=8, context_window=2)
    values = [e.value for e in top.top]
    assert values == sorted(values, reverse=True) and len(values) == min(8, len(active))
    np.testing.assert_allclose(values, np.sort(active)[::-1][:len(values)], rtol=1e-6)
    for e in top.top:
        check_example(e, 2)
    assert len(top.bins) == 0

    sampled = c.top_activations("demo", f, n=1, context_window=1, quantile_bins=4, per_bin=3)
    assert len(sampled.bins) == 4
    assert [b.quantile_lower for b in sampled.bins] == sorted(b.quantile_lower
                                                               for b in sampled.bins)
    for b in sampled.bins:
        assert 0 <= b.quantile_lower < b.quantile_upper <= 1
        assert b.value_lower <= b.value_upper
        assert len(b.examples) <= 3
        ex = [e.value for e in b.examples]
        assert ex == sorted(ex, reverse=True)
        for e in b.examples:
            assert b.value_lower * (1 - 1e-6) <= e.value <= b.value_upper * (1 + 1e-6)
            check_example(e, 1)

    inactive = np.flatnonzero(counts == 0)
    if len(inactive):
        none = c.get_feature("demo", int(inactive[0]))
        assert none.stats.count == 0 and none.stats.total_tokens == len(z)
        assert len(none.top_examples) == 0
    assert rpc_code(c.get_feature, "demo", D_SAE) == grpc.StatusCode.NOT_FOUND
    assert rpc_code(c.get_feature, "nope", 0) == grpc.StatusCode.NOT_FOUND
    assert rpc_code(c.top_activations, "nope", 0) == grpc.StatusCode.NOT_FOUND


def test_document_features(server):
    c = server.client
    docs = make_corpus(4)
    c.ingest("demo", "web", docs)
    doc_id, ids, _, _ = docs[1]
    zd = c.get_activations("demo", "web", doc_id, dense=True)
    maxima = zd.max(axis=0)

    resp = c.document_features("demo", "web", doc_id, n=10)
    assert resp.num_tokens == len(ids)
    got = [a.feature for a in resp.features]
    assert len(got) == min(10, np.count_nonzero(maxima))
    assert set(got) == set(np.argsort(-maxima, kind="stable")[:len(got)].tolist())
    assert [a.max_value for a in resp.features] == sorted((a.max_value for a in resp.features),
                                                          reverse=True)
    for a in resp.features:
        column = zd[:, a.feature]
        assert a.max_value == pytest.approx(column.max(), rel=1e-6)
        assert column[a.max_position] == pytest.approx(a.max_value, rel=1e-6)
        assert a.active_tokens == np.count_nonzero(column)
        assert a.sum == pytest.approx(column.sum(), rel=1e-5)

    p = 4
    at = c.document_features("demo", "web", doc_id, position=p)
    assert at.num_tokens == len(ids)  # the document's, also with a position
    assert sorted(a.feature for a in at.features) == np.flatnonzero(zd[p]).tolist()
    for a in at.features:
        assert (a.max_position, a.active_tokens) == (p, 1)
        assert a.max_value == pytest.approx(zd[p, a.feature], rel=1e-6)
    assert rpc_code(c.document_features, "demo", "web", 1) == grpc.StatusCode.NOT_FOUND
    assert rpc_code(c.document_features, "nope", "web", doc_id) == grpc.StatusCode.NOT_FOUND


def test_errors_store_nothing_of_the_bad_batch(server):
    c = server.client
    docs = make_corpus(5, lengths=[6, 5])
    assert rpc_code(c.ingest, "nope", "web", docs) == grpc.StatusCode.NOT_FOUND
    assert rpc_code(c.get_document, "web", 1000) == grpc.StatusCode.NOT_FOUND

    wrong = make_corpus(6, lengths=[4], first_id=2000, d_in=D_IN - 1)
    assert rpc_code(c.ingest, "demo", "web", wrong) == grpc.StatusCode.INVALID_ARGUMENT
    assert rpc_code(c.get_document, "web", 2000) == grpc.StatusCode.NOT_FOUND
    assert c.get_feature("demo", 0).stats.total_tokens == 0

    # Batch 0 is acknowledged and stays; batch 1 (wrong d_in) ends the stream.
    seen = []
    with pytest.raises(grpc.RpcError) as e:
        c.ingest("demo", "web", [docs[0], wrong[0], docs[1]], batch_tokens=6,
                 progress=seen.append)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "63" in e.value.details() or "64" in e.value.details()
    assert [(a.batch, a.documents, a.tokens) for a in seen] == [(0, 1, 6)]
    np.testing.assert_array_equal(c.get_document("web", 1000).token_ids, docs[0][1])
    assert rpc_code(c.get_document, "web", 2000) == grpc.StatusCode.NOT_FOUND
    assert rpc_code(c.get_document, "web", 1001) == grpc.StatusCode.NOT_FOUND
    assert c.get_feature("demo", 0).stats.total_tokens == 6

    assert rpc_code(c.ingest, "demo", "a/b", docs) == grpc.StatusCode.INVALID_ARGUMENT
    assert rpc_code(c.ingest, "demo", "", docs) == grpc.StatusCode.INVALID_ARGUMENT


def test_reingest_replaces_the_document(server):
    c = server.client
    doc_id, ids, acts, strings = make_corpus(7, lengths=[9])[0]
    c.ingest("demo", "web", [(doc_id, ids, acts, strings)])
    new_acts = -acts
    summary = c.ingest("demo", "web", [(doc_id, ids, new_acts, strings)])
    assert summary["acks"][0].replaced_documents == 1
    assert summary["replaced_documents"] == 1
    assert c.get_feature("demo", 0).stats.total_tokens == len(ids)
    assert_codes_match(c.get_activations("demo", "web", doc_id, dense=True),
                       c.encode("demo", new_acts).to_dense(), rtol=1e-5)
    z = c.get_activations("demo", "web", doc_id, dense=True)
    f = int(np.argmax((z != 0).sum(axis=0)))
    assert c.get_feature("demo", f).stats.count == np.count_nonzero(z[:, f])


def test_create_checkpoint(server):
    c = server.client
    c.ingest("demo", "web", make_corpus(8, lengths=[5]))
    made = c.create_checkpoint("cp1")
    assert made.bytes > 0
    assert os.path.realpath(made.path) == os.path.realpath(server.data_dir / "backups" / "cp1")
    assert os.path.isdir(made.path)
    assert rpc_code(c.create_checkpoint, "../x") == grpc.StatusCode.INVALID_ARGUMENT
    assert rpc_code(c.create_checkpoint, "") == grpc.StatusCode.INVALID_ARGUMENT


def cli(server, *args, check=True):
    proc = subprocess.run([os.environ["SAEDICT_CLI"], f"--server={server.target}", *args],
                          capture_output=True, text=True, timeout=60)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_cli_ingest_feature_doc_checkpoint(server, tmp_path):
    docs = make_corpus(9)
    tokens = np.concatenate([ids for _, ids, _, _ in docs]).astype(np.int64)
    acts = np.vstack([a for _, _, a, _ in docs]).astype(np.float16)
    np.save(tmp_path / "tokens.npy", tokens)
    np.save(tmp_path / "acts.npy", acts)
    start = 0
    with open(tmp_path / "docs.jsonl", "w") as f:
        for doc_id, ids, _, _ in docs:
            f.write(json.dumps({"doc_id": doc_id, "start": start, "length": len(ids)}) + "\n")
            start += len(ids)
    vocab = [f" w{t}" if t % 7 else "\n" for t in range(50)]
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))

    proc = cli(server, "--json", "ingest", "demo", "--corpus", "cli",
               "--tokens", str(tmp_path / "tokens.npy"), "--activations", str(tmp_path / "acts.npy"),
               "--docs", str(tmp_path / "docs.jsonl"), "--vocab", str(tmp_path / "vocab.json"),
               "--batch-tokens", "40", "--progress")
    summary = json.loads(proc.stdout)
    assert (summary["documents"], summary["tokens"], summary["batches"]) == (5, sum(LENGTHS), 4)
    assert f"{sum(LENGTHS)}/{sum(LENGTHS)} tokens  100.0%" in proc.stderr
    doc = server.client.get_document("cli", docs[2][0])
    np.testing.assert_array_equal(doc.token_ids, docs[2][1])
    assert doc.token_strings == docs[2][3]
    assert_codes_match(server.client.get_activations("demo", "cli", docs[2][0], dense=True),
                       server.client.encode("demo", acts[42:49]).to_dense(), rtol=1e-5)

    z, _ = stored_dense(server.client, "cli", docs)
    f = int(np.argmax((z != 0).sum(axis=0)))
    out = cli(server, "feature", "demo", str(f), "--top", "3", "--context", "2").stdout
    assert f"count:         {np.count_nonzero(z[:, f])}\n" in out
    assert "histogram" in out and "\u2588" in out and "[[" in out
    js = json.loads(cli(server, "--json", "feature", "demo", str(f), "--quantiles", "2").stdout)
    assert int(js["stats"]["count"]) == np.count_nonzero(z[:, f])
    assert len(js["quantile_bins"]) == 2
    out = cli(server, "doc", "cli", str(docs[0][0]), "--dictionary", "demo", "--top", "5").stdout
    assert "FEATURE" in out and len(out.splitlines()) >= 5 + 4
    assert cli(server, "checkpoint", "cli-cp").stdout.startswith("checkpoint cli-cp written to ")

    bad = cli(server, "ingest", "demo", "--corpus", "cli", "--tokens", str(tmp_path / "tokens.npy"),
              "--activations", str(tmp_path / "acts.npy"), "--limit-docs", "-1", check=False)
    assert bad.returncode == 2 and "--limit_docs" in bad.stderr
    missing = cli(server, "feature", "nope", "0", check=False)
    assert missing.returncode == 1 and "NOT_FOUND" in missing.stderr
