"""Similarity and feature families end to end: a real saedictd, the Python
client's search_similar / feature_family / list_families / iter_families
(and get_feature's neighbours and family) on a small planted dictionary.

"plant" (SAELens folder, standard ReLU, d_in 16, d_sae 8): W_enc copies the
first 8 input dimensions into the 8 features (so the stored codes are
exactly the activations we send), and the decoder rows plant one family:
parent 0 = e0, children 1 = e0 + 0.6 e1 and 2 = e0 + 0.6 e2 (cosine 0.857
to the parent, 0.735 to each other), 3..7 = e3..e7 (orthogonal to all).
The children fire only where 0 fires; 3..7 fire at random."""
import time

import grpc
import numpy as np
import pytest

from conftest import write_saelens
from saedict.v1 import saedict_pb2 as pb

D_IN, D_SAE = 16, 8
DOCS, PER_DOC = 8, 100


def planted_sae():
    eye = np.eye(D_IN, dtype=np.float32)
    w_dec = eye[:D_SAE].copy()
    w_dec[1] = eye[0] + 0.6 * eye[1]
    w_dec[2] = eye[0] + 0.6 * eye[2]
    w_enc = np.zeros((D_IN, D_SAE), np.float32)
    w_enc[np.arange(D_SAE), np.arange(D_SAE)] = 1.0
    sae = {"W_enc": w_enc, "b_enc": np.zeros(D_SAE, np.float32), "W_dec": w_dec,
           "b_dec": np.zeros(D_IN, np.float32)}
    cfg = {"d_in": D_IN, "d_sae": D_SAE, "dtype": "float32", "architecture": "standard",
           "apply_b_dec_to_input": False, "normalize_activations": "none",
           "metadata": {"model_name": "pytest-model", "hook_name": "blocks.1.hook_resid_pre"}}
    return cfg, sae


def planted_codes(seed=3):
    """[DOCS * PER_DOC, D_SAE] codes: 0 on 40% of tokens, 1 and 2 on 30% of
    those, 3..7 on 20% each; feature f has value 1 + f where it fires."""
    rng = np.random.default_rng(seed)
    n = DOCS * PER_DOC
    on = np.zeros((n, D_SAE), bool)
    on[:, 0] = rng.random(n) < 0.4
    for child in (1, 2):
        on[:, child] = on[:, 0] & (rng.random(n) < 0.3)
    on[:, 3:] = rng.random((n, D_SAE - 3)) < 0.2
    return np.where(on, 1.0 + np.arange(D_SAE, dtype=np.float32), 0.0).astype(np.float32)


def wait_until(predicate, what, timeout=60):
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def rpc_error(fn, *args, **kwargs):
    with pytest.raises(grpc.RpcError) as e:
        fn(*args, **kwargs)
    return e.value.code(), e.value.details()


@pytest.fixture
def plant(server):
    """The server with "plant" (and its stored corpus) and "other" loaded, indexes ready."""
    c = server.client
    write_saelens(server.root / "plant", *planted_sae())
    rng = np.random.default_rng(11)
    cfg, other = planted_sae()
    other["W_dec"] = rng.standard_normal((D_SAE, D_IN)).astype(np.float32)
    write_saelens(server.root / "other", cfg, other)
    c.load_dictionary("plant", "plant")
    c.load_dictionary("other", "other")
    for id in ("plant", "other"):
        wait_until(lambda: c.get_dictionary(id).index.neighbours_state == pb.INDEX_STATE_READY,
                   f"the neighbours of {id}")
    codes = planted_codes()
    acts = np.zeros((len(codes), D_IN), np.float32)
    acts[:, :D_SAE] = codes
    docs = [(d, np.arange(PER_DOC, dtype=np.int32), acts[d * PER_DOC:(d + 1) * PER_DOC], None)
            for d in range(DOCS)]
    c.ingest("plant", "plant", docs)
    server.codes = codes
    return server


def test_search_similar_by_feature_and_vector(plant):
    c = plant.client
    found = c.search_similar("plant", feature=1, top_n=3)
    assert list(found) == ["plant"]
    r = found["plant"]
    assert r.exact and r.index_factory == "Flat"
    # 0 (0.857), 2 (0.735), then the orthogonal ones by feature: 3.
    assert r.features.tolist() == [0, 2, 3]
    np.testing.assert_allclose(r.cosines, [1 / np.sqrt(1.36), 1 / 1.36, 0.0], atol=1e-6)
    assert all(n.dictionary_id == "plant" for n in r.neighbours)

    # A numpy vector (float64 goes as float32), against two dictionaries.
    e0 = np.eye(D_IN)[0]
    found = c.search_similar("plant", vector=e0, against=["plant", "other"], top_n=3)
    assert list(found) == ["plant", "other"]
    assert found["plant"].features[0] == 0 and found["plant"].cosines[0] == pytest.approx(1.0)
    assert sorted(found["plant"].features[1:].tolist()) == [1, 2]
    assert len(found["other"].neighbours) == 3
    # [1, d_in] float16, a threshold, and `against` as one id.
    found = c.search_similar("plant", vector=e0[None, :].astype(np.float16), against="plant",
                             min_cosine=0.8, top_n=10)
    assert sorted(found["plant"].features.tolist()) == [0, 1, 2]
    assert (found["plant"].cosines >= 0.8).all()


