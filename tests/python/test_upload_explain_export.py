"""Upload (SAELens, sparsify, Gemma Scope, Gemma Scope 2), explanations and the delphi export through the installed Python
package against a real saedictd: each of the three formats uploaded from a
folder outside --dictionary_root (encoded equal to the float64 reference;
stories260k's real files when ../shared/data is there), a damaged and a cut
off upload leaving nothing behind, Neuronpedia .jsonl.gz and delphi imports
with line-numbered rejections, BM25 ranking on a planted set, a restart, a
delete updating the search, and export_latents read back with numpy
against get_activations (and against `saedict export`)."""
import gzip
import hashlib
import json
import os
import pathlib
import shutil
import struct
import subprocess
import time

import grpc
import numpy as np
import pytest

import saedict
from conftest import Server, expect_reference_codes, random_sae, read_safetensors, \
    reference_encode, write_saelens, write_safetensors
from saedict.v1 import saedict_pb2 as pb


def uploads_left(server):
    d = server.data_dir / "uploads"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def write_sparsify(folder, cfg, sae):
    os.makedirs(folder, exist_ok=True)
    write_safetensors(folder / "sae.safetensors",
                      {"encoder.weight": np.ascontiguousarray(sae["W_enc"].T),
                       "encoder.bias": sae["b_enc"], "W_dec": sae["W_dec"], "b_dec": sae["b_dec"]})
    (folder / "cfg.json").write_text(json.dumps(
        {"activation": "topk", "k": cfg["k"], "num_latents": cfg["d_sae"], "d_in": cfg["d_in"]}))


def write_gemma_scope_2(folder, sae):
    """Gemma Scope 2's layout: params.safetensors with lowercase names."""
    os.makedirs(folder, exist_ok=True)
    write_safetensors(folder / "params.safetensors",
                      {"w_enc": sae["W_enc"], "w_dec": sae["W_dec"], "b_enc": sae["b_enc"],
                       "b_dec": sae["b_dec"], "threshold": sae["threshold"]})


def write_gemma_scope(path, sae):
    os.makedirs(path.parent, exist_ok=True)
    np.savez(path, W_enc=sae["W_enc"], W_dec=sae["W_dec"], b_enc=sae["b_enc"],
             b_dec=sae["b_dec"], threshold=sae["threshold"])


# --- upload ---------------------------------------------------------------------------


def test_upload_of_each_format_from_outside_the_root(server, tmp_path):
    c = server.client
    x = np.random.default_rng(3).standard_normal((64, 32)).astype(np.float32)
    cfg, sae = random_sae(32, 128, seed=5)
    jcfg, jsae = random_sae(32, 128, seed=6, architecture="jumprelu")
    outside = tmp_path / "notebook"  # not under server.root
    write_saelens(outside / "saelens", cfg, sae)
    write_sparsify(outside / "sparsify", cfg, sae)
    write_gemma_scope(outside / "gemma" / "params.npz", jsae)
    write_gemma_scope_2(outside / "resid_post" / "layer_3_width_128_l0_small", jsae)
    cases = [("saelens", outside / "saelens", cfg, sae, pb.SOURCE_FORMAT_SAELENS),
             ("sparsify", outside / "sparsify", cfg, sae, pb.SOURCE_FORMAT_SPARSIFY),
             ("gemma", outside / "gemma" / "params.npz", jcfg, jsae,
              pb.SOURCE_FORMAT_GEMMA_SCOPE),
             ("gemma2", outside / "resid_post" / "layer_3_width_128_l0_small", jcfg, jsae,
              pb.SOURCE_FORMAT_GEMMA_SCOPE_2)]
    for name, path, cfg_, sae_, fmt in cases:
        info = c.upload(name, path)
        assert info.source_format == fmt and info.source_path.startswith("upload:"), name
        got = c.encode(name, x, compute_mode="f32").to_dense()
        if fmt in (pb.SOURCE_FORMAT_GEMMA_SCOPE, pb.SOURCE_FORMAT_GEMMA_SCOPE_2):
            # Gemma Scope (1 and 2) does not subtract b_dec
            pre = x.astype(np.float64) @ sae_["W_enc"] + sae_["b_enc"]
            want = pre * (pre > sae_["threshold"])
        else:
            want = reference_encode(cfg_, sae_, x)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=name)
    assert uploads_left(server) == []
    # Loaded by path, Gemma Scope 2 also takes its hook from the folder names.
    shutil.copytree(outside / "resid_post", server.root / "resid_post")
    info = c.load_dictionary("gemma2_by_path", "resid_post/layer_3_width_128_l0_small")
    assert info.hook_name == "blocks.3.hook_resid_post"
    assert info.source_format == pb.SOURCE_FORMAT_GEMMA_SCOPE_2
    with pytest.raises(saedict.AlreadyExists):
        c.upload("saelens", outside / "saelens")
    assert c.upload("saelens", outside / "saelens", replace=True).id == "saelens"


