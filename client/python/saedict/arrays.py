"""Arrays on the wire: activation dtypes (float32, float16, bfloat16 bits),
the sparse codes type, and the row splitting behind automatic chunking.

>>> import numpy as np, saedict
>>> codes = saedict.SparseCodes(np.array([0, 2, 3], np.uint64), np.array([1, 4, 0], np.uint32),
...                             np.array([0.5, 2.0, 1.0], np.float32), num_features=5)
>>> codes.to_dense()
array([[0. , 0.5, 0. , 0. , 2. ],
       [1. , 0. , 0. , 0. , 0. ]], dtype=float32)
>>> codes.shape, codes.nnz
((2, 5), 3)
"""
from dataclasses import dataclass
from typing import List, NamedTuple, Optional, Tuple, Union

import numpy as np

from saedict.v1 import saedict_pb2 as pb

__all__ = ["BFloat16", "bfloat16", "SparseCodes"]

_DTYPE_KEYS = {"float32": pb.DTYPE_F32, "f32": pb.DTYPE_F32, "float16": pb.DTYPE_F16,
               "f16": pb.DTYPE_F16, "half": pb.DTYPE_F16, "bfloat16": pb.DTYPE_BF16,
               "bf16": pb.DTYPE_BF16}
_NUMPY_OF = {pb.DTYPE_F32: np.dtype("<f4"), pb.DTYPE_F16: np.dtype("<f2"),
             pb.DTYPE_BF16: np.dtype("<u2")}
_NAMES = {pb.DTYPE_F32: "float32", pb.DTYPE_F16: "float16", pb.DTYPE_BF16: "bfloat16"}


class BFloat16:
    """bfloat16 values held as their raw bits in a uint16 array (numpy has no
    bfloat16): the upper 16 bits of the float32 with the same value.

    >>> import numpy as np, saedict
    >>> x = np.array([[1.0, -2.5]], np.float32)
    >>> bits = (x.view(np.uint32) >> 16).astype(np.uint16)   # exact for these values
    >>> saedict.bfloat16(bits).to_float32()
    array([[ 1. , -2.5]], dtype=float32)
    """
    __slots__ = ("bits",)

    def __init__(self, bits):
        a = np.asarray(bits)
        if a.dtype.name == "bfloat16" and a.dtype.itemsize == 2:  # ml_dtypes / JAX arrays
            a = a.view(np.uint16)
        if a.dtype.kind != "u" or a.dtype.itemsize != 2:
            raise ValueError(f"bfloat16 takes the bf16 bits as a uint16 array, got dtype {a.dtype}")
        self.bits = a

    @property
    def shape(self) -> Tuple[int, ...]:
        return self.bits.shape

    @property
    def ndim(self) -> int:
        return self.bits.ndim

    def __len__(self) -> int:
        return len(self.bits)

    def __getitem__(self, index) -> "BFloat16":
        return BFloat16(self.bits[index])

    def to_float32(self) -> np.ndarray:
        """The values as float32 (exact: every bfloat16 is a float32)."""
        return (self.bits.astype(np.uint32) << 16).view(np.float32)

    def __repr__(self) -> str:
        return f"BFloat16(shape={self.shape})"


def bfloat16(bits) -> BFloat16:
    """Marks a uint16 array as bfloat16 bits, for encode / intervene / ingest."""
    return BFloat16(bits)


class Rows(NamedTuple):
    """Activations ready for the wire: a C-contiguous little-endian [n, d]
    array in the wire dtype's representation, and that dtype."""
    array: np.ndarray
    dtype: int  # pb.DType

    @property
    def n(self) -> int:
        return self.array.shape[0]

    @property
    def row_bytes(self) -> int:
        return self.array.shape[1] * self.array.itemsize

    def tensor(self, start: int = 0, stop: Optional[int] = None) -> "pb.Tensor":
        part = self.array[start:stop]
        return pb.Tensor(dtype=self.dtype, shape=list(part.shape), data=part.tobytes())


def _dtype_key(dtype) -> int:
    key = dtype.lower() if isinstance(dtype, str) else np.dtype(dtype).name
    if key not in _DTYPE_KEYS:
        raise ValueError(f"dtype must be 'float32', 'float16' or 'bfloat16', got {dtype!r}")
    return _DTYPE_KEYS[key]