def test_search_similar_encoder_directions(plant):
    c = plant.client
    # The encoder index is built on the first encoder search.
    def search():
        try:
            return c.search_similar("plant", feature=0, encoder=True, top_n=2)
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.FAILED_PRECONDITION, e.details()
            return None
    wait_until(lambda: search() is not None, "the encoder index")
    r = search()["plant"]
    assert len(r.neighbours) == 2
    np.testing.assert_allclose(r.cosines, 0.0, atol=1e-6)  # W_enc's columns are e0..e7


def test_search_similar_errors(plant):
    c = plant.client
    assert rpc_error(c.search_similar, "nope", feature=0)[0] == grpc.StatusCode.NOT_FOUND
    code, details = rpc_error(c.search_similar, "plant", feature=D_SAE)
    assert code == grpc.StatusCode.NOT_FOUND and "d_sae = 8" in details
    code, details = rpc_error(c.search_similar, "plant", vector=np.ones(8, np.float32))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    code, details = rpc_error(c.search_similar, "plant", feature=0, against=["demo"])
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "d_in" in details
    assert rpc_error(c.search_similar, "plant", feature=0, top_n=5000)[0] == \
        grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(ValueError):
        c.search_similar("plant")
    with pytest.raises(ValueError):
        c.search_similar("plant", feature=0, vector=np.ones(D_IN))
    with pytest.raises(ValueError):
        c.search_similar("plant", vector=np.ones((2, D_IN)))
    with pytest.raises(ValueError):
        c.search_similar("plant", feature=-1)


def test_feature_family(plant):
    c = plant.client
    codes = plant.codes
    f = c.feature_family("plant", 1)
    assert (f.dictionary_id, f.feature, f.root, f.family_size) == ("plant", 1, 0, 3)
    assert f.count == np.count_nonzero(codes[:, 1])
    assert [p.feature for p in f.parents] == [0]
    parent = f.parents[0]
    assert parent.relation == "parent" and (parent.pair_parent, parent.pair_child) == (0, 1)
    assert parent.coverage == pytest.approx(1.0)
    assert parent.decoder_cosine == pytest.approx(1 / np.sqrt(1.36), abs=1e-6)
    assert parent.count == np.count_nonzero(codes[:, 0])
    assert "1 is a child of 0" in parent.reason
    assert [s.feature for s in f.siblings] == [2] and f.siblings[0].relation == "sibling"
    assert f.children == []
    p = f.provenance
    assert (p.tokens, p.documents) == (DOCS * PER_DOC, DOCS)
    assert (p.min_decoder_cosine, p.min_coverage, p.min_child_count) == (0.3, 0.8, 5)
    assert p.computed_at.tzinfo is not None

    root = c.feature_family("plant", 0)
    assert root.parents == [] and [m.feature for m in root.children] == [1, 2]
    assert all(m.relation == "child" for m in root.children)
    assert c.feature_family("plant", 3).family_size == 1
    # Thresholds are sent: above 0.857 no child is close enough.
    strict = c.feature_family("plant", 1, min_decoder_cosine=0.9, min_coverage=0.5,
                              min_child_count=2)
    assert strict.family_size == 1 and strict.parents == []
    assert (strict.provenance.min_decoder_cosine, strict.provenance.min_coverage,
            strict.provenance.min_child_count) == (0.9, 0.5, 2)

    # The feature page carries the neighbours and the family.
    page = c.get_feature("plant", 1, neighbours=2)
    assert page.neighbours_state == pb.INDEX_STATE_READY
    assert [n.feature for n in page.neighbours] == [0, 2]
    assert page.family.root == 0
    assert c.get_feature("plant", 1, skip_family=True).family is None

    assert rpc_error(c.feature_family, "nope", 0)[0] == grpc.StatusCode.NOT_FOUND
    assert rpc_error(c.feature_family, "plant", D_SAE)[0] == grpc.StatusCode.NOT_FOUND
    code, details = rpc_error(c.feature_family, "plant", 1, min_coverage=0)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "min_coverage" in details


def test_list_and_iter_families(plant):
    c = plant.client
    page = c.list_families("plant")
    assert page.total_families == 1 and page.next_page_token == ""
    (family,) = page.families
    assert (family.root, family.members, family.depth) == (0, [0, 1, 2], 1)
    assert family.root_count == np.count_nonzero(plant.codes[:, 0])
    assert page.provenance.tokens == DOCS * PER_DOC
    assert list(c.iter_families("plant", page_size=1)) == [family]

    # Looser thresholds: more families, paged.
    loose = dict(min_decoder_cosine=-1, min_coverage=0.1, min_child_count=1)
    first = c.list_families("plant", page_size=1, **loose)
    if first.total_families > 1:
        assert len(first.families) == 1 and first.next_page_token
        rest = c.list_families("plant", page_size=1000, page_token=first.next_page_token, **loose)
        assert len(rest.families) == first.total_families - 1
    everything = list(c.iter_families("plant", page_size=1, **loose))
    assert len(everything) == first.total_families
    sizes = [len(f.members) for f in everything]
    assert sizes == sorted(sizes, reverse=True)

    assert rpc_error(c.list_families, "nope")[0] == grpc.StatusCode.NOT_FOUND
    assert rpc_error(c.list_families, "plant", page_token="bogus")[0] == \
        grpc.StatusCode.INVALID_ARGUMENT
    assert rpc_error(c.list_families, "plant", page_size=-1)[0] == \
        grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError):
        list(c.iter_families("nope"))
