"""saedict_client: a small notebook-friendly Python client for saedictd.

    from saedict_client import Client
    c = Client("localhost:50051")
    c.load_dictionary("sae", "path/under/dictionary_root")
    codes = c.encode("sae", acts)          # acts: np.ndarray [n, d_in] f32/f16
    dense = codes.to_dense()                # [n, d_sae]
    x_hat = c.decode("sae", codes)

    # Corpus: store documents with their codes, then explore features.
    c.ingest("sae", "web", [(doc_id, token_ids, acts, token_strings), ...])
    c.get_document("web", 7).text
    c.get_activations("sae", "web", 7).to_dense()   # the stored codes
    f = c.get_feature("sae", 123)                   # stats, histogram, top examples
    c.top_activations("sae", 123, n=20, quantile_bins=5)
    c.document_features("sae", "web", 7, position=3)

    # Similarity and feature families (once c.get_dictionary("sae").index is READY).
    c.search_similar("sae", feature=123)["sae"].features   # nearest decoder directions
    c.search_similar("sae", vector=direction, against=["sae", "other"], top_n=5)
    fam = c.feature_family("sae", 123)              # .parents, .children, .siblings, .root
    for family in c.iter_families("sae"): ...       # every family, largest first

    # Comparison and evaluation (for CI jobs and papers).
    cmp = c.compare_dictionaries("run_a", "run_b")  # decoder cosine, exact assignment
    cmp.summary.mean_max_a_to_b, cmp.a.best_partner, cmp.a.assigned_partner  # numpy arrays
    report = c.evaluate("sae", acts)                 # dict in SAEBench's core JSON layout

Needs the generated stubs (package `saedict.v1`, made by the CMake target
`saedict_python_stubs` into <build>/python) on sys.path, plus grpcio and numpy.
A grpc.RpcError carries the server's status code and message unchanged; a
bad argument found before anything is sent raises ValueError.
"""
import collections
import datetime
import json
import os
import sys
from dataclasses import dataclass, field

import grpc
import numpy as np

from saedict.v1 import saedict_pb2 as pb
from saedict.v1 import saedict_pb2_grpc as pb_grpc

_DTYPES = {np.dtype(np.float32): pb.DTYPE_F32, np.dtype(np.float16): pb.DTYPE_F16}
_FORMATS = {"auto": pb.SOURCE_FORMAT_AUTO, "saelens": pb.SOURCE_FORMAT_SAELENS,
            "sparsify": pb.SOURCE_FORMAT_SPARSIFY, "gemma_scope": pb.SOURCE_FORMAT_GEMMA_SCOPE}
_EDIT_OPS = {"set": pb.EDIT_OP_SET, "add": pb.EDIT_OP_ADD, "scale": pb.EDIT_OP_SCALE,
             "ablate": pb.EDIT_OP_ABLATE}
_COMPUTE_MODES = {"f32": pb.COMPUTE_MODE_F32, "fast_exact": pb.COMPUTE_MODE_FAST_EXACT,
                  "bf16": pb.COMPUTE_MODE_BF16}
_COMPUTE_MODE_NAMES = {v: k for k, v in _COMPUTE_MODES.items()}


def _compute_mode(name, bf16):
    """The EncodeOptions / IngestRequest compute_mode, or None to leave it unset."""
    if name is not None and name not in _COMPUTE_MODES:
        raise ValueError(f"compute_mode must be 'f32', 'fast_exact' or 'bf16', got {name!r}")
    if bf16:
        if name not in (None, "bf16"):
            raise ValueError(f"bf16=True contradicts compute_mode={name!r}")
        return pb.COMPUTE_MODE_BF16
    return None if name is None else _COMPUTE_MODES[name]


_PRECISIONS = {"f32": pb.VALUE_PRECISION_F32, "f16": pb.VALUE_PRECISION_F16}
_PRECISION_NAMES = {v: k for k, v in _PRECISIONS.items()}