def as_rows(x, dtype=None, name: str = "activations", allow_1d: bool = True) -> Rows:
    """`x` as Rows: float32 and float16 arrays go as they are, bfloat16 as a
    BFloat16 (or a uint16 array with dtype="bfloat16"); dtype="float32" /
    "float16" casts any float array to that. Anything else is a ValueError
    naming the dtype. 1-D input is one row; non-contiguous or big-endian
    arrays are copied."""
    want = None if dtype is None else _dtype_key(dtype)
    if isinstance(x, BFloat16):
        if want not in (None, pb.DTYPE_BF16):
            raise ValueError(f"{name}: a bfloat16 array cannot be sent as {_NAMES[want]}")
        a, wire = x.bits, pb.DTYPE_BF16
    else:
        a = np.asarray(x)
        if a.dtype.name == "bfloat16" and a.dtype.itemsize == 2:
            if want not in (None, pb.DTYPE_BF16):
                raise ValueError(f"{name}: a bfloat16 array cannot be sent as {_NAMES[want]}")
            a, wire = a.view(np.uint16), pb.DTYPE_BF16
        elif want == pb.DTYPE_BF16:
            if a.dtype.kind != "u" or a.dtype.itemsize != 2:
                raise ValueError(f"{name}: dtype='bfloat16' takes the bf16 bits as a uint16 "
                                 f"array, got dtype {a.dtype}")
            wire = pb.DTYPE_BF16
        elif want is not None:
            if a.dtype.kind != "f":
                raise ValueError(f"{name}: dtype {a.dtype} is not a float dtype; cannot send it "
                                 f"as {_NAMES[want]}")
            wire = want
        elif a.dtype.kind == "f" and a.dtype.itemsize in (2, 4):
            wire = pb.DTYPE_F32 if a.dtype.itemsize == 4 else pb.DTYPE_F16
        elif a.dtype.kind == "u" and a.dtype.itemsize == 2:
            raise ValueError(f"{name}: dtype uint16 is not supported; if these are bfloat16 "
                             f"bits, pass dtype='bfloat16' or saedict.bfloat16(x)")
        else:
            raise ValueError(f"{name}: dtype {a.dtype} is not supported; send float32, float16 "
                             f"or bfloat16 (e.g. x.astype(np.float32), or dtype='float32')")
    if a.ndim == 1 and allow_1d:
        a = a[None, :]
    if a.ndim != 2:
        one_row = " (or one row [d_in])" if allow_1d else ""
        raise ValueError(f"{name} must have shape [n, d_in]{one_row}, got {a.shape}")
    return Rows(np.ascontiguousarray(a, dtype=_NUMPY_OF[wire]), wire)


def from_tensor(t: "pb.Tensor") -> np.ndarray:
    """A float32 Tensor of an answer as a numpy array (read-only view)."""
    if t.dtype != pb.DTYPE_F32:
        raise ValueError(f"expected a float32 tensor, got dtype {t.dtype}")
    return np.frombuffer(t.data, "<f4").reshape(tuple(t.shape))


