"""The saedict client: :func:`connect` and :class:`Client`.

One Client holds one gRPC channel; it is safe to share between threads.
Every call raises a :class:`saedict.Error` subclass on a server error and
ValueError for an argument it can check before sending. Reads and pure
computations (list/get, encode/decode/intervene, feature queries,
similarity, families, compare, evaluate) are retried on UNAVAILABLE with
exponential backoff; calls that change state (load, delete, ingest,
checkpoint) are never retried.

Arrays bigger than one gRPC message are split into chunks (EncodeStream for
encode, several calls for decode and intervene) sized from the message limit
(`max_message_bytes`, and the server's limits as soon as it names them in a
RESOURCE_EXHAUSTED answer) and the server's rows-per-request limit
(--max_request_tokens); the results are joined, so the limits never reach
the caller.
"""
import collections
import json
import os
import random
import re
import time
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import grpc
import numpy as np

from saedict import errors
from saedict import explanations as expl
from saedict import files
from saedict import results
from saedict._progress import ByteProgress, ProgressBar
from saedict._wire import encode_request_bytes
from saedict.arrays import (BFloat16, Rows, SparseCodes, as_codes, as_rows, from_tensor,
                            split_rows)
from saedict.v1 import saedict_pb2 as pb
from saedict.v1 import saedict_pb2_grpc as pb_grpc

__all__ = ["Client", "connect", "DEFAULT_MAX_MESSAGE_BYTES"]

DEFAULT_MAX_MESSAGE_BYTES = 256 << 20  # saedictd's --max_message_bytes default

_FORMATS = {"auto": pb.SOURCE_FORMAT_AUTO, "saelens": pb.SOURCE_FORMAT_SAELENS,
            "sparsify": pb.SOURCE_FORMAT_SPARSIFY, "gemma_scope": pb.SOURCE_FORMAT_GEMMA_SCOPE,
            "gemma_scope_2": pb.SOURCE_FORMAT_GEMMA_SCOPE_2}
_EDIT_OPS = {"set": pb.EDIT_OP_SET, "add": pb.EDIT_OP_ADD, "scale": pb.EDIT_OP_SCALE,
             "ablate": pb.EDIT_OP_ABLATE}
_COMPUTE_MODES = {"f32": pb.COMPUTE_MODE_F32, "fast_exact": pb.COMPUTE_MODE_FAST_EXACT,
                  "bf16": pb.COMPUTE_MODE_BF16}
_COMPUTE_MODE_NAMES = {v: k for k, v in _COMPUTE_MODES.items()}
_PRECISIONS = {"f32": pb.VALUE_PRECISION_F32, "f16": pb.VALUE_PRECISION_F16}
_PRECISION_NAMES = {v: k for k, v in _PRECISIONS.items()}
_COMPARE_METHODS = {"decoder": pb.COMPARE_METHOD_DECODER,
                    "activation": pb.COMPARE_METHOD_ACTIVATION}

# The limits the server names when it refuses a message (server/, service/).
_ROWS_LIMIT = re.compile(r"(\d+) rows > (\d+) per request")
_TOKENS_LIMIT = re.compile(r"more than (\d+) tokens in one message")
_SIZE_LIMIT = re.compile(r"message larger than max \((\d+) vs\. (\d+)\)")

_DEFAULT = object()  # "the client's timeout", distinct from None (no deadline)


def _compute_mode(name: Optional[str], bf16: bool) -> Optional[int]:
    """The EncodeOptions / IngestRequest compute_mode, or None to leave it unset."""
    if name is not None and name not in _COMPUTE_MODES:
        raise ValueError(f"compute_mode must be 'f32', 'fast_exact' or 'bf16', got {name!r}")
    if bf16:
        if name not in (None, "bf16"):
            raise ValueError(f"bf16=True contradicts compute_mode={name!r}")
        return pb.COMPUTE_MODE_BF16
    return None if name is None else _COMPUTE_MODES[name]


def _encode_options(top_k: int, reconstruction: bool, error: bool, bf16: bool,
                    compute_mode: Optional[str]) -> "pb.EncodeOptions":
    if int(top_k) < 0:
        raise ValueError(f"top_k must be >= 0, got {top_k}")
    options = pb.EncodeOptions(top_k=int(top_k), return_reconstruction=reconstruction,
                               return_error=error)
    mode = _compute_mode(compute_mode, bf16)
    if mode is not None:
        options.compute_mode = mode
    return options


def _feature_index(feature) -> int:
    if isinstance(feature, (bool, np.bool_)) or not isinstance(feature, (int, np.integer)):
        raise ValueError(f"feature must be an integer, got {feature!r}")
    if not 0 <= int(feature) < 2**32:
        raise ValueError(f"feature must be in [0, 2**32), got {feature}")
    return int(feature)


def _family_options(min_decoder_cosine, min_coverage, min_child_count) -> "pb.FamilyOptions":
    options = pb.FamilyOptions()
    if min_decoder_cosine is not None:
        options.min_decoder_cosine = float(min_decoder_cosine)
    if min_coverage is not None:
        options.min_coverage = float(min_coverage)
    if min_child_count is not None:
        options.min_child_count = int(min_child_count)
    return options


def _ingest_document(doc, dtype) -> "pb.IngestDocument":
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
    acts = as_rows(activations, dtype, name=f"document {doc_id}: activations", allow_1d=False)
    if acts.n != len(ids):
        raise ValueError(f"document {doc_id}: activations must be [{len(ids)}, d_in] "
                         f"(one row per token), got {acts.array.shape}")
    strings = list(token_strings) if token_strings is not None else []
    if strings and len(strings) != len(ids):
        raise ValueError(f"document {doc_id}: {len(strings)} token_strings for {len(ids)} tokens")
    return pb.IngestDocument(doc_id=int(doc_id), token_ids=ids.astype("<i4").tobytes(),
                             token_strings=strings, activations=acts.tensor())


def _parse_edit(i: int, edit, n: int, d_sae: Optional[int]):
    """(feature, op, value[, rows]) -> (feature, op enum, value, rows int64 array or None)."""
    if not isinstance(edit, (tuple, list)) or len(edit) not in (3, 4):
        raise ValueError(f"edit {i}: an edit is (feature, op, value) or (feature, op, value, rows)"
                         f", got {edit!r}")
    feature, op, value = _feature_index(edit[0]), edit[1], float(edit[2])
    if op not in _EDIT_OPS:
        raise ValueError(f"edit {i}: op must be one of {sorted(_EDIT_OPS)}, got {op!r}")
    if d_sae is not None and feature >= d_sae:
        raise ValueError(f"edit {i}: feature {feature} out of range [0, d_sae={d_sae})")
    if not np.isfinite(value):
        raise ValueError(f"edit {i}: value {value} is not finite")
    rows = None
    if len(edit) == 4 and edit[3] is not None and len(edit[3]):
        rows = np.asarray(edit[3])
        if rows.ndim != 1 or not np.issubdtype(rows.dtype, np.integer):
            raise ValueError(f"edit {i}: rows must be a list of row indices, got {edit[3]!r}")
        rows = rows.astype(np.int64)
        bad = rows[(rows < 0) | (rows >= n)]
        if bad.size:
            raise ValueError(f"edit {i}: row {bad[0]} out of range [0, n={n})")
        unique, counts = np.unique(rows, return_counts=True)
        if (counts > 1).any():
            raise ValueError(f"edit {i}: row {unique[counts > 1][0]} is listed more than once")
    return feature, _EDIT_OPS[op], value, rows