def random_transcoder(d_in, d_out, d_sae, seed):
    """A jumprelu skip transcoder's float32 tensors under SAELens's names."""
    rng = np.random.default_rng(seed)
    return {"W_enc": (rng.standard_normal((d_in, d_sae)) / np.sqrt(d_in)).astype(np.float32),
            "b_enc": (0.05 * rng.standard_normal(d_sae)).astype(np.float32),
            "W_dec": (0.3 * rng.standard_normal((d_sae, d_out))).astype(np.float32),
            "b_dec": (0.1 * rng.standard_normal(d_out)).astype(np.float32),
            "threshold": np.full(d_sae, 0.3, np.float32),
            "W_skip": (0.2 * rng.standard_normal((d_out, d_in))).astype(np.float32)}


def test_transcoders_by_upload_and_by_path(server, tmp_path):
    """SAELens jumprelu_skip_transcoder and a Gemma Scope 2 affine transcoder:
    codes, reconstruction (with x W_skip^T), decode (without it) and
    intervene at the output hook against float64 numpy."""
    c = server.client
    d_in, d_out, d_sae = 24, 40, 160
    tc = random_transcoder(d_in, d_out, d_sae, seed=7)
    x = np.random.default_rng(8).standard_normal((50, d_in)).astype(np.float32)
    cfg = {"architecture": "jumprelu_skip_transcoder", "d_in": d_in, "d_sae": d_sae,
           "d_out": d_out, "dtype": "float32", "apply_b_dec_to_input": False,
           "normalize_activations": "none",
           "metadata": {"model_name": "pytest-model", "hook_name": "blocks.2.ln2.hook_normalized",
                        "hook_name_out": "blocks.2.hook_mlp_out"}}
    outside = tmp_path / "notebook"
    write_saelens(outside / "skip_tc", cfg, tc)
    gs2 = outside / "transcoder_all" / "layer_5_width_160_l0_small_affine"
    os.makedirs(gs2)
    write_safetensors(gs2 / "params.safetensors",
                      {"w_enc": tc["W_enc"], "w_dec": tc["W_dec"], "b_enc": tc["b_enc"],
                       "b_dec": tc["b_dec"], "threshold": tc["threshold"],
                       "affine_skip_connection": np.ascontiguousarray(tc["W_skip"].T)})
    x64 = x.astype(np.float64)
    pre = x64 @ tc["W_enc"] + tc["b_enc"]
    want_codes = pre * (pre > tc["threshold"])
    skip = x64 @ tc["W_skip"].T.astype(np.float64)
    for name, path, fmt in (("skip_tc", outside / "skip_tc", pb.SOURCE_FORMAT_SAELENS),
                            ("gs2_tc", gs2, pb.SOURCE_FORMAT_GEMMA_SCOPE_2)):
        info = c.upload(name, path)
        assert info.source_format == fmt, name
        assert (info.d_in, info.d_out, info.skip_connection) == (d_in, d_out, True), name
        codes = c.encode(name, x, reconstruction=True, compute_mode="f32")
        got = codes.to_dense()
        np.testing.assert_allclose(got, want_codes, rtol=1e-4, atol=1e-5, err_msg=name)
        decoded_ref = got.astype(np.float64) @ tc["W_dec"] + tc["b_dec"]
        assert codes.reconstruction.shape == (50, d_out)
        np.testing.assert_allclose(codes.reconstruction, decoded_ref + skip, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(c.decode(name, codes), decoded_ref, rtol=1e-4, atol=1e-4)
        top = int(np.argmax(got[0]))
        edited, edited_codes = c.intervene(name, x, [(top, "ablate", 0.0, [0])])
        f2 = edited_codes.to_dense()
        assert f2[0, top] == 0.0 and edited.shape == (50, d_out)
        np.testing.assert_allclose(edited, f2.astype(np.float64) @ tc["W_dec"] + tc["b_dec"] + skip,
                                   rtol=1e-4, atol=1e-4)
        with pytest.raises(saedict.InvalidArgument, match="is a transcoder"):
            c.encode(name, x, error=True)
    assert c.get_dictionary("skip_tc").hook_name_out == "blocks.2.hook_mlp_out"
    # Loaded by path, the Gemma Scope 2 transcoder names both hooks from its folders.
    shutil.copytree(outside / "transcoder_all", server.root / "transcoder_all")
    info = c.load_dictionary("gs2_by_path", "transcoder_all/layer_5_width_160_l0_small_affine")
    assert (info.hook_name, info.hook_name_out) == ("blocks.5.ln2.hook_normalized",
                                                    "blocks.5.hook_mlp_out")
    # A declared skip without its tensor is refused like LoadDictionary refuses it.
    del tc["W_skip"]
    write_saelens(outside / "broken_tc", cfg, tc)
    with pytest.raises(saedict.InvalidArgument, match="missing tensor 'W_skip'"):
        c.upload("broken_tc", outside / "broken_tc")
    assert uploads_left(server) == []


def test_upload_of_the_real_stories260k_files(server):
    folder = pathlib.Path(os.environ.get("SAEDICT_SHARED_DATA", "")) / "stories260k"
    if not folder.is_dir():
        pytest.skip("SKIPPED: ../shared/data/stories260k not found; real-data upload not run")
    c = server.client
    x = np.load(folder / "acts_layer2.npy")[:2048]
    # Straight from ../shared/data, far outside the server's root.
    for name, path, ref in (("a_saelens", folder / "topk_l2_a", "topk_l2_a"),
                            ("a_sparsify", folder / "topk_l2_a.sparsify", "topk_l2_a"),
                            ("j_gemma", folder / "jumprelu_l2.npz", "jumprelu_l2")):
        c.upload(name, path, progress=True)
        got = c.encode(name, x).to_dense()
        expect_reference_codes(got, folder, ref, x,
                               read_safetensors(folder / ref / "sae_weights.safetensors"))
    assert uploads_left(server) == []


def test_a_damaged_or_cut_off_upload_leaves_nothing(server, tmp_path):
    cfg, sae = random_sae(32, 4096, seed=1)  # 1 MiB of weights: several chunks
    write_saelens(tmp_path / "sae", cfg, sae)
    stub = server.client._stub
    files = sorted((tmp_path / "sae").iterdir())
    header = pb.UploadDictionaryRequest.Header(id="sae")
    for f in files:
        header.files.add(name=f.name, size=f.stat().st_size,
                         sha256=hashlib.sha256(f.read_bytes()).hexdigest())

    def chunks(limit=None, flip=False):
        yield pb.UploadDictionaryRequest(header=header)
        sent = 0
        for i, f in enumerate(files):
            data = bytearray(f.read_bytes())
            if flip and i == len(files) - 1:
                data[len(data) // 2] ^= 1
            for at in range(0, len(data), 64 << 10):
                if limit is not None and sent >= limit:
                    raise RuntimeError("the notebook kernel was interrupted")
                yield pb.UploadDictionaryRequest(file_index=i, offset=at,
                                                 data=bytes(data[at:at + (64 << 10)]))
                sent += 1

    with pytest.raises(grpc.RpcError) as damaged:
        stub.UploadDictionary(chunks(flip=True), timeout=30)
    assert damaged.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "SHA-256" in damaged.value.details()
    with pytest.raises(grpc.RpcError) as cut:  # the client dies halfway
        stub.UploadDictionary(chunks(limit=8), timeout=30)
    assert cut.value.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN)
    deadline = time.time() + 10
    while uploads_left(server) and time.time() < deadline:
        time.sleep(0.05)
    assert uploads_left(server) == []
    assert "sae" not in [d.id for d in server.client.list_dictionaries()]
    # The same files, sent whole, load.
    assert server.client.upload("sae", tmp_path / "sae").d_sae == 4096
    with pytest.raises(FileNotFoundError):
        server.client.upload("x", tmp_path / "missing")
    with pytest.raises(ValueError, match="format"):
        server.client.upload("x", tmp_path / "sae", format="onnx")


def test_upload_over_the_size_limit_is_refused(tmp_path):
    s = Server(tmp_path, extra_flags=["--max_upload_mb=1"])
    try:
        cfg, sae = random_sae(64, 4096, seed=2)  # 2 MiB
        write_saelens(tmp_path / "big", cfg, sae)
        with pytest.raises(saedict.ResourceExhausted, match="--max_upload_mb"):
            s.client.upload("big", tmp_path / "big")
        assert uploads_left(s) == []
    finally:
        s.stop()


# --- explanations ---------------------------------------------------------------------


def test_explanations_set_rank_import_restart_delete(tmp_path):
    s = Server(tmp_path)
    try:
        c = s.client
        planted = {1: "days of the week", 2: "the word week and the word weekend",
                   3: "week week week calendar", 4: "months of the year",
                   5: "calendar days in a month and a week of days"}
        ids = {f: c.set_explanation("demo", f, t).id for f, t in planted.items()}
        hits = c.search_explanations("week days", dictionaries=["demo"])
        # BM25 order of the planted set (k1 1.2, b 0.75), by hand: both words
        # in a short text, then both in a longer one, then "week" x3, then x1.
        assert [h.explanation.feature for h in hits] == [1, 5, 3, 2]
        assert hits.matching == 4 and hits.query_terms == ["week", "days"]
        assert hits.hits[0].snippet == "[[days]] of the [[week]]"
        assert hits.records()[0]["feature"] == 1

        gz = tmp_path / "export" / "explanations" / "batch-0.jsonl.gz"
        gz.parent.mkdir(parents=True)
        rows = [
            {"modelId": "gpt2-small", "layer": "6-res-jb", "index": "10",
             "description": "legal language", "typeName": "oai_token-act-pair",
             "explanationModelName": "gpt-4o-mini", "scoreV1": 0.8},
            {"modelId": "gpt2-small", "layer": "6-res-jb", "index": 11, "description": ""},
            "{broken json",
            {"modelId": "gpt2-small", "layer": "6-res-jb", "index": "99999",
             "description": "past d_sae"},
            {"modelId": "gpt2-small", "layer": "7-res-jb", "index": "1", "description": "unmapped"},
        ]
        with gzip.open(gz, "wt") as f:
            for r in rows:
                f.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
        delphi = tmp_path / "delphi"
        delphi.mkdir()
        (delphi / "layers.3_latent20.txt").write_text(json.dumps("Latin legal terms"))
        (delphi / "layers.3_latent21.txt").write_text("not JSON")
        got = c.import_explanations(tmp_path / "export", mapping={"gpt2-small/6-res-jb": "demo"},
                                    progress=True)
        assert (got.imported, got.rejected, got.files) == (1, 4, 1)
        assert [(p.line, p.file_name) for p in got.problems] == \
            [(2, "explanations/batch-0.jsonl.gz"), (3, "explanations/batch-0.jsonl.gz"),
             (4, "explanations/batch-0.jsonl.gz"), (5, "explanations/batch-0.jsonl.gz")]
        assert "gpt2-small/7-res-jb" in got.problems[3].message
        got = c.import_explanations(delphi, dictionary="demo")
        assert (got.imported, got.rejected) == (1, 1) and got.problems[0].line == 1
        legal = c.search_explanations("legal")
        # "legal" once in each; the two-word text is shorter, so it ranks first.
        assert [h.explanation.feature for h in legal] == [10, 20]
        page = c.feature("demo", 10)
        assert page.explanations[0].text == "legal language"
        assert page.explanations[0].source == "oai_token-act-pair"
        assert page.explanations[0].score == pytest.approx(0.8)
        with pytest.raises(ValueError):
            c.import_explanations(delphi)
        with pytest.raises(saedict.NotFound, match="default_dictionary_id"):
            c.import_explanations(delphi, dictionary="nope")

        # A restart keeps everything; a delete updates the search index.
        s.stop()
        s = Server(tmp_path)
        c = s.client
        assert len(c.search_explanations("week", dictionaries=["demo"])) == 4
        c.delete_explanation("demo", 3, ids[3])
        assert [h.explanation.feature for h in c.search_explanations("calendar")] == [5]
        with pytest.raises(saedict.NotFound):
            c.delete_explanation("demo", 3, ids[3])
        with pytest.raises(saedict.InvalidArgument, match="text: empty"):
            c.set_explanation("demo", 1, "   ")
        with pytest.raises(saedict.InvalidArgument, match="has no words"):
            c.search_explanations("?!")
        assert [e.text for e in c.explanations("demo", 1)] == ["days of the week"]
    finally:
        s.stop()


# --- export ---------------------------------------------------------------------------


def read_st(path):
    """{name: array} of a safetensors file (U16, U32, F16, I64, F32)."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    types = {"U16": "<u2", "U32": "<u4", "F16": "<f2", "I64": "<i8", "F32": "<f4"}
    return {k: np.frombuffer(raw[8 + n + t["data_offsets"][0]:8 + n + t["data_offsets"][1]],
                             types[t["dtype"]]).reshape(t["shape"])
            for k, t in header.items() if k != "__metadata__"}


def test_export_latents_reads_back_equal_to_get_activations(server, tmp_path):
    c = server.client
    cfg, sae = random_sae(32, 96, seed=9, k=6)
    write_saelens(tmp_path / "sae", cfg, sae)
    c.upload("ex", tmp_path / "sae")
    rng = np.random.default_rng(4)
    lengths = {3: 9, 5: 4, 8: 12}
    docs = [(d, rng.integers(0, 500, n).astype(np.int32),
             rng.standard_normal((n, 32)).astype(np.float32), None) for d, n in lengths.items()]
    c.ingest("ex", "web", docs)
    out = c.export_latents("ex", "web", tmp_path / "cache", n_splits=3, ctx_len=5,
                           pad_token_id=1, progress=True)
    assert out == tmp_path / "cache" / "blocks.1.hook_resid_pre"
    config = json.loads((out / "config.json").read_text())
    assert (config["cache_ctx_len"], config["n_tokens"], config["n_splits"]) == (5, 25, 3)
    seqs = json.loads((out / "saedict_sequences.json").read_text())
    assert seqs["doc_ids"] == [3, 3, 5, 8, 8, 8]
    # The dense codes each sequence position should hold, from GetActivations.
    want = np.zeros((6, 5, 96), np.float32)
    want_tokens = np.ones((6, 5), np.int64)
    for s, (doc, off, n) in enumerate(zip(seqs["doc_ids"], seqs["offsets"], seqs["lengths"])):
        dense = c.get_activations("ex", "web", doc).to_dense()
        want[s, :n] = dense[off:off + n]
        tokens = dict((d, t) for d, t, _, _ in docs)[doc]
        want_tokens[s, :n] = tokens[off:off + n]
    have = np.zeros_like(want)
    files = sorted(out.glob("*.safetensors"))
    assert [f.name for f in files] == ["0_31.safetensors", "32_63.safetensors",
                                       "64_95.safetensors"]
    for f in files:
        start, end = map(int, f.stem.split("_"))
        t = read_st(f)
        assert t["locations"].dtype == np.uint16 and t["activations"].dtype == np.float16
        np.testing.assert_array_equal(t["tokens"], want_tokens)
        loc = t["locations"].astype(np.int64)
        assert (loc[:, 2] + start <= end).all()
        order = np.lexsort((loc[:, 2], loc[:, 1], loc[:, 0]))
        np.testing.assert_array_equal(order, np.arange(len(loc)))  # delphi's order
        have[loc[:, 0], loc[:, 1], loc[:, 2] + start] = t["activations"]
    np.testing.assert_array_equal(have, want.astype(np.float16).astype(np.float32))
    # `saedict export` writes the same arrays.
    cli = subprocess.run([os.environ["SAEDICT_CLI"], f"--server={server.target}", "export", "ex",
                          "web", str(tmp_path / "cli"), "--n_splits=3", "--ctx_len=5",
                          "--pad_token_id=1"], capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    for f in files:
        a, b = read_st(f), read_st(tmp_path / "cli" / out.name / f.name)
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    with pytest.raises(FileExistsError):
        c.export_latents("ex", "web", tmp_path / "cache")
    with pytest.raises(saedict.NotFound, match="no documents"):
        c.export_latents("ex", "nope", tmp_path / "c2")
    with pytest.raises(saedict.InvalidArgument, match="n_splits"):
        c.export_latents("ex", "web", tmp_path / "c3", n_splits=97)
    assert not (tmp_path / "c3").exists() or not any((tmp_path / "c3").iterdir())
