"""The `saedict` package as a user gets it (run_installed.py installs the
wheel with pip and runs this module against that copy): every call of
saedict.Client against a real saedictd, activation dtypes, chunking of
arrays bigger than the server's message and row limits, the error classes
with the server's messages, retries on UNAVAILABLE (counted, against a
stopped server and a fake one), SparseCodes.to_scipy, the tables of feature
pages, the ingest progress bar, the docstring examples, and stories260k
encoded through Python against the float64 references."""
import doctest
import io
import json
import os
import pathlib
import re
import shutil
import sys
import time
import urllib.request
from concurrent import futures

import grpc
import numpy as np
import pytest

import saedict
import saedict.arrays
import saedict.client
import saedict.errors
import saedict.results
import saedict._wire
from conftest import (Server, expect_reference_codes, random_sae, read_safetensors,
                      reference_encode, write_saelens)
from saedict._progress import ProgressBar
from saedict.v1 import saedict_pb2 as pb
from saedict.v1 import saedict_pb2_grpc as pb_grpc

LIMIT_BYTES, LIMIT_ROWS = 256 << 10, 700  # the `limited` server's flags


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A saedictd with the demo dictionary and corpus, shared by read-only tests."""
    s = Server(tmp_path_factory.mktemp("demo"), demo_corpus=True)
    deadline = time.time() + 60
    while s.client.get_dictionary("demo").index.neighbours_state != pb.INDEX_STATE_READY:
        assert time.time() < deadline, "the demo neighbours never became READY"
        time.sleep(0.05)
    yield s
    s.stop()


@pytest.fixture
def limited(tmp_path):
    s = Server(tmp_path, extra_flags=[f"--max_message_bytes={LIMIT_BYTES}",
                                      f"--max_request_tokens={LIMIT_ROWS}"])
    yield s
    s.stop()


def rpc_counts(server):
    """{(method, code): calls} from the server's /metrics (loopback)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics",
                                  timeout=10).read().decode()
    out = {}
    for m in re.finditer(r'saedict_rpc_duration_seconds_count\{code="(\w+)",method="(\w+)",'
                         r'[^}]*\} (\S+)', text):
        out[(m.group(2), m.group(1))] = int(float(m.group(3)))
    return out