def _decoded_width(info, d_in: int) -> int:
    """Values in a decoded row: d_in, or d_out for a transcoder (its output hook)."""
    return info.d_out if info is not None and info.d_out > 0 else d_in


def _codes_row_bytes(info, top_k: int, extra_features: int = 0) -> int:
    """The most bytes one row of SparseCodes from `info`'s dictionary can take."""
    if info is None:
        return 0
    nnz = info.d_sae
    if top_k > 0:
        nnz = min(nnz, top_k)
    elif info.architecture in (pb.ARCHITECTURE_TOPK, pb.ARCHITECTURE_MATCHING_PURSUIT) and info.k:
        nnz = min(nnz, info.k)
    return 16 + 8 * min(info.d_sae, nnz + extra_features)


def _read_pem(path: Optional[str]) -> Optional[bytes]:
    if path is None:
        return None
    with open(path, "rb") as f:
        return f.read()


class _CallDetails(collections.namedtuple(
        "_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready",
                         "compression")), grpc.ClientCallDetails):
    pass


class _BearerToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                   grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds `authorization: Bearer TOKEN` to every call of the channel."""

    def __init__(self, token: str):
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


class Client:
    """A connection to saedictd (see :func:`connect`, which makes one).

    Args:
      target: "host:port" ("localhost:PORT" goes to 127.0.0.1 without DNS).
      max_message_bytes: the largest gRPC message sent or received; set it
        to the server's --max_message_bytes when that is smaller, or the
        first too-big message teaches the client (one refused call).
      timeout: seconds per call (None: no deadline); chunked calls allow it
        per chunk.
      token: the bearer token of a server with auth (default: $SAEDICT_TOKEN).
      tls: a TLS channel; also implied by any of the PEM file paths
        root_certificates (CA bundle; None: the system's), certificate_chain
        + private_key (mutual TLS). server_name: the name the server's
        certificate carries, when not the host.
      retries: how many times an idempotent call is sent again after
        UNAVAILABLE (0: never); retry_backoff: the first wait in seconds,
        doubled each time (with jitter, at most 5 s).
      max_request_rows: the server's --max_request_tokens when known (else
        learned from its first refusal).
    """

    def __init__(self, target: str = "localhost:50051",
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                 timeout: Optional[float] = 60.0, token: Optional[str] = None, tls: bool = False,
                 root_certificates: Optional[str] = None, certificate_chain: Optional[str] = None,
                 private_key: Optional[str] = None, server_name: Optional[str] = None, *,
                 retries: int = 3, retry_backoff: float = 0.1,
                 max_request_rows: Optional[int] = None):
        if int(max_message_bytes) < 4096:
            raise ValueError(f"max_message_bytes must be >= 4096, got {max_message_bytes}")
        if int(retries) < 0 or retry_backoff < 0:
            raise ValueError(f"retries and retry_backoff must be >= 0, got {retries}, "
                             f"{retry_backoff}")
        if max_request_rows is not None and int(max_request_rows) < 1:
            raise ValueError(f"max_request_rows must be >= 1, got {max_request_rows}")
        if (certificate_chain is None) != (private_key is None):
            raise ValueError("certificate_chain and private_key go together: give both or neither")
        self.target = target
        self.timeout = timeout
        self.retries = int(retries)
        self.retry_backoff = float(retry_backoff)
        self.max_message_bytes = int(max_message_bytes)
        self.max_request_rows = None if max_request_rows is None else int(max_request_rows)
        self._info: Dict[str, Any] = {}  # dictionary id -> DictionaryInfo, for chunk sizes
        options = [("grpc.max_send_message_length", self.max_message_bytes),
                   ("grpc.max_receive_message_length", self.max_message_bytes)]
        if target.startswith("localhost:"):  # RFC 6761 loopback; needs no /etc/hosts or DNS
            target = "ipv4:127.0.0.1:" + target[len("localhost:"):]
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
        # Encode with requests serialized by _wire (one copy of the activations).
        self._encode_raw = channel.unary_unary(
            "/saedict.v1.Saedict/Encode", request_serializer=None,
            response_deserializer=pb.EncodeResponse.FromString)
        self._encode_stream_raw = channel.stream_stream(
            "/saedict.v1.Saedict/EncodeStream", request_serializer=None,
            response_deserializer=pb.EncodeResponse.FromString)

    def __repr__(self) -> str:
        return f"saedict.Client({self.target!r})"

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Closes the channel; calls in flight are cancelled."""
        self._channel.close()

    # --- plumbing ----------------------------------------------------------

    def _deadline(self, timeout, chunks: int = 1) -> Optional[float]:
        t = self.timeout if timeout is _DEFAULT else timeout
        return None if t is None else t * chunks

    def _backoff(self, attempt: int) -> None:
        delay = min(5.0, self.retry_backoff * 2 ** (attempt - 1))
        time.sleep(delay * (0.5 + 0.5 * random.random()))

    def _retrying(self, method: str, retry: bool, fn: Callable[[], Any]) -> Any:
        """fn() with retries on UNAVAILABLE (when `retry`), errors as saedict.Error."""
        attempt = 1
        while True:
            try:
                return fn()
            except errors.Error:
                raise
            except grpc.RpcError as raw:
                if retry and raw.code() == grpc.StatusCode.UNAVAILABLE and attempt <= self.retries:
                    self._backoff(attempt)
                    attempt += 1
                    continue
                raise errors.from_rpc_error(raw, method, attempt) from None

    def _unary(self, method: str, request, retry: bool = True, timeout=_DEFAULT):
        rpc = getattr(self._stub, method)
        return self._retrying(method, retry, lambda: rpc(request, timeout=self._deadline(timeout)))

    def _budget(self) -> int:
        """Bytes of payload one message may carry under the known limit."""
        limit = self.max_message_bytes
        return max(1024, limit - max(4096, limit // 64))

    def _learn_limit(self, message: str, failed_rows: int) -> Optional[int]:
        """From a RESOURCE_EXHAUSTED message naming a limit: remembers it and
        returns the rows the refused chunk should be cut to (None: not a
        limit, or nothing left to cut)."""
        m = _ROWS_LIMIT.search(message) or _TOKENS_LIMIT.search(message)
        if m:
            limit = int(m.groups()[-1])
            self.max_request_rows = min(self.max_request_rows or limit, limit)
            return limit if failed_rows > limit else None
        m = _SIZE_LIMIT.search(message)
        if m:
            size, limit = int(m.group(1)), int(m.group(2))
            self.max_message_bytes = min(self.max_message_bytes, limit)
            if failed_rows <= 1:
                return None
            return max(1, min(failed_rows - 1, failed_rows * self._budget() // max(size, 1)))
        return None

    def _chunked(self, method: str, plan: Callable[[int, Optional[int]], List[Tuple[int, int]]],
                 send: Callable[[List[Tuple[int, int]]], Iterator[Any]]) -> List[Any]:
        """Results of every chunk in order. plan(start, cap) splits the rows
        from `start` (at most `cap` per chunk); send(chunks) yields one
        result per chunk. A refusal naming a limit re-plans the rest with
        smaller chunks; UNAVAILABLE resumes after the answered chunks."""
        out: List[Any] = []
        done, cap, attempt, replans = 0, None, 1, 0
        while True:
            chunks = plan(done, cap)
            answered = 0
            answers = send(chunks)
            try:
                for result in answers:
                    out.append(result)
                    done = chunks[answered][1]
                    answered += 1
                if answered != len(chunks):
                    raise RuntimeError(f"{method}: the server answered {answered} of "
                                       f"{len(chunks)} chunks")
                return out
            except grpc.RpcError as raw:
                e = errors.from_rpc_error(raw, method, attempt)
                rows = chunks[answered][1] - chunks[answered][0] if answered < len(chunks) else 0
                if isinstance(e, errors.ResourceExhausted) and replans < 32:
                    smaller = self._learn_limit(e.message, rows)
                    if smaller is not None:
                        cap = smaller if cap is None else min(cap, smaller)
                        replans += 1
                        continue
                if isinstance(e, errors.Unavailable) and attempt <= self.retries:
                    self._backoff(attempt)
                    attempt += 1
                    continue
                e.attempts = attempt
                raise e from None
            finally:
                answers.close()

    def _plan_info(self, dictionary_id: str):
        """The dictionary's DictionaryInfo for sizing chunks (cached), or None
        when the server does not give it (the call itself reports why)."""
        info = self._info.get(dictionary_id)
        if info is None:
            try:
                info = self.get_dictionary(dictionary_id)
            except errors.Unavailable:
                raise
            except errors.Error:
                return None
            self._info[dictionary_id] = info
        return info

    def _codes(self, proto, response, dictionary_id: str) -> SparseCodes:
        codes = SparseCodes.from_proto(proto)
        fields = response.DESCRIPTOR.fields_by_name
        if "reconstruction" in fields and response.HasField("reconstruction"):
            codes.reconstruction = from_tensor(response.reconstruction)
        if "row_error" in fields and response.HasField("row_error"):
            codes.row_error = from_tensor(response.row_error)
        codes.weights_sha256 = response.weights_sha256
        codes.compute_mode = _COMPUTE_MODE_NAMES.get(response.compute_mode, "f32")
        info = self._info.get(dictionary_id)
        if info is not None and info.d_sae != codes.num_features:
            self._info.pop(dictionary_id, None)  # replaced since: size chunks afresh
        return codes

    @staticmethod
    def _join(dictionary_id: str, parts: List[SparseCodes]) -> SparseCodes:
        hashes = {p.weights_sha256 for p in parts}
        if len(hashes) > 1:
            raise RuntimeError(f"dictionary {dictionary_id!r} changed weights while its rows were "
                               f"sent in {len(parts)} chunks ({sorted(hashes)}); send them again")
        return SparseCodes.concatenate(parts)

    # --- dictionaries --------------------------------------------------------

    def load_dictionary(self, id: str, path: str, format: str = "auto", replace: bool = False,
                        default_compute_mode: Optional[str] = None, alias: str = ""):
        """Loads the SAE at `path` (a folder or .npz under the server's
        --dictionary_root) as dictionary `id`; returns its DictionaryInfo.

        format: "auto", "saelens", "sparsify", "gemma_scope" or "gemma_scope_2".
        default_compute_mode: the mode of requests that name none ("f32",
        "fast_exact", "bf16"); None: the server's --default_compute_mode.
        alias: the name Neuronpedia-style URLs use for it
        (/api/feature/{model}/{alias}/{index}), e.g. "6-res-jb"; unique per model.
        Never retried. AlreadyExists unless replace=True.

        >>> c.load_dictionary("demo", "anything")
        Traceback (most recent call last):
        ...
        saedict.errors.AlreadyExists: LoadDictionary: ALREADY_EXISTS: ...
        """
        if format not in _FORMATS:
            raise ValueError(f"format must be one of {sorted(_FORMATS)}, got {format!r}")
        req = pb.LoadDictionaryRequest(id=id, path=str(path), format=_FORMATS[format],
                                       replace=replace, alias=alias)
        mode = _compute_mode(default_compute_mode, False)
        if mode is not None:
            req.default_compute_mode = mode
        self._info.pop(id, None)
        return self._unary("LoadDictionary", req, retry=False).dictionary

    def list_dictionaries(self) -> list:
        """Every loaded dictionary's DictionaryInfo.

        >>> [d.id for d in c.list_dictionaries()]
        ['demo']
        """
        return list(self._unary("ListDictionaries", pb.ListDictionariesRequest()).dictionaries)

    def get_dictionary(self, id: str):
        """The DictionaryInfo of `id` (d_in, d_sae, architecture, k, index state, ...).

        >>> info = c.get_dictionary("demo")
        >>> info.d_in, info.d_sae, info.k
        (64, 512, 16)
        """
        info = self._unary("GetDictionary", pb.GetDictionaryRequest(id=id)).dictionary
        self._info[id] = info
        return info

    def delete_dictionary(self, id: str) -> None:
        """Deletes `id` and its stored latents (admin role). Never retried."""
        self._info.pop(id, None)
        self._unary("DeleteDictionary", pb.DeleteDictionaryRequest(id=id), retry=False)

    # --- encode / decode / intervene -----------------------------------------

    def encode(self, dictionary_id: str, activations, top_k: int = 0,
               reconstruction: bool = False, error: bool = False, bf16: bool = False,
               compute_mode: Optional[str] = None, dtype=None, timeout=_DEFAULT) -> SparseCodes:
        """Encodes activations [n, d_in] (or one row [d_in]) into SparseCodes.

        activations: float32 or float16 as they are; bfloat16 as
        saedict.bfloat16(bits) or a uint16 array with dtype="bfloat16";
        dtype="float32"/"float16" casts other float arrays. Any other dtype
        is a ValueError. An array bigger than one message goes as several
        (EncodeStream) and the codes come back joined.

        top_k: 0 keeps the dictionary's own k (topk / matching pursuit) or
        no cap. reconstruction / error: also .reconstruction [n, d_in] and
        .row_error [n] (squared L2). compute_mode: None (the dictionary's
        default), "f32", "fast_exact" (the f32 codes bit for bit) or "bf16"
        (approximate; bf16=True says the same).

        >>> codes = c.encode("demo", np.ones((3, 64), np.float32), reconstruction=True)
        >>> codes.shape, codes.nnz, codes.reconstruction.shape
        ((3, 512), 48, (3, 64))
        >>> c.encode("demo", np.ones(64, np.float16)).shape        # one row, float16
        (1, 512)
        >>> c.encode("demo", np.ones((1, 64)))                       # float64
        Traceback (most recent call last):
        ...
        ValueError: activations: dtype float64 is not supported; send float32, float16 or bfloat16 (e.g. x.astype(np.float32), or dtype='float32')
        """
        rows = as_rows(activations, dtype)
        options = _encode_options(top_k, reconstruction, error, bf16, compute_mode)
        info = self._plan_info(dictionary_id)
        d = rows.array.shape[1]
        response_row = (_codes_row_bytes(info, options.top_k)
                        + (4 * _decoded_width(info, d) if reconstruction else 0)
                        + (4 if error else 0))

        def plan(start, cap):
            cap = self.max_request_rows if cap is None else min(cap, self.max_request_rows or cap)
            return split_rows(rows.n, start, self._budget(), cap, request_row=rows.row_bytes,
                              response_row=response_row)

        def send(chunks):
            requests = (encode_request_bytes(dictionary_id, rows, s, e, options)
                        for s, e in chunks)
            if len(chunks) == 1:
                resp = self._encode_raw(next(requests), timeout=self._deadline(timeout))
                yield self._codes(resp.codes, resp, dictionary_id)
                return
            call = self._encode_stream_raw(requests,
                                           timeout=self._deadline(timeout, len(chunks)))
            try:
                for resp in call:
                    yield self._codes(resp.codes, resp, dictionary_id)
            finally:
                call.cancel()

        return self._join(dictionary_id, self._chunked("Encode", plan, send))

    def encode_stream(self, dictionary_id: str, chunks: Iterable, top_k: int = 0,
                      reconstruction: bool = False, error: bool = False,
                      compute_mode: Optional[str] = None, dtype=None,
                      timeout: Optional[float] = None) -> Iterator[SparseCodes]:
        """Encodes an iterable of arrays [n_i, d_in] (a generator is read as
        the stream goes) over one EncodeStream; yields SparseCodes per array,
        in order. An array bigger than one message is sent as several and its
        codes joined. timeout: seconds for the whole stream (None: none).
        Not retried (the iterable cannot be replayed); a bad array raises
        ValueError after the codes of the arrays before it.

        >>> [codes.num_rows for codes in c.encode_stream("demo", [np.ones((2, 64), np.float32),
        ...                                                       np.ones((5, 64), np.float32)])]
        [2, 5]
        """
        options = _encode_options(top_k, reconstruction, error, False, compute_mode)
        info = self._plan_info(dictionary_id)
        pending: collections.deque = collections.deque()  # messages per array, in order
        failure: List[ValueError] = []

        def requests():
            try:
                for chunk in chunks:
                    rows = as_rows(chunk, dtype)
                    response_row = (_codes_row_bytes(info, options.top_k)
                                    + (4 * _decoded_width(info, rows.array.shape[1])
                                       if reconstruction else 0)
                                    + (4 if error else 0))
                    parts = split_rows(rows.n, 0, self._budget(), self.max_request_rows,
                                       request_row=rows.row_bytes, response_row=response_row)
                    pending.append(len(parts))
                    for s, e in parts:
                        yield pb.EncodeRequest(dictionary_id=dictionary_id,
                                               activations=rows.tensor(s, e), options=options)
            except ValueError as e:  # raised once the arrays before it are answered
                failure.append(e)

        call = self._stub.EncodeStream(requests(), timeout=timeout)
        got: List[SparseCodes] = []
        try:
            for resp in call:
                got.append(self._codes(resp.codes, resp, dictionary_id))
                while pending and len(got) >= pending[0]:
                    k = pending.popleft()
                    yield self._join(dictionary_id, got[:k])
                    got = got[k:]
        except grpc.RpcError as raw:
            raise errors.from_rpc_error(raw, "EncodeStream") from None
        finally:
            call.cancel()
        if failure:
            raise failure[0]

    def decode(self, dictionary_id: str, codes: Union[SparseCodes, Any],
               timeout=_DEFAULT) -> np.ndarray:
        """x_hat = f W_dec + b_dec for SparseCodes (or a scipy.sparse matrix)
        [n, d_sae]: float32 [n, d_in] ([n, d_out] for a transcoder, without
        its skip term, which needs the input: use encode's reconstruction).
        Split over several calls when bigger than one message.

        >>> codes = c.encode("demo", np.ones((2, 64), np.float32), reconstruction=True)
        >>> np.allclose(c.decode("demo", codes), codes.reconstruction, atol=1e-5)
        True
        """
        codes = as_codes(codes)
        info = self._plan_info(dictionary_id)
        n = codes.num_rows
        offsets = np.asarray(codes.row_offsets, np.int64)
        request_cumulative = 16 * np.arange(n + 1, dtype=np.int64) + 8 * (offsets - offsets[0])
        response_row = 4 * _decoded_width(info, info.d_in) if info is not None else 0

        def plan(start, cap):
            return split_rows(n, start, self._budget(), cap,
                              request_cumulative=request_cumulative, response_row=response_row)

        def send(chunks):
            for s, e in chunks:
                req = pb.DecodeRequest(dictionary_id=dictionary_id,
                                       codes=codes.row_slice(s, e).to_proto())
                yield from_tensor(self._stub.Decode(req, timeout=self._deadline(timeout))
                                  .activations)

        parts = self._chunked("Decode", plan, send)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def intervene(self, dictionary_id: str, activations, edits: Sequence, top_k: int = 0,
                  compute_mode: Optional[str] = None, dtype=None,
                  timeout=_DEFAULT) -> Tuple[np.ndarray, SparseCodes]:
        """Edits features and returns (x + (f' - f) W_dec, the edited codes f').

        edits: (feature, op, value) or (feature, op, value, rows) with op in
        "set" (f' = value), "add", "scale", "ablate" (f' = 0) and rows the
        row indices it applies to (absent or empty: every row). The SAE's
        error term is preserved. For a transcoder (info.d_out > 0) the first
        result is its edited output f' W_dec + b_dec (+ x W_skip^T), [n, d_out]
        at its output hook: it has no error term there. Activations as in encode; split over
        several calls when bigger than one message.

        >>> x = np.ones((2, 64), np.float32)
        >>> f = c.encode("demo", x).to_dense()
        >>> top = int(np.argmax(f[0]))
        >>> edited, codes = c.intervene("demo", x, [(top, "ablate", 0.0, [0])])
        >>> float(codes.to_dense()[0, top]), bool(np.allclose(edited[1], x[1]))
        (0.0, True)
        """
        rows = as_rows(activations, dtype)
        info = self._plan_info(dictionary_id)
        parsed = [_parse_edit(i, e, rows.n, info.d_sae if info is not None else None)
                  for i, e in enumerate(edits)]
        options = _encode_options(top_k, False, False, False, compute_mode)
        d = rows.array.shape[1]
        marks = np.zeros(rows.n + 1, np.int64)
        for _, _, _, r in parsed:
            if r is not None:
                np.add.at(marks, r + 1, 10)  # a varint row index
        request_cumulative = rows.row_bytes * np.arange(rows.n + 1, dtype=np.int64) + \
            np.cumsum(marks)
        response_row = 4 * _decoded_width(info, d) + _codes_row_bytes(info, options.top_k,
                                                                      len(parsed))

        def plan(start, cap):
            cap = self.max_request_rows if cap is None else min(cap, self.max_request_rows or cap)
            return split_rows(rows.n, start, self._budget(), cap,
                              request_cumulative=request_cumulative, response_row=response_row)

        def send(chunks):
            for s, e in chunks:
                req = pb.InterveneRequest(dictionary_id=dictionary_id,
                                          activations=rows.tensor(s, e), options=options)
                for feature, op, value, r in parsed:
                    if r is None:
                        req.edits.add(feature=feature, op=op, value=value)
                        continue
                    inside = r[(r >= s) & (r < e)] - s
                    if inside.size:
                        req.edits.add(feature=feature, op=op, value=value, rows=inside.tolist())
                resp = self._stub.Intervene(req, timeout=self._deadline(timeout))
                yield from_tensor(resp.activations), self._codes(resp.codes, resp, dictionary_id)

        parts = self._chunked("Intervene", plan, send)
        x = parts[0][0] if len(parts) == 1 else np.concatenate([p[0] for p in parts])
        return x, self._join(dictionary_id, [p[1] for p in parts])

    # --- corpus --------------------------------------------------------------

    def ingest(self, dictionary_id: str, corpus: str, documents: Iterable,
               batch_tokens: int = 8192, value_precision: str = "f32", bf16: bool = False,
               progress: Union[None, bool, Callable] = None, timeout: Optional[float] = None,
               compute_mode: Optional[str] = None, dtype=None,
               total_tokens: Optional[int] = None) -> Dict[str, Any]:
        """Stores documents and their sparse codes under `dictionary_id`.

        documents: an iterable (a generator is fine: it is read as the stream
        goes) of (doc_id, token_ids, activations, token_strings) with
        token_ids an integer array [n], activations [n, d_in] (dtypes as in
        encode) and token_strings None or n strings. Whole documents are
        packed into messages of up to `batch_tokens` tokens that fit in one
        message (a longer document goes alone); the server stores each
        message atomically and acknowledges it. A message the server refuses
        as too big (RESOURCE_EXHAUSTED naming its limit) is not sent again,
        but the client keeps the limit for its next calls; give
        max_message_bytes / max_request_rows to connect() for a server with
        lower limits than the defaults. value_precision: "f32" or
        "f16" (how the latent values are stored). progress: None, True (a
        one-line bar on stderr: tokens, tokens/s and, with a known total, an
        ETA) or a callable given each IngestAck as it arrives. total_tokens:
        the total for the bar's ETA (counted when documents is a list).
        timeout: seconds for the whole stream, None for no deadline.
        compute_mode: as in encode(). Never retried.

        Returns {"documents", "tokens", "replaced_documents", "acks"} (acks:
        the IngestAck messages, one per batch). A server error raises
        saedict.Error; the batches acknowledged before it stay stored. A bad
        document raises ValueError once the documents before it are stored.
        RuntimeError when the acks do not match the batches sent.

        >>> acts = np.ones((4, 64), np.float32)
        >>> c.ingest("demo", "notes", [(1, np.arange(4), acts, ["a", "b", "c", "d"])])["tokens"]
        4
        """
        if value_precision not in _PRECISIONS:
            raise ValueError(f"value_precision must be 'f32' or 'f16', got {value_precision!r}")
        mode = _compute_mode(compute_mode, bf16)
        if batch_tokens < 1:
            raise ValueError(f"batch_tokens must be positive, got {batch_tokens}")
        bar = None
        if progress is True:
            if total_tokens is None and isinstance(documents, (list, tuple)):
                total_tokens = sum(len(d[1]) for d in documents if len(d) >= 3)
            bar = ProgressBar(total_tokens)
            progress = bar.update
        max_tokens = min(batch_tokens, self.max_request_rows or batch_tokens)
        budget = self._budget()
        sent: List[Tuple[int, int]] = []   # (documents, tokens) per batch, as requests go out
        failure: List[ValueError] = []     # a bad document's ValueError, raised once the stream ends

        def requests():
            def request(docs):
                sent.append((len(docs), sum(len(d.token_ids) // 4 for d in docs)))
                req = pb.IngestRequest(dictionary_id=dictionary_id, corpus=corpus, documents=docs,
                                       value_precision=_PRECISIONS[value_precision])
                if mode is not None:
                    req.compute_mode = mode
                return req
            pending, tokens, size = [], 0, 0
            try:
                for doc in documents:
                    d = _ingest_document(doc, dtype)
                    n, b = len(d.token_ids) // 4, d.ByteSize() + 8
                    if b > budget:
                        raise ValueError(f"document {d.doc_id}: {b} bytes, more than one message "
                                         f"carries ({self.max_message_bytes} bytes); split it "
                                         f"into several documents")
                    if self.max_request_rows is not None and n > self.max_request_rows:
                        raise ValueError(f"document {d.doc_id}: {n} tokens, more than the server "
                                         f"takes in one message ({self.max_request_rows}, its "
                                         f"--max_request_tokens); split it into several documents")
                    if pending and (tokens + n > max_tokens or size + b > budget):
                        yield request(pending)
                        pending, tokens, size = [], 0, 0
                    pending.append(d)
                    tokens += n
                    size += b
            except ValueError as e:  # store the documents before it; raised below
                failure.append(e)
            if pending:
                yield request(pending)

        acks: List[Any] = []
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
        except grpc.RpcError as raw:
            e = errors.from_rpc_error(raw, "Ingest")
            self._learn_limit(e.message, 0)  # sizes the next ingest
            raise e from None
        finally:
            call.cancel()  # a no-op when the call already ended
            if bar is not None:
                bar.finish(acks[-1] if acks else None)
        if failure:
            raise failure[0]
        if len(acks) != len(sent):
            raise RuntimeError(f"ingest: server sent {len(acks)} acks for {len(sent)} batches")
        return {"documents": acks[-1].total_documents if acks else 0,
                "tokens": acks[-1].total_tokens if acks else 0,
                "replaced_documents": sum(a.replaced_documents for a in acks),
                "acks": acks}

    def get_document(self, corpus: str, doc_id: int) -> results.Document:
        """The stored document (token_ids int32, token_strings, .text).

        >>> doc = c.get_document("demo", 0)       # the demo corpus: 200 documents
        >>> len(doc), doc.token_ids.dtype, doc.token_strings[0][0]
        (64, dtype('int32'), ' ')
        """
        d = self._unary("GetDocument", pb.GetDocumentRequest(corpus=corpus, doc_id=doc_id)).document
        return results.Document(d.corpus, d.doc_id, np.array(d.token_ids, dtype=np.int32),
                                list(d.token_strings))

    def get_activations(self, dictionary_id: str, corpus: str, doc_id: int,
                        dense: bool = False) -> Union[SparseCodes, np.ndarray]:
        """The stored codes of a document: SparseCodes (one row per token,
        .precision "f32"/"f16"), or with dense=True a float32 [n, d_sae] array.

        >>> c.get_activations("demo", "demo", 0).shape
        (64, 512)
        """
        resp = self._unary("GetActivations", pb.GetActivationsRequest(
            dictionary_id=dictionary_id, corpus=corpus, doc_id=doc_id))
        codes = SparseCodes.from_proto(resp.codes)
        codes.precision = _PRECISION_NAMES.get(resp.stored_precision, str(resp.stored_precision))
        return codes.to_dense() if dense else codes

    def get_feature(self, dictionary_id: str, feature: int, top_n: int = 10,
                    context_window: int = 8, neighbours: int = 0,
                    skip_family: bool = False) -> results.FeaturePage:
        """The feature page as a FeaturePage: .stats (count, total_tokens,
        density, mean, std, max, histogram), .top_examples (with context;
        .records() / .to_frame()), .neighbours (the `neighbours` nearest
        decoder directions, 0: 10) when .neighbours_state is READY, and
        .family unless skip_family. Also c.feature(...).

        >>> page = c.feature("demo", 0, top_n=3)
        >>> page.stats.count > 0, len(page.top_examples), page.top_examples[0].corpus
        (True, 3, 'demo')
        >>> page.top_examples.values.dtype, sorted(page.records()[0])
        (dtype('float32'), ['corpus', 'dictionary_id', 'doc_id', 'feature', 'position', 'rank', 'text', 'value'])
        """
        req = pb.GetFeatureRequest(dictionary_id=dictionary_id, feature=_feature_index(feature),
                                   top_n=top_n, context_window=context_window,
                                   neighbours=neighbours, skip_family=skip_family)
        return results.feature_page(self._unary("GetFeature", req))

    feature = get_feature

    def top_activations(self, dictionary_id: str, feature: int, n: int = 10,
                        context_window: int = 8, quantile_bins: int = 0,
                        per_bin: int = 5) -> results.TopActivations:
        """TopActivations: .top (descending value) and, with quantile_bins,
        .bins (lowest quantile first), each with up to per_bin examples;
        .records() / .to_frame() give every example as a row.

        >>> top = c.top_activations("demo", 0, n=3, quantile_bins=2, per_bin=2)
        >>> len(top.top), len(top.bins), top.records()[0]["bin"]
        (3, 2, -1)
        """
        req = pb.TopActivationsRequest(dictionary_id=dictionary_id,
                                       feature=_feature_index(feature), n=n,
                                       context_window=context_window,
                                       quantile_bins=quantile_bins, per_bin=per_bin)
        return results.top_activations(self._unary("TopActivations", req), dictionary_id,
                                       int(feature))

    def document_features(self, dictionary_id: str, corpus: str, doc_id: int,
                          position: Optional[int] = None, n: int = 20):
        """DocumentFeaturesResponse: the n features with the largest value in
        the document (or only at `position`), each with max_value,
        max_position, active_tokens and sum; .num_tokens of the document.

        >>> c.document_features("demo", "demo", 0, n=5).num_tokens
        64
        """
        req = pb.DocumentFeaturesRequest(dictionary_id=dictionary_id, corpus=corpus,
                                         doc_id=doc_id, n=n)
        if position is not None:
            req.position = position
        return self._unary("DocumentFeatures", req)

    # --- similarity and families ----------------------------------------------

    def search_similar(self, dictionary_id: str, feature: Optional[int] = None, vector=None,
                       against: Union[None, str, Sequence[str]] = None, top_n: int = 10,
                       min_cosine: Optional[float] = None,
                       encoder: bool = False) -> Dict[str, results.SimilarResult]:
        """The features whose directions are nearest by cosine to feature
        `feature` of `dictionary_id` (never returned itself) or to `vector`
        ([d_in] or [1, d_in]; float32 / float16 / saedict.bfloat16 sent as
        they are, other numeric dtypes as float32). Decoder rows, or with
        encoder=True encoder columns. Searches `dictionary_id`, or the
        dictionaries of `against` (an id or a list of ids sharing its d_in).

        Returns {dictionary_id: SimilarResult} in the order searched, each
        with .neighbours (cosine descending), .features, .cosines, .exact and
        .index_factory. Exactly one of feature / vector (ValueError
        otherwise). FailedPrecondition until the index is READY
        (get_dictionary(id).index.state).
        """
        if (feature is None) == (vector is None):
            raise ValueError("give exactly one of feature= or vector=")
        req = pb.SearchSimilarRequest(
            dictionary_id=dictionary_id, top_n=top_n,
            directions=pb.DIRECTION_KIND_ENCODER if encoder else pb.DIRECTION_KIND_DECODER)
        if feature is not None:
            req.feature = _feature_index(feature)
        else:
            if not isinstance(vector, BFloat16):
                v = np.asarray(vector)
                if not (np.issubdtype(v.dtype, np.floating) or np.issubdtype(v.dtype, np.integer)):
                    raise ValueError(f"vector must be numeric, got dtype {v.dtype}")
                vector = v if v.dtype in (np.float32, np.float16) else v.astype(np.float32)
            shape = vector.shape
            if len(shape) not in (1, 2) or (len(shape) == 2 and shape[0] != 1) or \
                    int(np.prod(shape)) == 0:
                raise ValueError(f"vector must have shape [d_in] or [1, d_in], got {shape}")
            rows = as_rows(vector if len(shape) == 1 else vector[0], name="vector")
            req.vector.CopyFrom(pb.Tensor(dtype=rows.dtype, shape=[rows.array.shape[1]],
                                          data=rows.array.tobytes()))
        if against is not None:
            req.against.extend([against] if isinstance(against, str) else list(against))
        if min_cosine is not None:
            req.min_cosine = float(min_cosine)
        resp = self._unary("SearchSimilar", req)
        return {r.dictionary_id: results.similar_result(r) for r in resp.results}

    def feature_family(self, dictionary_id: str, feature: int,
                       min_decoder_cosine: Optional[float] = None,
                       min_coverage: Optional[float] = None,
                       min_child_count: Optional[int] = None) -> results.FeatureFamily:
        """The family of `feature`: .parents (nearest first, up to .root),
        .children, .siblings (FamilyMember with coverage, decoder_cosine,
        jaccard, phi, count and reason), .family_size and .provenance.
        Thresholds left None take the server's defaults (0.3, 0.8, 5).
        FailedPrecondition until the neighbours are READY."""
        req = pb.FeatureFamilyRequest(
            dictionary_id=dictionary_id, feature=_feature_index(feature),
            options=_family_options(min_decoder_cosine, min_coverage, min_child_count))
        return results.feature_family(self._unary("FeatureFamily", req))

    def list_families(self, dictionary_id: str, page_size: int = 0, page_token: str = "",
                      min_decoder_cosine: Optional[float] = None,
                      min_coverage: Optional[float] = None,
                      min_child_count: Optional[int] = None) -> results.FamilyPage:
        """One page of the dictionary's families (largest first): .families
        (Family with root, members, depth, root_count), .total_families,
        .next_page_token ("" on the last page; pass it back for the next
        one) and .provenance. page_size 0: the server's 50."""
        req = pb.ListFamiliesRequest(
            dictionary_id=dictionary_id, page_size=page_size, page_token=page_token,
            options=_family_options(min_decoder_cosine, min_coverage, min_child_count))
        return results.family_page(self._unary("ListFamilies", req))

    def iter_families(self, dictionary_id: str, page_size: int = 0,
                      min_decoder_cosine: Optional[float] = None,
                      min_coverage: Optional[float] = None,
                      min_child_count: Optional[int] = None) -> Iterator[results.Family]:
        """Every family of the dictionary, largest first, following the pages
        of list_families. The server refuses a page token of families
        recomputed since (InvalidArgument): start again then."""
        token = ""
        while True:
            page = self.list_families(dictionary_id, page_size, token, min_decoder_cosine,
                                      min_coverage, min_child_count)
            yield from page.families
            if not page.next_page_token:
                return
            token = page.next_page_token

    # --- comparison and evaluation --------------------------------------------

    def compare_dictionaries(self, a: str, b: str, method: str = "decoder", corpus: str = "",
                             match_threshold: Optional[float] = None, assignment: bool = True,
                             matches: bool = True,
                             progress: Optional[Callable[[str, float], None]] = None,
                             timeout=_DEFAULT) -> results.Comparison:
        """Compares dictionaries `a` and `b`: method "decoder" (same d_in:
        decoder cosine, MMCS, exact one-to-one assignment) or "activation"
        (Pearson correlation over `corpus`, which both were ingested on, and
        SVCCA). progress(phase, fraction) is called while the server works.
        Returns a Comparison (.summary, and .a / .b with numpy arrays per
        feature); InvalidArgument e.g. for different d_in with the decoder
        method.

        >>> cmp = c.compare_dictionaries("demo", "demo", assignment=False)
        >>> round(cmp.summary.mean_max_a_to_b, 6), cmp.a.best_partner[:3].tolist()
        (1.0, [0, 1, 2])
        """
        if method not in _COMPARE_METHODS:
            raise ValueError(f"method must be one of {sorted(_COMPARE_METHODS)}, got {method!r}")
        req = pb.CompareDictionariesRequest(dictionary_a=a, dictionary_b=b,
                                            method=_COMPARE_METHODS[method], corpus=corpus,
                                            skip_assignment=not assignment,
                                            skip_matches=not matches)
        if match_threshold is not None:
            req.match_threshold = float(match_threshold)

        def run():
            summary, rows = None, {pb.COMPARE_SIDE_A: [], pb.COMPARE_SIDE_B: []}
            for m in self._stub.CompareDictionaries(req, timeout=self._deadline(timeout)):
                kind = m.WhichOneof("item")
                if kind == "progress" and progress is not None:
                    progress(m.progress.phase, m.progress.fraction)
                elif kind == "summary":
                    summary = m.summary
                elif kind == "matches":
                    rows[m.matches.side].extend(m.matches.matches)
            out = results.Comparison(summary)
            if matches:
                out.a = results.feature_matches(rows[pb.COMPARE_SIDE_A], summary.size_a)
                out.b = results.feature_matches(rows[pb.COMPARE_SIDE_B], summary.size_b)
            return out

        return self._retrying("CompareDictionaries", True, run)

    def evaluate(self, dictionary_id: str, activations=None, corpus: Optional[str] = None,
                 chunk_rows: int = 4096, context_size: int = 0,
                 per_token_error_norms: bool = False, eval_id: str = "", dtype=None,
                 timeout=_DEFAULT) -> Dict[str, Any]:
        """Evaluates `dictionary_id` on `activations` ([n, d_in], dtypes as in
        encode, streamed in chunks of at most chunk_rows that fit in a
        message) or on the codes stored for `corpus`. Returns the SAEBench
        core report as a dict (with "saedict" extras; metrics that need the
        language model or, for a corpus, the activations are absent and
        listed in report["saedict"]["absent_metrics"]). With
        per_token_error_norms the dict also holds "per_token_error_norms"
        (numpy [n]).

        >>> x = np.random.default_rng(0).standard_normal((256, 64)).astype(np.float32)
        >>> c.evaluate("demo", x)["eval_type_id"]
        'core'
        """
        if (activations is None) == (corpus is None):
            raise ValueError("give exactly one of activations= or corpus=")
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
        options = pb.EvaluateOptions(context_size=context_size,
                                     per_token_error_norms=per_token_error_norms)
        rows: Optional[Rows] = None
        if corpus is None:
            rows = as_rows(activations, dtype, allow_1d=False)
            if rows.n == 0:
                raise ValueError(f"activations must have shape [n, d_in], got {rows.array.shape}")
            chunk_rows = max(1, min(chunk_rows, self._budget() // rows.row_bytes))

        def requests():
            first = pb.EvaluateRequest(dictionary_id=dictionary_id, options=options,
                                       eval_id=eval_id)
            if rows is None:
                first.corpus = corpus
                yield first
                return
            for start in range(0, rows.n, chunk_rows):
                req = first if start == 0 else pb.EvaluateRequest()
                req.activations.CopyFrom(rows.tensor(start, start + chunk_rows))
                yield req

        chunks = 1 if rows is None else -(-rows.n // chunk_rows)
        resp = self._retrying("Evaluate", True, lambda: self._stub.Evaluate(
            requests(), timeout=self._deadline(timeout, chunks)))
        report = json.loads(resp.saebench_json)
        if per_token_error_norms and corpus is None:
            report["per_token_error_norms"] = from_tensor(resp.per_token_error_norms)
        return report

    # --- Dictionaries from anywhere -------------------------------------------

    def upload(self, id: str, path, format: str = "auto", replace: bool = False,
               default_compute_mode: Optional[str] = None, progress: bool = False,
               chunk_bytes: int = 2 << 20, timeout=None, alias: str = ""):
        """Sends the SAE at local `path` (a SAELens / sparsify folder, or a
        Gemma Scope params.npz) to the server, which checks every file's size
        and SHA-256, then loads it exactly like load_dictionary and serves it
        from then on. Returns its DictionaryInfo. An interrupted or damaged
        upload leaves nothing on the server. alias as for load_dictionary.
        progress=True prints bytes/s on stderr. Never retried; no deadline by default (big files).
        AlreadyExists unless replace=True; ResourceExhausted above the
        server's --max_upload_mb.
        """
        if format not in _FORMATS:
            raise ValueError(f"format must be one of {sorted(_FORMATS)}, got {format!r}")
        if not 1 <= chunk_bytes <= 4 << 20:
            raise ValueError(f"chunk_bytes must be in [1, 4 MiB], got {chunk_bytes}")
        plan = files.upload_plan(path)
        header = pb.UploadDictionaryRequest.Header(id=id, format=_FORMATS[format], replace=replace,
                                                   alias=alias)
        mode = _compute_mode(default_compute_mode, False)
        if mode is not None:
            header.default_compute_mode = mode
        for f in plan:
            header.files.add(name=f.name, size=f.size, sha256=f.sha256)
        bar = ByteProgress("upload", sum(f.size for f in plan)) if progress else None

        def requests():
            yield pb.UploadDictionaryRequest(header=header)
            for i, offset, block in files.file_chunks([f.path for f in plan], chunk_bytes, bar):
                yield pb.UploadDictionaryRequest(file_index=i, offset=offset, data=block)

        self._info.pop(id, None)
        try:
            resp = self._retrying("UploadDictionary", False, lambda: self._stub.UploadDictionary(
                requests(), timeout=self._deadline(timeout)))
        finally:
            if bar:
                bar.finish()
        return resp.dictionary

    # --- Explanations ----------------------------------------------------------

    def set_explanation(self, dictionary_id: str, feature: int, text: str, source: str = "",
                        score: Optional[float] = None, author: str = "",
                        explainer_model: str = "", explanation_id: str = ""
                        ) -> "expl.Explanation":
        """Attaches `text` to a feature (source default "human"); with
        explanation_id, rewrites that explanation instead. The same text
        from the same source, author and model again updates it rather than
        adding a copy. Returns the stored Explanation. Never retried.

        >>> e = c.set_explanation("demo", 7, "doctest explanation", score=0.5)
        >>> e.feature, e.source, e.score
        (7, 'human', 0.5)
        >>> c.delete_explanation("demo", 7, e.id)
        """
        req = pb.SetExplanationRequest(dictionary_id=dictionary_id, feature=_feature_index(feature),
                                       text=text, source=source, author=author,
                                       explainer_model=explainer_model,
                                       explanation_id=explanation_id)
        if score is not None:
            req.score = float(score)
        return expl.explanation(self._unary("SetExplanation", req, retry=False).explanation)

    def delete_explanation(self, dictionary_id: str, feature: int, explanation_id: str) -> None:
        """Removes one explanation (NotFound when the feature has no such id)."""
        self._unary("DeleteExplanation", pb.DeleteExplanationRequest(
            dictionary_id=dictionary_id, feature=_feature_index(feature),
            explanation_id=explanation_id), retry=False)

    def explanations(self, dictionary_id: str, feature: int) -> List["expl.Explanation"]:
        """The feature's explanations: scored ones first (best first), then newest."""
        resp = self._unary("ListExplanations", pb.ListExplanationsRequest(
            dictionary_id=dictionary_id, feature=_feature_index(feature)))
        return [expl.explanation(e) for e in resp.explanations]

    def search_explanations(self, query: str, dictionaries: Optional[Sequence[str]] = None,
                            top_n: int = 20, source: str = "") -> "expl.ExplanationSearch":
        """Features whose explanations contain words of `query`, ranked by BM25
        (k1 1.2, b 0.75; words are runs of letters and digits, ASCII case
        folded, no stemming), best first, matched words marked [[like this]]
        in each hit's snippet. `dictionaries`: only those; `source`: only
        that source.

        >>> e = c.set_explanation("demo", 9, "zebra crossings and zebras")
        >>> hits = c.search_explanations("zebra", dictionaries=["demo"])
        >>> hits.hits[0].explanation.feature, hits.hits[0].snippet
        (9, '[[zebra]] crossings and zebras')
        >>> c.delete_explanation("demo", 9, e.id)
        """
        if isinstance(dictionaries, str):
            dictionaries = [dictionaries]
        req = pb.SearchExplanationsRequest(query=query, dictionary_ids=list(dictionaries or []),
                                           top_n=top_n, source=source)
        return expl.explanation_search(self._unary("SearchExplanations", req))

    def import_explanations(self, path, format: str = "auto", dictionary: Optional[str] = None,
                            mapping: Optional[Dict[str, str]] = None,
                            replace_same_source: bool = False, progress: bool = False,
                            chunk_bytes: int = 1 << 20, timeout=None) -> "expl.ImportResult":
        """Imports explanations from a Neuronpedia export
        (explanations/batch-N.jsonl(.gz)) or a delphi run
        ({module}_latent{index}.txt files): `path` is a file, a folder
        (searched recursively) or a list of them. Rows go to the dictionary
        `mapping` names for their "modelId/layer" (delphi: module), else to
        `dictionary`. Malformed rows are skipped and listed in
        result.problems with file and line; the rest is stored (importing
        the same file again updates, never duplicates). Never retried.
        """
        if dictionary is None and not mapping:
            raise ValueError("give dictionary= or mapping= to say where the rows go")
        fmt, found = files.import_files(path, format)
        header = pb.ImportExplanationsRequest.Header(
            format=pb.EXPLANATION_FORMAT_NEURONPEDIA if fmt == "neuronpedia"
            else pb.EXPLANATION_FORMAT_DELPHI,
            dictionaries=dict(mapping or {}), default_dictionary_id=dictionary or "",
            replace_same_source=replace_same_source)
        bar = ByteProgress("import", sum(p.stat().st_size for p, _ in found)) if progress else None

        def requests():
            yield pb.ImportExplanationsRequest(header=header)
            for i, _, block in files.file_chunks([p for p, _ in found], chunk_bytes, bar):
                yield pb.ImportExplanationsRequest(file_name=found[i][1], data=block)

        try:
            resp = self._retrying("ImportExplanations", False, lambda: self._stub.ImportExplanations(
                requests(), timeout=self._deadline(timeout)))
        finally:
            if bar:
                bar.finish()
        return expl.import_result(resp)

    # --- Export for auto-interpretation ------------------------------------------

    def export_latents(self, dictionary_id: str, corpus: str, directory, n_splits: int = 0,
                       ctx_len: int = 0, pad_token_id: int = 0, progress: bool = False,
                       timeout=None):
        """Writes the latents stored for `corpus` under `dictionary_id` as
        delphi's latent cache in `directory` (the same files as
        `saedict export --format delphi`): {hookpoint}/{start}_{end}.safetensors
        per latent range with locations [N, 3] (sequence, position,
        latent - start), activations (f16) and tokens [n_sequences, ctx_len],
        plus config.json and saedict_sequences.json (which document each
        sequence holds). Documents become sequences of ctx_len tokens (0: the
        longest), padded with pad_token_id. Returns the folder written; it
        appears only when complete. n_splits 0: delphi's 5.
        """
        req = pb.ExportLatentsRequest(dictionary_id=dictionary_id, corpus=corpus,
                                      n_splits=n_splits, ctx_len=ctx_len,
                                      pad_token_id=pad_token_id)
        writer = files.DelphiCacheWriter(directory, corpus, pad_token_id)
        bar = None
        try:
            stream = self._stub.ExportLatents(req, timeout=self._deadline(timeout))
            for m in stream:
                writer.add(m)
                if progress and m.WhichOneof("part") == "header":
                    bar = ByteProgress("export", m.header.n_entries, unit="latents")
                if bar and m.WhichOneof("part") == "chunk":
                    bar.update(writer.entries)
            return writer.finish()
        except grpc.RpcError as raw:
            writer.abort()
            raise errors.from_rpc_error(raw, "ExportLatents", 1) from None
        except BaseException:
            writer.abort()
            raise
        finally:
            if bar:
                bar.finish()

    def create_checkpoint(self, name: str):
        """Admin: a consistent backup under <data_dir>/backups/<name> on the
        server. Returns the CreateCheckpointResponse (.path, .bytes). Never
        retried."""
        return self._unary("CreateCheckpoint", pb.CreateCheckpointRequest(name=name), retry=False)


def connect(target: str = "localhost:50051", *, token: Optional[str] = None, tls: bool = False,
            root_certificates: Optional[str] = None, certificate_chain: Optional[str] = None,
            private_key: Optional[str] = None, server_name: Optional[str] = None,
            timeout: Optional[float] = 60.0, retries: int = 3, retry_backoff: float = 0.1,
            max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
            max_request_rows: Optional[int] = None) -> Client:
    """A Client for the saedictd at `target` (the channel connects lazily;
    the first call reports an unreachable server as saedict.Unavailable).
    Arguments as in :class:`Client`.

    >>> with saedict.connect(TARGET, timeout=10) as c2:
    ...     c2.get_dictionary("demo").d_sae
    512
    """
    return Client(target, max_message_bytes=max_message_bytes, timeout=timeout, token=token,
                  tls=tls, root_certificates=root_certificates,
                  certificate_chain=certificate_chain, private_key=private_key,
                  server_name=server_name, retries=retries, retry_backoff=retry_backoff,
                  max_request_rows=max_request_rows)