@dataclass
class SparseCodes:
    """CSR codes: row i holds indices[row_offsets[i]:row_offsets[i+1]]."""
    row_offsets: np.ndarray  # uint64 [n+1]
    indices: np.ndarray      # uint32 [nnz]
    values: np.ndarray       # float32 [nnz]
    num_features: int
    reconstruction: np.ndarray = None  # float32 [n, d_in] when asked
    row_error: np.ndarray = None       # float32 [n] when asked
    precision: str = None              # "f32" / "f16": how stored codes were kept
    weights_sha256: str = None         # content hash of the weights that encoded these codes
    compute_mode: str = None           # the mode that ran: "f32", "fast_exact" (both exact,
                                       # batch-invariant, bit-identical) or "bf16"

    @property
    def num_rows(self):
        return len(self.row_offsets) - 1

    def to_dense(self):
        out = np.zeros((self.num_rows, self.num_features), np.float32)
        rows = np.repeat(np.arange(self.num_rows), np.diff(self.row_offsets).astype(np.int64))
        out[rows, self.indices.astype(np.int64)] = self.values
        return out

    def to_proto(self):
        return pb.SparseCodes(num_rows=self.num_rows, num_features=self.num_features,
                              row_offsets=self.row_offsets.astype("<u8").tobytes(),
                              indices=self.indices.astype("<u4").tobytes(),
                              values=self.values.astype("<f4").tobytes())


def tensor(array):
    array = np.ascontiguousarray(array)
    if array.dtype not in _DTYPES:
        array = array.astype(np.float32)
    return pb.Tensor(dtype=_DTYPES[array.dtype], shape=list(array.shape),
                     data=array.astype(array.dtype.newbyteorder("<")).tobytes())


def from_tensor(t):
    assert t.dtype == pb.DTYPE_F32, t.dtype
    return np.frombuffer(t.data, "<f4").reshape(tuple(t.shape))


@dataclass
class Document:
    """A stored document: token ids and (when the corpus has them) display strings."""
    corpus: str
    doc_id: int
    token_ids: np.ndarray                 # int32 [n]
    token_strings: list = field(default_factory=list)  # [] or n strings

    @property
    def text(self):
        """The token strings concatenated, or the ids separated by spaces."""
        if self.token_strings:
            return "".join(self.token_strings)
        return " ".join(str(t) for t in self.token_ids)

    def __len__(self):
        return len(self.token_ids)


def _ingest_document(doc):
    """(doc_id, token_ids, activations[, token_strings]) -> pb.IngestDocument."""
    if len(doc) not in (3, 4):
        raise ValueError("a document is (doc_id, token_ids, activations, token_strings or None)")
    doc_id, token_ids, activations = doc[:3]
    token_strings = doc[3] if len(doc) == 4 else None
    ids = np.asarray(token_ids)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"document {doc_id}: token_ids must be a 1-D integer array, "
                         f"got {ids.dtype} {ids.shape}")
    if ids.size and (ids.min() < 0 or ids.max() > np.iinfo(np.int32).max):
        raise ValueError(f"document {doc_id}: token ids must be in [0, 2**31)")
    acts = np.asarray(activations)
    if acts.ndim != 2 or acts.shape[0] != len(ids):
        raise ValueError(f"document {doc_id}: activations must be [{len(ids)}, d_in] "
                         f"(one row per token), got {acts.shape}")
    strings = list(token_strings) if token_strings is not None else []
    if strings and len(strings) != len(ids):
        raise ValueError(f"document {doc_id}: {len(strings)} token_strings for {len(ids)} tokens")
    return pb.IngestDocument(doc_id=int(doc_id), token_ids=ids.astype("<i4").tobytes(),
                             token_strings=strings, activations=tensor(acts))


def _print_progress(ack):
    print(f"\ringested {ack.total_documents} documents, {ack.total_tokens} tokens",
          end="", file=sys.stderr, flush=True)


def _codes(proto, response=None):
    codes = SparseCodes(np.frombuffer(proto.row_offsets, "<u8"),
                        np.frombuffer(proto.indices, "<u4"),
                        np.frombuffer(proto.values, "<f4"), proto.num_features)
    if response is not None and response.HasField("reconstruction"):
        codes.reconstruction = from_tensor(response.reconstruction)
    if response is not None and response.HasField("row_error"):
        codes.row_error = from_tensor(response.row_error)
    if response is not None and hasattr(response, "weights_sha256"):
        codes.weights_sha256 = response.weights_sha256
        codes.compute_mode = _COMPUTE_MODE_NAMES.get(response.compute_mode, "f32")
    return codes


@dataclass
class Neighbour:
    """A feature of `dictionary_id` and the cosine of its direction to the query."""
    dictionary_id: str
    feature: int
    cosine: float