def acts(n, d=64, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def bf16_bits(x):
    """float32 -> bfloat16 bits by truncation (what the test needs: any bf16 values)."""
    return (np.ascontiguousarray(x, np.float32).view(np.uint32) >> 16).astype(np.uint16)


# --- the package ------------------------------------------------------------------


def test_the_installed_copy_is_imported():
    site = os.environ.get("SAEDICT_SITE")
    if not site:
        pytest.skip(f"SKIPPED: not run from the pip-installed wheel "
                    f"({os.environ.get('SAEDICT_NO_PIP', 'run_installed.py not used')})")
    for module in (saedict, saedict.client, pb, pb_grpc):
        assert pathlib.Path(module.__file__).resolve().is_relative_to(pathlib.Path(site).resolve())
    assert saedict.__version__ in os.path.basename(os.environ["SAEDICT_WHEEL"])


def test_docstring_examples_run(demo):
    globs = {"np": np, "saedict": saedict, "c": demo.client, "TARGET": demo.target}
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    out = io.StringIO()
    for module in (saedict, saedict.errors, saedict.arrays, saedict.results, saedict.client,
                   saedict.explanations, saedict.files, saedict._wire):
        for test in finder.find(module, module.__name__, globs=globs):
            runner.run(test, out=out.write)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, out.getvalue()
    assert result.attempted >= 40


def test_connect_and_the_client_constructor(server):
    with saedict.connect(server.target, timeout=5, retries=0) as c:
        assert isinstance(c, saedict.Client) and (c.timeout, c.retries) == (5, 0)
        assert [d.id for d in c.list_dictionaries()] == ["demo"]
    legacy = saedict.Client(server.target, 64 << 20, 30.0)  # the old positional order
    assert (legacy.max_message_bytes, legacy.timeout) == (64 << 20, 30.0)
    assert legacy.get_dictionary("demo").d_in == 64
    legacy.close()
    port = server.target.rsplit(":", 1)[1]
    assert saedict.connect(f"localhost:{port}").get_dictionary("demo").d_sae == 512
    for bad in (dict(retries=-1), dict(max_message_bytes=100), dict(max_request_rows=0),
                dict(certificate_chain="c.pem")):
        with pytest.raises(ValueError):
            saedict.connect(server.target, **bad)


# --- every call ----------------------------------------------------------------------


def test_dictionary_calls(server):
    c = server.client
    cfg, sae = random_sae(32, 128, seed=5)
    write_saelens(server.root / "sae", cfg, sae)
    info = c.load_dictionary("s", "sae", format="saelens", default_compute_mode="f32")
    assert (info.id, info.d_in, info.d_sae, info.k) == ("s", 32, 128, 8)
    assert sorted(d.id for d in c.list_dictionaries()) == ["demo", "s"]
    assert c.get_dictionary("s").weights_sha256 == info.weights_sha256
    with pytest.raises(saedict.AlreadyExists) as e:
        c.load_dictionary("s", "sae")
    assert "s" in e.value.message and e.value.method == "LoadDictionary"
    assert c.load_dictionary("s", "sae", replace=True).d_sae == 128
    with pytest.raises(ValueError, match="format must be one of"):
        c.load_dictionary("t", "sae", format="torch")
    c.delete_dictionary("s")
    with pytest.raises(saedict.NotFound):
        c.get_dictionary("s")
    with pytest.raises(saedict.NotFound):
        c.delete_dictionary("s")


def test_encode_decode_intervene_match_the_float64_reference(server):
    c = server.client
    cfg, sae = random_sae(32, 256, seed=7)
    write_saelens(server.root / "sae", cfg, sae)
    c.load_dictionary("s", "sae")
    x = acts(300, 32, seed=1)
    codes = c.encode("s", x, reconstruction=True, error=True, compute_mode="f32")
    assert isinstance(codes, saedict.SparseCodes) and codes.shape == (300, 256)
    assert codes.compute_mode == "f32" and len(codes.weights_sha256) == 64
    want = reference_encode(cfg, sae, x)
    np.testing.assert_array_equal(codes.to_dense() != 0, want != 0)
    np.testing.assert_allclose(codes.to_dense(), want, rtol=1e-4, atol=1e-5)
    x_hat = want @ sae["W_dec"].astype(np.float64) + sae["b_dec"]
    np.testing.assert_allclose(codes.reconstruction, x_hat, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(codes.row_error, ((x - x_hat) ** 2).sum(1), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(c.decode("s", codes), x_hat, rtol=1e-4, atol=1e-4)
    assert c.encode("s", x, top_k=3).nnz == 3 * 300

    streamed = list(c.encode_stream("s", (x[i:i + 100] for i in range(0, 300, 100)),
                                    compute_mode="f32"))
    assert [s.num_rows for s in streamed] == [100, 100, 100]
    np.testing.assert_array_equal(np.vstack([s.to_dense() for s in streamed]), codes.to_dense())

    f = codes.to_dense()
    feature = int(np.flatnonzero(f[0])[0])
    edited, edited_codes = c.intervene("s", x, [(feature, "ablate", 0.0, [0, 2]),
                                                (feature, "scale", 1.0)])
    for row in (0, 2):
        np.testing.assert_allclose(edited[row], x[row] - f[row, feature] * sae["W_dec"][feature],
                                   rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(edited[1], x[1], atol=1e-5)
    assert edited_codes.to_dense()[0, feature] == 0 and edited_codes.shape == (300, 256)
    for bad, match in [((feature, "zap", 0.0), "op must be one of"),
                       ((feature, "set", 1.0, [300]), r"row 300 out of range \[0, n=300\)"),
                       ((feature, "set", 1.0, [1, 1]), "row 1 is listed more than once"),
                       ((256, "set", 1.0), r"feature 256 out of range \[0, d_sae=256\)"),
                       ((feature, "set", float("nan")), "not finite"),
                       ((-1, "set", 1.0), "feature must be in")]:
        with pytest.raises(ValueError, match=match):
            c.intervene("s", x, [bad])


def test_corpus_calls_and_their_tables(server, capsys):
    c = server.client
    rng = np.random.default_rng(3)
    docs = [(10 + i, rng.integers(0, 50, 20), acts(20, seed=i), [f" w{j}" for j in range(20)])
            for i in range(6)]
    summary = c.ingest("demo", "web", docs, batch_tokens=50, progress=True)
    assert (summary["documents"], summary["tokens"], len(summary["acks"])) == (6, 120, 3)
    bar = capsys.readouterr().err
    assert "ingest [" in bar and "120/120 tokens 100.0%" in bar and "tok/s" in bar
    assert "ETA" in bar
    c.ingest("demo", "gen", (d for d in docs[:2]), progress=True)  # no total: no ETA
    bar = capsys.readouterr().err.splitlines()[-1]
    assert bar.startswith("ingest 40 tokens  2 docs") and "ETA" not in bar

    doc = c.get_document("web", 12)
    assert isinstance(doc, saedict.Document) and doc.text == "".join(docs[2][3])
    stored = c.get_activations("demo", "web", 12)
    assert stored.precision == "f32" and stored.shape == (20, 512)
    np.testing.assert_allclose(stored.to_dense(), c.encode("demo", docs[2][2]).to_dense(),
                               rtol=1e-5, atol=1e-6)
    z = np.vstack([c.get_activations("demo", corpus, d[0], dense=True)
                   for corpus, some in (("web", docs), ("gen", docs[:2])) for d in some])
    f = int(np.argmax((z != 0).sum(axis=0)))

    page = c.feature("demo", f, top_n=4, context_window=2)
    assert isinstance(page, saedict.FeaturePage)
    assert saedict.Client.feature is saedict.Client.get_feature
    assert page.stats.count == np.count_nonzero(z[:, f]) and page.stats.total_tokens == 160
    assert page.stats.histogram.counts.sum() == page.stats.count
    assert set(page.stats.to_dict()) == {"count", "total_tokens", "density", "mean", "std", "max"}
    examples = page.top_examples
    assert isinstance(examples, saedict.ExampleList) and len(examples) == 4
    assert examples.values.dtype == np.float32 and np.all(np.diff(examples.values) <= 0)
    np.testing.assert_allclose(examples.values, np.sort(z[:, f][z[:, f] != 0])[::-1][:4],
                               rtol=1e-6)
    e = examples[0]
    assert "[[" in e.text and e.context_values[e.peak_index] == pytest.approx(e.value)
    rows = page.records()
    assert [r["rank"] for r in rows] == [0, 1, 2, 3] and rows[0]["feature"] == f
    assert rows[0]["doc_id"] == e.doc_id and rows[0]["text"] == e.text

    top = c.top_activations("demo", f, n=3, quantile_bins=2, per_bin=2)
    assert isinstance(top, saedict.TopActivations) and len(top.top) == 3 and len(top.bins) == 2
    records = top.records()
    assert [r["bin"] for r in records[:3]] == [-1, -1, -1]
    assert {r["bin"] for r in records[3:]} <= {0, 1}
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="to_frame\\(\\) needs pandas"):
            page.to_frame()
    else:
        frame = top.to_frame()
        assert len(frame) == len(records) and list(frame["bin"][:3]) == [-1, -1, -1]
        assert list(page.to_frame()["value"]) == list(examples.values)

    features = c.document_features("demo", "web", 12, n=5)
    assert features.num_tokens == 20 and len(features.features) == 5
    with pytest.raises(saedict.NotFound):
        c.get_document("web", 99)
    made = c.create_checkpoint("cp")
    assert made.bytes > 0 and os.path.isdir(made.path)
    with pytest.raises(saedict.InvalidArgument):
        c.create_checkpoint("../x")


def test_similarity_families_compare_and_evaluate(demo):
    c = demo.client
    found = c.search_similar("demo", feature=0, top_n=5)
    result = found["demo"]
    assert isinstance(result, saedict.SimilarResult) and len(result.features) == 5
    assert 0 not in result.features and np.all(np.diff(result.cosines) <= 0)
    by_vector = c.search_similar("demo", vector=np.ones(64), top_n=3)["demo"]  # float64: as f32
    assert len(by_vector.neighbours) == 3
    assert c.search_similar("demo", vector=saedict.bfloat16(bf16_bits(np.ones(64))),
                            top_n=3)["demo"].features.tolist() == by_vector.features.tolist()
    page = c.feature("demo", 0, neighbours=3)
    assert page.neighbours_state == pb.INDEX_STATE_READY and len(page.neighbours) == 3
    family = c.feature_family("demo", 0)
    assert isinstance(family, saedict.FeatureFamily) and family.feature == 0
    assert page.family is not None and page.family.root == family.root
    families = c.list_families("demo", page_size=2)
    assert isinstance(families, saedict.FamilyPage)
    assert len(list(c.iter_families("demo", page_size=2))) == families.total_families
    cmp = c.compare_dictionaries("demo", "demo")
    np.testing.assert_array_equal(cmp.a.assigned_partner, np.arange(512))
    report = c.evaluate("demo", acts(300), chunk_rows=128, per_token_error_norms=True)
    assert report["eval_type_id"] == "core" and report["per_token_error_norms"].shape == (300,)


# --- dtypes --------------------------------------------------------------------------


def test_dtypes(server):
    c = server.client
    x = acts(50)
    dense = lambda a, **kw: c.encode("demo", a, compute_mode="f32", **kw).to_dense()
    x16 = x.astype(np.float16)
    np.testing.assert_array_equal(dense(x16), dense(x16.astype(np.float32)))
    np.testing.assert_array_equal(dense(x, dtype="float16"), dense(x16))
    np.testing.assert_array_equal(dense(x.astype(np.float64), dtype="float32"), dense(x))
    bits = bf16_bits(x)
    as_f32 = saedict.bfloat16(bits).to_float32()
    np.testing.assert_array_equal(dense(bits, dtype="bfloat16"), dense(as_f32))
    np.testing.assert_array_equal(dense(saedict.bfloat16(bits)), dense(as_f32))
    assert not np.array_equal(dense(as_f32), dense(x))  # bf16 really was sent

    wide = acts(50, 128, seed=4)
    strided = wide[:, ::2]
    assert not strided.flags.c_contiguous
    np.testing.assert_array_equal(dense(strided), dense(np.ascontiguousarray(strided)))
    np.testing.assert_array_equal(dense(np.asfortranarray(x)), dense(x))
    np.testing.assert_array_equal(dense(x.astype(">f4")), dense(x))
    one = c.encode("demo", x[3])
    assert one.shape == (1, 512)
    np.testing.assert_array_equal(one.to_dense(), dense(x[3:4]))

    for bad, match in [(x.astype(np.float64), "activations: dtype float64 is not supported"),
                       (x.astype(np.int64), "activations: dtype int64 is not supported"),
                       (bits, "dtype uint16 is not supported; if these are bfloat16 bits"),
                       (x.reshape(5, 10, 64), r"shape \[n, d_in\]")]:
        with pytest.raises(ValueError, match=match):
            c.encode("demo", bad)
    with pytest.raises(ValueError, match="dtype='bfloat16' takes the bf16 bits as a uint16 array"):
        c.encode("demo", x, dtype="bfloat16")
    with pytest.raises(ValueError, match="dtype must be 'float32', 'float16' or 'bfloat16'"):
        c.encode("demo", x, dtype="float8")
    with pytest.raises(ValueError, match="dtype int64 is not a float dtype"):
        c.encode("demo", x.astype(np.int64), dtype="float32")
    with pytest.raises(ValueError, match="bfloat16 takes the bf16 bits as a uint16 array"):
        saedict.bfloat16(x)

    # The same rules for intervene, ingest and evaluate.
    edited, _ = c.intervene("demo", bits, [(0, "set", 1.0)], dtype="bfloat16")
    same, _ = c.intervene("demo", as_f32, [(0, "set", 1.0)])
    np.testing.assert_array_equal(edited, same)
    with pytest.raises(ValueError, match="dtype float64"):
        c.intervene("demo", x.astype(np.float64), [])
    c.ingest("demo", "bf", [(1, np.arange(50), saedict.bfloat16(bits), None)])
    np.testing.assert_allclose(c.get_activations("demo", "bf", 1, dense=True),
                               c.encode("demo", as_f32).to_dense(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="document 2: activations: dtype float64"):
        c.ingest("demo", "bf", [(2, np.arange(50), x.astype(np.float64), None)])
    with pytest.raises(ValueError, match="dtype float64"):
        c.evaluate("demo", x.astype(np.float64))


# --- chunking ------------------------------------------------------------------------


def test_encode_bigger_than_the_server_limits_is_chunked(limited):
    x = acts(5000, seed=2)  # 1.25 MiB of float32: > 256 KiB and > 700 rows
    c = limited.client        # does not know the limits: learns them from the refusals
    codes = c.encode("demo", x, error=True, compute_mode="f32")
    assert (c.max_message_bytes, c.max_request_rows) == (LIMIT_BYTES, LIMIT_ROWS)
    assert codes.shape == (5000, 512) and codes.nnz == 5000 * 16
    assert codes.row_error.shape == (5000,) and codes.reconstruction is None
    blocks = [c.encode("demo", x[i:i + 400], reconstruction=True, error=True, compute_mode="f32")
              for i in range(0, 5000, 400)]
    np.testing.assert_array_equal(codes.to_dense(), np.vstack([b.to_dense() for b in blocks]))
    np.testing.assert_array_equal(codes.row_error, np.concatenate([b.row_error for b in blocks]))

    # A client told the limits sends only messages that fit: nothing refused.
    before = rpc_counts(limited)
    told = saedict.connect(limited.target, max_message_bytes=LIMIT_BYTES,
                           max_request_rows=LIMIT_ROWS)
    again = told.encode("demo", x, reconstruction=True, compute_mode="f32")
    after = rpc_counts(limited)
    np.testing.assert_array_equal(again.to_dense(), codes.to_dense())
    np.testing.assert_array_equal(again.reconstruction,
                                  np.vstack([b.reconstruction for b in blocks]))
    codes.reconstruction = again.reconstruction
    assert after.get(("EncodeStream", "OK"), 0) == before.get(("EncodeStream", "OK"), 0) + 1
    refused = lambda counts: sum(v for (_, code), v in counts.items()
                                 if code == "RESOURCE_EXHAUSTED")
    assert refused(after) == refused(before)
    assert (told.max_message_bytes, told.max_request_rows) == (LIMIT_BYTES, LIMIT_ROWS)

    (streamed,) = told.encode_stream("demo", [x], compute_mode="f32")  # one big array
    np.testing.assert_array_equal(streamed.to_dense(), codes.to_dense())

    # decode: the answer (5000 x 64 float32) is bigger than the server sends.
    fresh = saedict.connect(limited.target)
    np.testing.assert_allclose(fresh.decode("demo", codes), codes.reconstruction, atol=1e-5)
    assert fresh.max_message_bytes == LIMIT_BYTES

    # intervene: edits on rows of several chunks land on the right rows.
    f = codes.to_dense()
    feature = int(np.argmax(f[4999]))
    other = (feature + 1) % 512
    edits = [(feature, "ablate", 0.0, [0, 2500, 4999]), (other, "add", 0.5)]
    edited, edited_codes = saedict.connect(limited.target).intervene("demo", x, edits,
                                                                     compute_mode="f32")
    want_x, want_codes = [], []
    for i in range(0, 5000, 500):
        rows = [r - i for r in (0, 2500, 4999) if i <= r < i + 500]
        local = ([(feature, "ablate", 0.0, rows)] if rows else []) + [(other, "add", 0.5)]
        part_x, part_codes = told.intervene("demo", x[i:i + 500], local, compute_mode="f32")
        want_x.append(part_x)
        want_codes.append(part_codes.to_dense())
    np.testing.assert_array_equal(edited, np.vstack(want_x))
    np.testing.assert_array_equal(edited_codes.to_dense(), np.vstack(want_codes))
    assert edited_codes.to_dense()[4999, feature] == 0

    report = told.evaluate("demo", x, per_token_error_norms=True)
    assert report["per_token_error_norms"].shape == (5000,)


def test_ingest_batches_fit_in_a_message(limited):
    # 300 tokens of 256 bytes plus a 200-byte string each: 137 KiB a document.
    docs = [(i, np.arange(300), acts(300, seed=i), ["x" * 200] * 300) for i in range(6)]
    unaware = limited.client
    with pytest.raises(saedict.ResourceExhausted, match="larger than max"):
        unaware.ingest("demo", "big", docs, batch_tokens=600)  # 274 KiB messages: refused
    assert unaware.max_message_bytes == LIMIT_BYTES  # learned: the next ingest fits
    with pytest.raises(saedict.NotFound):
        unaware.get_document("big", 0)  # nothing of the refused message was stored
    summary = unaware.ingest("demo", "big", docs, batch_tokens=600)
    assert summary["documents"] == 6 and [a.documents for a in summary["acks"]] == [1] * 6
    assert sum(len(unaware.get_document("big", d[0])) for d in docs) == 1800

    told = saedict.connect(limited.target, max_message_bytes=LIMIT_BYTES,
                           max_request_rows=LIMIT_ROWS)
    short = [(i, np.arange(300), acts(300, seed=i), None) for i in range(6)]
    summary = told.ingest("demo", "short", short)  # batch_tokens 8192 > the server's 700
    assert [a.tokens for a in summary["acks"]] == [600, 600, 600]
    with pytest.raises(ValueError, match=r"document 0: \d+ bytes, more than one message carries"):
        told.ingest("demo", "huge", [(0, np.arange(2000), acts(2000), None)])
    with pytest.raises(ValueError, match="document 0: 701 tokens, more than the server takes"):
        told.ingest("demo", "huge", [(0, np.arange(701), acts(701).astype(np.float16), None)])


# --- errors --------------------------------------------------------------------------


def raw_error(server, method, request):
    channel = grpc.insecure_channel(server.target)
    try:
        getattr(pb_grpc.SaedictStub(channel), method)(request, timeout=30)
    except grpc.RpcError as e:
        return e.code(), e.details()
    finally:
        channel.close()
    raise AssertionError(f"{method} succeeded")


def test_errors_carry_the_status_and_the_servers_message(server):
    c = server.client
    x = np.zeros((2, 64), np.float32)
    with pytest.raises(saedict.NotFound) as e:
        c.encode("nope", x)
    err = e.value
    assert isinstance(err, saedict.Error) and isinstance(err, grpc.RpcError)
    code, message = raw_error(server, "Encode", pb.EncodeRequest(
        dictionary_id="nope", activations=pb.Tensor(dtype=pb.DTYPE_F32, shape=[2, 64],
                                                    data=x.tobytes())))
    assert (err.code(), err.status_code, err.details(), err.message) == (code, code, message,
                                                                        message)
    assert code == grpc.StatusCode.NOT_FOUND and "nope" in message
    assert (err.method, err.attempts) == ("Encode", 1)
    assert str(err) == f"Encode: NOT_FOUND: {message}"

    bad = np.zeros((2, 63), np.float32)
    with pytest.raises(saedict.InvalidArgument) as e:
        c.encode("demo", bad)
    code, message = raw_error(server, "Encode", pb.EncodeRequest(
        dictionary_id="demo", activations=pb.Tensor(dtype=pb.DTYPE_F32, shape=[2, 63],
                                                    data=bad.tobytes())))
    assert (e.value.code(), e.value.message) == (code, message) and "63" in message

    with pytest.raises(saedict.PermissionDenied):
        c.load_dictionary("x", "../../etc")
    with pytest.raises(saedict.FailedPrecondition):
        c.evaluate("demo", corpus="nothing-here")
    with pytest.raises(saedict.NotFound):
        c.feature("demo", 512)
    with pytest.raises(saedict.NotFound):
        list(c.encode_stream("nope", [x]))
    with pytest.raises(grpc.RpcError):  # code written against grpc keeps working
        c.decode("nope", c.encode("demo", x))


def test_every_status_code_has_its_class():
    for code in grpc.StatusCode:
        if code == grpc.StatusCode.OK:
            continue
        e = saedict.errors.from_status(code, "m")
        assert e.code() == code and e.status_code == code and type(e).status_code == code
        assert type(e).__name__.lower() == code.name.replace("_", "").lower()
        assert getattr(saedict, type(e).__name__) is type(e)


# --- retries --------------------------------------------------------------------------


def test_unavailable_is_retried_only_for_idempotent_calls(tmp_path):
    s = Server(tmp_path)
    target = s.target
    s.stop()  # nothing listens there now
    c = saedict.connect(target, retries=2, retry_backoff=0.01)
    x = np.zeros((1, 64), np.float32)
    for call in (c.list_dictionaries, lambda: c.get_dictionary("demo"),
                 lambda: c.encode("demo", x), lambda: c.feature("demo", 0)):
        with pytest.raises(saedict.Unavailable) as e:
            call()
        assert e.value.attempts == 3 and isinstance(e.value, grpc.RpcError)
    for call in (lambda: c.load_dictionary("a", "a"), lambda: c.delete_dictionary("a"),
                 lambda: c.ingest("demo", "web", [(1, np.arange(1), x, None)]),
                 lambda: c.create_checkpoint("cp")):
        with pytest.raises(saedict.Unavailable) as e:
            call()
        assert e.value.attempts == 1
    never = saedict.connect(target, retries=0)
    with pytest.raises(saedict.Unavailable) as e:
        never.list_dictionaries()
    assert e.value.attempts == 1


class Flaky(pb_grpc.SaedictServicer):
    """A fake server whose first calls are UNAVAILABLE; counts what arrives."""

    def __init__(self, failures):
        self.failures = failures
        self.calls = {}
        self.stream_first_rows = []  # per EncodeStream message: its first row's x[0]

    def _count(self, method, context):
        self.calls[method] = self.calls.get(method, 0) + 1
        if self.calls[method] <= self.failures:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"{method}: warming up")

    def ListDictionaries(self, request, context):
        self._count("ListDictionaries", context)
        return pb.ListDictionariesResponse(dictionaries=[pb.DictionaryInfo(id="d")])

    def LoadDictionary(self, request, context):
        self._count("LoadDictionary", context)
        return pb.LoadDictionaryResponse()

    def GetDictionary(self, request, context):
        return pb.GetDictionaryResponse(dictionary=pb.DictionaryInfo(
            id="d", d_in=4, d_sae=8, architecture=pb.ARCHITECTURE_TOPK, k=1))

    @staticmethod
    def _encode(request):
        """Codes with one feature per row: x[r, 0] at feature int(x[r, 0]) % 8."""
        x = np.frombuffer(request.activations.data, "<f4").reshape(tuple(request.activations.shape))
        n = x.shape[0]
        codes = pb.SparseCodes(num_rows=n, num_features=8,
                               row_offsets=np.arange(n + 1, dtype="<u8").tobytes(),
                               indices=(x[:, 0].astype(np.int64) % 8).astype("<u4").tobytes(),
                               values=x[:, 0].astype("<f4").tobytes())
        return pb.EncodeResponse(codes=codes, weights_sha256="w")

    def Encode(self, request, context):
        self._count("Encode", context)
        return self._encode(request)

    def EncodeStream(self, request_iterator, context):
        self.calls["EncodeStream"] = self.calls.get("EncodeStream", 0) + 1
        for i, request in enumerate(request_iterator):
            x0 = np.frombuffer(request.activations.data, "<f4")[0]
            self.stream_first_rows.append(float(x0))
            if self.calls["EncodeStream"] == 1 and i == 1:
                context.abort(grpc.StatusCode.UNAVAILABLE, "draining")
            yield self._encode(request)


@pytest.fixture
def flaky():
    servicer = Flaky(failures=2)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb_grpc.add_SaedictServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    server.stop(None)


def test_retries_are_counted_and_resume_a_chunked_encode(flaky):
    servicer, target = flaky
    c = saedict.connect(target, retries=3, retry_backoff=0.01, max_message_bytes=8192)
    assert [d.id for d in c.list_dictionaries()] == ["d"]
    assert servicer.calls["ListDictionaries"] == 3  # two UNAVAILABLE, then the answer
    with pytest.raises(saedict.Unavailable) as e:
        c.load_dictionary("d", "p")
    assert servicer.calls["LoadDictionary"] == 1 and e.value.attempts == 1
    one = c.encode("d", np.full((2, 4), 5, np.float32))
    assert servicer.calls["Encode"] == 3 and one.to_dense()[0, 5] == 5

    # 500 rows of 16 bytes in an 8 KiB limit: 3 EncodeStream messages of at most
    # 170 rows; the stream breaks on the second and resumes from there.
    x = np.zeros((500, 4), np.float32)
    x[:, 0] = np.arange(500)
    codes = c.encode("d", x)
    np.testing.assert_array_equal(codes.values, np.arange(500, dtype=np.float32))
    np.testing.assert_array_equal(codes.indices, np.arange(500) % 8)
    assert servicer.calls["EncodeStream"] == 2
    assert servicer.stream_first_rows == [0, 170, 170, 340]
    with pytest.raises(ValueError, match="retries"):
        saedict.connect(target, retries=-1)


# --- SparseCodes ------------------------------------------------------------------------


def test_to_scipy_and_back(server, monkeypatch):
    c = server.client
    codes = c.encode("demo", acts(40))
    m = codes.to_scipy()
    import scipy.sparse
    assert isinstance(m, scipy.sparse.csr_matrix) and m.shape == (40, 512) and m.nnz == codes.nnz
    assert m.dtype == np.float32
    np.testing.assert_array_equal(m.toarray(), codes.to_dense())
    back = saedict.SparseCodes.from_scipy(m.tocoo())
    np.testing.assert_array_equal(back.to_dense(), codes.to_dense())
    np.testing.assert_array_equal(c.decode("demo", m), c.decode("demo", codes))
    empty = saedict.SparseCodes(np.zeros(1, np.uint64), np.zeros(0, np.uint32),
                                np.zeros(0, np.float32), 512)
    assert empty.to_scipy().shape == (0, 512) and empty.to_dense().shape == (0, 512)
    with pytest.raises(ValueError, match="codes must be SparseCodes"):
        c.decode("demo", codes.to_dense())
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.sparse", None)
    with pytest.raises(ImportError, match=r"to_scipy\(\) needs scipy"):
        codes.to_scipy()


def test_progress_bar_line():
    out = io.StringIO()
    now = [0.0]
    bar = ProgressBar(total_tokens=1000, stream=out, interval=0, clock=lambda: now[0])
    now[0] = 2.0
    bar.update(pb.IngestAck(total_tokens=400, total_documents=4))
    assert out.getvalue() == ("ingest [##########--------------] 400/1,000 tokens  40.0%  "
                              "4 docs  200 tok/s  ETA 0:03\n")
    assert ProgressBar(stream=io.StringIO(), clock=lambda: 0.0).render(5000, 3, now=2.0) == \
        "ingest 5,000 tokens  3 docs  2,500 tok/s"


# --- real data -------------------------------------------------------------------------


def test_stories260k_through_python_matches_float64(server):
    folder = pathlib.Path(os.environ.get("SAEDICT_SHARED_DATA", "")) / "stories260k"
    if not folder.is_dir():
        pytest.skip("SKIPPED: ../shared/data/stories260k not found; real-data check not run")
    x = np.load(folder / "acts_layer2.npy")[:2048]  # float16, sent as it is
    assert x.dtype == np.float16
    # A 64 KiB message limit: the 256 KiB of activations go as several messages.
    c = saedict.connect(server.target, max_message_bytes=64 << 10)
    for name in ("topk_l2_a", "jumprelu_l2"):
        shutil.copytree(folder / name, server.root / name)  # a symlink out of the root is refused
        c.load_dictionary(name, name)
        got = c.encode(name, x).to_dense()
        expect_reference_codes(got, folder, name, x,
                               read_safetensors(folder / name / "sae_weights.safetensors"))
    assert c.max_message_bytes == 64 << 10


def test_encode_request_bytes_equal_protobufs_serialization():
    """saedict._wire builds EncodeRequest bytes itself (one copy of the
    activations); they must be what protobuf would serialize."""
    from saedict._wire import encode_request_bytes
    from saedict.arrays import as_rows
    x = acts(37, d=64, seed=5)
    for rows in (as_rows(x), as_rows(x.astype(np.float16)), as_rows(bf16_bits(x), "bfloat16"),
                 as_rows(x[:, ::2])):
        for start, stop in ((0, 37), (5, 6), (36, 37), (3, 3)):
            for name, options in (("demo", pb.EncodeOptions()),
                                  ("", pb.EncodeOptions(top_k=3, return_reconstruction=True)),
                                  ("x" * 300, None)):
                want = pb.EncodeRequest(dictionary_id=name, activations=rows.tensor(start, stop))
                if options is not None:
                    want.options.CopyFrom(options)
                assert encode_request_bytes(name, rows, start, stop, options) == \
                    want.SerializeToString(), (rows.dtype, start, stop, name)
