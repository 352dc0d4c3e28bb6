"""saedict_client: a small notebook-friendly Python client for saedictd.

    from saedict_client import Client
    c = Client("localhost:50051")
    c.load_dictionary("sae", "path/under/dictionary_root")
    codes = c.encode("sae", acts)          # acts: np.ndarray [n, d_in] f32/f16
    dense = codes.to_dense()                # [n, d_sae]
    x_hat = c.decode("sae", codes)

Needs the generated stubs (package `saedict.v1`, made by the CMake target
`saedict_python_stubs` into <build>/python) on sys.path, plus grpcio and numpy.
A grpc.RpcError carries the server's status code and message unchanged.
"""
from dataclasses import dataclass

import grpc
import numpy as np

from saedict.v1 import saedict_pb2 as pb
from saedict.v1 import saedict_pb2_grpc as pb_grpc

_DTYPES = {np.dtype(np.float32): pb.DTYPE_F32, np.dtype(np.float16): pb.DTYPE_F16}
_FORMATS = {"auto": pb.SOURCE_FORMAT_AUTO, "saelens": pb.SOURCE_FORMAT_SAELENS,
            "sparsify": pb.SOURCE_FORMAT_SPARSIFY, "gemma_scope": pb.SOURCE_FORMAT_GEMMA_SCOPE}
_EDIT_OPS = {"set": pb.EDIT_OP_SET, "add": pb.EDIT_OP_ADD, "scale": pb.EDIT_OP_SCALE,
             "ablate": pb.EDIT_OP_ABLATE}


@dataclass
class SparseCodes:
    """CSR codes: row i holds indices[row_offsets[i]:row_offsets[i+1]]."""
    row_offsets: np.ndarray  # uint64 [n+1]
    indices: np.ndarray      # uint32 [nnz]
    values: np.ndarray       # float32 [nnz]
    num_features: int
    reconstruction: np.ndarray = None  # float32 [n, d_in] when asked
    row_error: np.ndarray = None       # float32 [n] when asked

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


def _codes(proto, response=None):
    codes = SparseCodes(np.frombuffer(proto.row_offsets, "<u8"),
                        np.frombuffer(proto.indices, "<u4"),
                        np.frombuffer(proto.values, "<f4"), proto.num_features)
    if response is not None and response.HasField("reconstruction"):
        codes.reconstruction = from_tensor(response.reconstruction)
    if response is not None and response.HasField("row_error"):
        codes.row_error = from_tensor(response.row_error)
    return codes


class Client:
    def __init__(self, target="localhost:50051", max_message_bytes=256 << 20, timeout=60.0):
        options = [("grpc.max_send_message_length", max_message_bytes),
                   ("grpc.max_receive_message_length", max_message_bytes)]
        if target.startswith("localhost:"):  # RFC 6761 loopback; needs no /etc/hosts or DNS
            target = "ipv4:127.0.0.1:" + target[len("localhost:"):]
        self._channel = grpc.insecure_channel(target, options=options)
        self._stub = pb_grpc.SaedictStub(self._channel)
        self._timeout = timeout

    def close(self):
        self._channel.close()

    def load_dictionary(self, id, path, format="auto", replace=False):
        req = pb.LoadDictionaryRequest(id=id, path=str(path), format=_FORMATS[format],
                                       replace=replace)
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
    def _options(top_k, reconstruction, error, bf16):
        return pb.EncodeOptions(top_k=top_k, return_reconstruction=reconstruction,
                                return_error=error,
                                compute_mode=pb.COMPUTE_MODE_BF16 if bf16 else pb.COMPUTE_MODE_F32)

    def encode(self, id, activations, top_k=0, reconstruction=False, error=False, bf16=False):
        req = pb.EncodeRequest(dictionary_id=id, activations=tensor(activations),
                               options=self._options(top_k, reconstruction, error, bf16))
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
            yield _codes(resp.codes)

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