@dataclass
class SimilarResult:
    """The neighbours found in one searched dictionary, cosine descending."""
    dictionary_id: str
    neighbours: list        # [Neighbour]
    exact: bool             # the exact top-N (False: an approximate index answered)
    index_factory: str      # the FAISS factory string of the index ("Flat", ...)

    @property
    def features(self):
        return np.array([n.feature for n in self.neighbours], dtype=np.uint32)

    @property
    def cosines(self):
        return np.array([n.cosine for n in self.neighbours], dtype=np.float64)


@dataclass
class FamilyMember:
    """A relative of the asked feature, with the scores of the parent/child pair
    it belongs to: (member, its child on the chain) for a parent, (asked,
    member) for a child, (parent, member) for a sibling."""
    feature: int
    relation: str           # "parent", "child" or "sibling"
    pair_parent: int
    pair_child: int
    decoder_cosine: float
    coverage: float         # P(pair_parent fires | pair_child fires)
    jaccard: float
    phi: float
    count: int              # tokens the member fires on
    reason: str


@dataclass
class FamilyProvenance:
    """When and over what the families were computed, and with which thresholds."""
    computed_at: datetime.datetime  # UTC
    tokens: int
    documents: int
    min_decoder_cosine: float
    min_coverage: float
    min_child_count: int
    neighbours_per_feature: int
    seconds: float


@dataclass
class FeatureFamily:
    """The family of one feature (FeatureFamily)."""
    dictionary_id: str
    feature: int
    count: int              # tokens the feature fires on
    parents: list           # [FamilyMember], nearest first, up to the root
    children: list          # [FamilyMember], coverage descending
    siblings: list          # [FamilyMember], coverage descending
    root: int               # the feature itself when it has no parent
    family_size: int        # 1 when it has no family
    provenance: FamilyProvenance


@dataclass
class Family:
    """One family of ListFamilies."""
    root: int
    members: list           # root first, then the descendants ascending
    depth: int              # longest chain below the root
    root_count: int


@dataclass
class FamilyPage:
    """One page of ListFamilies: families by size descending, then root."""
    families: list          # [Family]
    total_families: int
    next_page_token: str    # "" on the last page
    provenance: FamilyProvenance


_RELATIONS = {pb.FAMILY_RELATION_PARENT: "parent", pb.FAMILY_RELATION_CHILD: "child",
              pb.FAMILY_RELATION_SIBLING: "sibling"}


def _provenance(p):
    computed_at = datetime.datetime.fromtimestamp(
        p.computed_at.seconds + p.computed_at.nanos * 1e-9, tz=datetime.timezone.utc)
    return FamilyProvenance(computed_at, p.tokens, p.documents, p.min_decoder_cosine,
                            p.min_coverage, p.min_child_count, p.neighbours_per_feature,
                            p.seconds)


def _member(m):
    return FamilyMember(m.feature, _RELATIONS.get(m.relation, str(m.relation)), m.pair_parent,
                        m.pair_child, m.decoder_cosine, m.coverage, m.jaccard, m.phi, m.count,
                        m.reason)


def _feature_family(f):
    return FeatureFamily(f.dictionary_id, f.feature, f.count, [_member(m) for m in f.parents],
                         [_member(m) for m in f.children], [_member(m) for m in f.siblings],
                         f.root, f.family_size, _provenance(f.provenance))


def _family_options(min_decoder_cosine, min_coverage, min_child_count):
    options = pb.FamilyOptions()
    if min_decoder_cosine is not None:
        options.min_decoder_cosine = float(min_decoder_cosine)
    if min_coverage is not None:
        options.min_coverage = float(min_coverage)
    if min_child_count is not None:
        options.min_child_count = int(min_child_count)
    return options


def _feature_index(feature):
    if isinstance(feature, (bool, np.bool_)) or not isinstance(feature, (int, np.integer)):
        raise ValueError(f"feature must be an integer, got {feature!r}")
    if not 0 <= int(feature) < 2**32:
        raise ValueError(f"feature must be in [0, 2**32), got {feature}")
    return int(feature)


@dataclass
class FeatureMatches:
    """Per-feature matches of one side of a comparison, as numpy arrays
    indexed by feature: best partner (-1: none) and its similarity, the
    one-to-one partner (-1: unassigned) and its similarity, matched flags."""
    best_partner: np.ndarray
    best_similarity: np.ndarray
    assigned_partner: np.ndarray
    assigned_similarity: np.ndarray
    matched: np.ndarray


