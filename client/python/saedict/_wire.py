"""EncodeRequest bytes built straight from a numpy array: the activations are
copied once (into the joined message) instead of four times (tobytes, into
the Tensor, into the request, SerializeToString) — for big arrays that is a
quarter of the Python client's encode time. The bytes are exactly what
pb.EncodeRequest(...).SerializeToString() gives (fields in number order,
proto3 defaults left out, shape packed); a test checks that.

>>> import numpy as np
>>> from saedict._wire import encode_request_bytes
>>> from saedict.arrays import as_rows
>>> from saedict.v1 import saedict_pb2 as pb
>>> rows = as_rows(np.ones((2, 3), np.float32))
>>> want = pb.EncodeRequest(dictionary_id="d", activations=rows.tensor(0, 2),
...                         options=pb.EncodeOptions(top_k=4)).SerializeToString()
>>> encode_request_bytes("d", rows, 0, 2, pb.EncodeOptions(top_k=4)) == want
True
"""
from typing import List

_LEN = 2  # wire type: length-delimited


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _len_field(number: int, length: int) -> bytes:
    return _varint(number << 3 | _LEN) + _varint(length)


def encode_request_bytes(dictionary_id: str, rows, start: int, stop: int, options) -> bytes:
    """Serialized EncodeRequest{dictionary_id, activations = rows[start:stop], options}."""
    part = rows.array[start:stop]
    data = memoryview(part).cast("B") if part.size else b""
    shape = b"".join(_varint(int(d)) for d in part.shape)
    tensor: List[bytes] = []
    if rows.dtype:
        tensor.append(_varint(1 << 3) + _varint(rows.dtype))  # dtype, varint
    if part.shape:
        tensor += [_len_field(2, len(shape)), shape]
    if len(data):
        tensor.append(_len_field(3, len(data)))
    tensor_len = sum(len(t) for t in tensor) + len(data)
    name = dictionary_id.encode()
    opts = options.SerializeToString() if options is not None else None
    parts: list = []
    if name:
        parts += [_len_field(1, len(name)), name]
    parts += [_len_field(2, tensor_len), *tensor]
    if len(data):
        parts.append(data)
    if opts is not None:  # a set submessage is written even when empty, as protobuf does
        parts += [_len_field(3, len(opts)), opts]
    return b"".join(parts)