@dataclass(eq=False)
class SparseCodes:
    """Sparse codes of n rows as CSR: row i holds the features
    ``indices[row_offsets[i]:row_offsets[i+1]]`` (ascending) with ``values``.

    Attributes beyond the CSR arrays are filled where the answer has them:
    ``reconstruction`` (float32 [n, d_in]) and ``row_error`` (float32 [n],
    the squared L2 error) when asked of encode, ``precision`` ("f32"/"f16")
    for stored codes, ``weights_sha256`` and ``compute_mode`` ("f32",
    "fast_exact" — both exact and bit-identical — or "bf16").
    """
    row_offsets: np.ndarray  # uint64 [n+1]
    indices: np.ndarray      # uint32 [nnz]
    values: np.ndarray       # float32 [nnz]
    num_features: int        # d_sae
    reconstruction: Optional[np.ndarray] = None
    row_error: Optional[np.ndarray] = None
    precision: Optional[str] = None
    weights_sha256: Optional[str] = None
    compute_mode: Optional[str] = None

    @property
    def num_rows(self) -> int:
        return len(self.row_offsets) - 1

    @property
    def nnz(self) -> int:
        return len(self.indices)

    @property
    def shape(self) -> Tuple[int, int]:
        return (self.num_rows, self.num_features)

    def __len__(self) -> int:
        return self.num_rows

    def to_dense(self) -> np.ndarray:
        """float32 [n, d_sae] with zeros where a feature is inactive."""
        out = np.zeros((self.num_rows, self.num_features), np.float32)
        rows = np.repeat(np.arange(self.num_rows), np.diff(self.row_offsets).astype(np.int64))
        out[rows, self.indices.astype(np.int64)] = self.values
        return out

    def to_scipy(self):
        """A ``scipy.sparse.csr_matrix`` of shape [n, d_sae] (needs scipy).

        >>> import numpy as np, saedict
        >>> codes = saedict.SparseCodes(np.array([0, 1], np.uint64), np.array([2], np.uint32),
        ...                             np.array([3.0], np.float32), num_features=4)
        >>> codes.to_scipy().toarray()
        array([[0., 0., 3., 0.]], dtype=float32)
        """
        try:
            import scipy.sparse
        except ImportError as e:
            raise ImportError("SparseCodes.to_scipy() needs scipy, which is not installed: "
                              "`apt install python3-scipy` (Debian) or `pip install scipy`; "
                              "to_dense() needs nothing") from e
        index = np.int32 if max(self.nnz, self.num_features) < 2**31 else np.int64
        return scipy.sparse.csr_matrix(
            (self.values, self.indices.astype(index), self.row_offsets.astype(index)),
            shape=self.shape)

    @classmethod
    def from_scipy(cls, matrix) -> "SparseCodes":
        """Codes from any scipy.sparse matrix or array of shape [n, d_sae]."""
        m = matrix.tocsr(copy=True)
        m.sum_duplicates()  # also sorts the indices of each row
        return cls(np.asarray(m.indptr, np.uint64), np.asarray(m.indices, np.uint32),
                   np.asarray(m.data, np.float32), int(m.shape[1]))

    def to_proto(self) -> "pb.SparseCodes":
        return pb.SparseCodes(num_rows=self.num_rows, num_features=self.num_features,
                              row_offsets=np.asarray(self.row_offsets, "<u8").tobytes(),
                              indices=np.asarray(self.indices, "<u4").tobytes(),
                              values=np.asarray(self.values, "<f4").tobytes())

    def row_slice(self, start: int, stop: int) -> "SparseCodes":
        """Rows [start, stop) as their own codes (CSR arrays only)."""
        lo, hi = int(self.row_offsets[start]), int(self.row_offsets[stop])
        return SparseCodes(np.asarray(self.row_offsets[start:stop + 1], np.uint64) - np.uint64(lo),
                           self.indices[lo:hi], self.values[lo:hi], self.num_features)

    @classmethod
    def from_proto(cls, proto: "pb.SparseCodes") -> "SparseCodes":
        return cls(np.frombuffer(proto.row_offsets, "<u8"), np.frombuffer(proto.indices, "<u4"),
                   np.frombuffer(proto.values, "<f4"), int(proto.num_features))

    @classmethod
    def concatenate(cls, parts: List["SparseCodes"]) -> "SparseCodes":
        """The rows of `parts` one after another (one part: itself)."""
        if len(parts) == 1:
            return parts[0]
        offsets = [np.zeros(1, np.uint64)]
        base = 0
        for p in parts:
            offsets.append(np.asarray(p.row_offsets[1:], np.uint64) + np.uint64(base))
            base += p.nnz
        out = cls(np.concatenate(offsets), np.concatenate([p.indices for p in parts]),
                  np.concatenate([p.values for p in parts]), parts[0].num_features)
        for name in ("reconstruction", "row_error"):
            if all(getattr(p, name) is not None for p in parts):
                setattr(out, name, np.concatenate([getattr(p, name) for p in parts]))
        out.precision, out.compute_mode = parts[0].precision, parts[0].compute_mode
        out.weights_sha256 = parts[0].weights_sha256
        return out


def as_codes(codes: Union[SparseCodes, object]) -> SparseCodes:
    """SparseCodes as they are; a scipy.sparse matrix converted."""
    if isinstance(codes, SparseCodes):
        return codes
    if hasattr(codes, "tocsr"):
        return SparseCodes.from_scipy(codes)
    raise ValueError(f"codes must be SparseCodes or a scipy.sparse matrix, got {type(codes).__name__}")


def split_rows(n: int, start: int, budget: int, max_rows: Optional[int], request_row: int = 0,
               request_cumulative: Optional[np.ndarray] = None,
               response_row: int = 0) -> List[Tuple[int, int]]:
    """Chunks (s, e) covering rows [start, n): each chunk's request and
    response stay within `budget` bytes and `max_rows` rows (always at least
    one row per chunk). Request bytes per row are `request_row`, or given as
    cumulative bytes per row boundary (`request_cumulative`, length n + 1)."""
    if n == 0:
        return [(0, 0)]
    cap = n if max_rows is None else max(1, int(max_rows))
    if response_row > 0:
        cap = min(cap, max(1, budget // response_row))
    if request_cumulative is None:
        if request_row > 0:
            cap = min(cap, max(1, budget // request_row))
        return [(s, min(n, s + cap)) for s in range(start, n, cap)]
    out, s = [], start
    while s < n:
        e = int(np.searchsorted(request_cumulative, request_cumulative[s] + budget, "right")) - 1
        e = min(max(e, s + 1), s + cap, n)
        out.append((s, e))
        s = e
    return out