@dataclass
class Comparison:
    """A CompareDictionaries answer: the CompareSummary message (MMCS or mean
    max correlation, fractions matched, assignment mean, SVCCA, timings) and
    the matches of A's features (.a) and of B's (.b); None when
    skip_matches."""
    summary: object
    a: object = None
    b: object = None


def _matches(rows, size):
    out = FeatureMatches(np.full(size, -1, np.int64), np.zeros(size), np.full(size, -1, np.int64),
                         np.zeros(size), np.zeros(size, bool))
    for m in rows:
        out.best_partner[m.feature] = m.best_partner
        out.best_similarity[m.feature] = m.best_similarity
        out.assigned_partner[m.feature] = m.assigned_partner
        out.assigned_similarity[m.feature] = m.assigned_similarity
        out.matched[m.feature] = m.matched
    return out


_COMPARE_METHODS = {"decoder": pb.COMPARE_METHOD_DECODER,
                    "activation": pb.COMPARE_METHOD_ACTIVATION}


class _BearerToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                   grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds `authorization: Bearer TOKEN` to every call of the channel."""

    def __init__(self, token):
        self._header = ("authorization", "Bearer " + token)

    def _details(self, details):
        metadata = list(details.metadata or []) + [self._header]
        return _CallDetails(details.method, details.timeout, metadata, details.credentials,
                            getattr(details, "wait_for_ready", None),
                            getattr(details, "compression", None))

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation, details, requests):
        return continuation(self._details(details), requests)

    def intercept_stream_stream(self, continuation, details, requests):
        return continuation(self._details(details), requests)


class _CallDetails(collections.namedtuple(
        "_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready",
                         "compression")), grpc.ClientCallDetails):
    pass


def _read_pem(path):
    if path is None:
        return None
    with open(path, "rb") as f:
        return f.read()


class Client:
    def __init__(self, target="localhost:50051", max_message_bytes=256 << 20, timeout=60.0,
                 token=None, tls=False, root_certificates=None, certificate_chain=None,
                 private_key=None, server_name=None):
        """token: the bearer token of a server with auth (default: $SAEDICT_TOKEN).
        tls=True, or any of the PEM file paths root_certificates (CA bundle; None:
        the system's), certificate_chain + private_key (mutual TLS): a TLS channel.
        server_name: the name the server's certificate carries, when not the host."""
        options = [("grpc.max_send_message_length", max_message_bytes),
                   ("grpc.max_receive_message_length", max_message_bytes)]
        if target.startswith("localhost:"):  # RFC 6761 loopback; needs no /etc/hosts or DNS
            target = "ipv4:127.0.0.1:" + target[len("localhost:"):]
        if (certificate_chain is None) != (private_key is None):
            raise ValueError("certificate_chain and private_key go together: give both or neither")
        if tls or root_certificates or certificate_chain:
            if server_name:
                options.append(("grpc.ssl_target_name_override", server_name))
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read_pem(root_certificates),
                private_key=_read_pem(private_key),
                certificate_chain=_read_pem(certificate_chain))
            self._channel = grpc.secure_channel(target, credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(target, options=options)
        token = token if token is not None else os.environ.get("SAEDICT_TOKEN")
        channel = self._channel
        if token:
            channel = grpc.intercept_channel(channel, _BearerToken(token))
        self._stub = pb_grpc.SaedictStub(channel)
        self._timeout = timeout

    def close(self):
        self._channel.close()

    def load_dictionary(self, id, path, format="auto", replace=False, default_compute_mode=None):
        """default_compute_mode: the mode of requests that name none ("f32",
        "fast_exact", "bf16"); None: the server's --default_compute_mode."""
        req = pb.LoadDictionaryRequest(id=id, path=str(path), format=_FORMATS[format],
                                       replace=replace)
        mode = _compute_mode(default_compute_mode, False)
        if mode is not None:
            req.default_compute_mode = mode
        return self._stub.LoadDictionary(req, timeout=self._timeout).dictionary

    def list_dictionaries(self):
        return list(self._stub.ListDictionaries(pb.ListDictionariesRequest(),
                                                timeout=self._timeout).dictionaries)

    def get_dictionary(self, id):
        return self._stub.GetDictionary(pb.GetDictionaryRequest(id=id),
                                        timeout=self._timeout).dictionary

    def delete_dictionary(self, id):
        self._stub.DeleteDictionary(pb.DeleteDictionaryRequest(id=id), timeout=self._timeout)

    @staticmethod
    def _options(top_k, reconstruction, error, bf16, compute_mode=None):
        options = pb.EncodeOptions(top_k=top_k, return_reconstruction=reconstruction,
                                   return_error=error)
        mode = _compute_mode(compute_mode, bf16)
        if mode is not None:
            options.compute_mode = mode
        return options

    def encode(self, id, activations, top_k=0, reconstruction=False, error=False, bf16=False,
               compute_mode=None):
        """compute_mode: None (the dictionary's default_compute_mode), "f32",
        "fast_exact" (the f32 codes bit for bit, faster where the server has
        AMX) or "bf16" (approximate; bf16=True says the same)."""
        req = pb.EncodeRequest(dictionary_id=id, activations=tensor(activations),
                               options=self._options(top_k, reconstruction, error, bf16,
                                                     compute_mode))
        resp = self._stub.Encode(req, timeout=self._timeout)
        return _codes(resp.codes, resp)

    def encode_stream(self, id, chunks, top_k=0):
        """Encodes an iterable of [n_i, d_in] arrays; yields SparseCodes per chunk."""
        def requests():
            for i, chunk in enumerate(chunks):
                yield pb.EncodeRequest(dictionary_id=id if i == 0 else "",
                                       activations=tensor(chunk),
                                       options=self._options(top_k, False, False, False))
        for resp in self._stub.EncodeStream(requests(), timeout=self._timeout):
            yield _codes(resp.codes, resp)

    def decode(self, id, codes):
        req = pb.DecodeRequest(dictionary_id=id, codes=codes.to_proto())
        return from_tensor(self._stub.Decode(req, timeout=self._timeout).activations)

    def intervene(self, id, activations, edits):
        """edits: list of (feature, op, value[, rows]) with op in set/add/scale/ablate."""
        req = pb.InterveneRequest(dictionary_id=id, activations=tensor(activations))
        for edit in edits:
            feature, op, value = edit[:3]
            rows = edit[3] if len(edit) > 3 else []
            req.edits.add(feature=feature, op=_EDIT_OPS[op], value=value, rows=rows)
        resp = self._stub.Intervene(req, timeout=self._timeout)
        return from_tensor(resp.activations), _codes(resp.codes)

    # --- corpus --------------------------------------------------------------

    def ingest(self, dictionary_id, corpus, documents, batch_tokens=8192, value_precision="f32",
               bf16=False, progress=None, timeout=None, compute_mode=None):
        """Stores documents and their sparse codes under `dictionary_id`.

        documents: an iterable (a generator is fine: it is read as the stream
        goes) of (doc_id, token_ids, activations, token_strings) with token_ids
        an integer array [n], activations [n, d_in] float32/float16 (sent as is;
        other float dtypes become float32) and token_strings None or n strings.
        Whole documents are packed into messages of up to `batch_tokens` tokens
        (a longer document goes alone); the server stores each message
        atomically and acknowledges it. value_precision: "f32" or "f16" (how
        the latent values are stored). progress: None, True (a line on stderr)
        or a callable given each IngestAck as it arrives. timeout: seconds for
        the whole stream, None for no deadline. compute_mode: as in encode().

        Returns {"documents", "tokens", "replaced_documents", "acks"} (acks: the
        IngestAck messages, one per batch). A server error raises grpc.RpcError;
        the batches acknowledged before it stay stored (see progress). A bad
        document raises ValueError once the documents before it are stored.
        RuntimeError when the acks do not match the batches sent.
        """
        if value_precision not in _PRECISIONS:
            raise ValueError(f"value_precision must be 'f32' or 'f16', got {value_precision!r}")
        mode = _compute_mode(compute_mode, bf16)
        if batch_tokens < 1:
            raise ValueError(f"batch_tokens must be positive, got {batch_tokens}")
        if progress is True:
            progress = _print_progress
        sent = []        # (documents, tokens) per batch, appended as requests go out
        failure = []     # a bad document's ValueError, raised once the stream ends

        def requests():
            def request(docs):
                sent.append((len(docs), sum(len(d.token_ids) // 4 for d in docs)))
                req = pb.IngestRequest(
                    dictionary_id=dictionary_id, corpus=corpus, documents=docs,
                    value_precision=_PRECISIONS[value_precision])
                if mode is not None:
                    req.compute_mode = mode
                return req
            pending, tokens = [], 0
            try:
                for doc in documents:
                    d = _ingest_document(doc)
                    n = len(d.token_ids) // 4
                    if pending and tokens + n > batch_tokens:
                        yield request(pending)
                        pending, tokens = [], 0
                    pending.append(d)
                    tokens += n
            except ValueError as e:  # store the documents before it; raised below
                failure.append(e)
            if pending:
                yield request(pending)

        acks = []
        call = self._stub.Ingest(requests(), timeout=timeout)
        try:
            for ack in call:
                i = len(acks)
                if ack.batch != i or i >= len(sent) or (ack.documents, ack.tokens) != sent[i]:
                    want = sent[i] if i < len(sent) else None
                    raise RuntimeError(f"ingest: ack {i} is for batch {ack.batch} with "
                                       f"{ack.documents} documents / {ack.tokens} tokens; "
                                       f"sent (documents, tokens) = {want}")
                acks.append(ack)
                if progress:
                    progress(ack)
        except BaseException:
            call.cancel()  # a no-op when the call already ended
            raise
        if progress is _print_progress and acks:
            print(file=sys.stderr)
        if failure:
            raise failure[0]
        if len(acks) != len(sent):
            raise RuntimeError(f"ingest: server sent {len(acks)} acks for {len(sent)} batches")
        return {"documents": acks[-1].total_documents if acks else 0,
                "tokens": acks[-1].total_tokens if acks else 0,
                "replaced_documents": sum(a.replaced_documents for a in acks),
                "acks": acks}

    def get_document(self, corpus, doc_id):
        """The stored document as a Document (token_ids int32, token_strings, .text)."""
        d = self._stub.GetDocument(pb.GetDocumentRequest(corpus=corpus, doc_id=doc_id),
                                   timeout=self._timeout).document
        return Document(d.corpus, d.doc_id, np.array(d.token_ids, dtype=np.int32),
                        list(d.token_strings))

    def get_activations(self, dictionary_id, corpus, doc_id, dense=False):
        """The stored codes of a document: SparseCodes (one row per token, with
        .precision "f32"/"f16"), or with dense=True a float32 [n, d_sae] array."""
        resp = self._stub.GetActivations(
            pb.GetActivationsRequest(dictionary_id=dictionary_id, corpus=corpus, doc_id=doc_id),
            timeout=self._timeout)
        codes = _codes(resp.codes)
        codes.precision = _PRECISION_NAMES.get(resp.stored_precision, str(resp.stored_precision))
        return codes.to_dense() if dense else codes

    def get_feature(self, dictionary_id, feature, top_n=10, context_window=8, neighbours=0,
                    skip_family=False):
        """GetFeatureResponse: .stats (count, total_tokens, density, mean, std,
        max, min, histogram) and .top_examples (each with .context tokens);
        .neighbours (the `neighbours` nearest decoder directions, 0: 10) when
        .neighbours_state is READY, and .family (a FeatureFamilyResponse)
        unless skip_family."""
        req = pb.GetFeatureRequest(dictionary_id=dictionary_id, feature=feature, top_n=top_n,
                                   context_window=context_window, neighbours=neighbours,
                                   skip_family=skip_family)
        return self._stub.GetFeature(req, timeout=self._timeout)

    def top_activations(self, dictionary_id, feature, n=10, context_window=8, quantile_bins=0,
                        per_bin=5):
        """TopActivationsResponse: .top (descending value) and, with quantile_bins,
        .bins (lowest quantile first), each with up to per_bin examples."""
        req = pb.TopActivationsRequest(dictionary_id=dictionary_id, feature=feature, n=n,
                                       context_window=context_window,
                                       quantile_bins=quantile_bins, per_bin=per_bin)
        return self._stub.TopActivations(req, timeout=self._timeout)

    def document_features(self, dictionary_id, corpus, doc_id, position=None, n=20):
        """DocumentFeaturesResponse: the n features with the largest value in the
        document (or only at `position`), each with max_value, max_position,
        active_tokens and sum."""
        req = pb.DocumentFeaturesRequest(dictionary_id=dictionary_id, corpus=corpus,
                                         doc_id=doc_id, n=n)
        if position is not None:
            req.position = position
        return self._stub.DocumentFeatures(req, timeout=self._timeout)

    # --- similarity and families ----------------------------------------------

    def search_similar(self, dictionary_id, feature=None, vector=None, against=None, top_n=10,
                       min_cosine=None, encoder=False):
        """The features whose directions are nearest by cosine to feature
        `feature` of `dictionary_id` (never returned itself) or to `vector`
        (array-like [d_in] or [1, d_in]; float32/float16 sent as is, other
        dtypes as float32). Decoder rows, or with encoder=True encoder
        columns (that index is built on the first such search; until then
        FAILED_PRECONDITION). Searches `dictionary_id`, or the dictionaries
        of `against` (an id or a list of ids sharing its d_in).

        Returns {dictionary_id: SimilarResult} in the order searched, each
        with .neighbours ([Neighbour], cosine descending), .features,
        .cosines, .exact and .index_factory. Exactly one of feature / vector
        (ValueError otherwise). FAILED_PRECONDITION (grpc.RpcError) until the
        index is READY (get_dictionary(id).index.state).
        """
        if (feature is None) == (vector is None):
            raise ValueError("give exactly one of feature= or vector=")
        req = pb.SearchSimilarRequest(
            dictionary_id=dictionary_id, top_n=top_n,
            directions=pb.DIRECTION_KIND_ENCODER if encoder else pb.DIRECTION_KIND_DECODER)
        if feature is not None:
            req.feature = _feature_index(feature)
        else:
            v = np.asarray(vector)
            if v.ndim not in (1, 2) or (v.ndim == 2 and v.shape[0] != 1) or v.size == 0:
                raise ValueError(f"vector must have shape [d_in] or [1, d_in], got {v.shape}")
            if not np.issubdtype(v.dtype, np.floating) and not np.issubdtype(v.dtype, np.integer):
                raise ValueError(f"vector must be numeric, got dtype {v.dtype}")
            req.vector.CopyFrom(tensor(v.reshape(-1)))
        if against is not None:
            req.against.extend([against] if isinstance(against, str) else list(against))
        if min_cosine is not None:
            req.min_cosine = float(min_cosine)
        resp = self._stub.SearchSimilar(req, timeout=self._timeout)
        return {r.dictionary_id: SimilarResult(
                    r.dictionary_id,
                    [Neighbour(n.dictionary_id, n.feature, n.cosine) for n in r.neighbours],
                    r.exact, r.index_factory)
                for r in resp.results}

    def feature_family(self, dictionary_id, feature, min_decoder_cosine=None, min_coverage=None,
                       min_child_count=None):
        """The family of `feature` as a FeatureFamily: .parents (nearest first,
        up to .root), .children, .siblings ([FamilyMember] with coverage,
        decoder_cosine, jaccard, phi, count and reason), .family_size and
        .provenance. Thresholds left None take the server's defaults (0.3,
        0.8, 5). FAILED_PRECONDITION until the neighbours are READY."""
        req = pb.FeatureFamilyRequest(
            dictionary_id=dictionary_id, feature=_feature_index(feature),
            options=_family_options(min_decoder_cosine, min_coverage, min_child_count))
        return _feature_family(self._stub.FeatureFamily(req, timeout=self._timeout))

    def list_families(self, dictionary_id, page_size=0, page_token="", min_decoder_cosine=None,
                      min_coverage=None, min_child_count=None):
        """One page of the dictionary's families (largest first) as a FamilyPage:
        .families ([Family] with root, members, depth, root_count),
        .total_families, .next_page_token ("" on the last page; pass it back
        for the next one) and .provenance. page_size 0: the server's 50."""
        req = pb.ListFamiliesRequest(
            dictionary_id=dictionary_id, page_size=page_size, page_token=page_token,
            options=_family_options(min_decoder_cosine, min_coverage, min_child_count))
        resp = self._stub.ListFamilies(req, timeout=self._timeout)
        return FamilyPage([Family(f.root, list(f.members), f.depth, f.root_count)
                           for f in resp.families],
                          resp.total_families, resp.next_page_token, _provenance(resp.provenance))

    def iter_families(self, dictionary_id, page_size=0, min_decoder_cosine=None,
                      min_coverage=None, min_child_count=None):
        """Every family of the dictionary (a Family each), largest first,
        following the pages of list_families. The server refuses a page token
        of families recomputed since (INVALID_ARGUMENT): start again then."""
        token = ""
        while True:
            page = self.list_families(dictionary_id, page_size, token, min_decoder_cosine,
                                      min_coverage, min_child_count)
            yield from page.families
            if not page.next_page_token:
                return
            token = page.next_page_token

    def compare_dictionaries(self, a, b, method="decoder", corpus="", match_threshold=None,
                             assignment=True, matches=True, progress=None):
        """Compares dictionaries `a` and `b`: method "decoder" (same d_in:
        decoder cosine, MMCS, exact one-to-one assignment) or "activation"
        (Pearson correlation over `corpus`, which both were ingested on, and
        SVCCA). progress(phase, fraction) is called while the server works.
        Returns a Comparison; errors arrive as grpc.RpcError (e.g.
        INVALID_ARGUMENT for different d_in with the decoder method)."""
        if method not in _COMPARE_METHODS:
            raise ValueError(f"method must be one of {sorted(_COMPARE_METHODS)}, got {method!r}")
        req = pb.CompareDictionariesRequest(dictionary_a=a, dictionary_b=b,
                                            method=_COMPARE_METHODS[method], corpus=corpus,
                                            skip_assignment=not assignment,
                                            skip_matches=not matches)
        if match_threshold is not None:
            req.match_threshold = float(match_threshold)
        summary, rows = None, {pb.COMPARE_SIDE_A: [], pb.COMPARE_SIDE_B: []}
        for m in self._stub.CompareDictionaries(req, timeout=self._timeout):
            kind = m.WhichOneof("item")
            if kind == "progress" and progress is not None:
                progress(m.progress.phase, m.progress.fraction)
            elif kind == "summary":
                summary = m.summary
            elif kind == "matches":
                rows[m.matches.side].extend(m.matches.matches)
        out = Comparison(summary)
        if matches:
            out.a = _matches(rows[pb.COMPARE_SIDE_A], summary.size_a)
            out.b = _matches(rows[pb.COMPARE_SIDE_B], summary.size_b)
        return out

    def evaluate(self, dictionary_id, activations=None, corpus=None, chunk_rows=4096,
                 context_size=0, per_token_error_norms=False, eval_id=""):
        """Evaluates `dictionary_id` on `activations` (array [n, d_in],
        float32/float16, sent in chunks of chunk_rows) or on the codes stored
        for `corpus`. Returns the SAEBench core report as a dict (with
        "saedict" extras; metrics that need the language model or, for a
        corpus, the activations are absent and listed in
        report["saedict"]["absent_metrics"]). With per_token_error_norms the
        dict also holds "per_token_error_norms" (numpy [n])."""
        if (activations is None) == (corpus is None):
            raise ValueError("give exactly one of activations= or corpus=")
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
        options = pb.EvaluateOptions(context_size=context_size,
                                     per_token_error_norms=per_token_error_norms)
        x = None
        if corpus is None:  # checked here: an error inside the request iterator would reach
            x = np.asarray(activations)  # the caller as an opaque grpc error
            if x.ndim != 2 or x.shape[0] == 0:
                raise ValueError(f"activations must have shape [n, d_in], got {x.shape}")

        def requests():
            first = pb.EvaluateRequest(dictionary_id=dictionary_id, options=options,
                                       eval_id=eval_id)
            if corpus is not None:
                first.corpus = corpus
                yield first
                return
            for start in range(0, x.shape[0], chunk_rows):
                req = first if start == 0 else pb.EvaluateRequest()
                req.activations.CopyFrom(tensor(x[start:start + chunk_rows]))
                yield req

        resp = self._stub.Evaluate(requests(), timeout=self._timeout)
        report = json.loads(resp.saebench_json)
        if per_token_error_norms and corpus is None:
            report["per_token_error_norms"] = from_tensor(resp.per_token_error_norms)
        return report

    def create_checkpoint(self, name):
        """Admin: a consistent backup under <data_dir>/backups/<name> on the
        server. Returns the CreateCheckpointResponse (.path, .bytes)."""
        return self._stub.CreateCheckpoint(pb.CreateCheckpointRequest(name=name),
                                           timeout=self._timeout)
