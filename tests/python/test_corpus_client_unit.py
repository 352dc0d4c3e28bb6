"""The Python client's corpus methods against an in-process fake servicer
(no saedictd needed): request packing, ack checking, errors and the shapes
of the returned values. The end-to-end contract is test_corpus_client.py."""
from concurrent import futures

import grpc
import numpy as np
import pytest

from saedict.v1 import saedict_pb2 as pb
from saedict.v1 import saedict_pb2_grpc as pb_grpc
from saedict import Client


class FakeCorpus(pb_grpc.SaedictServicer):
    """Stores what Ingest receives; `ack_fault` corrupts the acks."""

    def __init__(self):
        self.requests = []
        self.ack_fault = None

    def Ingest(self, request_iterator, context):
        total_docs = total_tokens = 0
        for batch, req in enumerate(request_iterator):
            self.requests.append(req)
            if req.dictionary_id != "d":
                context.abort(grpc.StatusCode.NOT_FOUND, f"dictionary '{req.dictionary_id}'")
            tokens = sum(len(d.token_ids) // 4 for d in req.documents)
            total_docs += len(req.documents)
            total_tokens += tokens
            ack = pb.IngestAck(batch=batch, documents=len(req.documents), tokens=tokens,
                               total_documents=total_docs, total_tokens=total_tokens)
            if self.ack_fault == "batch":
                ack.batch += 1
            if self.ack_fault == "skip":
                continue
            yield ack

    def GetDocument(self, request, context):
        if request.doc_id != 7:
            context.abort(grpc.StatusCode.NOT_FOUND, f"document {request.doc_id}")
        return pb.GetDocumentResponse(document=pb.Document(
            corpus=request.corpus, doc_id=7, token_ids=[5, 6], token_strings=["a", "\n"]))

    def GetActivations(self, request, context):
        codes = pb.SparseCodes(num_rows=2, num_features=4,
                               row_offsets=np.array([0, 1, 3], "<u8").tobytes(),
                               indices=np.array([2, 0, 3], "<u4").tobytes(),
                               values=np.array([1.5, 2, 3], "<f4").tobytes())
        return pb.GetActivationsResponse(codes=codes, stored_precision=pb.VALUE_PRECISION_F16)

    def DocumentFeatures(self, request, context):
        self.last_document_features = request
        return pb.DocumentFeaturesResponse(num_tokens=2)


@pytest.fixture
def fake():
    servicer = FakeCorpus()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb_grpc.add_SaedictServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    client = Client(f"127.0.0.1:{port}")
    yield servicer, client
    client.close()
    server.stop(None)


def docs(lengths, d_in=3, strings=True):
    rng = np.random.default_rng(0)
    for i, n in enumerate(lengths):
        ids = np.arange(n, dtype=np.int64) + 10 * i
        yield (100 + i, ids, rng.standard_normal((n, d_in)).astype(np.float16),
               [f"t{t}" for t in ids] if strings else None)


def test_ingest_packs_whole_documents_and_checks_acks(fake):
    servicer, client = fake
    seen = []
    summary = client.ingest("d", "web", docs([3, 2, 4, 1, 9, 1]), batch_tokens=5,
                            value_precision="f16", bf16=True, progress=seen.append)
    batches = [[d.doc_id for d in r.documents] for r in servicer.requests]
    assert batches == [[100, 101], [102, 103], [104], [105]]
    assert summary["documents"] == 6 and summary["tokens"] == 20
    assert [a.batch for a in summary["acks"]] == [0, 1, 2, 3] and seen == summary["acks"]
    first = servicer.requests[0]
    assert (first.dictionary_id, first.corpus) == ("d", "web")
    assert first.value_precision == pb.VALUE_PRECISION_F16
    assert first.compute_mode == pb.COMPUTE_MODE_BF16
    doc = first.documents[1]
    assert np.frombuffer(doc.token_ids, "<i4").tolist() == [10, 11]
    assert list(doc.token_strings) == ["t10", "t11"]
    assert doc.activations.dtype == pb.DTYPE_F16 and list(doc.activations.shape) == [2, 3]


def test_ingest_rejects_bad_documents_after_sending_earlier_batches(fake):
    servicer, client = fake
    good = list(docs([2, 2], strings=False))
    bad = (9, np.arange(3), np.zeros((2, 3), np.float32), None)   # 2 rows for 3 tokens
    with pytest.raises(ValueError, match=r"document 9: activations must be \[3, d_in\]"):
        client.ingest("d", "web", good + [bad], batch_tokens=2)
    assert [[d.doc_id for d in r.documents] for r in servicer.requests] == [[100], [101]]
    with pytest.raises(ValueError, match="token_strings"):
        client.ingest("d", "web", [(1, np.arange(2), np.zeros((2, 3), np.float32), ["a"])])
    with pytest.raises(ValueError, match="integer"):
        client.ingest("d", "web", [(1, np.zeros(2), np.zeros((2, 3), np.float32), None)])
    with pytest.raises(ValueError, match="document 1: activations: dtype float64 is not supported"):
        client.ingest("d", "web", [(1, np.arange(2), np.zeros((2, 3)), None)])
    with pytest.raises(ValueError, match="value_precision"):
        client.ingest("d", "web", [], value_precision="f8")


def test_ingest_errors_and_bad_acks(fake):
    servicer, client = fake
    with pytest.raises(grpc.RpcError) as e:
        client.ingest("nope", "web", docs([1]))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    servicer.ack_fault = "batch"
    with pytest.raises(RuntimeError, match="ack 0 is for batch 1"):
        client.ingest("d", "web", docs([1, 1]), batch_tokens=1)
    servicer.ack_fault = "skip"
    with pytest.raises(RuntimeError, match="server sent 0 acks for 2 batches"):
        client.ingest("d", "web", docs([1, 1]), batch_tokens=1)
    servicer.ack_fault = None
    assert client.ingest("d", "web", []) == {"documents": 0, "tokens": 0,
                                             "replaced_documents": 0, "acks": []}


def test_reads(fake):
    servicer, client = fake
    doc = client.get_document("web", 7)
    assert doc.token_ids.dtype == np.int32 and doc.token_ids.tolist() == [5, 6]
    assert doc.text == "a\n" and len(doc) == 2
    with pytest.raises(grpc.RpcError) as e:
        client.get_document("web", 8)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    codes = client.get_activations("d", "web", 7)
    assert codes.precision == "f16" and codes.num_rows == 2
    np.testing.assert_array_equal(client.get_activations("d", "web", 7, dense=True),
                                  [[0, 0, 1.5, 0], [2, 0, 0, 3]])
    client.document_features("d", "web", 7)
    assert not servicer.last_document_features.HasField("position")
    client.document_features("d", "web", 7, position=0, n=3)
    assert servicer.last_document_features.HasField("position")
    assert servicer.last_document_features.n == 3
